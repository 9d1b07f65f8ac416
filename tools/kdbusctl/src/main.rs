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
            exit_code(&err)
        }
    }
}

/// 1 for every failure, but `initramfs` tells an image that cannot bring
/// up the bus (1) from a file it cannot read (2).
#[cfg(feature = "inspect")]
fn exit_code(err: &anyhow::Error) -> ExitCode {
    match err.downcast_ref::<kdbusctl::initramfs::archive::ReadError>() {
        Some(_) => ExitCode::from(2),
        None => ExitCode::FAILURE,
    }
}

#[cfg(not(feature = "inspect"))]
fn exit_code(_: &anyhow::Error) -> ExitCode {
    ExitCode::FAILURE
}
