//! D-Bus method calls from a program on the D-Bus socket protocol (a
//! "legacy" client: libdbus, the payload as a byte array) to an echo
//! service, through the buses such a program can use:
//!
//! - a private `dbus-broker` (the baseline) and a private `dbus-daemon`,
//!   with the same libdbus echo service;
//! - `kdbus-bridge` on the benchmark's kdbus bus, to the same libdbus
//!   service (both sides go through the bridge) or to a native service on
//!   the `kdbus` library that speaks the D-Bus payload format (only the
//!   client goes through the bridge).
//!
//! dbus-broker's launcher normally runs under systemd: it takes its
//! listening socket by socket activation, logs to the journal and talks
//! to the service manager on a parent bus. Here `systemd-socket-activate`
//! passes the socket, a private mount namespace puts a socket of ours
//! where the journal's would be, and a dbus-daemon stands in for the
//! parent bus (the launcher only watches it, no service is activated).

use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use dbus::channel::Channel;
use dbus::message::MessageType;
use dbus::Message;
use rustix::process::{kill_process, Pid, Signal};

use crate::env::BenchBus;
use crate::measure::Case;
use crate::unicast::{payload, EchoServer, Reply, CALL_TIMEOUT};

pub const SERVICE: &str = "org.kdbus.Bench";
/// The native service's name: the cases of one payload size run side by
/// side, both bridge cases on the same kdbus bus.
const NATIVE_SERVICE: &str = "org.kdbus.BenchNative";
const PATH: &str = "/org/kdbus/Bench";

/// Which bus carries the call, and who answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// libdbus client → dbus-broker → libdbus service.
    Broker,
    /// libdbus client → dbus-daemon → libdbus service.
    Daemon,
    /// libdbus client → kdbus-bridge → kdbus → kdbus-bridge → libdbus
    /// service.
    BridgeToLegacy,
    /// libdbus client → kdbus-bridge → kdbus → native kdbus service.
    BridgeToNative,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Broker => "dbus-broker",
            Route::Daemon => "dbus-daemon",
            Route::BridgeToLegacy => "bridge to legacy",
            Route::BridgeToNative => "bridge to native",
        }
    }

    /// The name the echo service owns.
    fn service(self) -> &'static str {
        match self {
            Route::BridgeToNative => NATIVE_SERVICE,
            _ => SERVICE,
        }
    }
}

/// A private directory for one bus's socket, config and logs.
fn private_dir(what: &str) -> Result<PathBuf> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kdbus-bench-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A D-Bus socket bus in a process of its own, listening on `socket` in
/// its private directory.
struct SocketBus {
    what: &'static str,
    child: Child,
    dir: PathBuf,
    address: String,
    /// Its stderr.
    log: PathBuf,
    /// dbus-broker only: its journal and its parent bus, which must
    /// outlive it (dropped after `child` is stopped, see `Drop`).
    journal: Option<Journal>,
    parent: Option<Box<SocketBus>>,
}

