//! kdbus-boot-probe: runs inside the boot-test VM and reports what it sees
//! as console marker lines (`@@T <phase> <key> <value>`), which the host
//! side of kdbus-vmtest reads from the serial console.
//!
//!   kdbus-boot-probe check initrd|root|shutdown|final
//!   kdbus-boot-probe send NAME TEXT     (a client of an activatable name)
//!   kdbus-boot-probe serve NAME         (the service behind that name)
//!   kdbus-boot-probe restart PHASE      (kill kdbus-init, see what survives)
//!   kdbus-boot-probe faults PHASE       (systemctl restart, journald down)
//!   kdbus-boot-probe faults-other PHASE (journald crashes, /run full, a
//!                                        shutdown root without kdbus)

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use bootenv::status::{Activation, Status, STATUS_FILE};

#[path = "../probe/faults.rs"]
mod faults;
#[path = "../probe/faults_other.rs"]
mod faults_other;
#[path = "../probe/restart.rs"]
mod restart;

/// The activatable test names: their programs exist only in the real
/// root; LateUser's service runs as a user only the real root knows.
const TEST_NAMES: [&str; 2] = ["org.kdbus.test.Late", "org.kdbus.test.LateUser"];

/// A client and a service of an activatable name, on the system bus.
mod client {
    use std::time::Duration;

    use kdbus::{ByeBye, Connection, HelloBuilder, MessageBuilder, NameFlags, SYSTEM_BUS_PATH};

    /// What a service answers to [`REPORT`]: its uid and what it received.
    pub const REPORT: &[u8] = b"report?";
    /// A service leaves after this long without a message.
    const IDLE: Duration = Duration::from_secs(120);

    /// Sends `text` to `name` (queued on its activator if nobody owns it).
    pub fn send(name: &str, text: &str) -> Result<(), String> {
        let conn = Connection::connect(SYSTEM_BUS_PATH).map_err(|e| e.to_string())?;
        conn.send(&MessageBuilder::to_name(name).payload(text.as_bytes()))
            .map_err(|e| e.to_string())?;
        println!("@@T client sent {name} {text}");
        Ok(())
    }

    /// Takes `name` and keeps what it receives; answers a [`REPORT`] call
    /// with `uid=N received=A|B`, then leaves (BYEBYE: race-free, it stays
    /// while messages are queued).
    pub fn serve(name: &str) -> Result<(), String> {
        let conn = HelloBuilder::new()
            .description("kdbus-test-service")
            .connect(SYSTEM_BUS_PATH)
            .map_err(|e| e.to_string())?;
        conn.acquire_name(name, NameFlags::empty())
            .map_err(|e| e.to_string())?;
        let uid = rustix::process::geteuid().as_raw();
        let mut received: Vec<String> = Vec::new();
        let mut reported = false;
        loop {
            // After the report, leave as soon as nothing is queued.
            let wait = if reported { Duration::ZERO } else { IDLE };
            let recv = conn.recv_timeout(wait).map_err(|e| e.to_string())?;
            let Some(msg) = recv.message else {
                match conn.byebye().map_err(|e| e.to_string())? {
                    ByeBye::Disconnected => return Ok(()),
                    ByeBye::Busy => continue,
                }
            };
            if msg.notification().is_some() {
                continue;
            }
            let payload = msg.payload_to_vec();
            if msg.is_call() && payload == REPORT {
                let answer = format!("uid={uid} received={}", received.join("|"));
                conn.send(&MessageBuilder::reply_to(&msg).payload(answer.as_bytes()))
                    .map_err(|e| e.to_string())?;
                reported = true;
            } else {
                received.push(String::from_utf8_lossy(&payload).into_owned());
            }
        }
    }

    /// Asks the service of `name` for its report.
    pub fn report(name: &str) -> Result<String, String> {
        let conn = Connection::connect(SYSTEM_BUS_PATH).map_err(|e| e.to_string())?;
        let reply = conn
            .call(
                &MessageBuilder::to_name(name)
                    .payload(REPORT)
                    .expect_reply(Duration::from_secs(10)),
            )
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&reply.payload_to_vec()).into_owned())
    }
}

struct Out {
    phase: String,
}

impl Out {
    fn mark(&self, key: &str, value: impl std::fmt::Display) {
        let value = value.to_string().replace('\n', " ");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "@@T {} {key} {value}", self.phase);
        let _ = out.flush();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") if args.len() == 2 => {
            check(&Out {
                phase: args[1].clone(),
            });
            ExitCode::SUCCESS
        }
        Some("send") if args.len() == 3 => match client::send(&args[1], &args[2]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kdbus-boot-probe: send to {}: {e}", args[1]);
                ExitCode::from(1)
            }
        },
        Some("restart") if args.len() == 2 => {
            restart::run(&args[1]);
            ExitCode::SUCCESS
        }
        Some("faults") if args.len() == 2 => {
            faults::run(&args[1]);
            ExitCode::SUCCESS
        }
        Some("faults-other") if args.len() == 2 => {
            faults_other::run(&args[1]);
            ExitCode::SUCCESS
        }
        Some("serve") if args.len() == 2 => match client::serve(&args[1]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kdbus-boot-probe: serve {}: {e}", args[1]);
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: kdbus-boot-probe check initrd|root|shutdown|final | send NAME TEXT | serve NAME | restart PHASE | faults PHASE | faults-other PHASE");
            ExitCode::from(2)
        }
    }
}

