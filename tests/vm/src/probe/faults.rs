//! `kdbus-boot-probe faults PHASE`: with `kdbus.test.faults` on the kernel
//! command line, puts kdbus-init through faults of the real root and
//! reports (`@@T faults-PHASE KEY VALUE`) that the bus stayed: a `systemctl
//! restart kdbus-init.service`, a `systemctl stop` while a client holds a
//! name (kept, and said so on the console and in the journal), and
//! journald stopped (with its sockets) while kdbus-init logs, then started
//! again. Whether each record reached
//! the journal once is what `check root` counts afterwards.

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kdbus::{AttachFlags, Connection, Peer, SYSTEM_BUS_PATH};

use crate::restart::{call_client, client, HOLDER};
use crate::{read_status, Out};

/// kdbus-init's record of a `systemctl stop` it did not let take the bus.
const STOP_KEPT: &str = "would take the bus 0-system down";

pub const WANTED: &str = "kdbus.test.faults";
const JOURNALD: [&str; 3] = [
    "systemd-journald.service",
    "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
];

fn systemctl(args: &[&str]) -> String {
    match Command::new("systemctl").args(args).output() {
        Ok(o) if o.status.success() => "ok".into(),
        Ok(o) => format!(
            "{}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("error: {e}"),
    }
}

fn hup(pid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::HUP);
    }
}

fn bus_id() -> String {
    Connection::connect(SYSTEM_BUS_PATH)
        .map(|c| kdbus::id128_hex(c.bus_id128()))
        .unwrap_or_else(|e| format!("error: {e}"))
}

pub fn run(phase: &str) {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if !cmdline.split_whitespace().any(|w| w == WANTED) {
        return;
    }
    let out = Out {
        phase: format!("faults-{phase}"),
    };
    out.mark("begin", phase);
    let Some(before) = read_status() else {
        out.mark("error", "no kdbus-init status");
        out.mark("end", phase);
        return;
    };
    out.mark("bus_id_before", bus_id());
    // systemctl restart: the unit's fd store keeps the bus.
    let start = Instant::now();
    out.mark(
        "systemctl_restart",
        systemctl(&["restart", "kdbus-init.service"]),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = None;
    while Instant::now() < deadline {
        if let Some(s) = read_status().filter(|s| s.pid != before.pid) {
            after = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    out.mark("restart_ms", start.elapsed().as_millis());
    match &after {
        Some(s) => {
            out.mark("restarts", format!("{} -> {}", before.restarts, s.restarts));
            out.mark(
                "status_bus_id_after",
                s.bus
                    .as_ref()
                    .and_then(|b| b.id.as_deref())
                    .unwrap_or("none"),
            );
            out.mark(
                "owner_held_after",
                s.bus.as_ref().is_some_and(|b| b.owner_held),
            );
        }
        None => out.mark("error", "no new kdbus-init after systemctl restart"),
    }
    out.mark("bus_id_after", bus_id());
    out.mark(
        "unit_after_restart",
        Command::new("systemctl")
            .args(["is-active", "kdbus-init.service"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default(),
    );
    // systemctl stop, while a client holds a name: kdbus-init keeps the
    // bus by starting again.
    let pid = after.as_ref().map_or(before.pid, |s| s.pid);
    let (tx, rx) = mpsc::channel();
    let client_thread = std::thread::spawn(move || client(tx));
    let client_id = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(id)) => Some(id),
        Ok(Err(e)) => {
            out.mark("error", format!("the client could not take {HOLDER}: {e}"));
            None
        }
        Err(e) => {
            out.mark("error", format!("no client: {e}"));
            None
        }
    };
    let peer = Connection::connect(SYSTEM_BUS_PATH).ok();
    if let Some(peer) = &peer {
        out.mark("stop_call_before", call_client(peer));
    }
    out.mark("systemctl_stop", systemctl(&["stop", "kdbus-init.service"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut restarted = None;
    while Instant::now() < deadline {
        if let Some(s) = read_status().filter(|s| s.pid != pid) {
            restarted = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    match &restarted {
        Some(s) => {
            out.mark("stop_restarts", s.restarts);
            out.mark(
                "stop_status_bus_id",
                s.bus
                    .as_ref()
                    .and_then(|b| b.id.as_deref())
                    .unwrap_or("none"),
            );
        }
        None => out.mark("error", "no kdbus-init after systemctl stop"),
    }
    out.mark("stop_bus_id", bus_id());
    if let Ok(fresh) = Connection::connect(SYSTEM_BUS_PATH) {
        let owner = fresh
            .conn_info(Peer::Name(HOLDER), AttachFlags::empty())
            .map(|i| i.id);
        out.mark(
            "stop_client_owns_name",
            match (owner, client_id) {
                (Ok(o), Some(c)) if o == c => "yes".to_owned(),
                (o, c) => format!("no ({o:?}, client {c:?})"),
            },
        );
        out.mark("stop_call_after", call_client(&fresh));
    }
    if let Some(peer) = &peer {
        let _ = peer.send(&kdbus::MessageBuilder::to_name(HOLDER).payload(b"bye"));
    }
    let _ = client_thread.join();
    // Said in the journal too (journald runs: the record goes there).
    let mut in_journal = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while in_journal == 0 && Instant::now() < deadline {
        in_journal = journal_lines(STOP_KEPT);
        std::thread::sleep(Duration::from_millis(100));
    }
    out.mark("stop_in_journal", in_journal);
    std::thread::sleep(Duration::from_millis(300));
    out.mark(
        "unit_after_stop",
        Command::new("systemctl")
            .args(["is-active", "kdbus-init.service"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default(),
    );
    // journald down while kdbus-init logs, then up again.
    let pid = restarted.as_ref().map_or(pid, |s| s.pid);
    let mut stop = vec!["stop"];
    stop.extend(JOURNALD);
    out.mark("journald_stop", systemctl(&stop));
    hup(pid);
    std::thread::sleep(Duration::from_millis(500));
    let mut start = vec!["start"];
    start.extend(JOURNALD.iter().rev());
    out.mark("journald_start", systemctl(&start));
    std::thread::sleep(Duration::from_millis(500));
    hup(pid);
    std::thread::sleep(Duration::from_millis(500));
    if let Some(s) = read_status() {
        out.mark("log_switches", s.log.switches.join(" "));
    }
    out.mark("end", phase);
}

/// How many of kdbus-init's records in this boot's journal contain `text`.
fn journal_lines(text: &str) -> usize {
    Command::new("journalctl")
        .args(["-b", "-t", "kdbus-init", "-o", "cat", "--no-pager"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(text))
                .count()
        })
        .unwrap_or(0)
}
