//! kdbus-bridge's command line. A small parser (lexopt) instead of clap, as
//! in kdbus-init: the bridge goes into initramfs images, where clap's code
//! was a sixth of the binary.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

pub const DEFAULT_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";
pub const DEFAULT_CONFIG: &str = "/usr/share/dbus-1/system.conf";

pub const HELP: &str = "\
Serves the D-Bus socket protocol and connects each client to the kdbus bus with its own
credentials

Usage: kdbus-bridge [OPTIONS]

Options:
  --address ADDRESS          The D-Bus address to serve (ignored when systemd passes a
                             socket) [default: unix:path=/run/dbus/system_bus_socket]
  --bus PATH                 The kdbus bus endpoint [default: /sys/fs/kdbus/0-system/bus]
  --log auto|stderr|journal  Where the log goes (auto: the journal when started by
                             systemd) [default: auto]
  -v, --verbose              Log every client and refused message
  --config FILE              The bus configuration whose policy and limits apply
                             (dbus-daemon's format; SIGHUP or ReloadConfig reads it again)
                             [default: /usr/share/dbus-1/system.conf]
  --reply-timeout SECONDS    How long a method call may wait for its reply [default: the
                             configuration's reply_timeout, else 120]
  --max-message-size BYTES   Largest message a client may send [default: the
                             configuration's max_message_size, else 32 MiB]
  --follow-root              Serve for the whole boot: enter each new root PID 1 switches
                             to (the real root, the shutdown root) instead of ending with
                             the old one
  -h, --help                 Print help
  -V, --version              Print version
";

/// Where the log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The journal when started by systemd (`JOURNAL_STREAM`), else stderr.
    Auto,
    Stderr,
    Journal,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Cli {
    pub address: String,
    pub bus: PathBuf,
    pub log: LogTarget,
    pub verbose: bool,
    pub config: PathBuf,
    /// Seconds; `None`: the configuration's, else 120.
    pub reply_timeout: Option<u64>,
    /// Bytes; `None`: the configuration's, else 32 MiB.
    pub max_message_size: Option<usize>,
    pub follow_root: bool,
}

impl Default for Cli {
    fn default() -> Self {
        Cli {
            address: DEFAULT_ADDRESS.into(),
            bus: kdbus::SYSTEM_BUS_PATH.into(),
            log: LogTarget::Auto,
            verbose: false,
            config: DEFAULT_CONFIG.into(),
            reply_timeout: None,
            max_message_size: None,
            follow_root: false,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Cmd {
    Serve(Cli),
    Help,
    Version,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cmd, lexopt::Error> {
    let mut p = lexopt::Parser::from_args(args);
    let mut cli = Cli::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("address") => cli.address = p.value()?.string()?,
            Long("bus") => cli.bus = p.value()?.into(),
            Long("log") => cli.log = log_target(&p.value()?.string()?)?,
            Short('v') | Long("verbose") => cli.verbose = true,
            Long("config") => cli.config = p.value()?.into(),
            Long("reply-timeout") => cli.reply_timeout = Some(p.value()?.parse()?),
            Long("max-message-size") => cli.max_message_size = Some(p.value()?.parse()?),
            Long("follow-root") => cli.follow_root = true,
            Short('h') | Long("help") => return Ok(Cmd::Help),
            Short('V') | Long("version") => return Ok(Cmd::Version),
            a => return Err(a.unexpected()),
        }
    }
    Ok(Cmd::Serve(cli))
}

fn log_target(v: &str) -> Result<LogTarget, lexopt::Error> {
    Ok(match v {
        "auto" => LogTarget::Auto,
        "stderr" => LogTarget::Stderr,
        "journal" => LogTarget::Journal,
        _ => return Err(format!("--log {v:?}: expected auto, stderr or journal").into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cmd, lexopt::Error> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn options_and_defaults() {
        assert_eq!(p(&[]).unwrap(), Cmd::Serve(Cli::default()));
        let Cmd::Serve(c) = p(&[
            "--address",
            "unix:path=/tmp/s",
            "--bus=/sys/fs/kdbus/0-x/bus",
            "--log",
            "stderr",
            "-v",
            "--config",
            "/etc/x.conf",
            "--reply-timeout",
            "5",
            "--max-message-size",
            "4096",
            "--follow-root",
        ])
        .unwrap() else {
            panic!("not a serve command")
        };
        assert_eq!(
            c,
            Cli {
                address: "unix:path=/tmp/s".into(),
                bus: "/sys/fs/kdbus/0-x/bus".into(),
                log: LogTarget::Stderr,
                verbose: true,
                config: "/etc/x.conf".into(),
                reply_timeout: Some(5),
                max_message_size: Some(4096),
                follow_root: true,
            }
        );
        assert_eq!(p(&["--log=journal", "--verbose"]).unwrap(), {
            Cmd::Serve(Cli {
                log: LogTarget::Journal,
                verbose: true,
                ..Cli::default()
            })
        });
        assert_eq!(p(&["--follow-root", "-h"]).unwrap(), Cmd::Help);
        assert_eq!(p(&["-V"]).unwrap(), Cmd::Version);
    }

    #[test]
    fn bad_input_is_refused() {
        for args in [
            &["--log", "syslog"][..],
            &["--reply-timeout", "soon"],
            &["--max-message-size", "-1"],
            &["--address"],
            &["--frobnicate"],
            &["extra"],
        ] {
            assert!(p(args).is_err(), "{args:?} accepted");
        }
    }
}
