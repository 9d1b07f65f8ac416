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

const HELP: &str = "\
Switch from the initramfs to NEWROOT and execute INIT there, keeping the kdbus bus

Usage: switch-root [--check] NEWROOT INIT [ARGS]...

Arguments:
  NEWROOT  The mounted real root
  INIT     The init to execute, as a path inside NEWROOT
  ARGS     Arguments for INIT

Options:
  --check        Check everything and report, but change nothing
  -h, --help     Print help
  -V, --version  Print version

NEWROOT must be a mount point and INIT an executable inside it (absolute symlinks are resolved
inside NEWROOT). Nothing is changed unless every check passes. A running kdbus-init (pid in
/run/kdbus/kdbus-init.pid) is sent SIGUSR1 after the switch so that it re-executes from NEWROOT.
";

#[derive(Debug, PartialEq)]
struct Cli {
    check: bool,
    newroot: PathBuf,
    init: PathBuf,
    args: Vec<OsString>,
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Switch(Cli),
    Help,
    Version,
}

/// Options come before NEWROOT; everything after INIT is INIT's, hyphens
/// and all. No parser crate: switch-root goes into initramfs images, where
/// every kilobyte counts.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let mut check = false;
    let mut positional = Vec::new();
    for arg in args.by_ref() {
        match arg.to_str() {
            Some("--check") if positional.is_empty() => check = true,
            Some("-h" | "--help") if positional.is_empty() => return Ok(Parsed::Help),
            Some("-V" | "--version") if positional.is_empty() => return Ok(Parsed::Version),
            Some("--") if positional.is_empty() => {}
            Some(s) if positional.is_empty() && s.starts_with('-') => {
                return Err(format!("unknown option {s}"))
            }
            _ => {
                positional.push(arg);
                if positional.len() == 2 {
                    break;
                }
            }
        }
    }
    let mut positional = positional.into_iter();
    match (positional.next(), positional.next()) {
        (Some(newroot), Some(init)) => Ok(Parsed::Switch(Cli {
            check,
            newroot: newroot.into(),
            init: init.into(),
            args: args.collect(),
        })),
        _ => Err("NEWROOT and INIT are required".into()),
    }
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Switch(cli)) => cli,
        Ok(Parsed::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("switch-root {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("switch-root: {e}\nUsage: switch-root [--check] NEWROOT INIT [ARGS]... (see --help)");
            return ExitCode::from(2);
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments() {
        let want = |check, args: &[&str]| {
            Ok(Parsed::Switch(Cli {
                check,
                newroot: "/sysroot".into(),
                init: "/sbin/init".into(),
                args: args.iter().map(OsString::from).collect(),
            }))
        };
        assert_eq!(p(&["/sysroot", "/sbin/init"]), want(false, &[]));
        assert_eq!(
            p(&["--check", "/sysroot", "/sbin/init", "--check", "-b", "x"]),
            want(true, &["--check", "-b", "x"])
        );
        assert_eq!(
            p(&["--", "/sysroot", "/sbin/init", "--"]),
            want(false, &["--"])
        );
        assert_eq!(p(&["--help"]), Ok(Parsed::Help));
        assert_eq!(p(&["-V"]), Ok(Parsed::Version));
        assert!(p(&["/sysroot"]).is_err());
        assert!(p(&[]).is_err());
        assert!(p(&["--force", "/sysroot", "/sbin/init"]).is_err());
    }
}