fn read_status() -> Option<Status> {
    Status::read(Path::new(STATUS_FILE)).ok()
}

fn same_file(a: &str, b: &str) -> bool {
    match (std::fs::File::open(a), std::fs::File::open(b)) {
        (Ok(a), Ok(b)) => bootenv::mounts::same_file(&a, &b).unwrap_or(false),
        _ => false,
    }
}

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn check(out: &Out) {
    out.mark("begin", out.phase.as_str());
    // Seconds since boot, for the demo's timeline.
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    out.mark("uptime", uptime.split_whitespace().next().unwrap_or("?"));
    out.mark(
        "module",
        if Path::new("/sys/module/kdbus").exists() {
            "yes"
        } else {
            "no"
        },
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let kdbusfs: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(" - kdbusfs "))
        .collect();
    out.mark("kdbusfs_mounts", kdbusfs.len());
    for l in &kdbusfs {
        out.mark("kdbusfs_at", l.split_whitespace().nth(4).unwrap_or("?"));
    }
    out.mark(
        "oldroot_mounts",
        mountinfo.lines().filter(|l| l.contains("oldroot")).count(),
    );
    if out.phase == "root" {
        settle_activations();
    }
    if out.phase == "shutdown" {
        await_shutdown_root();
    }
    let emitted = match Status::read(Path::new(STATUS_FILE)) {
        Ok(status) => report_status(out, &status),
        Err(e) => {
            out.mark("status", "missing");
            out.mark("status_error", e);
            0
        }
    };
    match out.phase.as_str() {
        "initrd" => {
            if let Some(v) = run(
                "systemctl",
                &[
                    "show",
                    "-p",
                    "ExecMainStartTimestampMonotonic",
                    "--value",
                    "systemd-journald.service",
                ],
            ) {
                out.mark("journald_start_us", v.trim());
            }
        }
        "root" => {
            // systemd: when the real root's userspace started (the end of
            // the initramfs), from kernel start.
            if let Some(v) = run(
                "systemctl",
                &["show", "-p", "UserspaceTimestampMonotonic", "--value"],
            ) {
                out.mark("userspace_us", v.trim());
            }
            // When the boot was done: multi-user.target reached.
            if let Some(v) = run(
                "systemctl",
                &[
                    "show",
                    "-p",
                    "ActiveEnterTimestampMonotonic",
                    "--value",
                    "multi-user.target",
                ],
            ) {
                out.mark("multi_user_us", v.trim());
            }
            if emitted > 0 {
                // One record while journald runs, so that both transports
                // are in the count: SIGHUP makes kdbus-init log that it
                // re-reads its service files.
                let pid = read_status().and_then(|s| rustix::process::Pid::from_raw(s.pid as i32));
                if let Some(pid) = pid {
                    let sent = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
                    out.mark("sighup", format!("{sent:?}"));
                    std::thread::sleep(Duration::from_millis(500));
                }
                let emitted = read_status()
                    .map(|s| s.log.to_kmsg + s.log.to_journal)
                    .unwrap_or(emitted);
                journal_check(out, emitted);
            }
            // The activated test services: what each received, as which
            // user.
            for name in TEST_NAMES {
                match client::report(name) {
                    Ok(answer) => out.mark("served", format!("{name} {answer}")),
                    Err(e) => out.mark("served", format!("{name} error: {e}")),
                }
            }
            if let Some(v) = run(
                "systemctl",
                &["list-units", "--failed", "--plain", "--no-legend"],
            ) {
                out.mark(
                    "failed_units",
                    v.lines().filter(|l| !l.trim().is_empty()).count(),
                );
                for l in v.lines().filter(|l| !l.trim().is_empty()) {
                    out.mark("failed_unit", l.split_whitespace().next().unwrap_or("?"));
                }
            }
            if let Some(v) = run("systemctl", &["is-active", "kdbus-init.service"]) {
                out.mark("unit_state", v.trim());
            }
            // How long kdbus-init.service held up the initramfs (journald
            // and sysinit.target wait for it).
            if let Some(v) = run(
                "systemctl",
                &[
                    "show",
                    "-p",
                    "ExecMainStartTimestampMonotonic",
                    "-p",
                    "ActiveEnterTimestampMonotonic",
                    "-p",
                    "InactiveEnterTimestampMonotonic",
                    "kdbus-init.service",
                ],
            ) {
                for l in v.lines() {
                    if let Some((k, val)) = l.split_once('=') {
                        out.mark(&format!("unit_{k}"), val.trim());
                    }
                }
            }
        }
        _ => {}
    }
    out.mark("end", out.phase.as_str());
}