impl SocketBus {
    /// Starts `cmd` (whose stderr goes to the log) and waits until the
    /// socket accepts connections.
    fn spawn(
        what: &'static str,
        dir: PathBuf,
        mut cmd: Command,
        journal: Option<Journal>,
        parent: Option<Box<SocketBus>>,
    ) -> Result<SocketBus> {
        let socket = dir.join("bus");
        let log = dir.join("stderr.log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {what} ({cmd:?})"))?;
        let mut bus = SocketBus {
            what,
            child,
            address: format!("unix:path={}", socket.display()),
            dir,
            log,
            journal,
            parent,
        };
        let start = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            if let Some(status) = bus.child.try_wait()? {
                bail!("{what} exited at start ({status}): {}", bus.said());
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!(
                    "{what} did not listen on {} within 10 s: {}",
                    socket.display(),
                    bus.said()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(bus)
    }

    /// What it said on stderr and to its journal, for error messages.
    fn said(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Some(journal) = &self.journal {
            text.push_str(&journal.messages().join("\n"));
        }
        if text.trim().is_empty() {
            "(no output)".into()
        } else {
            text
        }
    }

    /// dbus-daemon with a session bus configuration.
    fn dbus_daemon() -> Result<SocketBus> {
        let dir = private_dir("dbus-daemon")?;
        let mut cmd = Command::new("dbus-daemon");
        cmd.args(["--session", "--nofork", "--nopidfile", "--nosyslog"])
            .arg(format!("--address=unix:path={}", dir.join("bus").display()));
        SocketBus::spawn(
            "dbus-daemon (Debian package dbus-daemon)",
            dir,
            cmd,
            None,
            None,
        )
    }

    /// dbus-broker through its launcher, as described at the top.
    fn dbus_broker() -> Result<SocketBus> {
        let parent = SocketBus::dbus_daemon().context("the parent bus of dbus-broker")?;
        let dir = private_dir("dbus-broker")?;
        let config = dir.join("bus.conf");
        std::fs::write(&config, OPEN_CONFIG)?;
        let journal = Journal::bind(&dir.join("journal"))?;
        // The launcher logs to /run/systemd/journal/socket, no matter
        // what: in the namespace, a tmpfs on /run holds ours there.
        let script = "mount -t tmpfs kdbus-bench /run && mkdir -p /run/systemd/journal && \
             mount --bind \"$1\" /run/systemd/journal && \
             exec systemd-socket-activate -E DBUS_SESSION_BUS_ADDRESS -l \"$2\" \
             dbus-broker-launch --scope user --config-file \"$3\"";
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--", "sh", "-c", script, "sh"])
            .arg(dir.join("journal"))
            .arg(dir.join("bus"))
            .arg(&config)
            .env("DBUS_SESSION_BUS_ADDRESS", &parent.address);
        SocketBus::spawn(
            "dbus-broker (Debian packages dbus-broker, systemd, util-linux; needs root)",
            dir,
            cmd,
            Some(journal),
            Some(Box::new(parent)),
        )
    }

    /// kdbus-bridge serving the benchmark bus.
    fn kdbus_bridge(bus: &BenchBus) -> Result<SocketBus> {
        let dir = private_dir("bridge")?;
        let config = dir.join("bus.conf");
        std::fs::write(&config, OPEN_CONFIG)?;
        let mut cmd = Command::new(bridge_binary());
        cmd.arg("--bus")
            .arg(bus.endpoint())
            .arg("--config")
            .arg(&config)
            .arg(format!("--address=unix:path={}", dir.join("bus").display()))
            .args(["--log", "stderr"]);
        SocketBus::spawn(
            "kdbus-bridge (cargo build --release -p kdbus-bridge)",
            dir,
            cmd,
            None,
            None,
        )
    }

    /// A registered (Hello'd) private connection.
    fn connect(&self) -> Result<Channel> {
        let mut ch = Channel::open_private(&self.address)
            .map_err(|e| anyhow!("connecting to {} at {}: {e}", self.what, self.address))
            .with_context(|| self.said())?;
        ch.register()
            .map_err(|e| anyhow!("Hello to {}: {e}", self.what))
            .with_context(|| self.said())?;
        Ok(ch)
    }
}

impl Drop for SocketBus {
    fn drop(&mut self) {
        // SIGTERM first: dbus-broker-launch then stops its broker.
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.journal.take();
        self.parent.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The policy of dbus-broker and kdbus-bridge (dbus-daemon runs with its
/// session bus configuration): anyone may connect, own and call anything.
const OPEN_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

/// The kdbus-bridge binary: next to ours (a cargo build puts both into
/// target/release), else the one in PATH.
fn bridge_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("kdbus-bridge")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("kdbus-bridge"))
}

/// Stands in for the journal's socket: keeps the messages (the last 50)
/// so that a failed start can say why.
struct Journal {
    stop: Arc<AtomicBool>,
    messages: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    fn bind(dir: &Path) -> Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let socket = UnixDatagram::bind(dir.join("socket"))
            .with_context(|| format!("binding {}/socket", dir.display()))?;
        // to see `stop` now and then
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (flag, kept) = (stop.clone(), messages.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !flag.load(Ordering::Relaxed) {
                let Ok(n) = socket.recv(&mut buf) else {
                    continue;
                };
                // native journal protocol: FIELD=value lines
                let text = String::from_utf8_lossy(&buf[..n]);
                if let Some(m) = text.lines().find_map(|l| l.strip_prefix("MESSAGE=")) {
                    let mut kept = kept.lock().unwrap();
                    if kept.len() == 50 {
                        kept.remove(0);
                    }
                    kept.push(m.to_owned());
                }
            }
        });
        Ok(Journal {
            stop,
            messages,
            thread: Some(thread),
        })
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Takes `SERVICE` on `ch`.
fn request_name(ch: &Channel) -> Result<()> {
    let msg = Message::new_method_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "RequestName",
    )
    .map_err(|e| anyhow!("{e}"))?
    .append2(SERVICE, 4u32); // DBUS_NAME_FLAG_DO_NOT_QUEUE
    let reply = ch
        .send_with_reply_and_block(msg, CALL_TIMEOUT)
        .map_err(|e| anyhow!("RequestName {SERVICE}: {e}"))?;
    let code: u32 = reply.read1().map_err(|e| anyhow!("{e}"))?;
    ensure!(
        code == 1,
        "RequestName {SERVICE}: reply code {code}, not primary owner"
    );
    Ok(())
}

/// Echoes every method call's byte array until `stop`.
fn serve(ch: Channel, stop: &AtomicBool) -> Result<()> {
    while !stop.load(Ordering::Relaxed) {
        ch.read_write(Some(Duration::from_millis(50)))
            .map_err(|()| anyhow!("the bus hung up"))?;
        while let Some(call) = ch.pop_message() {
            if call.msg_type() != MessageType::MethodCall {
                continue;
            }
            // a slice reads the array in one piece, as real services do
            // (a Vec would be read byte by byte: libdbus's cost, not the bus's)
            let data: &[u8] = call.read1().map_err(|e| anyhow!("{e}"))?;
            ch.send(call.method_return().append1(data))
                .map_err(|()| anyhow!("echo reply not sent"))?;
        }
        ch.flush();
    }
    Ok(())
}

/// The libdbus echo service on its own thread.
struct LegacyService {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl LegacyService {
    fn start(bus: &SocketBus) -> Result<LegacyService> {
        let ch = bus.connect()?;
        request_name(&ch)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = Some(std::thread::spawn(move || serve(ch, &flag)));
        Ok(LegacyService { stop, thread })
    }
}

impl Drop for LegacyService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("kdbus-bench: libdbus echo service: {e:#}"),
                Err(_) => eprintln!("kdbus-bench: libdbus echo service panicked"),
            }
        }
    }
}

