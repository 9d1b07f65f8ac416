//! Connections (spec §4.3–§4.9): HELLO, the pool, and every command a
//! connection issues.

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{open, Mode, OFlags};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::abi::*;
use crate::bloom::BloomParams;
use crate::error::{Errno, Error, Result};
use crate::flags::{AttachFlags, HelloFlags, ListFlags, MakeFlags, NameFlags, RecvFlags};
use crate::info::{parse_info, parse_list, BusCreatorInfo, ConnInfo, ListEntry};
use crate::item::{Item, Items};
use crate::matches::MatchRule;
use crate::message::{check_string, Message, MessageBuilder, OwnedMessage, DEFAULT_CALL_TIMEOUT};
use crate::meta::{Creds, Pids};
use crate::policy::{Policy, PolicyAccess};
use crate::pool::Pool;
use crate::raw::{self, Buf};

/// The pool size sd-bus used, and the default here.
pub const DEFAULT_POOL_SIZE: u64 = 16 * 1024 * 1024;

/// Opens a kdbusfs node read-write, close-on-exec.
pub(crate) fn open_node(path: &Path) -> Result<OwnedFd> {
    open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::at_path("open", path, e))
}

/// Runs a command on `fd`, naming it in the error.
pub(crate) fn command(fd: BorrowedFd<'_>, cmd: u32, buf: &mut Buf) -> Result<()> {
    raw::ioctl(fd, cmd, buf).map_err(|e| Error::command(raw::command_name(cmd), e))
}

/// What a connection says at `KDBUS_CMD_HELLO`.
#[derive(Debug, Clone)]
pub struct HelloBuilder {
    flags: HelloFlags,
    attach_send: AttachFlags,
    attach_recv: AttachFlags,
    pool_size: u64,
    description: Option<String>,
    policy: Option<Policy>,
    creds: Option<Creds>,
    pids: Option<Pids>,
    seclabel: Option<String>,
}

impl Default for HelloBuilder {
    fn default() -> Self {
        HelloBuilder::new()
    }
}

impl HelloBuilder {
    /// An ordinary connection: no metadata offered or wanted, 16 MiB pool.
    pub fn new() -> HelloBuilder {
        HelloBuilder {
            flags: HelloFlags::empty(),
            attach_send: AttachFlags::empty(),
            attach_recv: AttachFlags::empty(),
            pool_size: DEFAULT_POOL_SIZE,
            description: None,
            policy: None,
            creds: None,
            pids: None,
            seclabel: None,
        }
    }

