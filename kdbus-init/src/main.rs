//! kdbus-init: the early-boot activator (creates the system bus at boot and
//! carries it through every root transition). Not implemented yet.

fn main() {
    eprintln!("kdbus-init: not implemented yet");
    std::process::exit(2);
}