/// A libdbus client calling `Echo(ay) → ay` on the route's service.
pub struct DbusCall {
    route: Route,
    client: Channel,
    data: Vec<u8>,
    // one of them, stopped when dropped
    _legacy: Option<LegacyService>,
    _native: Option<EchoServer>,
    // last: the bus outlives both ends
    _bus: SocketBus,
}

impl DbusCall {
    pub fn new(route: Route, kdbus: &BenchBus, size: usize) -> Result<DbusCall> {
        let bus = match route {
            Route::Broker => SocketBus::dbus_broker()?,
            Route::Daemon => SocketBus::dbus_daemon()?,
            Route::BridgeToLegacy | Route::BridgeToNative => SocketBus::kdbus_bridge(kdbus)?,
        };
        let (legacy, native) = match route {
            Route::BridgeToNative => (
                None,
                Some(EchoServer::start_named(
                    kdbus,
                    Reply::DbusEcho,
                    NATIVE_SERVICE,
                )?),
            ),
            _ => (Some(LegacyService::start(&bus)?), None),
        };
        Ok(DbusCall {
            route,
            client: bus.connect()?,
            data: payload(size),
            _legacy: legacy,
            _native: native,
            _bus: bus,
        })
    }
}

impl Case for DbusCall {
    fn name(&self) -> String {
        self.route.name().into()
    }

    fn run_once(&mut self) -> Result<()> {
        let msg = Message::new_method_call(self.route.service(), PATH, SERVICE, "Echo")
            .map_err(|e| anyhow!("{e}"))?
            .append1(self.data.as_slice()); // one fixed array, not byte by byte
        let reply = self
            .client
            .send_with_reply_and_block(msg, CALL_TIMEOUT)
            .map_err(|e| anyhow!("call through {}: {e}", self.route.name()))?;
        let data: &[u8] = reply.read1().map_err(|e| anyhow!("{e}"))?;
        ensure!(
            data == self.data,
            "echo returned {} other bytes, sent {}",
            data.len(),
            self.data.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The socket buses without kdbus (the bridge's cases need kdbus.ko
    /// and run in the VM with `kdbus-bench --quick`).
    fn round_trips(bus: &SocketBus) {
        let _service = LegacyService::start(bus).unwrap();
        let client = bus.connect().unwrap();
        for size in [8, 65536] {
            let data = payload(size);
            let msg = Message::new_method_call(SERVICE, PATH, SERVICE, "Echo")
                .unwrap()
                .append1(&data);
            let reply = client.send_with_reply_and_block(msg, CALL_TIMEOUT).unwrap();
            assert_eq!(reply.read1::<Vec<u8>>().unwrap(), data);
        }
    }

    #[test]
    fn dbus_daemon_round_trip_echoes() {
        round_trips(&SocketBus::dbus_daemon().unwrap());
    }

    #[test]
    fn dbus_broker_round_trip_echoes_and_stops() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: starting dbus-broker's launcher in a namespace needs root");
            return;
        }
        let bus = SocketBus::dbus_broker().unwrap();
        round_trips(&bus);
        // the broker is the launcher's child
        let launcher = bus.child.id().to_string();
        let broker: Vec<PathBuf> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
                stat.rsplit(") ").next().and_then(|s| s.split(' ').nth(1)) == Some(&launcher)
            })
            .collect();
        assert_eq!(broker.len(), 1, "the launcher's children: {broker:?}");
        drop(bus);
        std::thread::sleep(Duration::from_millis(500));
        let state = std::fs::read_to_string(broker[0].join("stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z "),
            "dbus-broker still runs after its launcher stopped: {state}"
        );
    }
}
