//! kdbus-boot-probe: runs inside the boot-test VM and reports what it sees
//! as console marker lines (`@@T <phase> <key> <value>`), which the host
//! side of kdbus-vmtest reads from the serial console.
//!
//!   kdbus-boot-probe check initrd|root|shutdown|final
//!   kdbus-boot-probe send NAME TEXT     (a client of an activatable name)
//!   kdbus-boot-probe serve NAME         (the service behind that name)

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const STATUS: &str = "/run/kdbus/kdbus-init.json";

// kdbus-init's private kdbus adapter, shared rather than copied (the
// probe uses its command builder; kdbus-init's own calls are unused here).
#[allow(dead_code)]
#[path = "../../../../kdbus-init/src/bus.rs"]
mod bus;

/// A client and a service of an activatable name, on the system bus.
mod client {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use kdbus::abi::*;

    use super::bus;

    const BUS: &str = "/sys/fs/kdbus/0-system/bus";

    /// Sends `text` to `name` (queued on its activator if nobody owns it).
    pub fn send(name: &str, text: &str) -> Result<(), String> {
        let conn = bus::peer(Path::new(BUS)).map_err(|e| format!("HELLO: {e}"))?;
        let payload = text.as_bytes();
        let vec = [
            (payload.len() as u64).to_ne_bytes(),
            (payload.as_ptr() as u64).to_ne_bytes(),
        ]
        .concat();
        let mut msg = bus::Cmd::new(
            0,
            kdbus_msg {
                dst_id: KDBUS_DST_ID_NAME,
                payload_type: KDBUS_PAYLOAD_DBUS,
                cookie: 1,
                ..Default::default()
            },
        )
        .string_item(KDBUS_ITEM_DST_NAME, name)
        .item(KDBUS_ITEM_PAYLOAD_VEC, &vec);
        let address = msg.finished_address();
        bus::Cmd::new(
            KDBUS_CMD_SEND,
            kdbus_cmd_send {
                msg_address: address,
                ..Default::default()
            },
        )
        .run(conn.fd.as_fd())
        .map_err(|e| format!("SEND: {e}"))?;
        // `msg` and the payload had to live until the ioctl returned.
        drop(msg);
        println!("@@T client sent {name} {text}");
        Ok(())
    }

    /// Takes `name` and reports every message received within 10 s on
    /// the console (`@@T late received TEXT`).
    pub fn serve(name: &str) -> Result<(), String> {
        let conn = bus::peer(Path::new(BUS)).map_err(|e| format!("HELLO: {e}"))?;
        bus::Cmd::new(KDBUS_CMD_NAME_ACQUIRE, kdbus_cmd::default())
            .string_item(KDBUS_ITEM_NAME, name)
            .run(conn.fd.as_fd())
            .map_err(|e| format!("NAME_ACQUIRE: {e}"))?;
        let size = bus::PEER_POOL as usize;
        // SAFETY: a read-only shared mapping of the connection's pool, of
        // the size given at HELLO; it is used only while the fd is open.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                size,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                conn.fd.as_fd(),
                0,
            )
        }
        .map_err(|e| format!("mmap pool: {e}"))?;
        // SAFETY: see above; we read only slices RECV handed us, which the
        // kernel does not change until we FREE them.
        let pool = unsafe { std::slice::from_raw_parts(base as *const u8, size) };
        let mut console = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/console")
            .ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let recv =
                bus::Cmd::new(KDBUS_CMD_RECV, kdbus_cmd_recv::default()).run(conn.fd.as_fd());
            let offset = match recv {
                Ok(done) => done.head::<kdbus_cmd_recv>().msg.offset as usize,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => return Err(format!("RECV: {e}")),
            };
            for text in payloads(pool, offset) {
                let line = format!("@@T late received {text}\n");
                match console.as_mut() {
                    Some(c) => {
                        let _ = c.write_all(line.as_bytes());
                    }
                    None => print!("{line}"),
                }
            }
            bus::free(conn.fd.as_fd(), offset as u64);
        }
        Ok(())
    }

    fn u64_at(pool: &[u8], at: usize) -> u64 {
        pool.get(at..at + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
            .unwrap_or(0)
    }

    /// The payloads (PAYLOAD_OFF items) of the message at `offset`.
    fn payloads(pool: &[u8], offset: usize) -> Vec<String> {
        let size = u64_at(pool, offset) as usize;
        let mut out = Vec::new();
        let mut at = offset + std::mem::size_of::<kdbus_msg>();
        while at + 16 <= offset + size {
            let (len, kind) = (u64_at(pool, at) as usize, u64_at(pool, at + 8));
            if len < 16 {
                break;
            }
            if kind == KDBUS_ITEM_PAYLOAD_OFF {
                let (n, off) = (u64_at(pool, at + 16) as usize, u64_at(pool, at + 24));
                if off != u64::MAX {
                    let start = offset + off as usize;
                    if let Some(b) = pool.get(start..start + n) {
                        out.push(String::from_utf8_lossy(b).into_owned());
                    }
                }
            }
            at += len.div_ceil(8) * 8;
        }
        out
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
        Some("serve") if args.len() == 2 => match client::serve(&args[1]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kdbus-boot-probe: serve {}: {e}", args[1]);
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: kdbus-boot-probe check initrd|root|shutdown|final | send NAME TEXT | serve NAME");
            ExitCode::from(2)
        }
    }
}

