//! kdbus-init's command line. A small parser (lexopt) instead of clap:
//! kdbus-init goes into every initramfs, and clap's code was about a tenth
//! of the binary.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

pub const HELP: &str = "\
Creates the kdbus system bus at boot and carries it from the initramfs to the shutdown root

Usage: kdbus-init [COMMAND]

Commands:
  run         Set up the bus and serve it (the default)
  status      Show the running kdbus-init's state
  follow      Tell the running kdbus-init to follow a root change, and wait until it runs
              from this root's binary
  wait-ready  Wait until the bus is up (for init scripts that start kdbus-init in the
              background); returns at once when kdbus= does not ask for the bus

Options of run:
  --foreground         Also log to stderr (for running by hand)
  --debug              Log debug records too
  --cmdline LINE       Use this command line instead of /proc/cmdline
  --services-dir DIR   Directory of D-Bus system service files
Options of status:
  --json               The whole state as JSON
Options of follow:
  --timeout SECONDS    How long to wait (default 10)
Options of wait-ready:
  --timeout SECONDS    How long to wait (default 10)
  --pid PID            The kdbus-init process to wait for (fail early if it exits)

  -h, --help     Print help
  -V, --version  Print version

Kernel command line: kdbus=1|0 (also yes/no, on/off, true/false; a bare `kdbus` means 1; absent
means 0), rd.kdbus.debug, rd.kdbus.shell=shutdown, rd.kdbus.services=DIR.
Status: /run/kdbus/kdbus-init.json (`kdbus-init status`).
";

#[derive(Clone, Default, Debug)]
pub struct RunArgs {
    /// Also log to stderr (for running by hand).
    pub foreground: bool,
    /// Log debug records too.
    pub debug: bool,
    /// Use this command line instead of /proc/cmdline.
    pub cmdline: Option<String>,
    /// Directory of D-Bus system service files.
    pub services_dir: Option<PathBuf>,
    /// Internal: continue from the state in this sealed memfd (re-exec).
    pub state_fd: Option<i32>,
}

#[derive(Debug)]
pub enum Cmd {
    Run(RunArgs),
    Status {
        json: bool,
    },
    Follow {
        timeout: u64,
    },
    WaitReady {
        timeout: u64,
        pid: Option<u32>,
    },
    /// Internal: hold the bus handles of kdbus-init DAEMON_PID, and restart
    /// it with them when it dies.
    Hold {
        daemon_pid: i32,
        socket_fd: i32,
    },
    Help,
    Version,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cmd, lexopt::Error> {
    let mut p = lexopt::Parser::from_args(args);
    let name = match p.next()? {
        None => return Ok(Cmd::Run(RunArgs::default())),
        Some(Value(v)) => v.string()?,
        Some(Short('h') | Long("help")) => return Ok(Cmd::Help),
        Some(Short('V') | Long("version")) => return Ok(Cmd::Version),
        Some(a) => return Err(a.unexpected()),
    };
    let mut run = RunArgs::default();
    let (mut json, mut timeout, mut pid) = (false, 10, None);
    let (mut daemon_pid, mut socket_fd) = (None, None);
    while let Some(arg) = p.next()? {
        match (name.as_str(), arg) {
            (_, Short('h') | Long("help")) => return Ok(Cmd::Help),
            ("run", Long("foreground")) => run.foreground = true,
            ("run", Long("debug")) => run.debug = true,
            ("run", Long("cmdline")) => run.cmdline = Some(p.value()?.string()?),
            ("run", Long("services-dir")) => run.services_dir = Some(p.value()?.into()),
            ("run", Long("state-fd")) => run.state_fd = Some(p.value()?.parse()?),
            ("status", Long("json")) => json = true,
            ("follow" | "wait-ready", Long("timeout")) => timeout = p.value()?.parse()?,
            ("wait-ready", Long("pid")) => pid = Some(p.value()?.parse()?),
            ("hold", Long("daemon-pid")) => daemon_pid = Some(p.value()?.parse()?),
            ("hold", Long("socket-fd")) => socket_fd = Some(p.value()?.parse()?),
            (_, a) => return Err(a.unexpected()),
        }
    }
    Ok(match name.as_str() {
        "run" => Cmd::Run(run),
        "status" => Cmd::Status { json },
        "follow" => Cmd::Follow { timeout },
        "wait-ready" => Cmd::WaitReady { timeout, pid },
        "hold" => match (daemon_pid, socket_fd) {
            (Some(daemon_pid), Some(socket_fd)) => Cmd::Hold {
                daemon_pid,
                socket_fd,
            },
            _ => return Err("hold needs --daemon-pid and --socket-fd".into()),
        },
        other => return Err(format!("unknown command {other:?}").into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cmd, lexopt::Error> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn commands_and_options() {
        assert!(matches!(
            p(&[]).unwrap(),
            Cmd::Run(RunArgs {
                foreground: false,
                state_fd: None,
                ..
            })
        ));
        let c = p(&["run", "--foreground", "--state-fd", "5"]).unwrap();
        assert!(matches!(
            c,
            Cmd::Run(RunArgs {
                state_fd: Some(5),
                foreground: true,
                ..
            })
        ));
        let c = p(&["run", "--cmdline=kdbus=1 quiet", "--services-dir", "/x"]).unwrap();
        let Cmd::Run(r) = c else { panic!("{c:?}") };
        assert_eq!(r.cmdline.as_deref(), Some("kdbus=1 quiet"));
        assert_eq!(r.services_dir, Some(PathBuf::from("/x")));
        assert!(matches!(
            p(&["status", "--json"]).unwrap(),
            Cmd::Status { json: true }
        ));
        assert!(matches!(
            p(&["follow"]).unwrap(),
            Cmd::Follow { timeout: 10 }
        ));
        assert!(matches!(
            p(&["wait-ready", "--pid", "7", "--timeout", "20"]).unwrap(),
            Cmd::WaitReady {
                timeout: 20,
                pid: Some(7)
            }
        ));
        assert!(matches!(
            p(&["hold", "--daemon-pid", "3", "--socket-fd", "4"]).unwrap(),
            Cmd::Hold {
                daemon_pid: 3,
                socket_fd: 4
            }
        ));
        assert!(matches!(p(&["--help"]).unwrap(), Cmd::Help));
        assert!(matches!(p(&["status", "-h"]).unwrap(), Cmd::Help));
        assert!(matches!(p(&["-V"]).unwrap(), Cmd::Version));
    }

    #[test]
    fn bad_input_is_refused() {
        for args in [
            &["status", "--foreground"][..],
            &["run", "--state-fd", "x"],
            &["run", "--cmdline"],
            &["hold", "--daemon-pid", "3"],
            &["frobnicate"],
            &["run", "extra"],
            &["follow", "--pid", "3"],
        ] {
            assert!(p(args).is_err(), "{args:?} accepted");
        }
    }
}
