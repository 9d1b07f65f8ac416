//! Unicast request/reply round trips: a client sends a payload, an echo
//! server on another thread sends it back. Both directions carry the
//! payload, through kdbus or through an AF_UNIX socketpair (the baseline).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use kdbus::{Connection, MessageBuilder, NameFlags};

use crate::env::BenchBus;
use crate::measure::Case;

/// Generous: a round trip that takes this long is a failure, not a figure.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 131 % 251) as u8).collect()
}

/// What an [`EchoServer`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The call's own payload.
    Echo,
    /// An empty reply: an acknowledgement.
    Empty,
    /// The calls are D-Bus method calls with one byte array (the payload
    /// format of kdbus-bridge): a D-Bus method return with the call's
    /// body, as a native kdbus service answers D-Bus clients.
    DbusEcho,
}

/// A kdbus connection on its own thread answering every call.
pub struct EchoServer {
    pub id: u64,
    stop: Arc<AtomicBool>,
    /// Wakes the server to see `stop`: like the socketpair's echo thread,
    /// it sleeps without a timeout.
    waker: Connection,
    thread: Option<JoinHandle<Result<()>>>,
}

impl EchoServer {
    pub fn start(bus: &BenchBus, reply: Reply) -> Result<EchoServer> {
        EchoServer::start_on(bus, bus.connect("bench-echo")?, reply)
    }

    /// A server that owns the well-known `name`.
    pub fn start_named(bus: &BenchBus, reply: Reply, name: &str) -> Result<EchoServer> {
        let conn = bus.connect("bench-echo")?;
        conn.acquire_name(name, NameFlags::empty())
            .with_context(|| format!("acquiring {name}"))?;
        EchoServer::start_on(bus, conn, reply)
    }

    fn start_on(bus: &BenchBus, conn: Connection, reply: Reply) -> Result<EchoServer> {
        // before the thread: without it, a server could never be stopped
        let waker = bus.connect("bench-echo-stop")?;
        let id = conn.id();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(&conn, reply, &flag));
        Ok(EchoServer {
            id,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.waker
            .send(&MessageBuilder::to_id(self.id))
            .context("waking the echo server")?;
        thread.join().map_err(|_| anyhow!("echo server panicked"))?
    }
}

fn serve(conn: &Connection, mode: Reply, stop: &AtomicBool) -> Result<()> {
    let mut serial = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if !conn.wait(None)? {
            continue;
        }
        let Some(call) = conn.recv()?.message else {
            continue;
        };
        if !call.is_call() {
            // a part of a payload split over several messages
            continue;
        }
        if mode == Reply::DbusEcho {
            serial = serial.wrapping_add(1).max(1);
            dbus_echo(conn, &call, serial)?;
            continue;
        }
        // The reply's payload vecs point into the call's pool slice: the
        // kernel copies straight from there into the caller's pool.
        let mut reply = MessageBuilder::reply_to(&call);
        if mode == Reply::Echo {
            for part in call.payload() {
                reply = reply.payload(part);
            }
        }
        conn.send(&reply).context("echo server reply")?;
    }
    Ok(())
}

/// Answers the D-Bus call in `call` with a method return carrying the
/// call's body (a byte array) as it is: a header of our own in one
/// payload vec, the body in a second.
fn dbus_echo(conn: &Connection, call: &kdbus::MessageView<'_>, serial: u32) -> Result<()> {
    use kdbus::dbus::Kind;
    let msg = call.dbus().context("a call that is not a D-Bus message")?;
    let asked = msg.header();
    ensure!(
        asked.kind == Kind::MethodCall && asked.signature == "ay",
        "expected a method call with one byte array, got {asked:?}"
    );
    // same byte order as the call, whose body we send back
    let mut header = asked.clone();
    header.kind = Kind::MethodReturn;
    header.flags = 0;
    header.serial = serial;
    header.reply_serial = Some(asked.serial);
    header.destination = asked.sender.clone();
    header.sender = Some(format!(":1.{}", conn.id()));
    header.path = None;
    header.interface = None;
    header.member = None;
    header.error_name = None;
    header.unix_fds = 0;
    let bytes = header.marshal(msg.body().len())?;
    conn.send(
        &MessageBuilder::reply_to(call)
            .payload_type(kdbus::abi::KDBUS_PAYLOAD_DBUS)
            .cookie(u64::from(serial))
            .payload(&bytes)
            .payload(msg.body()),
    )
    .context("D-Bus echo reply")?;
    Ok(())
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("kdbus-bench: {e:#}");
        }
    }
}