/// Waits (up to 20 s) until no activation is under way, so that what the
/// real root reports is its outcome.
fn settle_activations() {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let busy = read_status().is_some_and(|s| s.pending().next().is_some());
        if !busy {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits (up to 10 s) until kdbus-init says it is in the shutdown root: it
/// follows by itself when `kdbus-init follow` in the hook before could not
/// make it (no kdbus-init binary in this root).
fn await_shutdown_root() {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if read_status().is_some_and(|s| s.root.as_str() == "shutdown-root") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reports kdbus-init's published status; returns how many log records it
/// says it emitted.
fn report_status(out: &Out, status: &Status) -> u64 {
    out.mark("status", "present");
    let pid = status.pid;
    out.mark("pid", pid);
    out.mark("root", status.root.as_str());
    let alive = Path::new(&format!("/proc/{pid}/exe")).exists();
    out.mark("alive", if alive { "yes" } else { "no" });
    match &status.bus {
        Some(bus) => {
            out.mark("bus_id", bus.id.as_deref().unwrap_or("unknown"));
            out.mark("bus_created_us", bus.created_us);
            out.mark("owner_held", if bus.owner_held { "yes" } else { "no" });
        }
        None => out.mark("bus_id", "none"),
    }
    for p in &status.problems {
        out.mark("problem", p);
    }
    for a in &status.activators {
        let state = match &a.activation {
            Activation::Idle => "idle",
            Activation::Deferred { .. } => "deferred",
            Activation::Starting { .. } => "starting",
            Activation::Failed { .. } => "failed",
        };
        out.mark("activator", format!("{} {state}", a.name));
        out.mark(
            "owner",
            format!(
                "{} {}",
                a.name,
                a.owner.uid.map_or_else(|| "none".into(), |u| u.to_string())
            ),
        );
    }
    for a in &status.activations {
        out.mark(
            "activation",
            format!("{} {} {}", a.name, a.root.as_str(), a.event),
        );
    }
    for h in &status.history {
        out.mark(
            "history",
            format!(
                "{} {} {} {}",
                h.root.as_str(),
                h.since_us,
                h.pid,
                h.bus_id.as_deref().unwrap_or("-")
            ),
        );
    }
    if alive {
        let proc = format!("/proc/{pid}");
        let argv0 = std::fs::read(format!("{proc}/cmdline")).unwrap_or_default();
        out.mark(
            "argv0",
            String::from_utf8_lossy(argv0.split(|b| *b == 0).next().unwrap_or(b"")),
        );
        out.mark(
            "exe_link",
            std::fs::read_link(format!("{proc}/exe"))
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        out.mark(
            "root_link",
            std::fs::read_link(format!("{proc}/root"))
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        out.mark(
            "exe_here",
            if same_file(&format!("{proc}/exe"), "/usr/sbin/kdbus-init") {
                "yes"
            } else {
                "no"
            },
        );
        let maps = std::fs::read_to_string(format!("{proc}/maps")).unwrap_or_default();
        // Deleted files still mapped: the previous root's. (Connection
        // pools are unlinked shmem files, "/kdbus-conn:NAME (deleted)".)
        out.mark(
            "deleted_maps",
            maps.lines()
                .filter(|l| l.contains("(deleted)") && !l.contains("/kdbus-conn"))
                .count(),
        );
        let fds: Vec<String> = std::fs::read_dir(format!("{proc}/fd"))
            .map(|rd| {
                rd.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        out.mark(
            "fds_oldroot",
            fds.iter().filter(|f| f.contains("oldroot")).count(),
        );
    }
    let log = &status.log;
    out.mark("log_to_kmsg", log.to_kmsg);
    out.mark("log_to_journal", log.to_journal);
    out.mark("log_sink", log.sink.as_str());
    log.to_kmsg + log.to_journal
}

/// Every record kdbus-init emitted (to kmsg or to journald) must be in
/// the journal exactly once. Journald imports kmsg asynchronously: wait
/// for it to catch up.
fn journal_check(out: &Out, emitted: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = run(
            "journalctl",
            &["-b", "-t", "kdbus-init", "-o", "json", "--no-pager"],
        )
        .unwrap_or_default();
        let mut by_msg: HashMap<String, u32> = HashMap::new();
        let mut transports: HashMap<String, u32> = HashMap::new();
        let mut n = 0u64;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            n += 1;
            let msg = v["MESSAGE"].as_str().unwrap_or("").to_owned();
            *by_msg.entry(msg).or_default() += 1;
            *transports
                .entry(v["_TRANSPORT"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        if n >= emitted || Instant::now() > deadline {
            out.mark("journal_records", n);
            out.mark("journal_emitted", emitted);
            for (t, c) in &transports {
                out.mark("journal_transport", format!("{t} {c}"));
            }
            let dups: Vec<_> = by_msg.iter().filter(|(_, c)| **c > 1).collect();
            out.mark("journal_duplicates", dups.len());
            for (m, c) in dups {
                out.mark("journal_duplicate", format!("{c}x {m}"));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
