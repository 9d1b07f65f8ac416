//! `kdbus-boot-probe faults-other PHASE`: with `kdbus.test.faults-other` on
//! the kernel command line, puts kdbus-init through the faults of its
//! surroundings in the real root and reports them (`@@T other-PHASE KEY
//! VALUE`):
//! - journald crashes (SIGKILL, then SIGABRT) while kdbus-init logs: its
//!   numbered SIGHUP records must each reach the journal once, in order;
//! - /run full while the state file is written, and kdbus-init killed
//!   then: it says so on the console and takes the same bus back;
//! - a shutdown root without kdbus-init and without kdbus.ko: the shutdown
//!   root is unpacked now (dracut skips it at shutdown when it is there)
//!   and both are removed from it; `check shutdown` and `check final` then
//!   report what kdbus-init did about it.
//!
//! The root disk is a fresh copy for every boot: nothing removed here
//! outlives it.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kdbus::{Connection, SYSTEM_BUS_PATH};
use rustix::process::{kill_process, Pid, Signal};

use crate::{read_status, Out};

pub const WANTED: &str = "kdbus.test.faults-other";
/// The record of each SIGHUP, numbered by kdbus-init.
const HUP_RECORD: &str = "SIGHUP: re-reading service files (pid ";
const FILL: &str = "/run/kdbus-test-fill";
const SHUTDOWN_ROOT: &str = "/run/initramfs";

fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn main_pid(unit: &str) -> u32 {
    Command::new("systemctl")
        .args(["show", "-p", "MainPID", "--value", unit])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

fn signal(pid: u32, sig: Signal) -> Result<(), String> {
    let p = Pid::from_raw(pid as i32).ok_or("no pid")?;
    kill_process(p, sig).map_err(|e| format!("kill {pid}: {e}"))
}

fn bus_id() -> String {
    Connection::connect(SYSTEM_BUS_PATH)
        .map(|c| kdbus::id128_hex(c.bus_id128()))
        .unwrap_or_else(|e| format!("error: {e}"))
}

fn logged() -> u64 {
    read_status().map_or(0, |s| s.log.to_kmsg + s.log.to_journal)
}

/// SIGHUP to kdbus-init, then wait until its record is counted (so that no
/// two signals merge into one).
fn hup(pid: u32) -> bool {
    let before = logged();
    signal(pid, Signal::HUP).is_ok() && wait_for(Duration::from_secs(5), || logged() > before)
}

pub fn run(phase: &str) {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if !cmdline.split_whitespace().any(|w| w == WANTED) {
        return;
    }
    let out = Out {
        phase: format!("other-{phase}"),
    };
    out.mark("begin", phase);
    match read_status() {
        Some(s) => {
            out.mark("bus_id_before", bus_id());
            journald_crashes(&out, s.pid);
            run_full(&out);
            shutdown_root_without_kdbus(&out);
        }
        None => out.mark("error", "no kdbus-init status"),
    }
    out.mark("end", phase);
}

/// journald killed twice while kdbus-init logs; each record once, in order.
fn journald_crashes(out: &Out, pid: u32) {
    let mut sent = 0u32;
    let send = |sent: &mut u32, n: u32| {
        for _ in 0..n {
            if hup(pid) {
                *sent += 1;
            }
        }
    };
    send(&mut sent, 2);
    // The requests sent while journald was down.
    let mut crash_window = Vec::new();
    for (sig, name) in [(Signal::KILL, "sigkill"), (Signal::ABORT, "sigabrt")] {
        let journald = main_pid("systemd-journald.service");
        let first = sent + 1;
        let killed = signal(journald, sig);
        send(&mut sent, 3);
        crash_window.extend(first..=sent);
        let back = wait_for(Duration::from_secs(30), || {
            let now = main_pid("systemd-journald.service");
            now != 0 && now != journald
        });
        out.mark(
            &format!("journald_{name}"),
            match killed {
                Ok(()) if back => "restarted".to_owned(),
                Ok(()) => "not restarted".to_owned(),
                Err(e) => e,
            },
        );
        // Up for a moment, then more records.
        std::thread::sleep(Duration::from_millis(500));
        send(&mut sent, 2);
    }
    out.mark("hup_sent", sent);
    out.mark(
        "crash_window",
        crash_window
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );
    // The journal, in its order: request numbers and transports.
    let prefix = format!("{HUP_RECORD}{pid}, request ");
    let mut seen = Vec::new();
    wait_for(Duration::from_secs(20), || {
        seen = hup_records(&prefix);
        seen.len() >= sent as usize
    });
    out.mark(
        "hup_journal",
        seen.iter()
            .map(|(n, t)| format!("{n}:{t}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    if let Some(s) = read_status() {
        out.mark("log_switches", s.log.switches.join(" "));
    }
}

/// (request number, transport) of each SIGHUP record, in journal order.
fn hup_records(prefix: &str) -> Vec<(u32, String)> {
    let text = Command::new("journalctl")
        .args(["-b", "-t", "kdbus-init", "-o", "json", "--no-pager"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let msg = v["MESSAGE"].as_str()?;
            let n = msg.strip_prefix(prefix)?.strip_suffix(')')?.parse().ok()?;
            Some((n, v["_TRANSPORT"].as_str().unwrap_or("?").to_owned()))
        })
        .collect()
}

/// Fills /run to the last byte; returns what was written.
fn fill_run() -> Result<u64, String> {
    let mut f = std::fs::File::create(FILL).map_err(|e| format!("create {FILL}: {e}"))?;
    let vfs = rustix::fs::statvfs("/run").map_err(|e| e.to_string())?;
    let free = vfs.f_bavail * vfs.f_frsize;
    let mut written = 0u64;
    let chunk = vec![0x5au8; 1 << 20];
    for size in [1 << 20, 4096, 1] {
        loop {
            match f.write(&chunk[..size]) {
                Ok(n) if n > 0 => written += n as u64,
                _ => break,
            }
        }
    }
    if written + (1 << 20) < free {
        return Err(format!("wrote {written} of {free} free bytes"));
    }
    Ok(written)
}

/// /run full: kdbus-init cannot write its state file (says so), is killed
/// then, and takes the same bus back; once there is room, it writes again.
fn run_full(out: &Out) {
    let Some(before) = read_status() else {
        out.mark("error", "no kdbus-init status before filling /run");
        return;
    };
    out.mark("full_restarts_before", before.restarts);
    match fill_run() {
        Ok(n) => out.mark("run_filled", n),
        Err(e) => out.mark("run_filled", format!("error: {e}")),
    }
    // A record, so that the state is written.
    let _ = signal(before.pid, Signal::HUP);
    std::thread::sleep(Duration::from_millis(1000));
    out.mark(
        "full_kill",
        match signal(before.pid, Signal::KILL) {
            Ok(()) => "ok".to_owned(),
            Err(e) => e,
        },
    );
    // The status cannot be written either: systemd says who runs.
    let mut now = 0;
    let back = wait_for(Duration::from_secs(30), || {
        now = main_pid("kdbus-init.service");
        now != 0 && now != before.pid
    });
    out.mark("full_restarted", back);
    std::thread::sleep(Duration::from_millis(500));
    out.mark("full_bus_id", bus_id());
    let freed = std::fs::remove_file(FILL);
    out.mark("run_freed", freed.is_ok());
    let _ = signal(now, Signal::HUP);
    let mut after = None;
    wait_for(Duration::from_secs(10), || {
        after = read_status().filter(|s| s.pid == now);
        after.is_some()
    });
    match after {
        Some(s) => {
            out.mark("full_restarts_after", s.restarts);
            out.mark(
                "full_status_bus_id",
                s.bus
                    .as_ref()
                    .and_then(|b| b.id.as_deref())
                    .unwrap_or("none"),
            );
            out.mark(
                "full_owner_held",
                s.bus.as_ref().is_some_and(|b| b.owner_held),
            );
            for p in s.problems.iter().filter(|p| p.contains("state file")) {
                out.mark("full_problem", p);
            }
        }
        None => out.mark(
            "error",
            "no status of the restarted kdbus-init after /run was freed",
        ),
    }
    out.mark("bus_id_after", bus_id());
}

/// Unpacks the shutdown root now and removes kdbus-init and kdbus.ko
/// from it.
fn shutdown_root_without_kdbus(out: &Out) {
    let st = Command::new("/usr/lib/dracut/dracut-initramfs-restore").status();
    let unpacked = Path::new(SHUTDOWN_ROOT).join("shutdown").exists();
    out.mark(
        "shutdown_root_unpacked",
        match st {
            Ok(s) if s.success() && unpacked => "ok".to_owned(),
            Ok(s) => format!("{s}, /run/initramfs/shutdown there: {unpacked}"),
            Err(e) => e.to_string(),
        },
    );
    let root = Path::new(SHUTDOWN_ROOT);
    let mut removed = Vec::new();
    for bin in [
        "usr/sbin/kdbus-init",
        "usr/bin/kdbus-init",
        "sbin/kdbus-init",
    ] {
        let p = root.join(bin);
        let is_file = p.symlink_metadata().is_ok_and(|m| m.is_file());
        if is_file && std::fs::remove_file(&p).is_ok() {
            removed.push(bin.to_owned());
        }
    }
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    // Either may be a link to the other.
    let mut stack: Vec<_> = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|m| root.join(m).join(&release))
        .collect();
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if (name == "kdbus.ko" || name.starts_with("kdbus.ko."))
                && std::fs::remove_file(&p).is_ok()
            {
                removed.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
            }
        }
    }
    out.mark("shutdown_root_removed", removed.join(" "));
}