    /// Replaces all `KDBUS_HELLO_*` flags.
    pub fn flags(mut self, flags: HelloFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Accept file descriptors in messages.
    pub fn accept_fds(mut self) -> Self {
        self.flags |= HelloFlags::ACCEPT_FD;
        self
    }

    /// Metadata this connection lets others see (on its messages, via
    /// CONN_INFO).
    pub fn attach_send(mut self, flags: AttachFlags) -> Self {
        self.attach_send = flags;
        self
    }

    /// Metadata this connection wants on messages it receives.
    pub fn attach_recv(mut self, flags: AttachFlags) -> Self {
        self.attach_recv = flags;
        self
    }

    /// Pool size in bytes (a non-zero multiple of the page size).
    pub fn pool_size(mut self, size: u64) -> Self {
        self.pool_size = size;
        self
    }

    /// A human-readable description (1–63 of `[A-Za-z0-9_.-]`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// An activator for `name` (bus owner only): messages to the name queue
    /// here while no real connection owns it. `policy` is installed into the
    /// bus policy for the name.
    pub fn activator(mut self, name: impl Into<String>, policy: &[PolicyAccess]) -> Self {
        self.flags |= HelloFlags::ACTIVATOR;
        self.policy = Some(Policy::new(name, policy.iter().copied()));
        self
    }

    /// A policy holder for `name` (may be `a.b.*`; bus owner only).
    pub fn policy_holder(mut self, name: impl Into<String>, policy: &[PolicyAccess]) -> Self {
        self.flags |= HelloFlags::POLICY_HOLDER;
        self.policy = Some(Policy::new(name, policy.iter().copied()));
        self
    }

    /// A monitor (bus owner only): sees all traffic, invisible to others.
    pub fn monitor(mut self) -> Self {
        self.flags |= HelloFlags::MONITOR;
        self
    }

    /// Faked credentials (bus owner only).
    pub fn creds(mut self, creds: Creds) -> Self {
        self.creds = Some(creds);
        self
    }

    /// Faked pids (bus owner only).
    pub fn pids(mut self, pids: Pids) -> Self {
        self.pids = Some(pids);
        self
    }

    /// Faked security label (bus owner only).
    pub fn seclabel(mut self, label: impl Into<String>) -> Self {
        self.seclabel = Some(label.into());
        self
    }

    /// The `kdbus_cmd_hello` blob with its items.
    pub fn encode(&self) -> Result<Buf> {
        let mut buf = Buf::with_header(&kdbus_cmd_hello {
            flags: self.flags.bits(),
            attach_flags_send: self.attach_send.bits(),
            attach_flags_recv: self.attach_recv.bits(),
            pool_size: self.pool_size,
            ..Default::default()
        });
        if let Some(policy) = &self.policy {
            check_string("name", &policy.name)?;
            policy.push_items(&mut buf);
        }
        if let Some(description) = &self.description {
            check_string("description", description)?;
            buf.push_str_item(KDBUS_ITEM_CONN_DESCRIPTION, description);
        }
        if let Some(creds) = self.creds {
            buf.push_struct_item(KDBUS_ITEM_CREDS, &kdbus_creds::from(creds));
        }
        if let Some(pids) = self.pids {
            buf.push_struct_item(KDBUS_ITEM_PIDS, &kdbus_pids::from(pids));
        }
        if let Some(label) = &self.seclabel {
            check_string("security label", label)?;
            buf.push_str_item(KDBUS_ITEM_SECLABEL, label);
        }
        buf.finish();
        Ok(buf)
    }

    /// Opens the endpoint at `path` (a bus's `bus` file or a custom
    /// endpoint) and connects.
    pub fn connect(&self, path: impl AsRef<Path>) -> Result<Connection> {
        self.connect_fd(open_node(path.as_ref())?)
    }

    /// Connects to the system bus (`/sys/fs/kdbus/0-system/bus`).
    pub fn connect_system(&self) -> Result<Connection> {
        self.connect(crate::bus::SYSTEM_BUS_PATH)
    }

    /// Connects on an opened, unused endpoint handle.
    pub fn connect_fd(&self, fd: OwnedFd) -> Result<Connection> {
        let mut buf = self.encode()?;
        command(fd.as_fd(), KDBUS_CMD_HELLO, &mut buf)?;
        let hello: kdbus_cmd_hello = buf.read(0);
        let pool_len = usize::try_from(hello.pool_size).map_err(|_| {
            Error::invalid_argument(format!("pool size {} too large", hello.pool_size))
        })?;
        let pool = Pool::map(fd.as_fd(), pool_len)?;
        let mut conn = Connection {
            fd,
            pool,
            id: hello.id,
            id128: hello.id128,
            bus_flags: hello.bus_flags,
            bloom: BloomParams::DEFAULT,
            flags: self.flags,
            attach_send: AtomicU64::new(self.attach_send.bits()),
            attach_recv: AtomicU64::new(self.attach_recv.bits()),
            next_cookie: AtomicU64::new(1),
        };
        conn.bloom = conn.read_hello_slice(hello.offset, hello.items_size)?;
        Ok(conn)
    }
}

/// What it takes to use a connection handle in another process image
/// (after exec), where HELLO cannot be repeated: see
/// [`Connection::params`] and [`Connection::adopt`]. Plain data, for the
/// caller to serialize next to the inherited fd (with the `serde` feature:
/// `Serialize` and `Deserialize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConnectionParams {
    pub id: u64,
    pub id128: [u8; 16],
    pub bus_flags: u64,
    pub bloom: BloomParams,
    pub flags: HelloFlags,
    pub attach_send: AttachFlags,
    pub attach_recv: AttachFlags,
    pub pool_size: u64,
    /// Cookies continue from here, so that calls still pending from the
    /// previous image cannot collide with new ones.
    pub next_cookie: u64,
}

/// The outcome of [`Connection::byebye`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByeBye {
    /// The connection is gone; its names went back to their queues or
    /// activators.
    Disconnected,
    /// Messages are still queued (`EBUSY`): nothing changed. Receive them
    /// and try again — this is what makes exit-on-idle race-free.
    Busy,
}

/// Received from [`Connection::recv`]: maybe a message, and how many
/// messages were lost since the last receive.
#[derive(Debug)]
pub struct Recv<'c> {
    /// `None` if nothing was queued (`EAGAIN`) or the message was dropped.
    pub message: Option<Message<'c>>,
    /// Messages lost (quota, failed broadcasts) since the last RECV.
    pub dropped_msgs: u64,
}

/// Returned by [`Connection::peek`]: a copy of the next message, if any.
#[derive(Debug)]
pub struct Peeked {
    pub message: Option<OwnedMessage>,
    pub dropped_msgs: u64,
}

/// Changes for [`Connection::update`].
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub attach_send: Option<AttachFlags>,
    pub attach_recv: Option<AttachFlags>,
    /// Policy holders: replaces the held policy.
    pub policy: Option<Policy>,
}

/// Whom [`Connection::conn_info`] asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer<'a> {
    Id(u64),
    Name(&'a str),
}

