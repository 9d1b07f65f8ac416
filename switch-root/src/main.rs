//! switch-root: a root transition that keeps the bus. Not implemented yet.

fn main() {
    eprintln!("switch-root: not implemented yet");
    std::process::exit(2);
}
