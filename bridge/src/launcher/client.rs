//! One client's connection: reading and writing its socket, and its event
//! loop over the socket and its kdbus connection. Each client runs on its
//! own thread, so a client that stalls, floods or misbehaves only ever
//! blocks itself.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{
    recvmsg, sendmsg, shutdown, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, Shutdown,
};
use tracing::{debug, info};

use crate::bus::{BusConfig, ClientCreds, Peer, PeerError};
use crate::protocol::auth::Auth;
use crate::protocol::message::message_len;
use crate::protocol::{Message, ProtocolError};

/// Limits on what one client may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message accepted from the client.
    pub max_message: usize,
    /// Most fds per message (as in dbus-daemon's configuration).
    pub max_fds: usize,
    /// Bytes queued for the client before the bridge stops taking its
    /// messages off kdbus (the kernel's quotas then push back on senders).
    pub max_pending_out: usize,
    /// Time allowed to authenticate.
    pub auth_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 32 * 1024 * 1024,
            max_fds: 16,
            max_pending_out: 8 * 1024 * 1024,
            auth_timeout: Duration::from_secs(30),
        }
    }
}

/// Messages taken from kdbus per loop turn at most, so that reading the
/// client keeps its turn under a flood.
const BUS_BATCH: usize = 64;
const READ_CHUNK: usize = 64 * 1024;

/// How many kdbus messages a loop turn takes. Poll says when kdbus has
/// something: a RECV on an empty queue is a wasted system call. So while
/// messages come one at a time (a call, its reply: the common case) a turn
/// takes one and the next poll tells whether more wait; only when the bus
/// was ready on two polls in a row, under heavy traffic, does a turn drain
/// the queue (up to [`BUS_BATCH`]).
#[derive(Debug)]
struct BusIntake {
    /// The last poll found messages.
    ready: bool,
    /// So did the one before.
    busy: bool,
}

impl BusIntake {
    /// Before the first poll: take what queued up while registering.
    fn new() -> BusIntake {
        BusIntake {
            ready: true,
            busy: true,
        }
    }

    /// Messages to take on this turn.
    fn batch(&self) -> usize {
        match (self.ready, self.busy) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => BUS_BATCH,
        }
    }

    /// Records what a poll found.
    fn polled(&mut self, bus_ready: bool) {
        self.busy = self.ready && bus_ready;
        self.ready = bus_ready;
    }
}

struct Outgoing {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
    sent: usize,
}

/// The socket side of one client.
struct Wire {
    stream: UnixStream,
    input: Vec<u8>,
    /// What `read` receives into.
    scratch: Box<[u8]>,
    fds_in: VecDeque<OwnedFd>,
    output: VecDeque<Outgoing>,
    pending_out: usize,
    /// The client's end of the stream was read: nothing more will come.
    closed: bool,
    /// A write failed: the client no longer takes messages. What it sent
    /// before it went is still read and handled (a client may send its
    /// last message and exit without reading the replies queued for it).
    hung_up: bool,
}

impl Wire {
    fn new(stream: UnixStream) -> Wire {
        Wire {
            stream,
            input: Vec::new(),
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
            fds_in: VecDeque::new(),
            output: VecDeque::new(),
            pending_out: 0,
            closed: false,
            hung_up: false,
        }
    }