/// A connection to a bus: the handle, its read-only pool mapping, and
/// what HELLO returned.
///
/// `Send + Sync`: kdbus commands are thread-safe, and the pool is only
/// read. Poll the connection (it is `AsFd`) for `POLLIN` to wait for
/// messages from an event loop.
pub struct Connection {
    fd: OwnedFd,
    pool: Pool,
    id: u64,
    id128: [u8; 16],
    bus_flags: u64,
    bloom: BloomParams,
    flags: HelloFlags,
    attach_send: AtomicU64,
    attach_recv: AtomicU64,
    next_cookie: AtomicU64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd.as_raw_fd())
            .field("id", &self.id)
            .field("flags", &self.flags)
            .field("pool_size", &self.pool.len())
            .finish()
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Connection {
    /// An ordinary connection to the endpoint at `path` with default
    /// settings (see [`HelloBuilder`] for the others).
    pub fn connect(path: impl AsRef<Path>) -> Result<Connection> {
        HelloBuilder::new().connect(path)
    }

    /// An ordinary connection to the system bus with default settings.
    pub fn system() -> Result<Connection> {
        HelloBuilder::new().connect_system()
    }

    pub fn builder() -> HelloBuilder {
        HelloBuilder::new()
    }

    /// Reads the bloom parameters from the HELLO slice, then frees it.
    fn read_hello_slice(&self, offset: u64, size: u64) -> Result<BloomParams> {
        let items = self.pool.copy(offset, size);
        // Policy holders cannot free (EOPNOTSUPP); nothing to do about it.
        let _ = self.free(offset);
        let items = items?;
        let mut bloom = None;
        for item in Items::new(&items) {
            if let Item::BloomParameter(p) = item?.decode()? {
                bloom = Some(BloomParams::from(p));
            }
        }
        bloom.ok_or_else(|| Error::malformed("HELLO slice", "no BLOOM_PARAMETER item"))
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// What [`adopt`](Self::adopt) needs to take this connection over in a
    /// new process image (the fd must be inherited without CLOEXEC).
    pub fn params(&self) -> ConnectionParams {
        ConnectionParams {
            id: self.id,
            id128: self.id128,
            bus_flags: self.bus_flags,
            bloom: self.bloom,
            flags: self.flags,
            attach_send: self.attach_send(),
            attach_recv: self.attach_recv(),
            pool_size: self.pool.len() as u64,
            next_cookie: self.next_cookie.load(Ordering::Relaxed),
        }
    }

    /// Takes over an inherited connection handle: maps its pool again and
    /// checks (CONN_INFO) that connection `params.id` exists with the
    /// recorded HELLO flags.
    pub fn adopt(fd: OwnedFd, params: ConnectionParams) -> Result<Connection> {
        crate::bus::check_kdbus_handle(fd.as_fd())?;
        let pool_len = usize::try_from(params.pool_size).map_err(|_| {
            Error::invalid_argument(format!("pool size {} too large", params.pool_size))
        })?;
        let pool = Pool::map(fd.as_fd(), pool_len)?;
        let conn = Connection {
            fd,
            pool,
            id: params.id,
            id128: params.id128,
            bus_flags: params.bus_flags,
            bloom: params.bloom,
            flags: params.flags,
            attach_send: AtomicU64::new(params.attach_send.bits()),
            attach_recv: AtomicU64::new(params.attach_recv.bits()),
            next_cookie: AtomicU64::new(params.next_cookie.max(1)),
        };
        let info = conn.conn_info(Peer::Id(params.id), AttachFlags::empty())?;
        if info.flags != params.flags {
            return Err(Error::invalid_argument(format!(
                "connection {} has HELLO flags {:?}, the adopted state says {:?}",
                params.id, info.flags, params.flags
            )));
        }
        Ok(conn)
    }

    /// The unique connection id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The bus's 128-bit id (a v4 UUID).
    pub fn bus_id128(&self) -> [u8; 16] {
        self.id128
    }

    /// The bus's access flags.
    pub fn bus_flags(&self) -> MakeFlags {
        MakeFlags::from_bits_retain(self.bus_flags)
    }

    /// The bus's bloom geometry (for filters and match masks).
    pub fn bloom_params(&self) -> BloomParams {
        self.bloom
    }

    /// The HELLO flags this connection was made with.
    pub fn flags(&self) -> HelloFlags {
        self.flags
    }

    /// Metadata this connection offers (as of the last HELLO/UPDATE).
    pub fn attach_send(&self) -> AttachFlags {
        AttachFlags::from_bits_retain(self.attach_send.load(Ordering::Relaxed))
    }

    /// Metadata this connection asks for (as of the last HELLO/UPDATE).
    pub fn attach_recv(&self) -> AttachFlags {
        AttachFlags::from_bits_retain(self.attach_recv.load(Ordering::Relaxed))
    }

    pub fn pool_size(&self) -> u64 {
        self.pool.len() as u64
    }

    /// A fresh cookie for an outgoing message (never 0).
    pub fn next_cookie(&self) -> u64 {
        self.next_cookie.fetch_add(1, Ordering::Relaxed)
    }

    /// Releases a pool slice (`KDBUS_CMD_FREE`).
    pub(crate) fn free(&self, offset: u64) -> Result<()> {
        let mut cmd = kdbus_cmd_free {
            size: std::mem::size_of::<kdbus_cmd_free>() as u64,
            offset,
            ..Default::default()
        };
        raw::ioctl_fixed(self.as_fd(), KDBUS_CMD_FREE, &mut cmd)
            .map_err(|e| Error::command("KDBUS_CMD_FREE", e))
    }

    /// A copy of pool bytes, for raw users who received a slice offset
    /// themselves (parse it with [`crate::MessageView::parse`]).
    pub fn read_pool(&self, offset: u64, size: u64) -> Result<Vec<u8>> {
        self.pool.copy(offset, size)
    }

    /// A copy of a slice the kernel published, then `KDBUS_CMD_FREE` of
    /// it — for raw users.
    pub fn take_slice(&self, offset: u64, size: u64) -> Result<Vec<u8>> {
        let copy = self.pool.copy(offset, size);
        self.free(offset)?;
        copy
    }

    /// Disconnects (`KDBUS_CMD_BYEBYE`) if nothing is queued.
    pub fn byebye(&self) -> Result<ByeBye> {
        let mut buf = cmd_header(0);
        match command(self.as_fd(), KDBUS_CMD_BYEBYE, &mut buf) {
            Ok(()) => Ok(ByeBye::Disconnected),
            Err(e) if e.is(Errno::BUSY) => Ok(ByeBye::Busy),
            Err(e) => Err(e),
        }
    }

    /// `KDBUS_CMD_UPDATE`: new attach flags, or a policy holder's policy.
    pub fn update(&self, update: &Update) -> Result<()> {
        let mut buf = cmd_header(0);
        if let Some(flags) = update.attach_send {
            buf.push_u64_item(KDBUS_ITEM_ATTACH_FLAGS_SEND, flags.bits());
        }
        if let Some(flags) = update.attach_recv {
            buf.push_u64_item(KDBUS_ITEM_ATTACH_FLAGS_RECV, flags.bits());
        }
        if let Some(policy) = &update.policy {
            check_string("name", &policy.name)?;
            policy.push_items(&mut buf);
        }
        buf.finish();
        command(self.as_fd(), KDBUS_CMD_UPDATE, &mut buf)?;
        if let Some(flags) = update.attach_send {
            self.attach_send.store(flags.bits(), Ordering::Relaxed);
        }
        if let Some(flags) = update.attach_recv {
            self.attach_recv.store(flags.bits(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// `KDBUS_CMD_CONN_INFO` about a connection by id or name, with the
    /// metadata in `attach` that the peer offers.
    pub fn conn_info(&self, peer: Peer<'_>, attach: AttachFlags) -> Result<ConnInfo> {
        let (id, name) = match peer {
            Peer::Id(id) => (id, None),
            Peer::Name(name) => (0, Some(name)),
        };
        let mut buf = Buf::with_header(&kdbus_cmd_info {
            id,
            attach_flags: attach.bits(),
            ..Default::default()
        });
        if let Some(name) = name {
            check_string("name", name)?;
            buf.push_str_item(KDBUS_ITEM_NAME, name);
        }
        buf.finish();
        command(self.as_fd(), KDBUS_CMD_CONN_INFO, &mut buf)?;
        let info: kdbus_cmd_info = buf.read(0);
        let bytes = self.take_slice(info.offset, info.info_size)?;
        let (record, items) = parse_info(&bytes)?;
        Ok(ConnInfo::new(record, &items))
    }

    /// `KDBUS_CMD_BUS_CREATOR_INFO`: the bus, its name and its creator's
    /// metadata (as far as `attach` and the creator allow).
    pub fn bus_creator_info(&self, attach: AttachFlags) -> Result<BusCreatorInfo> {
        let mut buf = Buf::with_header(&kdbus_cmd_info {
            attach_flags: attach.bits(),
            ..Default::default()
        });
        buf.finish();
        command(self.as_fd(), KDBUS_CMD_BUS_CREATOR_INFO, &mut buf)?;
        let info: kdbus_cmd_info = buf.read(0);
        let bytes = self.take_slice(info.offset, info.info_size)?;
        let (record, items) = parse_info(&bytes)?;
        BusCreatorInfo::new(record, &items)
    }

    /// `KDBUS_CMD_LIST`: connections and their names, as selected by `flags`.
    pub fn list(&self, flags: ListFlags) -> Result<Vec<ListEntry>> {
        let mut buf = Buf::with_header(&kdbus_cmd_list {
            flags: flags.bits(),
            ..Default::default()
        });
        buf.finish();
        command(self.as_fd(), KDBUS_CMD_LIST, &mut buf)?;
        let list: kdbus_cmd_list = buf.read(0);
        if list.list_size == 0 {
            // The "empty" marker (offset = pool size): FREE is a no-op.
            let _ = self.free(list.offset);
            return Ok(Vec::new());
        }
        parse_list(&self.take_slice(list.offset, list.list_size)?)
    }

    /// `KDBUS_CMD_NAME_ACQUIRE`. Returns the owner state: `PRIMARY` or
    /// `IN_QUEUE`, plus `ACQUIRED` if this call changed it.
    pub fn acquire_name(&self, name: &str, flags: NameFlags) -> Result<NameFlags> {
        check_string("name", name)?;
        let mut buf = cmd_header(flags.bits());
        buf.push_str_item(KDBUS_ITEM_NAME, name);
        buf.finish();
        command(self.as_fd(), KDBUS_CMD_NAME_ACQUIRE, &mut buf)?;
        Ok(NameFlags::from_bits_retain(buf.u64_at(16)))
    }

    /// `KDBUS_CMD_NAME_RELEASE`.
    pub fn release_name(&self, name: &str) -> Result<()> {
        check_string("name", name)?;
        let mut buf = cmd_header(0);
        buf.push_str_item(KDBUS_ITEM_NAME, name);
        buf.finish();
        command(self.as_fd(), KDBUS_CMD_NAME_RELEASE, &mut buf)
    }

    /// `KDBUS_CMD_MATCH_ADD`.
    pub fn add_match(&self, rule: &MatchRule) -> Result<()> {
        let mut buf = rule.encode()?;
        command(self.as_fd(), KDBUS_CMD_MATCH_ADD, &mut buf)
    }

    /// `KDBUS_CMD_MATCH_REMOVE`: removes every rule added with `cookie`.
    pub fn remove_match(&self, cookie: u64) -> Result<()> {
        let mut buf = Buf::with_header(&kdbus_cmd_match {
            size: std::mem::size_of::<kdbus_cmd_match>() as u64,
            cookie,
            ..Default::default()
        });
        command(self.as_fd(), KDBUS_CMD_MATCH_REMOVE, &mut buf)
    }

    /// Sends a message; returns its cookie.
    pub fn send(&self, msg: &MessageBuilder<'_>) -> Result<u64> {
        let cookie = msg.cookie_or(|| self.next_cookie());
        with_message_buf(|encoded| {
            msg.encode_into(encoded, cookie)?;
            // `encoded` refers to `msg`'s borrowed payload, alive for the call.
            let mut cmd = SendCmd::new(0, None);
            raw::send_fixed(self.as_fd(), &mut cmd, encoded)
                .map_err(|e| Error::command("KDBUS_CMD_SEND", e))
        })?;
        Ok(cookie)
    }

    /// A synchronous call: sends `msg` as a call (`EXPECT_REPLY`, with
    /// [`DEFAULT_CALL_TIMEOUT`] unless the message has a timeout) and waits
    /// for the reply, which the kernel writes straight into the pool.
    pub fn call(&self, msg: &MessageBuilder<'_>) -> Result<Message<'_>> {
        self.call_cancellable(msg, None)
    }

    /// Like [`call`](Self::call); the wait ends with `ECANCELED` when
    /// `cancel` becomes readable (an eventfd, a pipe...).
    pub fn call_cancellable(
        &self,
        msg: &MessageBuilder<'_>,
        cancel: Option<BorrowedFd<'_>>,
    ) -> Result<Message<'_>> {
        let cookie = msg.cookie_or(|| self.next_cookie());
        let mut cmd = SendCmd::new(KDBUS_SEND_SYNC_REPLY, cancel);
        with_message_buf(|encoded| {
            msg.encode_call_into(encoded, cookie, DEFAULT_CALL_TIMEOUT)?;
            loop {
                match raw::send_fixed(self.as_fd(), &mut cmd, encoded) {
                    Ok(()) => return Ok(()),
                    // A signal interrupted the wait: re-issuing the same
                    // call (same cookie) resumes waiting on its reply slot.
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(Error::command("KDBUS_CMD_SEND", e)),
                }
            }
        })?;
        let reply = cmd.send.reply;
        Message::from_pool(self, reply.offset, reply.msg_size, reply.return_flags)
    }

    /// Receives the next message (FIFO), if any.
    pub fn recv(&self) -> Result<Recv<'_>> {
        self.recv_with(RecvFlags::empty(), 0)
    }

    /// A copy of the next message, left queued (`KDBUS_RECV_PEEK`).
    pub fn peek(&self) -> Result<Peeked> {
        self.peek_with(RecvFlags::empty(), 0)
    }

    /// Is a message queued? Asks with `KDBUS_RECV_PEEK` and releases the
    /// published slice at once, without copying it: for an activator's
    /// owner that only needs to know whether its service is wanted.
    /// Unlike poll's `POLLIN`, a lost-message count alone does not count.
    pub fn has_message(&self) -> Result<bool> {
        let (result, recv) = self.raw_recv(RecvFlags::PEEK, 0);
        match result {
            Err(Errno::AGAIN) => Ok(false),
            Err(e) => Err(Error::command("KDBUS_CMD_RECV", e)),
            Ok(()) => {
                self.free(recv.msg.offset)?;
                Ok(true)
            }
        }
    }

    /// Like [`peek`](Self::peek) for the message that
    /// [`recv_priority`](Self::recv_priority) would return.
    pub fn peek_priority(&self, max_priority: i64) -> Result<Peeked> {
        self.peek_with(RecvFlags::USE_PRIORITY, max_priority)
    }

    fn peek_with(&self, flags: RecvFlags, priority: i64) -> Result<Peeked> {
        let (result, recv) = self.raw_recv(flags | RecvFlags::PEEK, priority);
        let dropped_msgs = recv.dropped_msgs;
        match result {
            Err(Errno::AGAIN) => Ok(Peeked {
                message: None,
                dropped_msgs,
            }),
            Err(e) => Err(Error::command("KDBUS_CMD_RECV", e)),
            Ok(()) => {
                // The next RECV publishes this slice again: copy it and
                // drop our reference now (the queue keeps the message).
                let bytes = self.take_slice(recv.msg.offset, recv.msg.msg_size)?;
                Ok(Peeked {
                    message: Some(OwnedMessage::from_received(bytes, recv.msg.return_flags)?),
                    dropped_msgs,
                })
            }
        }
    }

    fn raw_recv(
        &self,
        flags: RecvFlags,
        priority: i64,
    ) -> (std::result::Result<(), Errno>, kdbus_cmd_recv) {
        let mut cmd = kdbus_cmd_recv {
            size: std::mem::size_of::<kdbus_cmd_recv>() as u64,
            flags: flags.bits(),
            priority,
            ..Default::default()
        };
        let result = raw::ioctl_fixed(self.as_fd(), KDBUS_CMD_RECV, &mut cmd);
        (result, cmd)
    }

    /// Dequeues and discards the next message (a pending call's sender is
    /// told `REPLY_DEAD` / `EPIPE`).
    pub fn drop_next(&self) -> Result<Recv<'_>> {
        self.recv_with(RecvFlags::DROP, 0)
    }

    /// Receives the message with the lowest priority value, if that value
    /// is at most `max_priority`.
    pub fn recv_priority(&self, max_priority: i64) -> Result<Recv<'_>> {
        self.recv_with(RecvFlags::USE_PRIORITY, max_priority)
    }

    /// `KDBUS_CMD_RECV` with `DROP` and/or `USE_PRIORITY`. An empty queue
    /// (`EAGAIN`) is not an error: `message` is `None`. For `PEEK` use
    /// [`peek`](Self::peek).
    pub fn recv_with(&self, flags: RecvFlags, priority: i64) -> Result<Recv<'_>> {
        if flags.contains(RecvFlags::PEEK) {
            return Err(Error::invalid_argument(
                "recv_with cannot PEEK (a peeked slice is published again): use Connection::peek",
            ));
        }
        let (result, recv) = self.raw_recv(flags, priority);
        let dropped_msgs = recv.dropped_msgs;
        match result {
            Err(Errno::AGAIN) => Ok(Recv {
                message: None,
                dropped_msgs,
            }),
            Err(e) => Err(Error::command("KDBUS_CMD_RECV", e)),
            Ok(()) if flags.contains(RecvFlags::DROP) => Ok(Recv {
                message: None,
                dropped_msgs,
            }),
            Ok(()) => Ok(Recv {
                message: Some(Message::from_pool(
                    self,
                    recv.msg.offset,
                    recv.msg.msg_size,
                    recv.msg.return_flags,
                )?),
                dropped_msgs,
            }),
        }
    }

    /// Waits until a message (or a lost-message count) is pending, or the
    /// timeout passes (`None` = forever). Returns whether it is readable.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let timeout = timeout.map(|t| Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: t.subsec_nanos().into(),
        });
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        loop {
            match poll(&mut fds, timeout.as_ref()) {
                Ok(0) => return Ok(false),
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::system("poll kdbus connection", e)),
            }
        }
        let revents = fds[0].revents();
        if revents.intersects(PollFlags::ERR | PollFlags::HUP) && !revents.contains(PollFlags::IN) {
            return Err(Error::command("poll", Errno::CONNRESET));
        }
        Ok(revents.contains(PollFlags::IN))
    }

    /// Waits up to `timeout` for a message and receives it.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Recv<'_>> {
        let recv = self.recv()?;
        if recv.message.is_some() || !self.wait(Some(timeout))? {
            return Ok(recv);
        }
        let mut next = self.recv()?;
        next.dropped_msgs += recv.dropped_msgs;
        Ok(next)
    }

    /// The handle, for raw commands.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A `kdbus_cmd` header with `flags`, size filled in by `finish`.