fn read_json(path: &str) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
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
    let emitted = match read_json(STATUS) {
        Some(status) => report_status(out, &status),
        None => {
            out.mark("status", "missing");
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
            if emitted > 0 {
                // One record while journald runs, so that both transports
                // are in the count: SIGHUP makes kdbus-init log that it
                // re-reads its service files.
                let pid = read_json(STATUS)
                    .and_then(|s| s["pid"].as_i64())
                    .and_then(|p| rustix::process::Pid::from_raw(p as i32));
                if let Some(pid) = pid {
                    let sent = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
                    out.mark("sighup", format!("{sent:?}"));
                    std::thread::sleep(Duration::from_millis(500));
                }
                let emitted = read_json(STATUS)
                    .map(|s| {
                        s["log"]["to_kmsg"].as_u64().unwrap_or(0)
                            + s["log"]["to_journal"].as_u64().unwrap_or(0)
                    })
                    .unwrap_or(emitted);
                journal_check(out, emitted);
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
        let busy = read_json(STATUS).is_some_and(|s| {
            s["activators"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["activation"]["state"].as_str() != Some("idle"))
        });
        if !busy {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Reports kdbus-init's published status; returns how many log records it
/// says it emitted.
fn report_status(out: &Out, status: &serde_json::Value) -> u64 {
    out.mark("status", "present");
    let pid = status["pid"].as_u64().unwrap_or(0);
    out.mark("pid", pid);
    out.mark("root", status["root"].as_str().unwrap_or("?"));
    let alive = Path::new(&format!("/proc/{pid}/exe")).exists();
    out.mark("alive", if alive { "yes" } else { "no" });
    if let Some(bus) = status["bus"].as_object() {
        out.mark(
            "bus_id",
            bus.get("id").and_then(|v| v.as_str()).unwrap_or("unknown"),
        );
        out.mark(
            "bus_created_us",
            bus.get("created_us").and_then(|v| v.as_u64()).unwrap_or(0),
        );
        out.mark(
            "owner_held",
            if bus.get("owner_fd").is_some_and(|v| !v.is_null()) {
                "yes"
            } else {
                "no"
            },
        );
    } else {
        out.mark("bus_id", "none");
    }
    for p in status["problems"].as_array().into_iter().flatten() {
        out.mark("problem", p.as_str().unwrap_or("?"));
    }
    for a in status["activators"].as_array().into_iter().flatten() {
        out.mark(
            "activator",
            format!(
                "{} {}",
                a["name"].as_str().unwrap_or("?"),
                a["activation"]["state"].as_str().unwrap_or("?")
            ),
        );
    }
    for a in status["activations"].as_array().into_iter().flatten() {
        out.mark(
            "activation",
            format!(
                "{} {} {}",
                a["name"].as_str().unwrap_or("?"),
                a["root"].as_str().unwrap_or("?"),
                a["event"].as_str().unwrap_or("?")
            ),
        );
    }
    for h in status["history"].as_array().into_iter().flatten() {
        out.mark(
            "history",
            format!(
                "{} {} {} {}",
                h["root"].as_str().unwrap_or("?"),
                h["since_us"],
                h["pid"],
                h["bus_id"].as_str().unwrap_or("-")
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
        out.mark(
            "deleted_maps",
            maps.lines().filter(|l| l.contains("(deleted)")).count(),
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
    let log = &status["log"];
    let emitted = log["to_kmsg"].as_u64().unwrap_or(0) + log["to_journal"].as_u64().unwrap_or(0);
    out.mark("log_to_kmsg", log["to_kmsg"].as_u64().unwrap_or(0));
    out.mark("log_to_journal", log["to_journal"].as_u64().unwrap_or(0));
    out.mark("log_sink", status["log_sink"].as_str().unwrap_or("?"));
    emitted
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
