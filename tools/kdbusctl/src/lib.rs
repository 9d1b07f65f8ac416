//! kdbusctl: inspect and drive a kdbus bus.
//!
//! The whole tool is this library — [`Cli`] and [`run`], writing to any
//! `Write` — so that it can be tested in-process; `main.rs` only wires it
//! to the terminal.

#[cfg(feature = "dbus")]
mod dbus_call;
pub mod event;
pub mod init_state;
#[cfg(feature = "inspect")]
pub mod initramfs;
pub mod report;
pub mod target;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use kdbus::flags::names as flag_names;
use kdbus::{
    AttachFlags, Connection, Destination, Errno, HelloBuilder, ListFlags, MatchRule,
    MessageBuilder, Peer,
};
use serde::Serialize;

use crate::event::Event;
use crate::report::{Bloom, BusSummary, Process, Status};
use crate::target::Target;

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "kdbusctl",
    version,
    about = "Inspect and drive a kdbus bus",
    after_help = "The default bus is the system bus, /sys/fs/kdbus/0-system/bus."
)]
pub struct Cli {
    /// The bus: an endpoint path, a bus directory, a bus name (0-system,
    /// 1000-user) or `system` / `user`.
    #[arg(long, global = true, value_name = "PATH|NAME")]
    pub bus: Option<String>,
    /// Print JSON (monitor: one JSON object per line).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The bus: name, ids, creator, how many connections and names, and
    /// kdbus-init's state where it runs.
    Status {
        /// kdbus-init's status file.
        #[arg(long, value_name = "FILE", default_value = init_state::STATUS_FILE)]
        init_status: PathBuf,
    },
    /// Connections with their ids, kinds, processes and names.
    List,
    /// Names with their owners, activators and queued owners.
    Names,
    /// Print messages as they pass (needs the bus owner or root; without
    /// monitor support only broadcasts and notifications are seen).
    Monitor {
        /// Stop after this many messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
        timeout: Option<Duration>,
        /// Fail instead of falling back when the kernel refuses a monitor.
        #[arg(long)]
        no_fallback: bool,
    },
    /// Send PAYLOAD to DEST (a well-known name or a connection id) as a call
    /// and print the reply's payload.
    Call {
        /// A well-known name (org.example.Service) or a connection id.
        dest: String,
        /// The request payload, sent as is (UTF-8 text).
        #[arg(default_value = "")]
        payload: String,
        /// Seconds to wait for the reply.
        #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
        timeout: Duration,
        /// Send a D-Bus method call INTERFACE.MEMBER instead (the payload
        /// format of D-Bus peers and kdbus-bridge), with PAYLOAD, if given,
        /// as its one string argument, and print the reply's arguments.
        #[cfg(feature = "dbus")]
        #[arg(long, value_name = "INTERFACE.MEMBER")]
        method: Option<String>,
        /// The object path of a --method call.
        #[cfg(feature = "dbus")]
        #[arg(long, default_value = "/", requires = "method")]
        path: String,
    },
    /// Check an initramfs image without booting it: are kdbus.ko (built
    /// for the image's kernel), kdbus-init, what starts it and the D-Bus
    /// service files there? Exit status 0: the image brings up the bus;
    /// 1: it cannot; 2: the file is not a readable initramfs.
    #[cfg(feature = "inspect")]
    Initramfs {
        /// The image, e.g. /boot/initrd.img-$(uname -r).
        image: PathBuf,
    },
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("{s:?}: give a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `args` (including the program name) and runs the command.
pub fn run_args<I, T>(args: I, out: &mut dyn Write) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    run(Cli::try_parse_from(args)?, out)
}

/// Runs a parsed command line, writing its output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    let target = target::resolve(cli.bus.as_deref(), rustix::process::geteuid().as_raw());
    match cli.command {
        Command::Status { init_status } => status(out, &target, cli.json, &init_status),
        Command::List => list(out, &target, cli.json),
        Command::Names => names(out, &target, cli.json),
        Command::Monitor {
            count,
            timeout,
            no_fallback,
        } => monitor(out, &target, cli.json, count, timeout, no_fallback),
        #[cfg(feature = "dbus")]
        Command::Call {
            dest,
            payload,
            timeout,
            method: Some(method),
            path,
        } => dbus_call::call(out, &target, &dest, &path, &method, &payload, timeout),
        Command::Call {
            dest,
            payload,
            timeout,
            ..
        } => call(out, &target, cli.json, &dest, &payload, timeout),
        #[cfg(feature = "inspect")]
        Command::Initramfs { image } => initramfs::run(out, &image, cli.json),
    }
}

fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// kdbusctl's own connection for inspection.
fn inspector(target: &Target) -> Result<Connection> {
    target.connect(&HelloBuilder::new().description("kdbusctl"))
}

const ALL_RECORDS: ListFlags = ListFlags::UNIQUE
    .union(ListFlags::NAMES)
    .union(ListFlags::ACTIVATORS)
    .union(ListFlags::QUEUED);

