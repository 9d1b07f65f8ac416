//! kdbusctl: inspect and drive a kdbus bus. Not implemented yet.

fn main() {
    eprintln!("kdbusctl: not implemented yet");
    std::process::exit(2);
}