/// Synchronous call (`KDBUS_SEND_SYNC_REPLY`): the client blocks in SEND
/// and the reply lands directly in its pool.
pub struct KdbusSyncCall {
    client: Connection,
    server: EchoServer,
    data: Vec<u8>,
}

impl KdbusSyncCall {
    pub fn new(bus: &BenchBus, size: usize) -> Result<KdbusSyncCall> {
        let server = EchoServer::start(bus, Reply::Echo)?;
        Ok(KdbusSyncCall {
            client: bus.connect("bench-client")?,
            server,
            data: payload(size),
        })
    }
}

impl Case for KdbusSyncCall {
    fn name(&self) -> String {
        "kdbus sync call".into()
    }

    fn run_once(&mut self) -> Result<()> {
        let msg = MessageBuilder::to_id(self.server.id)
            .payload(&self.data)
            .expect_reply(CALL_TIMEOUT);
        let reply = self.client.call(&msg)?;
        ensure!(
            reply.payload_len() == self.data.len(),
            "echo returned {} bytes, sent {}",
            reply.payload_len(),
            self.data.len()
        );
        Ok(())
    }
}

/// Asynchronous call: SEND with EXPECT_REPLY, then poll and RECV the reply.
pub struct KdbusAsyncCall {
    client: Connection,
    server: EchoServer,
    data: Vec<u8>,
}

impl KdbusAsyncCall {
    pub fn new(bus: &BenchBus, size: usize) -> Result<KdbusAsyncCall> {
        let server = EchoServer::start(bus, Reply::Echo)?;
        Ok(KdbusAsyncCall {
            client: bus.connect("bench-client")?,
            server,
            data: payload(size),
        })
    }
}

impl Case for KdbusAsyncCall {
    fn name(&self) -> String {
        "kdbus async call".into()
    }

    fn run_once(&mut self) -> Result<()> {
        let cookie = self.client.send(
            &MessageBuilder::to_id(self.server.id)
                .payload(&self.data)
                .expect_reply(CALL_TIMEOUT),
        )?;
        loop {
            if !self.client.wait(Some(CALL_TIMEOUT))? {
                bail!("no reply within {CALL_TIMEOUT:?}");
            }
            if let Some(reply) = self.client.recv()?.message {
                ensure!(
                    reply.cookie_reply() == cookie,
                    "unexpected message {reply:?}"
                );
                ensure!(reply.payload_len() == self.data.len(), "short echo");
                return Ok(());
            }
        }
    }
}

/// The baseline: the same round trip over an AF_UNIX stream socketpair.
pub struct SocketPair {
    client: Option<UnixStream>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    data: Vec<u8>,
    reply: Vec<u8>,
}

impl SocketPair {
    /// The server echoes the request.
    pub fn new(size: usize) -> Result<SocketPair> {
        SocketPair::with_reply(size, Reply::Echo)
    }

    /// The server answers every `size`-byte request with `reply`: the
    /// request itself or a one-byte acknowledgement (the bytes carry no
    /// D-Bus message: `DbusEcho` is `Echo` here).
    pub fn with_reply(size: usize, reply: Reply) -> Result<SocketPair> {
        let (client, mut server) = UnixStream::pair()?;
        let reply_len = match reply {
            Reply::Echo | Reply::DbusEcho => size,
            Reply::Empty => 1,
        };
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; size];
            loop {
                match server.read_exact(&mut buf) {
                    Ok(()) => server.write_all(&buf[..reply_len])?,
                    // The client hung up: done.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        });
        Ok(SocketPair {
            client: Some(client),
            thread: Some(thread),
            data: payload(size),
            reply: vec![0; reply_len],
        })
    }
}

impl Case for SocketPair {
    fn name(&self) -> String {
        "socketpair".into()
    }

    fn run_once(&mut self) -> Result<()> {
        let client = self.client.as_mut().expect("open until drop");
        client.write_all(&self.data)?;
        client.read_exact(&mut self.reply)?;
        Ok(())
    }
}

impl Drop for SocketPair {
    fn drop(&mut self) {
        drop(self.client.take());
        if let Some(Ok(Err(e))) = self.thread.take().map(JoinHandle::join) {
            eprintln!("kdbus-bench: socketpair echo: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{measure, Budget};

    #[test]
    fn socketpair_round_trip_echoes() {
        for size in [8, 65536, 1 << 20] {
            let mut case = SocketPair::new(size).unwrap();
            let stats = measure(&mut case, Budget::QUICK, 0).unwrap();
            assert_eq!(stats.iterations, 3);
            assert_eq!(case.reply, case.data);
        }
    }
}