/// The metadata worth showing about a peer.
const PROCESS_ATTACH: AttachFlags = AttachFlags::CREDS
    .union(AttachFlags::PIDS)
    .union(AttachFlags::PID_COMM)
    .union(AttachFlags::TID_COMM)
    .union(AttachFlags::EXE)
    .union(AttachFlags::CMDLINE)
    .union(AttachFlags::CGROUP)
    .union(AttachFlags::CONN_DESCRIPTION);

fn status(out: &mut dyn Write, target: &Target, json: bool, init_status: &Path) -> Result<()> {
    let conn = inspector(target)?;
    // What the creator let connections see; a refusal leaves it empty.
    let creator = conn.bus_creator_info(PROCESS_ATTACH);
    let entries = conn.list(ALL_RECORDS).context("listing the connections")?;
    let rows = report::connections(&entries, conn.id());
    let names = report::names(&entries);
    let counts = report::counts(&rows, &names);
    let (bus_id, name, creator) = match &creator {
        Ok(info) => (info.id, info.name.clone(), Process::from(&info.metadata)),
        Err(e) => {
            eprintln!("kdbusctl: no bus creator information: {e}");
            (0, target.bus_name(), Process::default())
        }
    };
    let bloom = conn.bloom_params();
    let status = Status {
        bus: BusSummary {
            name,
            path: target.path.display().to_string(),
            id128: report::hex_id128(conn.bus_id128()),
            id: bus_id,
            access: flag_names(conn.bus_flags())
                .into_iter()
                .map(|f| f.trim_start_matches("access-").to_owned())
                .collect(),
            bloom: Bloom {
                size: bloom.size,
                n_hash: bloom.n_hash,
            },
            creator,
        },
        connections: rows.len(),
        activators: counts.activators,
        policy_holders: counts.policy_holders,
        names: counts.owned,
        activatable: counts.activatable,
        queued_owners: counts.queued_owners,
        kdbus_init: init_state::load(init_status),
    };
    if json {
        print_json(out, &status)
    } else {
        write!(out, "{}", report::render_status(&status))?;
        Ok(())
    }
}

fn list(out: &mut dyn Write, target: &Target, json: bool) -> Result<()> {
    let conn = inspector(target)?;
    let entries = conn.list(ALL_RECORDS).context("listing the connections")?;
    let mut rows = report::connections(&entries, conn.id());
    for row in &mut rows {
        // A peer may leave meanwhile, or offer no metadata: show what is there.
        if let Ok(info) = conn.conn_info(Peer::Id(row.id), PROCESS_ATTACH) {
            row.process = Process::from(&info.metadata);
        }
    }
    if json {
        print_json(out, &rows)
    } else {
        write!(out, "{}", report::render_connections(&rows))?;
        Ok(())
    }
}

fn names(out: &mut dyn Write, target: &Target, json: bool) -> Result<()> {
    let conn = inspector(target)?;
    let entries = conn
        .list(ListFlags::NAMES | ListFlags::ACTIVATORS | ListFlags::QUEUED)
        .context("listing the names")?;
    let rows = report::names(&entries);
    if json {
        print_json(out, &rows)
    } else {
        write!(out, "{}", report::render_names(&rows))?;
        Ok(())
    }
}

/// Why the kernel refused a monitor, in words.
fn monitor_refusal(err: &kdbus::Error) -> &'static str {
    match err.errno() {
        Some(Errno::PERM) => "only the bus owner or root (CAP_IPC_OWNER) may monitor",
        Some(Errno::INVAL) | Some(Errno::OPNOTSUPP) => {
            "this kdbus.ko does not support monitor connections on this endpoint"
        }
        _ => "the monitor connection failed",
    }
}

fn monitor(
    out: &mut dyn Write,
    target: &Target,
    json: bool,
    count: Option<u64>,
    timeout: Option<Duration>,
    no_fallback: bool,
) -> Result<()> {
    let hello = HelloBuilder::new()
        .monitor()
        .attach_recv(AttachFlags::ANY)
        .description("kdbusctl-monitor");
    let conn = match hello.connect(&target.path) {
        Ok(conn) => conn,
        Err(err) if err.command_name() == Some("KDBUS_CMD_HELLO") => {
            let why = monitor_refusal(&err);
            if no_fallback {
                return Err(anyhow!("{err}\n{why}"));
            }
            eprintln!(
                "kdbusctl: the kernel refused a monitor connection ({}): {why}.\n\
                 kdbusctl: falling back to an ordinary connection: only broadcasts and \
                 kernel notifications are shown, not unicast traffic",
                err.errno().map(kdbus::error::describe).unwrap_or_default()
            );
            let conn = target.connect(
                &HelloBuilder::new()
                    .attach_recv(AttachFlags::ANY)
                    .description("kdbusctl-monitor"),
            )?;
            conn.add_match(&MatchRule::new(1))
                .context("adding a match-everything rule")?;
            conn
        }
        Err(err) => return Err(target.explain(err)),
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut seen = 0u64;
    while count.map_or(true, |c| seen < c) {
        let remaining = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(r) if !r.is_zero() => Some(r),
                _ => break,
            },
            None => None,
        };
        if !conn.wait(remaining).context("waiting for messages")? {
            continue;
        }
        let recv = conn.recv().context("receiving")?;
        if recv.dropped_msgs > 0 {
            if json {
                writeln!(out, "{}", serde_json::json!({ "lost": recv.dropped_msgs }))?;
            } else {
                writeln!(
                    out,
                    "({} messages lost: the monitor's pool or quota overflowed)",
                    recv.dropped_msgs
                )?;
            }
        }
        if let Some(msg) = recv.message {
            let event = Event::from_message(&msg);
            if json {
                writeln!(out, "{}", serde_json::to_string(&event)?)?;
            } else {
                writeln!(out, "{}", event.render())?;
            }
            out.flush()?;
            seen += 1;
        }
    }
    Ok(())
}

