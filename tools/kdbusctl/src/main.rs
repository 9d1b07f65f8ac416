//! kdbusctl: inspect and drive a kdbus bus (see the library for all of it).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kdbusctl::Cli::parse();
    let mut out = std::io::stdout().lock();
    match kdbusctl::run(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kdbusctl: {err:#}");
            ExitCode::FAILURE
        }
    }
}