pub(crate) fn cmd_header(flags: u64) -> Buf {
    let mut buf = Buf::with_header(&kdbus_cmd {
        size: std::mem::size_of::<kdbus_cmd>() as u64,
        flags,
        return_flags: 0,
    });
    buf.finish();
    buf
}

thread_local! {
    /// The buffer this thread's sends encode their messages in, kept
    /// from one send to the next: a send allocates nothing.
    static MESSAGE_BUF: Cell<Buf> = const { Cell::new(Buf::new()) };
}

/// Larger buffers are not kept (a message with many fds, say).
const MESSAGE_BUF_KEPT: usize = 4096;

/// Runs `f` with this thread's message buffer, empty.
fn with_message_buf<R>(f: impl FnOnce(&mut Buf) -> R) -> R {
    let mut buf = MESSAGE_BUF.take();
    let result = f(&mut buf);
    if buf.capacity() <= MESSAGE_BUF_KEPT {
        buf.resize(0); // zeroes what was used: an empty buffer again
        MESSAGE_BUF.set(buf);
    }
    result
}

/// A `kdbus_cmd_send` and the one item it may carry, a `CANCEL_FD`, in a
/// struct on the stack: sending needs no command buffer.
#[repr(C)]
#[derive(Debug, Default, FromBytes, IntoBytes, Immutable)]
struct SendCmd {
    send: kdbus_cmd_send,
    cancel_size: u64,
    cancel_type: u64,
    cancel_fd: i32,
    cancel_pad: u32,
}