fn call(
    out: &mut dyn Write,
    target: &Target,
    json: bool,
    dest: &str,
    payload: &str,
    timeout: Duration,
) -> Result<()> {
    let conn = target.connect(
        &HelloBuilder::new()
            .attach_recv(PROCESS_ATTACH)
            .description("kdbusctl"),
    )?;
    let dst = match dest.parse::<u64>() {
        Ok(id) => Destination::Id(id),
        Err(_) => Destination::Name(dest.to_owned()),
    };
    let msg = MessageBuilder::new(dst)
        .payload(payload.as_bytes())
        .expect_reply(timeout);
    let reply = conn
        .call(&msg)
        .map_err(|err| call_failure(&err, dest, timeout))?;
    let event = Event::from_message(&reply);
    if json {
        return print_json(out, &event);
    }
    let data = reply.payload_to_vec();
    match String::from_utf8(data) {
        Ok(text) if text.ends_with('\n') || text.is_empty() => write!(out, "{text}")?,
        Ok(text) => writeln!(out, "{text}")?,
        Err(e) => writeln!(
            out,
            "0x{}",
            e.as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )?,
    }
    Ok(())
}

/// A failed call, in words.
fn call_failure(err: &kdbus::Error, dest: &str, timeout: Duration) -> anyhow::Error {
    let advice = match err.errno() {
        Some(Errno::TIMEDOUT) => format!("no reply from {dest} within {timeout:?}"),
        Some(Errno::SRCH) => format!("nobody owns {dest} (see `kdbusctl names`)"),
        Some(Errno::NXIO) => format!("there is no connection {dest} (see `kdbusctl list`)"),
        Some(Errno::PIPE) => format!("{dest} went away or dropped the call"),
        _ => format!("the call to {dest} failed"),
    };
    anyhow!("{advice}: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_global_options_anywhere() {
        let cli = Cli::try_parse_from(["kdbusctl", "status", "--json", "--bus", "0-test"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.bus.as_deref(), Some("0-test"));
        assert!(matches!(cli.command, Command::Status { .. }));
    }

    #[test]
    fn parses_call_and_monitor() {
        let cli = Cli::try_parse_from([
            "kdbusctl",
            "call",
            "org.example.Echo",
            "hi",
            "--timeout",
            "0.5",
        ])
        .unwrap();
        match cli.command {
            Command::Call {
                dest,
                payload,
                timeout,
                ..
            } => {
                assert_eq!(dest, "org.example.Echo");
                assert_eq!(payload, "hi");
                assert_eq!(timeout, Duration::from_millis(500));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["kdbusctl", "monitor", "--count", "3"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Monitor {
                count: Some(3),
                timeout: None,
                no_fallback: false
            }
        ));
    }

    #[test]
    fn rejects_bad_timeouts_and_unknown_commands() {
        for bad in ["0", "-1", "soon", "inf", "NaN"] {
            assert!(
                Cli::try_parse_from(["kdbusctl", "call", "a.b", "x", "--timeout", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Cli::try_parse_from(["kdbusctl", "frobnicate"]).is_err());
        assert!(Cli::try_parse_from(["kdbusctl"]).is_err());
    }

    #[test]
    fn every_command_reports_a_missing_bus() {
        for cmd in ["status", "list", "names", "monitor", "call"] {
            let mut args = vec!["kdbusctl", "--bus", "/nonexistent/kdbus/0-x/bus", cmd];
            if cmd == "call" {
                args.push("a.b");
            }
            let mut out = Vec::new();
            let err = run_args(args, &mut out).unwrap_err().to_string();
            assert!(err.contains("cannot reach bus"), "{cmd}: {err}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn status_default_reads_kdbus_init_status_file() {
        let cli = Cli::try_parse_from(["kdbusctl", "status"]).unwrap();
        match cli.command {
            Command::Status { init_status } => {
                assert_eq!(init_status, PathBuf::from(init_state::STATUS_FILE))
            }
            other => panic!("{other:?}"),
        }
    }
}
