//! switch-root NEWROOT INIT [ARGS...]
//!
//! Leaves the initramfs for the real root: every check comes before the
//! first change (a bad root leaves the system in the initramfs, where the
//! caller can still open a shell), then `/dev /proc /sys /run` move into
//! NEWROOT (kdbusfs rides along below /sys), NEWROOT becomes `/`, kdbus-init
//! is told to follow, the initramfs contents are deleted without crossing
//! into other file systems, and INIT is executed.

mod switch;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "switch-root",
    version,
    about = "Switch from the initramfs to NEWROOT and execute INIT there, keeping the kdbus bus",
    after_help = "NEWROOT must be a mount point and INIT an executable inside it (absolute \
                  symlinks are resolved inside NEWROOT). Nothing is changed unless every check \
                  passes. A running kdbus-init (pid in /run/kdbus/kdbus-init.pid) is sent \
                  SIGUSR1 after the switch so that it re-executes from NEWROOT."
)]
struct Cli {
    /// Check everything and report, but change nothing.
    #[arg(long)]
    check: bool,
    /// The mounted real root.
    newroot: PathBuf,
    /// The init to execute, as a path inside NEWROOT.
    init: PathBuf,
    /// Arguments for INIT.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let plan = match switch::Plan::check(&cli.newroot, &cli.init) {
        Ok(plan) => plan,
        Err(e) => {
            switch::report(&format!(
                "{e}; staying in the initramfs (nothing was changed)"
            ));
            return ExitCode::from(1);
        }
    };
    if cli.check {
        println!(
            "switch-root: ok: would switch to {} and execute {}",
            plan.newroot.display(),
            plan.init.display()
        );
        return ExitCode::SUCCESS;
    }
    // Only returns on failure.
    let err = plan.execute(&cli.args);
    switch::report(&format!("{err}"));
    ExitCode::from(1)
}
