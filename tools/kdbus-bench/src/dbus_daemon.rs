//! The userspace bus people use: the same round trip through a private
//! `dbus-daemon` (the reference D-Bus daemon), with libdbus clients.
//! Method call and reply each pass the daemon, i.e. two socket hops and
//! a D-Bus marshalling step per direction.
//!
//! dbus-broker would be the other candidate, but its launcher needs a
//! running systemd (journal and service manager) and the benchmark VM has
//! none.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use dbus::channel::Channel;
use dbus::message::MessageType;
use dbus::Message;

use crate::measure::Case;
use crate::unicast::{payload, CALL_TIMEOUT};

const SERVICE: &str = "org.kdbus.Bench";
const PATH: &str = "/org/kdbus/Bench";

/// A dbus-daemon of its own, listening on a socket in a private directory.
struct Daemon {
    child: Child,
    dir: PathBuf,
    address: String,
}

impl Daemon {
    fn start() -> Result<Daemon> {
        let dir = std::env::temp_dir().join(format!("kdbus-bench-dbus-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("bus");
        let address = format!("unix:path={}", socket.display());
        // its complaints (e.g. that it may not raise its fd limit) go to a
        // log, shown if it does not come up
        let log = dir.join("daemon.log");
        let child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--nosyslog"])
            .arg(format!("--address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting dbus-daemon (Debian package dbus-daemon; `make deps`)")?;
        let mut daemon = Daemon {
            child,
            dir,
            address,
        };
        let start = Instant::now();
        while !socket.exists() {
            let said = || std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(status) = daemon.child.try_wait()? {
                bail!("dbus-daemon exited at start ({status}): {}", said());
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!(
                    "dbus-daemon did not listen on {} within 10 s: {}",
                    socket.display(),
                    said()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(daemon)
    }

    /// A registered (Hello'd) private connection.
    fn connect(&self) -> Result<Channel> {
        let mut ch = Channel::open_private(&self.address)
            .map_err(|e| anyhow!("connecting to dbus-daemon at {}: {e}", self.address))?;
        ch.register()
            .map_err(|e| anyhow!("Hello to dbus-daemon: {e}"))?;
        Ok(ch)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
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
            .map_err(|()| anyhow!("dbus-daemon hung up"))?;
        while let Some(call) = ch.pop_message() {
            if call.msg_type() != MessageType::MethodCall {
                continue;
            }
            let data: Vec<u8> = call.read1().map_err(|e| anyhow!("{e}"))?;
            ch.send(call.method_return().append1(data))
                .map_err(|()| anyhow!("echo reply not sent"))?;
        }
        ch.flush();
    }
    Ok(())
}

/// Client → dbus-daemon → echo service → dbus-daemon → client.
pub struct DbusDaemonCall {
    client: Channel,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<Result<()>>>,
    data: Vec<u8>,
    // last: the daemon outlives both connections
    _daemon: Daemon,
}

impl DbusDaemonCall {
    pub fn new(size: usize) -> Result<DbusDaemonCall> {
        let daemon = Daemon::start()?;
        let service = daemon.connect()?;
        request_name(&service)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let server = std::thread::spawn(move || serve(service, &flag));
        Ok(DbusDaemonCall {
            client: daemon.connect()?,
            stop,
            server: Some(server),
            data: payload(size),
            _daemon: daemon,
        })
    }
}

impl Case for DbusDaemonCall {
    fn name(&self) -> String {
        "dbus-daemon call".into()
    }

    fn run_once(&mut self) -> Result<()> {
        let msg = Message::new_method_call(SERVICE, PATH, SERVICE, "Echo")
            .map_err(|e| anyhow!("{e}"))?
            .append1(&self.data);
        let reply = self
            .client
            .send_with_reply_and_block(msg, CALL_TIMEOUT)
            .map_err(|e| anyhow!("call through dbus-daemon: {e}"))?;
        let data: Vec<u8> = reply.read1().map_err(|e| anyhow!("{e}"))?;
        ensure!(
            data.len() == self.data.len(),
            "echo returned {} bytes, sent {}",
            data.len(),
            self.data.len()
        );
        Ok(())
    }
}

impl Drop for DbusDaemonCall {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.server.take() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("kdbus-bench: dbus-daemon echo: {e:#}"),
                Err(_) => eprintln!("kdbus-bench: dbus-daemon echo panicked"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{measure, Budget};

    #[test]
    fn dbus_daemon_round_trip_echoes() {
        for size in [8, 65536, 1 << 20] {
            let mut case = DbusDaemonCall::new(size).unwrap();
            let stats = measure(&mut case, Budget::QUICK).unwrap();
            assert_eq!(stats.iterations, 3);
        }
    }
}