impl SendCmd {
    fn new(flags: u64, cancel: Option<BorrowedFd<'_>>) -> SendCmd {
        let fixed = std::mem::size_of::<kdbus_cmd_send>() as u64;
        let mut cmd = SendCmd {
            send: kdbus_cmd_send {
                size: fixed,
                flags,
                ..Default::default()
            },
            ..Default::default()
        };
        if let Some(fd) = cancel {
            // an item's size excludes its padding (spec §5.1)
            cmd.cancel_size = KDBUS_ITEM_HEADER_SIZE + 4;
            cmd.cancel_type = KDBUS_ITEM_CANCEL_FD;
            cmd.cancel_fd = fd.as_raw_fd();
            cmd.send.size = fixed + 24;
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Access;

    #[test]
    fn hello_encodes_flags_and_items() {
        let buf = HelloBuilder::new()
            .accept_fds()
            .attach_send(AttachFlags::CREDS | AttachFlags::PIDS)
            .attach_recv(AttachFlags::ANY)
            .pool_size(1 << 20)
            .description("tester")
            .activator("org.example.Svc", &[PolicyAccess::world(Access::Talk)])
            .encode()
            .unwrap();
        let hello: kdbus_cmd_hello = buf.read(0);
        assert_eq!(hello.size, buf.len() as u64);
        assert_eq!(hello.flags, KDBUS_HELLO_ACCEPT_FD | KDBUS_HELLO_ACTIVATOR);
        assert_eq!(
            hello.attach_flags_send,
            KDBUS_ATTACH_CREDS | KDBUS_ATTACH_PIDS
        );
        assert_eq!(hello.attach_flags_recv, !0);
        assert_eq!(hello.pool_size, 1 << 20);
        let items = Items::new(&buf.as_bytes()[96..]).decode_all().unwrap();
        assert_eq!(items[0], Item::Name("org.example.Svc"));
        assert!(matches!(items[1], Item::PolicyAccess(p) if p.type_ == KDBUS_POLICY_ACCESS_WORLD));
        assert_eq!(items[2], Item::ConnDescription("tester"));
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn hello_encodes_faked_metadata() {
        let buf = HelloBuilder::new()
            .creds(Creds {
                uid: 5,
                ..Default::default()
            })
            .pids(Pids {
                pid: 6,
                tid: 6,
                ppid: 1,
            })
            .seclabel("label")
            .encode()
            .unwrap();
        let items = Items::new(&buf.as_bytes()[96..]).decode_all().unwrap();
        assert!(matches!(items[0], Item::Creds(c) if c.uid == 5));
        assert!(matches!(items[1], Item::Pids(p) if p.pid == 6));
        assert_eq!(items[2], Item::Seclabel(b"label"));
    }

    #[test]
    fn default_hello_is_plain() {
        let buf = HelloBuilder::new().encode().unwrap();
        assert_eq!(buf.len(), 96);
        let hello: kdbus_cmd_hello = buf.read(0);
        assert_eq!(hello.flags, 0);
        assert_eq!(hello.pool_size, DEFAULT_POOL_SIZE);
    }

    #[test]
    fn send_command_carries_the_cancel_fd() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let cmd = SendCmd::new(KDBUS_SEND_SYNC_REPLY, Some(file.as_fd()));
        let mut buf = Buf::new();
        buf.extend(cmd.as_bytes());
        assert_eq!(buf.len(), 56 + 24);
        assert_eq!(buf.u64_at(0), 80);
        assert_eq!(buf.u64_at(8), KDBUS_SEND_SYNC_REPLY);
        assert_eq!(buf.u64_at(56), 20, "item size excludes its padding");
        assert_eq!(buf.u64_at(64), KDBUS_ITEM_CANCEL_FD);
        assert_eq!(buf.read::<i32>(72), file.as_raw_fd());
    }

    #[test]
    fn the_message_buffer_comes_back_empty_and_a_large_one_is_dropped() {
        with_message_buf(|buf| buf.extend(&[0xff; 100]));
        with_message_buf(|buf| {
            assert!(buf.is_empty());
            assert!(buf.capacity() >= 100, "kept");
            buf.resize(100);
            assert!(buf.as_bytes().iter().all(|&b| b == 0), "zeroed");
            buf.resize(MESSAGE_BUF_KEPT + 8);
        });
        with_message_buf(|buf| assert_eq!(buf.capacity(), 0));
    }

    #[test]
    fn send_command_without_cancel_fd_has_no_items() {
        let cmd = SendCmd::new(0, None);
        assert_eq!(cmd.send.size, 56);
        assert_eq!(cmd.cancel_type, 0);
    }

    #[test]
    fn adopting_a_non_kdbus_fd_fails_cleanly() {
        let fd = open_node(Path::new("/dev/null")).unwrap();
        let params = ConnectionParams {
            id: 1,
            id128: [0; 16],
            bus_flags: 0,
            bloom: BloomParams::DEFAULT,
            flags: HelloFlags::empty(),
            attach_send: AttachFlags::empty(),
            attach_recv: AttachFlags::empty(),
            pool_size: 4096,
            next_cookie: 1,
        };
        let err = Connection::adopt(fd, params).unwrap_err();
        assert!(err.to_string().contains("not a kdbus handle"), "{err}");
    }

    #[test]
    fn has_message_on_a_non_kdbus_fd_names_the_command() {
        // An adopted fd is checked; a raw one that is not kdbus fails the
        // PEEK cleanly (ENOTTY), never as "nothing queued".
        let fd = open_node(Path::new("/dev/null")).unwrap();
        let backing = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&backing, 4096).unwrap();
        let conn = Connection {
            fd,
            pool: Pool::map(backing.as_fd(), 4096).unwrap(),
            id: 1,
            id128: [0; 16],
            bus_flags: 0,
            bloom: BloomParams::DEFAULT,
            flags: HelloFlags::ACTIVATOR,
            attach_send: AtomicU64::new(0),
            attach_recv: AtomicU64::new(0),
            next_cookie: AtomicU64::new(1),
        };
        let err = conn.has_message().unwrap_err();
        assert_eq!(err.command_name(), Some("KDBUS_CMD_RECV"));
        assert_eq!(err.errno(), Some(Errno::NOTTY));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn params_survive_json() {
        let params = ConnectionParams {
            id: 7,
            id128: [0xab; 16],
            bus_flags: KDBUS_MAKE_ACCESS_WORLD,
            bloom: BloomParams {
                size: 128,
                n_hash: 4,
            },
            flags: HelloFlags::ACTIVATOR | HelloFlags::from_bits_retain(1 << 40),
            attach_send: AttachFlags::CREDS | AttachFlags::PIDS,
            attach_recv: AttachFlags::ANY,
            pool_size: 8 << 20,
            next_cookie: 42,
        };
        let json = serde_json::to_string(&params).unwrap();
        assert!(json.contains("ACTIVATOR"), "{json}");
        let back: ConnectionParams = serde_json::from_str(&json).unwrap();
        assert_eq!(back, params, "unknown bits included");
    }

    #[test]
    fn connecting_to_a_missing_bus_names_the_path() {
        let err = Connection::connect("/nonexistent/kdbus/0-system/bus").unwrap_err();
        assert_eq!(err.errno(), Some(Errno::NOENT));
        assert!(err.to_string().contains("/nonexistent/kdbus/0-system/bus"));
    }

    #[test]
    fn hello_on_a_non_kdbus_file_fails_cleanly() {
        let fd = open_node(Path::new("/dev/null")).unwrap();
        let err = HelloBuilder::new().connect_fd(fd).unwrap_err();
        assert_eq!(err.command_name(), Some("KDBUS_CMD_HELLO"));
        assert_eq!(err.errno(), Some(Errno::NOTTY));
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn connection_is_send_and_sync() {
        assert_send_sync::<Connection>();
    }
}