    /// Reads what is there (`closed` is set at the end of the stream).
    fn read(&mut self, limits: &Limits) -> Result<(), ProtocolError> {
        // Into a buffer zeroed once, then appended: growing `input` by a
        // whole chunk each time would zero 64 KiB for every small message.
        let scratch = &mut self.scratch[..];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(64))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let result = recvmsg(
            &self.stream,
            &mut [IoSliceMut::new(scratch)],
            &mut control,
            RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
        );
        let n = match result {
            Ok(r) if r.bytes == 0 => {
                self.closed = true;
                0
            }
            Ok(r) => r.bytes,
            Err(Errno::AGAIN | Errno::INTR) => 0,
            Err(_) => {
                self.closed = true;
                0
            }
        };
        self.input.extend_from_slice(&scratch[..n]);
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                self.fds_in.extend(fds);
            }
        }
        if self.fds_in.len() > limits.max_fds * 4 {
            return Err(ProtocolError::Message(format!(
                "{} file descriptors sent ahead of their messages",
                self.fds_in.len()
            )));
        }
        Ok(())
    }

    /// The next complete message in the input, with its fds.
    fn next_message(&mut self, limits: &Limits) -> Result<Option<Message>, ProtocolError> {
        let Some(len) = message_len(&self.input, limits.max_message)? else {
            return Ok(None);
        };
        if self.input.len() < len {
            return Ok(None);
        }
        let rest = self.input.split_off(len);
        let bytes = std::mem::replace(&mut self.input, rest);
        let mut msg = Message::parse(bytes)?;
        let n = msg.header().unix_fds as usize;
        if n > limits.max_fds {
            return Err(ProtocolError::Message(format!(
                "{n} file descriptors in one message (at most {})",
                limits.max_fds
            )));
        }
        if n > self.fds_in.len() {
            return Err(ProtocolError::Message(format!(
                "the message announces {n} file descriptors, {} arrived",
                self.fds_in.len()
            )));
        }
        msg.fds = self.fds_in.drain(..n).collect();
        Ok(Some(msg))
    }

    /// Queues what the bus logic produced for the client, emptying `out`.
    fn queue(&mut self, out: &mut Vec<Message>) {
        for msg in out.drain(..) {
            let (bytes, fds) = msg.into_parts();
            self.push(bytes, fds);
        }
    }

    /// Queues bytes for the client, or drops them once it hung up.
    fn push(&mut self, bytes: Vec<u8>, fds: Vec<OwnedFd>) {
        if self.hung_up {
            return;
        }
        self.pending_out += bytes.len();
        self.output.push_back(Outgoing {
            bytes,
            fds,
            sent: 0,
        });
    }

    /// Writes as much as the socket takes.
    fn flush(&mut self) {
        while let Some(front) = self.output.front_mut() {
            let fds: Vec<BorrowedFd<'_>> = if front.sent == 0 {
                front.fds.iter().map(|fd| fd.as_fd()).collect()
            } else {
                Vec::new()
            };
            let mut space =
                vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !fds.is_empty() {
                control.push(SendAncillaryMessage::ScmRights(&fds));
            }
            let result = sendmsg(
                &self.stream,
                &[IoSlice::new(&front.bytes[front.sent..])],
                &mut control,
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            );
            match result {
                Ok(n) => {
                    front.sent += n;
                    if front.sent == front.bytes.len() {
                        self.pending_out -= front.bytes.len();
                        self.output.pop_front();
                    } else {
                        return;
                    }
                }
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => continue,
                Err(_) => {
                    // A client that is still there (the error was not
                    // EPIPE) learns from the end of its stream that it
                    // gets nothing more.
                    let _ = shutdown(&self.stream, Shutdown::Write);
                    self.hung_up = true;
                    self.output.clear();
                    self.pending_out = 0;
                    return;
                }
            }
        }
    }
}

/// Serves one client until it goes away or breaks the protocol.
pub fn serve(stream: UnixStream, config: Arc<BusConfig>, limits: Arc<Limits>) {
    let creds = match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(c) => ClientCreds {
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
            pid: c.pid.as_raw_nonzero().get() as u32,
        },
        Err(e) => {
            debug!("cannot read the credentials of a new client: {e}");
            return;
        }
    };
    let mut wire = Wire::new(stream);
    match run(&mut wire, &config, &limits, creds) {
        Ok(name) => debug!(client = %name, pid = creds.pid, "client left"),
        Err((name, err)) => {
            info!(client = %name, pid = creds.pid, uid = creds.uid, "client disconnected: {err}")
        }
    }
}

type ClientResult = Result<String, (String, PeerError)>;

fn run(
    wire: &mut Wire,
    config: &Arc<BusConfig>,
    limits: &Limits,
    creds: ClientCreds,
) -> ClientResult {
    let fds_allowed = true;
    let mut auth = Auth::new(creds.uid, config.bus_id.clone(), fds_allowed);
    let deadline = Instant::now() + limits.auth_timeout;
    let anonymous = |e: PeerError| (format!("pid {}", creds.pid), e);
    while !auth.is_done() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(anonymous(PeerError::Refused(
                "authentication timed out".into(),
            )));
        }
        wait(wire, None, None, Some(left));
        wire.read(limits).map_err(|e| anonymous(e.into()))?;
        let progress = auth
            .feed(&mut wire.input)
            .map_err(|e| anonymous(e.into()))?;
        if !progress.reply.is_empty() {
            wire.stream_write_all(&progress.reply);
        }
        if wire.closed && !auth.is_done() {
            return Ok(format!("pid {} (before authenticating)", creds.pid));
        }
    }
    let mut peer = Peer::new(config.clone(), creds, auth.fds_agreed());
    let mut out = Vec::new();
    let mut intake = BusIntake::new();
    loop {
        // Messages already buffered (they may have come with BEGIN).
        while let Some(msg) = wire
            .next_message(limits)
            .map_err(|e| named(&peer, e.into()))?
        {
            peer.on_client_message(msg, &mut out)
                .map_err(|e| named(&peer, e))?;
            wire.queue(&mut out);
        }
        if peer.bus_fd().is_some() {
            for _ in 0..intake.batch() {
                if wire.pending_out >= limits.max_pending_out {
                    break;
                }
                if !peer.on_bus_message(&mut out).map_err(|e| named(&peer, e))? {
                    break;
                }
                wire.queue(&mut out);
            }
        }
        wire.flush();
        if wire.closed {
            return Ok(name_of(&peer));
        }
        let want_bus = wire.pending_out < limits.max_pending_out;
        let ready = wait(
            wire,
            peer.bus_fd().filter(|_| want_bus),
            peer.monitor_fd().filter(|_| want_bus),
            None,
        );
        intake.polled(ready.bus);
        if ready.driver_traffic {
            peer.on_driver_traffic(&mut out);
            wire.queue(&mut out);
        }
        if ready.socket {
            wire.read(limits).map_err(|e| named(&peer, e.into()))?;
            if wire.closed && wire.input.is_empty() {
                return Ok(name_of(&peer));
            }
        }
    }
}

