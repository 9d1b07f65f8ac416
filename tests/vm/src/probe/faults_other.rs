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
//! And before, in the initramfs (`faults-other initrd`): a real root whose
//! kdbus-init is older than the running one — the real root's binary
//! with its hand-over marker patched to an older state format — and a
//! service, started by kdbus-init, that owns a name across the switch (a
//! root storage daemon, '@' argv[0], as an initramfs process must be to
//! outlive systemd's switch-root; `faults-other serve`); the
//! real root's step then reports which binary kdbus-init runs, what it said
//! and whether the service still owns its name.
//!
//! The root disk is a fresh copy for every boot: nothing removed or patched
//! here outlives it.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bootenv::status::Activation;
use kdbus::{AttachFlags, Connection, MessageBuilder, Peer, SYSTEM_BUS_PATH};
use rustix::process::{kill_process, Pid, Signal};

use crate::{read_status, Out};

pub const WANTED: &str = "kdbus.test.faults-other";
/// The record of each SIGHUP, numbered by kdbus-init.
const HUP_RECORD: &str = "SIGHUP: re-reading service files (pid ";
const FILL: &str = "/run/kdbus-test-fill";
const SHUTDOWN_ROOT: &str = "/run/initramfs";
/// The real root's kdbus-init, as the initramfs sees it.
const REAL_ROOT_BINARY: &str = "/sysroot/usr/sbin/kdbus-init";
/// kdbus-init's hand-over marker: the magic word, then the fields patched.
const HANDOVER_MAGIC: &[u8] = b"KDBUS-INIT-HANDOVER-MARKER";
/// What the patched marker says: state format 1 only (this build writes 2).
const OLDER_FIELDS: &[u8; 28] = b";writes=0001;reads=0001-0001";
/// The name the service started in the initramfs owns across the switch:
/// made activatable there only, by [`CLIENT_FILE`].
const CLIENT_NAME: &str = "org.kdbus.test.Survivor";
const CLIENT_FILE: &str = "/usr/share/dbus-1/system-services/org.kdbus.test.Survivor.service";
/// Its program: this probe (`faults-other serve`), which makes itself a
/// root storage daemon ('@' argv[0]) so that systemd's switch-root spares
/// it, as any initramfs process that is to live on must.
const CLIENT_SERVICE: &str = "[D-BUS Service]
Name=org.kdbus.test.Survivor
Exec=/usr/lib/kdbus-test/kdbus-boot-probe faults-other serve
User=root
";
const CLIENT_ARGV0: &str = "@kdbus-test-survivor";
/// What the client is sent in the initramfs.
const CLIENT_TEXT: &str = "sent-before-the-switch";

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
    if phase == "serve" {
        serve_client();
        return;
    }
    let out = Out {
        phase: format!("other-{phase}"),
    };
    out.mark("begin", phase);
    if phase == "initrd" {
        plant_older_binary(&out);
        start_client(&out);
        out.mark("end", phase);
        return;
    }
    match read_status() {
        Some(s) => {
            out.mark("bus_id_before", bus_id());
            after_the_older_binary(&out, &s);
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
    // Only what is logged from here on: the initramfs step's SIGHUP was
    // numbered 1 by the same pid (the count starts again after a re-exec).
    // By the time journald received it, not by a cursor: --after-cursor
    // once left out the first record, which journalctl -b listed.
    let since_us = realtime_us();
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
        seen = hup_records(&prefix, since_us);
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

/// Now, as journald stamps what it receives (`__REALTIME_TIMESTAMP`).
fn realtime_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// (request number, transport) of each SIGHUP record journald received
/// from `since_us` on, in journal order.
fn hup_records(prefix: &str, since_us: u64) -> Vec<(u32, String)> {
    let text = Command::new("journalctl")
        .args(["-b", "-t", "kdbus-init", "-o", "json", "--no-pager"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["__REALTIME_TIMESTAMP"]
                .as_str()
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|t| t >= since_us)
        })
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

/// Replaces the real root's kdbus-init with itself, its hand-over marker
/// patched to say it takes over state format 1 only (older than this
/// build's). Waits for the real root to be mounted (it may not be yet).
fn plant_older_binary(out: &Out) {
    let path = Path::new(REAL_ROOT_BINARY);
    if !wait_for(Duration::from_secs(60), || path.is_file()) {
        out.mark(
            "older_planted",
            format!("error: no {REAL_ROOT_BINARY} within 60 s"),
        );
        return;
    }
    out.mark(
        "older_planted",
        match patch_marker(path) {
            Ok(was) => format!("ok (was {was})"),
            Err(e) => format!("error: {e}"),
        },
    );
}

/// Patches the marker of the binary at `path` to [`OLDER_FIELDS`]; returns
/// what it said before.
fn patch_marker(path: &Path) -> Result<String, String> {
    let mut bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let at = bytes
        .windows(HANDOVER_MAGIC.len())
        .position(|w| w == HANDOVER_MAGIC)
        .ok_or("no hand-over marker in the binary")?
        + HANDOVER_MAGIC.len();
    let fields = bytes
        .get(at..at + OLDER_FIELDS.len())
        .ok_or("the marker is cut short")?;
    let was = String::from_utf8_lossy(fields).into_owned();
    if !fields.starts_with(b";writes=") || fields.get(12..19) != Some(&b";reads="[..]) {
        return Err(format!("unexpected marker fields {was}"));
    }
    bytes[at..at + OLDER_FIELDS.len()].copy_from_slice(OLDER_FIELDS);
    let tmp = path.with_extension("older");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&tmp, mode).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename to {}: {e}", path.display()))?;
    Ok(was)
}

/// Has kdbus-init recorded that a service took `name`?
fn name_taken(name: &str) -> bool {
    read_status().is_some_and(|s| {
        s.activations
            .iter()
            .any(|a| a.name == name && a.event.contains("took the name"))
            && s.activators
                .iter()
                .any(|a| a.name == name && matches!(a.activation, Activation::Idle))
    })
}

/// The id of the connection that owns `name`.
fn owner_id(name: &str) -> Result<u64, String> {
    let conn = Connection::connect(SYSTEM_BUS_PATH).map_err(|e| e.to_string())?;
    conn.conn_info(Peer::Name(name), AttachFlags::empty())
        .map(|i| i.id)
        .map_err(|e| e.to_string())
}

/// A new activatable name, [`CLIENT_NAME`] (its service file written and
/// kdbus-init told to read it), and a message to it: kdbus-init starts its
/// service, which takes the name (and the message) and must own it across
/// the switch.
fn start_client(out: &Out) {
    let started = (|| -> Result<u64, String> {
        std::fs::write(CLIENT_FILE, CLIENT_SERVICE)
            .map_err(|e| format!("write {CLIENT_FILE}: {e}"))?;
        let pid = read_status().ok_or("no kdbus-init status")?.pid;
        signal(pid, Signal::HUP)?;
        let registered = wait_for(Duration::from_secs(10), || {
            read_status().is_some_and(|s| s.activators.iter().any(|a| a.name == CLIENT_NAME))
        });
        if !registered {
            return Err(format!("no activator for {CLIENT_NAME} after SIGHUP"));
        }
        let conn = Connection::connect(SYSTEM_BUS_PATH).map_err(|e| e.to_string())?;
        conn.send(&MessageBuilder::to_name(CLIENT_NAME).payload(CLIENT_TEXT.as_bytes()))
            .map_err(|e| format!("send to {CLIENT_NAME}: {e}"))?;
        if !wait_for(Duration::from_secs(15), || name_taken(CLIENT_NAME)) {
            return Err(format!("no service took {CLIENT_NAME} within 15 s"));
        }
        owner_id(CLIENT_NAME)
    })();
    match started {
        Ok(id) => out.mark("client_id", id),
        Err(e) => out.mark("client_id", format!("error: {e}")),
    }
}

/// `faults-other serve`: the service of [`CLIENT_NAME`], as a root storage
/// daemon.
fn serve_client() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if !argv0.to_string_lossy().starts_with('@') {
        use std::os::unix::process::CommandExt;
        let err = Command::new("/proc/self/exe")
            .arg0(CLIENT_ARGV0)
            .args(["faults-other", "serve"])
            .exec();
        eprintln!("kdbus-boot-probe: cannot re-execute as {CLIENT_ARGV0}: {err}");
    }
    if let Err(e) = crate::client::serve(CLIENT_NAME) {
        eprintln!("kdbus-boot-probe: serve {CLIENT_NAME}: {e}");
    }
}

/// In the real root: which binary kdbus-init runs after the switch into a
/// root with an older one, what it said, and whether the service started
/// in the initramfs still owns its name and got its message once.
fn after_the_older_binary(out: &Out, s: &bootenv::status::Status) {
    let exe = std::fs::read_link(format!("/proc/{}/exe", s.pid))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("error: {e}"));
    out.mark("older_exe", exe);
    for p in s.problems.iter().filter(|p| p.contains("cannot take over")) {
        out.mark("older_problem", p);
    }
    out.mark(
        "older_client_id",
        owner_id(CLIENT_NAME).map_or_else(|e| format!("error: {e}"), |id| id.to_string()),
    );
    out.mark(
        "older_client_report",
        crate::client::report(CLIENT_NAME).unwrap_or_else(|e| format!("error: {e}")),
    );
}
