//! `kdbus-boot-probe restart PHASE`: with `kdbus.test.restart` on the kernel
//! command line, kills kdbus-init with SIGKILL while a client holds a name
//! and a message waits on an activator, and reports (as `@@T
//! restart-PHASE KEY VALUE` markers) what the restarted kdbus-init took
//! over: the bus id, the client's name, calls to it, the waiting message
//! (delivered once, to a service that can only start after the restart),
//! the time from the kill to a kdbus-init that serves again.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bootenv::status::Activation;
use kdbus::{
    AttachFlags, Connection, HelloBuilder, MessageBuilder, NameFlags, Peer, SYSTEM_BUS_PATH,
};

use crate::{read_status, Out};

/// The kernel command line word that asks for the kills.
pub const WANTED: &str = "kdbus.test.restart";
/// The name the client holds across the kill.
pub const HOLDER: &str = "org.kdbus.test.Holder";
/// The activatable name whose message waits across the kill.
const WAITING: &str = "org.kdbus.test.Restart";
/// Its service's program (the file's Exec=): absent until after the kill.
const PROGRAM: &str = "/run/kdbus-test/restart-service";
/// The probe, in every root.
const PROBE: &str = "/usr/lib/kdbus-test/kdbus-boot-probe";

/// Waits up to `limit` for `cond`; returns how long it took.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The client: holds [`HOLDER`] and answers calls to it until told "bye".
pub fn client(ready: mpsc::Sender<Result<u64, String>>) {
    let conn = match HelloBuilder::new()
        .description("kdbus-test-client")
        .connect(SYSTEM_BUS_PATH)
        .and_then(|c| c.acquire_name(HOLDER, NameFlags::empty()).map(|_| c))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let _ = ready.send(Ok(conn.id()));
    loop {
        let Ok(recv) = conn.recv_timeout(Duration::from_secs(60)) else {
            return;
        };
        let Some(msg) = recv.message else { return };
        if msg.notification().is_some() {
            continue;
        }
        let payload = msg.payload_to_vec();
        if payload == b"bye" {
            return;
        }
        if msg.is_call() {
            let _ = conn.send(&MessageBuilder::reply_to(&msg).payload(b"pong"));
        }
    }
}

/// Calls the client: "pong", or the error.
pub fn call_client(conn: &Connection) -> String {
    match conn.call(
        &MessageBuilder::to_name(HOLDER)
            .payload(b"ping")
            .expect_reply(Duration::from_secs(5)),
    ) {
        Ok(reply) => String::from_utf8_lossy(&reply.payload_to_vec()).into_owned(),
        Err(e) => format!("error: {e}"),
    }
}

pub fn run(phase: &str) {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if !cmdline.split_whitespace().any(|w| w == WANTED) {
        return;
    }
    let out = Out {
        phase: format!("restart-{phase}"),
    };
    out.mark("begin", phase);
    if let Err(e) = kill_and_check(&out, phase) {
        out.mark("error", e);
    }
    out.mark("end", phase);
}

fn kill_and_check(out: &Out, phase: &str) -> Result<(), String> {
    let before = read_status().ok_or("no kdbus-init status")?;
    let bus_before = before
        .bus
        .as_ref()
        .and_then(|b| b.id.clone())
        .ok_or("no bus")?;
    out.mark("bus_id_before", &bus_before);
    out.mark("restarts_before", before.restarts);
    let (tx, rx) = mpsc::channel();
    let client_thread = std::thread::spawn(move || client(tx));
    let client_id = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())??;
    let peer = Connection::connect(SYSTEM_BUS_PATH).map_err(|e| e.to_string())?;
    out.mark("call_before", call_client(&peer));
    // The message that must wait across the kill, exactly once.
    let text = format!("waiting-in-{phase}");
    let _ = std::fs::remove_file(PROGRAM);
    peer.send(&MessageBuilder::to_name(WAITING).payload(text.as_bytes()))
        .map_err(|e| format!("send to {WAITING}: {e}"))?;
    let deferred = wait_for(Duration::from_secs(10), || {
        read_status().is_some_and(|s| {
            s.activators
                .iter()
                .any(|a| a.name == WAITING && matches!(a.activation, Activation::Deferred { .. }))
        })
    });
    out.mark("deferred_before_kill", deferred.is_some());
    // Let the state and log counters settle.
    std::thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(before.pid as i32).ok_or("bad pid")?;
    let killed_at = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)
        .map_err(|e| format!("kill {}: {e}", before.pid))?;
    out.mark("killed", before.pid);
    // Served again: a new kdbus-init published its status.
    let back = wait_for(Duration::from_secs(30), || {
        read_status().is_some_and(|s| {
            s.pid != before.pid
                && s.restarts > before.restarts
                && Path::new(&format!("/proc/{}", s.pid)).exists()
        })
    });
    match back {
        Some(_) => out.mark("serving_again_ms", killed_at.elapsed().as_millis()),
        None => return Err("no restarted kdbus-init within 30 s".into()),
    }
    let after = read_status().ok_or("no status after the restart")?;
    out.mark("pid_after", after.pid);
    out.mark("restarts_after", after.restarts);
    out.mark(
        "bus_id_after",
        after
            .bus
            .as_ref()
            .and_then(|b| b.id.as_deref())
            .unwrap_or("none"),
    );
    out.mark(
        "owner_held_after",
        after.bus.as_ref().is_some_and(|b| b.owner_held),
    );
    // The bus itself: a new connection sees the same bus id.
    let fresh = Connection::connect(SYSTEM_BUS_PATH).map_err(|e| e.to_string())?;
    out.mark("hello_bus_id", kdbus::id128_hex(fresh.bus_id128()));
    let owner = fresh
        .conn_info(Peer::Name(HOLDER), AttachFlags::empty())
        .map(|i| i.id);
    out.mark(
        "client_owns_name",
        if owner.as_ref().ok() == Some(&client_id) {
            "yes".to_owned()
        } else {
            format!("no ({owner:?}, client {client_id})")
        },
    );
    out.mark("call_after", call_client(&fresh));
    // Now its program appears: the restarted kdbus-init starts it, and it
    // gets the message that waited. A link to the probe of this root (/run
    // may be mounted noexec; the link's target is not on it).
    std::fs::create_dir_all("/run/kdbus-test").map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink(PROBE, PROGRAM).map_err(|e| format!("install {PROGRAM}: {e}"))?;
    let served = crate::client::report(WAITING);
    out.mark(
        "served",
        match served {
            Ok(answer) => answer,
            Err(e) => format!("error: {e}"),
        },
    );
    let _ = std::fs::remove_file(PROGRAM);
    let _ = peer.send(&MessageBuilder::to_name(HOLDER).payload(b"bye"));
    let _ = client_thread.join();
    if let Ok(o) = std::process::Command::new("kdbusctl")
        .arg("status")
        .output()
    {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        if let Some(line) = text.lines().find(|l| l.contains("restarts")) {
            out.mark("kdbusctl", line.trim());
        }
    }
    Ok(())
}