fn name_of(peer: &Peer) -> String {
    if peer.unique_name().is_empty() {
        "(not registered)".into()
    } else {
        peer.unique_name().to_owned()
    }
}

fn named(peer: &Peer, e: PeerError) -> (String, PeerError) {
    (name_of(peer), e)
}

/// What [`wait`] found ready.
#[derive(Debug, Default)]
struct Ready {
    /// The socket is readable (or closed).
    socket: bool,
    /// The kdbus connection has messages.
    bus: bool,
    /// A monitor's mailbox has driver traffic.
    driver_traffic: bool,
}

/// Waits for the socket (readable, or writable while output is pending),
/// the kdbus connection and a monitor's mailbox.
fn wait(
    wire: &Wire,
    bus: Option<BorrowedFd<'_>>,
    mailbox: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> Ready {
    let mut socket_flags = PollFlags::IN;
    if !wire.output.is_empty() {
        socket_flags |= PollFlags::OUT;
    }
    let mut fds = vec![PollFd::new(&wire.stream, socket_flags)];
    for fd in [bus, mailbox].into_iter().flatten() {
        fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
    }
    let timeout = timeout.map(|t| Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos().into(),
    });
    if poll(&mut fds, timeout.as_ref()).is_err() {
        return Ready::default();
    }
    let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
    let mailbox_at = if bus.is_some() { 2 } else { 1 };
    Ready {
        socket: fds[0]
            .revents()
            .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR),
        bus: bus.is_some() && ready(1),
        driver_traffic: mailbox.is_some() && ready(mailbox_at),
    }
}

impl Wire {
    /// Authentication replies are short: queue them as raw bytes.
    fn stream_write_all(&mut self, bytes: &[u8]) {
        self.push(bytes.to_vec(), Vec::new());
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_message_at_a_time_costs_no_receive_on_an_empty_queue() {
        let mut intake = BusIntake::new();
        assert_eq!(intake.batch(), BUS_BATCH, "what queued while registering");
        // A call from the client, the reply from the bus, in turn.
        for _ in 0..3 {
            intake.polled(false);
            assert_eq!(intake.batch(), 0);
            intake.polled(true);
            assert_eq!(intake.batch(), 1);
        }
        // The bus ready on two polls in a row: a flood, drained.
        intake.polled(true);
        assert_eq!(intake.batch(), BUS_BATCH);
        intake.polled(true);
        assert_eq!(intake.batch(), BUS_BATCH);
        intake.polled(false);
        assert_eq!(intake.batch(), 0);
        intake.polled(true);
        assert_eq!(intake.batch(), 1);
    }

    #[test]
    fn a_client_that_leaves_without_reading_is_still_heard_out() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut wire = Wire::new(ours);
        // The client's last message, then it exits with a reply unread.
        theirs.write_all(b"last words").unwrap();
        drop(theirs);
        wire.stream_write_all(b"a reply nobody reads");
        assert!(wire.hung_up, "the write to a closed client fails");
        assert!(!wire.closed, "but its input is not over yet");
        assert!(wire.output.is_empty());
        assert_eq!(wire.pending_out, 0);
        let limits = Limits::default();
        wire.read(&limits).unwrap();
        assert_eq!(wire.input, b"last words");
        assert!(!wire.closed);
        wire.read(&limits).unwrap();
        assert!(wire.closed, "then the end of its stream");
        // Whatever the bus logic still produces for it goes nowhere.
        let mut out = vec![Message::signal("/p", "org.example.I", "M", &()).unwrap()];
        wire.queue(&mut out);
        assert!(out.is_empty() && wire.output.is_empty());
    }
}
