//! Messages: building them for `KDBUS_CMD_SEND`, and reading what the
//! kernel wrote into the receive pool (spec §8, §9, §15).

use std::borrow::Cow;
use std::ops::Deref;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use smallvec::SmallVec;
use zerocopy::{FromBytes, IntoBytes};

use crate::abi::*;
use crate::bloom::BloomFilter;
use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::flags::{HelloFlags, MsgFlags, NameFlags};
use crate::item::{Item, Items, NameChangeItem};
use crate::meta::Metadata;
use crate::raw::Buf;

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A connection by its unique id.
    Id(u64),
    /// The current owner of a well-known name (or its activator).
    Name(String),
    /// A name that must currently be owned by `id` (`EREMCHG` otherwise).
    NameOwnedBy { name: String, id: u64 },
    /// Every connection with a matching rule (signals only).
    Broadcast,
}

/// The deadline of a call: absolute CLOCK_MONOTONIC nanoseconds, or
/// relative to the moment the message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    At(u64),
    After(Duration),
}

impl Timeout {
    /// The absolute deadline in ns, as `timeout_ns` wants it.
    pub fn deadline_ns(self) -> u64 {
        match self {
            Timeout::At(ns) => ns,
            Timeout::After(d) => deadline_after(d),
        }
    }
}

/// Now plus `after` on CLOCK_MONOTONIC, in ns (the `timeout_ns` of a call).
///
/// A timeout of a second or more starts from the coarse clock, which never
/// reads the clock hardware (where that hardware has no user-space access,
/// as in many virtual machines, a precise read is a system call of its
/// own on every call). It trails the precise clock by at most its
/// resolution, which is added, so the deadline is never early.
pub fn deadline_after(after: Duration) -> u64 {
    use rustix::time::ClockId;
    let after_ns = after.as_nanos().min(u64::MAX as u128) as u64;
    if after >= COARSE_DEADLINE_FROM {
        let slack = *COARSE_RESOLUTION_NS
            .get_or_init(|| timespec_ns(rustix::time::clock_getres(ClockId::MonotonicCoarse)));
        return timespec_ns(rustix::time::clock_gettime(ClockId::MonotonicCoarse))
            .saturating_add(slack)
            .saturating_add(after_ns);
    }
    timespec_ns(rustix::time::clock_gettime(ClockId::Monotonic)).saturating_add(after_ns)
}

/// Timeouts from this long on are measured from the coarse clock: a tick
/// more is nothing to them.
const COARSE_DEADLINE_FROM: Duration = Duration::from_secs(1);

static COARSE_RESOLUTION_NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

fn timespec_ns(t: rustix::time::Timespec) -> u64 {
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// The timeout `call` uses when none is given (as D-Bus does).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// A piece of the payload, in order.
#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    Data(&'a [u8]),
    /// A `PAYLOAD_VEC` with address 0: `n` bytes of alignment padding.
    Padding(u64),
    Memfd {
        fd: BorrowedFd<'a>,
        start: u64,
        size: u64,
    },
}

/// Builds a message. Payload, fds and memfds are borrowed: the kernel
/// copies (or, for memfds, references) them during the send.
///
/// ```no_run
/// # use kdbus::{Connection, MessageBuilder};
/// # fn f(conn: &Connection) -> kdbus::Result<()> {
/// let reply = conn.call(&MessageBuilder::to_name("org.example.Echo").payload(b"ping"))?;
/// assert_eq!(reply.payload_to_vec(), b"ping");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MessageBuilder<'a> {
    dst: Destination,
    flags: MsgFlags,
    priority: i64,
    cookie: Option<u64>,
    timeout: Option<Timeout>,
    cookie_reply: u64,
    payload_type: u64,
    /// Inline up to two: a call or a reply has one or two parts, and
    /// building it should not cost an allocation.
    parts: SmallVec<[Part<'a>; 2]>,
    fds: Vec<BorrowedFd<'a>>,
    bloom: Option<Cow<'a, BloomFilter>>,
}

impl<'a> MessageBuilder<'a> {
    pub fn new(dst: Destination) -> MessageBuilder<'a> {
        MessageBuilder {
            dst,
            flags: MsgFlags::empty(),
            priority: 0,
            cookie: None,
            timeout: None,
            cookie_reply: 0,
            payload_type: KDBUS_PAYLOAD_DBUS,
            parts: SmallVec::new(),
            fds: Vec::new(),
            bloom: None,
        }
    }

    /// To a connection id.
    pub fn to_id(id: u64) -> MessageBuilder<'a> {
        MessageBuilder::new(Destination::Id(id))
    }

    /// To the owner of a well-known name.
    pub fn to_name(name: impl Into<String>) -> MessageBuilder<'a> {
        MessageBuilder::new(Destination::Name(name.into()))
    }

    /// A broadcast signal (sets `SIGNAL`; needs a bloom filter, see
    /// [`bloom`](Self::bloom)).
    pub fn broadcast() -> MessageBuilder<'a> {
        MessageBuilder::new(Destination::Broadcast).signal()
    }

    /// A reply to `call`: to its sender, with `cookie_reply` = its cookie.
    pub fn reply_to(call: &MessageView<'_>) -> MessageBuilder<'a> {
        MessageBuilder::to_id(call.src_id()).cookie_reply(call.cookie())
    }

    pub fn destination(&self) -> &Destination {
        &self.dst
    }

    /// Replaces all `KDBUS_MSG_*` flags.
    pub fn flags(mut self, flags: MsgFlags) -> Self {
        self.flags = flags;
        self
    }

    /// A signal: delivered only where a match rule accepts it. Signals must
    /// carry a bloom filter of the bus geometry (see [`bloom`](Self::bloom)
    /// and [`Connection::bloom_params`]), `EBADMSG` otherwise.
    pub fn signal(mut self) -> Self {
        self.flags |= MsgFlags::SIGNAL;
        self
    }

    /// A call: the receiver owes a reply within `timeout`.
    pub fn expect_reply(mut self, timeout: Duration) -> Self {
        self.flags |= MsgFlags::EXPECT_REPLY;
        self.timeout = Some(Timeout::After(timeout));
        self
    }

    /// A call with an absolute CLOCK_MONOTONIC deadline (ns).
    pub fn expect_reply_by(mut self, deadline_ns: u64) -> Self {
        self.flags |= MsgFlags::EXPECT_REPLY;
        self.timeout = Some(Timeout::At(deadline_ns));
        self
    }

    /// Do not start an activatable service for this message
    /// (`EADDRNOTAVAIL` if only its activator owns the name).
    pub fn no_auto_start(mut self) -> Self {
        self.flags |= MsgFlags::NO_AUTO_START;
        self
    }

    /// The cookie; by default the connection assigns the next one.
    pub fn cookie(mut self, cookie: u64) -> Self {
        self.cookie = Some(cookie);
        self
    }

    /// Marks the message as the reply to the call with this cookie.
    pub fn cookie_reply(mut self, cookie: u64) -> Self {
        self.cookie_reply = cookie;
        self
    }

    /// Priority for the receiver's queue (lower values are received first
    /// with `KDBUS_RECV_USE_PRIORITY`).
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    /// The payload type (default `KDBUS_PAYLOAD_DBUS`; 0 is refused by the
    /// kernel, it marks kernel messages).
    pub fn payload_type(mut self, payload_type: u64) -> Self {
        self.payload_type = payload_type;
        self
    }

    /// Appends inline payload (a `PAYLOAD_VEC`; empty slices are skipped,
    /// the kernel refuses empty vecs).
    pub fn payload(mut self, data: &'a [u8]) -> Self {
        if !data.is_empty() {
            self.parts.push(Part::Data(data));
        }
        self
    }

    /// Appends `n` bytes of padding (a `PAYLOAD_VEC` with address 0) to
    /// align what follows in the receiver's copy.
    pub fn padding(mut self, n: u64) -> Self {
        self.parts.push(Part::Padding(n));
        self
    }

    /// Appends `size` bytes of a sealed memfd from `start` (zero-copy).
    pub fn memfd(mut self, fd: BorrowedFd<'a>, start: u64, size: u64) -> Self {
        self.parts.push(Part::Memfd { fd, start, size });
        self
    }

    /// Passes file descriptors (the receiver needs `ACCEPT_FD`).
    pub fn fds(mut self, fds: &[BorrowedFd<'a>]) -> Self {
        self.fds.extend_from_slice(fds);
        self
    }

    /// The bloom filter of a signal (must match the bus geometry).
    pub fn bloom(mut self, filter: BloomFilter) -> Self {
        self.bloom = Some(Cow::Owned(filter));
        self
    }

    /// Like [`bloom`](Self::bloom), borrowed: for a sender that sends the
    /// same signal again and again.
    pub fn bloom_ref(mut self, filter: &'a BloomFilter) -> Self {
        self.bloom = Some(Cow::Borrowed(filter));
        self
    }

    pub fn is_call(&self) -> bool {
        self.flags.contains(MsgFlags::EXPECT_REPLY)
    }

    pub(crate) fn cookie_or(&self, next: impl FnOnce() -> u64) -> u64 {
        self.cookie.unwrap_or_else(next)
    }

    /// Encodes the `kdbus_msg` with its items. The buffer holds the
    /// addresses of the borrowed payload, so it must not outlive `self`'s
    /// borrows; the send helpers take care of that.
    pub fn encode(&self, cookie: u64) -> Result<Buf> {
        let mut buf = Buf::new();
        self.encode_into(&mut buf, cookie)?;
        Ok(buf)
    }

    /// Like [`encode`](Self::encode), into `buf` (empty).
    pub(crate) fn encode_into(&self, buf: &mut Buf, cookie: u64) -> Result<()> {
        self.encode_as(buf, cookie, self.flags, self.timeout)
    }

    /// Encodes as a call: `EXPECT_REPLY`, and `default_timeout` unless the
    /// message has its own.
    pub(crate) fn encode_call_into(
        &self,
        buf: &mut Buf,
        cookie: u64,
        default_timeout: Duration,
    ) -> Result<()> {
        let timeout = self.timeout.unwrap_or(Timeout::After(default_timeout));
        self.encode_as(
            buf,
            cookie,
            self.flags | MsgFlags::EXPECT_REPLY,
            Some(timeout),
        )
    }

    fn encode_as(
        &self,
        buf: &mut Buf,
        cookie: u64,
        flags: MsgFlags,
        timeout: Option<Timeout>,
    ) -> Result<()> {
        let (dst_id, dst_name) = match &self.dst {
            Destination::Id(id) => (*id, None),
            Destination::Name(name) => (KDBUS_DST_ID_NAME, Some(name.as_str())),
            Destination::NameOwnedBy { name, id } => (*id, Some(name.as_str())),
            Destination::Broadcast => (KDBUS_DST_ID_BROADCAST, None),
        };
        let timeout_or_reply = match (timeout, self.cookie_reply) {
            (Some(_), reply) if reply != 0 => {
                return Err(Error::invalid_argument(
                    "a message is either a call (timeout) or a reply (cookie_reply), not both",
                ))
            }
            (Some(t), _) => t.deadline_ns(),
            (None, reply) => reply,
        };
        // Header, DST_NAME, bloom, one item per part, FDS: allocate once.
        let capacity = std::mem::size_of::<kdbus_msg>()
            + dst_name.map_or(0, |n| 16 + n.len() + 8)
            + self.bloom.as_ref().map_or(0, |b| 24 + b.words().len() * 8)
            + self.parts.len() * 40
            + if self.fds.is_empty() {
                0
            } else {
                16 + self.fds.len() * 4 + 8
            };
        buf.reserve(capacity);
        buf.extend(
            kdbus_msg {
                size: 0,
                flags: flags.bits(),
                priority: self.priority,
                dst_id,
                src_id: 0,
                payload_type: self.payload_type,
                cookie,
                timeout_ns_or_cookie_reply: timeout_or_reply,
            }
            .as_bytes(),
        );
        if let Some(name) = dst_name {
            check_string("destination name", name)?;
            buf.push_str_item(KDBUS_ITEM_DST_NAME, name);
        }
        if let Some(bloom) = &self.bloom {
            let generation = bloom.generation();
            buf.push_item_parts(
                KDBUS_ITEM_BLOOM_FILTER,
                &[generation.as_bytes(), bloom.words().as_bytes()],
            );
        }
        for part in &self.parts {
            match *part {
                Part::Data(data) => buf.push_struct_item(
                    KDBUS_ITEM_PAYLOAD_VEC,
                    &kdbus_vec {
                        size: data.len() as u64,
                        address_or_offset: data.as_ptr() as usize as u64,
                    },
                ),
                Part::Padding(n) => buf.push_struct_item(
                    KDBUS_ITEM_PAYLOAD_VEC,
                    &kdbus_vec {
                        size: n,
                        address_or_offset: 0,
                    },
                ),
                Part::Memfd { fd, start, size } => buf.push_struct_item(
                    KDBUS_ITEM_PAYLOAD_MEMFD,
                    &kdbus_memfd {
                        start,
                        size,
                        fd: fd.as_raw_fd(),
                        __pad: 0,
                    },
                ),
            }
        }
        if !self.fds.is_empty() {
            let fds: Vec<u8> = self
                .fds
                .iter()
                .flat_map(|fd| fd.as_raw_fd().to_ne_bytes())
                .collect();
            buf.push_item(KDBUS_ITEM_FDS, &fds);
        }
        buf.finish();
        Ok(())
    }
}

/// Strings travel NUL-terminated: an inner NUL cannot be encoded.
pub(crate) fn check_string(what: &str, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::invalid_argument(format!(
            "{what} {s:?} contains a NUL byte"
        )));
    }
    Ok(())
}

/// One piece of a received payload, in the order the sender gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadPart<'a> {
    /// Bytes copied into the pool.
    Inline(&'a [u8]),
    /// Padding the sender asked for (zeros, not addressable).
    Padding(u64),
    /// A memfd range; the fd is in [`Message::memfds`].
    Memfd { start: u64, size: u64 },
}

/// A message as laid out in the receive pool, validated: the header, every
/// item decodable, every payload offset inside the slice. Pure data — see
/// [`Message`] for the received message that owns its fds and frees its
/// slice. The items are decoded again where they are asked for: receiving
/// a message stores nothing but the header.
#[derive(Clone)]
pub struct MessageView<'a> {
    header: kdbus_msg,
    slice: &'a [u8],
    /// An FDS or PAYLOAD_MEMFD item is present: there are fds to take.
    carries_fds: bool,
}

impl std::fmt::Debug for MessageView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageView")
            .field("header", &self.header)
            .field("items", &self.items())
            .finish()
    }
}

impl<'a> MessageView<'a> {
    /// Parses the slice holding one message (`msg_size` bytes from its
    /// offset in the pool). Nothing in it is trusted.
    pub fn parse(slice: &'a [u8]) -> Result<MessageView<'a>> {
        let header_len = std::mem::size_of::<kdbus_msg>();
        let (header, _) = kdbus_msg::read_from_prefix(slice).map_err(|_| {
            Error::malformed(
                "message",
                format!(
                    "slice of {} bytes cannot hold a message header",
                    slice.len()
                ),
            )
        })?;
        if header.size < header_len as u64 || header.size > slice.len() as u64 {
            return Err(Error::malformed(
                "message",
                format!(
                    "header size {} outside {header_len}..={}",
                    header.size,
                    slice.len()
                ),
            ));
        }
        let mut view = MessageView {
            header,
            slice,
            carries_fds: false,
        };
        for raw in view.raw_items() {
            let item = raw?.decode()?;
            view.carries_fds |= matches!(item, Item::Fds(_) | Item::PayloadMemfd(_));
            if let Item::PayloadOff { size, offset } = item {
                if offset != u64::MAX
                    && offset
                        .checked_add(size)
                        .map_or(true, |end| end > slice.len() as u64)
                {
                    return Err(Error::malformed(
                        "message",
                        format!(
                            "payload at offset {offset} size {size} runs past the {}-byte slice",
                            slice.len()
                        ),
                    ));
                }
            }
        }
        Ok(view)
    }

    /// The item chain, as it lies in the slice.
    fn raw_items(&self) -> Items<'a> {
        let header_len = std::mem::size_of::<kdbus_msg>();
        Items::with_base(
            &self.slice[header_len..self.header.size as usize],
            header_len,
        )
    }

    /// The items, decoded one by one (`parse` found every one decodable).
    fn decoded(&self) -> impl Iterator<Item = Item<'a>> + 'a {
        self.raw_items()
            .map_while(|raw| raw.and_then(|raw| raw.decode()).ok())
    }

    /// The raw header.
    pub fn header(&self) -> &kdbus_msg {
        &self.header
    }

    /// The whole pool slice (header, items, metadata, payload).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.slice
    }

    pub fn flags(&self) -> MsgFlags {
        MsgFlags::from_bits_retain(self.header.flags)
    }

    pub fn priority(&self) -> i64 {
        self.header.priority
    }

    pub fn src_id(&self) -> u64 {
        self.header.src_id
    }

    /// The destination id (`KDBUS_DST_ID_BROADCAST` for broadcasts, 0 when
    /// sent to a name only).
    pub fn dst_id(&self) -> u64 {
        self.header.dst_id
    }

    pub fn payload_type(&self) -> u64 {
        self.header.payload_type
    }

    pub fn cookie(&self) -> u64 {
        self.header.cookie
    }

    /// The call this message replies to (0 if it is not a reply).
    pub fn cookie_reply(&self) -> u64 {
        if self.is_call() {
            0
        } else {
            self.header.timeout_ns_or_cookie_reply
        }
    }

    /// The caller's deadline, for calls.
    pub fn timeout_ns(&self) -> Option<u64> {
        self.is_call()
            .then_some(self.header.timeout_ns_or_cookie_reply)
    }

    pub fn is_call(&self) -> bool {
        self.flags().contains(MsgFlags::EXPECT_REPLY)
    }

    pub fn is_signal(&self) -> bool {
        self.flags().contains(MsgFlags::SIGNAL)
    }

    pub fn is_broadcast(&self) -> bool {
        self.header.dst_id == KDBUS_DST_ID_BROADCAST
    }

    /// Sent by the kernel (a notification).
    pub fn is_kernel(&self) -> bool {
        self.header.src_id == KDBUS_SRC_ID_KERNEL
    }

    /// All items, decoded.
    pub fn items(&self) -> Vec<Item<'a>> {
        self.decoded().collect()
    }

    /// The payload pieces in order.
    pub fn payload_parts(&self) -> impl Iterator<Item = PayloadPart<'a>> + '_ {
        let slice = self.slice;
        self.decoded().filter_map(move |item| match item {
            Item::PayloadOff { size, offset } if offset == u64::MAX => {
                Some(PayloadPart::Padding(size))
            }
            Item::PayloadOff { size, offset } => Some(PayloadPart::Inline(
                // Bounds checked in `parse`.
                &slice[offset as usize..(offset + size) as usize],
            )),
            Item::PayloadMemfd(m) => Some(PayloadPart::Memfd {
                start: m.start,
                size: m.size,
            }),
            _ => None,
        })
    }

    /// The inline payload segments (padding and memfds left out).
    pub fn payload(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.payload_parts().filter_map(|p| match p {
            PayloadPart::Inline(data) => Some(data),
            _ => None,
        })
    }

    /// Total inline payload length.
    pub fn payload_len(&self) -> usize {
        self.payload().map(<[u8]>::len).sum()
    }

    /// The inline payload, concatenated.
    pub fn payload_to_vec(&self) -> Vec<u8> {
        // slice by slice: collecting the bytes one by one is far slower
        let mut bytes = Vec::with_capacity(self.payload_len());
        for part in self.payload() {
            bytes.extend_from_slice(part);
        }
        bytes
    }

    /// The destination name the sender used, if any.
    pub fn dst_name(&self) -> Option<&'a str> {
        self.decoded().find_map(|item| match item {
            Item::DstName(name) => Some(name),
            _ => None,
        })
    }

    /// The signal's bloom filter: generation and words.
    pub fn bloom_filter(&self) -> Option<(u64, Vec<u64>)> {
        self.decoded().find_map(|item| match item {
            Item::BloomFilter { generation, words } => Some((generation, words)),
            _ => None,
        })
    }

    /// The fd numbers of the FDS item as the kernel wrote them (-1 where
    /// none was installed).
    pub fn fd_numbers(&self) -> Vec<i32> {
        self.decoded()
            .filter_map(|item| match item {
                Item::Fds(fds) => Some(fds),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The memfd items as the kernel wrote them.
    pub fn memfd_items(&self) -> Vec<kdbus_memfd> {
        self.decoded()
            .filter_map(|item| match item {
                Item::PayloadMemfd(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// The sender's credentials, if attached; cheaper than
    /// [`MessageView::metadata`] when only they are wanted.
    pub fn creds(&self) -> Option<crate::meta::Creds> {
        self.decoded().find_map(|item| match item {
            Item::Creds(c) => Some(c.into()),
            _ => None,
        })
    }

    /// The sender's metadata (what the attach-flag negotiation let through).
    pub fn metadata(&self) -> Metadata {
        Metadata::from_items(&self.items())
    }

    /// The kernel notification this message carries, if it is one.
    pub fn notification(&self) -> Option<Notification> {
        if !self.is_kernel() {
            return None;
        }
        let owner = |id: &kdbus_notify_id_change| NameOwner {
            id: id.id,
            flags: NameFlags::from_bits_retain(id.flags),
        };
        let name = |n: &NameChangeItem<'_>| n.name.unwrap_or_default().to_owned();
        self.decoded().find_map(|item| {
            Some(match &item {
                Item::IdAdd(c) => Notification::IdAdd {
                    id: c.id,
                    flags: HelloFlags::from_bits_retain(c.flags),
                },
                Item::IdRemove(c) => Notification::IdRemove {
                    id: c.id,
                    flags: HelloFlags::from_bits_retain(c.flags),
                },
                Item::NameAdd(n) => Notification::NameAdd {
                    name: name(n),
                    new_owner: owner(&n.new_id),
                },
                Item::NameRemove(n) => Notification::NameRemove {
                    name: name(n),
                    old_owner: owner(&n.old_id),
                },
                Item::NameChange(n) => Notification::NameChange {
                    name: name(n),
                    old_owner: owner(&n.old_id),
                    new_owner: owner(&n.new_id),
                },
                Item::ReplyTimeout => Notification::ReplyTimeout {
                    cookie: self.header.timeout_ns_or_cookie_reply,
                },
                Item::ReplyDead => Notification::ReplyDead {
                    cookie: self.header.timeout_ns_or_cookie_reply,
                },
                _ => return None,
            })
        })
    }
}

/// A connection and its owner flags in a name notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameOwner {
    pub id: u64,
    pub flags: NameFlags,
}

/// A kernel notification (spec §15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A connection appeared (`flags` = its HELLO flags).
    IdAdd { id: u64, flags: HelloFlags },
    /// A connection went away.
    IdRemove { id: u64, flags: HelloFlags },
    /// A name got its first owner.
    NameAdd { name: String, new_owner: NameOwner },
    /// A name lost its last owner.
    NameRemove { name: String, old_owner: NameOwner },
    /// A name moved from one owner to another.
    NameChange {
        name: String,
        old_owner: NameOwner,
        new_owner: NameOwner,
    },
    /// The call with this cookie got no reply in time.
    ReplyTimeout { cookie: u64 },
    /// The peer of the call with this cookie went away without replying.
    ReplyDead { cookie: u64 },
}

/// A memfd received with a message.
#[derive(Debug)]
pub struct ReceivedMemfd {
    /// `None` where the kernel installed no fd (PEEK).
    pub fd: Option<OwnedFd>,
    pub start: u64,
    pub size: u64,
}

impl ReceivedMemfd {
    /// Reads the `size` bytes at `start`.
    pub fn read(&self) -> Result<Vec<u8>> {
        let fd = self
            .fd
            .as_ref()
            .ok_or_else(|| Error::invalid_argument("no memfd was installed for this item"))?;
        let mut out = vec![0u8; self.size as usize];
        let mut done = 0;
        while done < out.len() {
            let n = rustix::io::pread(fd, &mut out[done..], self.start + done as u64)
                .map_err(|e| Error::system("read memfd", e))?;
            if n == 0 {
                return Err(Error::malformed(
                    "memfd",
                    format!("ends before {} + {}", self.start, self.size),
                ));
            }
            done += n;
        }
        Ok(out)
    }
}

/// A received message: a view of its pool slice (freed with
/// `KDBUS_CMD_FREE` on drop) plus the fds and memfds the kernel installed
/// for it, owned here (closed on drop unless taken).
pub struct Message<'c> {
    view: MessageView<'c>,
    conn: &'c Connection,
    offset: u64,
    return_flags: u64,
    fds: Vec<Option<OwnedFd>>,
    memfds: Vec<ReceivedMemfd>,
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("offset", &self.offset)
            .field("header", &self.view.header)
            .field("items", &self.view.items())
            .field("fds", &self.fds)
            .field("memfds", &self.memfds)
            .finish()
    }
}

/// Takes ownership of the fds and memfds RECV installed for `view`.
fn take_installed_fds(view: &MessageView<'_>) -> (Vec<Option<OwnedFd>>, Vec<ReceivedMemfd>) {
    let own = |fd: i32| {
        (fd >= 0).then(|| {
            // SAFETY: RECV installed `fd` into our fd table for this
            // message; nothing else knows of it, so we become its only
            // owner. Each received message is wrapped exactly once.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
    };
    let (mut fds, mut memfds) = (Vec::new(), Vec::new());
    if !view.carries_fds {
        // most messages: no second walk over the items
        return (fds, memfds);
    }
    for item in view.decoded() {
        match item {
            Item::Fds(numbers) => fds.extend(numbers.into_iter().map(own)),
            Item::PayloadMemfd(m) => memfds.push(ReceivedMemfd {
                fd: own(m.fd),
                start: m.start,
                size: m.size,
            }),
            _ => {}
        }
    }
    (fds, memfds)
}

impl<'c> Message<'c> {
    /// Takes over the slice the kernel published at `offset` for `conn`.
    /// On error the slice is freed before returning.
    pub(crate) fn from_pool(
        conn: &'c Connection,
        offset: u64,
        size: u64,
        return_flags: u64,
    ) -> Result<Message<'c>> {
        let view = conn
            .pool()
            .published(offset, size)
            .and_then(MessageView::parse);
        let view = match view {
            Ok(view) => view,
            Err(err) => {
                let _ = conn.free(offset);
                return Err(err);
            }
        };
        let (fds, memfds) = take_installed_fds(&view);
        Ok(Message {
            view,
            conn,
            offset,
            return_flags,
            fds,
            memfds,
        })
    }

    /// A copy that does not hold the pool slice (the fds and memfds stay
    /// with `self`).
    pub fn to_owned_message(&self) -> OwnedMessage {
        OwnedMessage {
            bytes: self.view.slice.to_vec(),
            return_flags: self.return_flags,
            fds: Vec::new(),
            memfds: Vec::new(),
        }
    }

    /// Offset of the slice in the pool.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// `kdbus_msg_info.return_flags` (`KDBUS_RECV_RETURN_*`).
    pub fn return_flags(&self) -> u64 {
        self.return_flags
    }

    /// Some fds could not be installed (their slots are `None`).
    pub fn incomplete_fds(&self) -> bool {
        self.return_flags & KDBUS_RECV_RETURN_INCOMPLETE_FDS != 0
    }

    /// The passed fds, in order (`None` where none was installed).
    pub fn fds(&self) -> &[Option<OwnedFd>] {
        &self.fds
    }

    /// Takes the passed fds out of the message.
    pub fn take_fds(&mut self) -> Vec<Option<OwnedFd>> {
        std::mem::take(&mut self.fds)
    }

    /// The memfds, in payload order.
    pub fn memfds(&self) -> &[ReceivedMemfd] {
        &self.memfds
    }

    /// Takes the memfds out of the message.
    pub fn take_memfds(&mut self) -> Vec<ReceivedMemfd> {
        std::mem::take(&mut self.memfds)
    }

    /// The parsed view, borrowed from the pool.
    pub fn view(&self) -> &MessageView<'c> {
        &self.view
    }
}

/// A received message copied out of the pool (what [`Connection::peek`]
/// returns: a peeked message stays queued, and its slice is published
/// again by the next RECV, so a peek must not hold on to it).
#[derive(Debug)]
pub struct OwnedMessage {
    bytes: Vec<u8>,
    return_flags: u64,
    fds: Vec<Option<OwnedFd>>,
    memfds: Vec<ReceivedMemfd>,
}

impl OwnedMessage {
    /// Validates `bytes` (one message as laid out in a pool) and takes the
    /// fds the kernel installed for it.
    pub(crate) fn from_received(bytes: Vec<u8>, return_flags: u64) -> Result<OwnedMessage> {
        let (fds, memfds) = take_installed_fds(&MessageView::parse(&bytes)?);
        Ok(OwnedMessage {
            bytes,
            return_flags,
            fds,
            memfds,
        })
    }

    /// The parsed message.
    pub fn view(&self) -> MessageView<'_> {
        MessageView::parse(&self.bytes).expect("validated when received, never modified")
    }

    pub fn return_flags(&self) -> u64 {
        self.return_flags
    }

    /// Passed fds (`None` where none was installed, as on PEEK).
    pub fn fds(&self) -> &[Option<OwnedFd>] {
        &self.fds
    }

    pub fn take_fds(&mut self) -> Vec<Option<OwnedFd>> {
        std::mem::take(&mut self.fds)
    }

    pub fn memfds(&self) -> &[ReceivedMemfd] {
        &self.memfds
    }

    pub fn take_memfds(&mut self) -> Vec<ReceivedMemfd> {
        std::mem::take(&mut self.memfds)
    }
}

impl<'c> Deref for Message<'c> {
    type Target = MessageView<'c>;

    fn deref(&self) -> &MessageView<'c> {
        &self.view
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        // Nothing to report to: a failure means the connection is gone,
        // and then so is its pool.
        let _ = self.conn.free(self.offset);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bloom::BloomParams;
    use zerocopy::IntoBytes;

    /// Builds a message slice the way the kernel lays it out (§8.3):
    /// header, items, metadata, then the payload.
    pub(crate) struct PoolImage {
        pub header: kdbus_msg,
        items: Buf,
        payload: Vec<u8>,
        offs: Vec<(usize, u64)>,
    }

    impl PoolImage {
        pub fn new(header: kdbus_msg) -> PoolImage {
            PoolImage {
                header,
                items: Buf::new(),
                payload: Vec::new(),
                offs: Vec::new(),
            }
        }

        /// A PAYLOAD_OFF item whose data goes into the payload area.
        pub fn payload(&mut self, data: &[u8]) -> &mut Self {
            self.offs
                .push((self.items.len(), self.payload.len() as u64));
            self.items.push_struct_item(
                KDBUS_ITEM_PAYLOAD_OFF,
                &kdbus_vec {
                    size: data.len() as u64,
                    address_or_offset: 0, // patched in `build`
                },
            );
            self.payload.extend(data);
            self
        }

        pub fn item(&mut self, type_: u64, payload: &[u8]) -> &mut Self {
            self.items.push_item(type_, payload);
            self
        }

        pub fn build(&self) -> Buf {
            let header_len = std::mem::size_of::<kdbus_msg>();
            let size = header_len + self.items.len();
            let payload_at = crate::raw::align8(size);
            let mut items = self.items.clone();
            for &(at, data_off) in &self.offs {
                items.set_u64(at + 24, payload_at as u64 + data_off);
            }
            let mut buf = Buf::with_header(&kdbus_msg {
                size: size as u64,
                ..self.header
            });
            buf.extend(items.as_bytes());
            buf.pad8();
            buf.extend(&self.payload);
            buf.pad8();
            buf
        }
    }

    fn header() -> kdbus_msg {
        kdbus_msg {
            flags: KDBUS_MSG_EXPECT_REPLY,
            dst_id: 5,
            src_id: 7,
            payload_type: KDBUS_PAYLOAD_DBUS,
            cookie: 99,
            timeout_ns_or_cookie_reply: 123_456,
            ..Default::default()
        }
    }

    #[test]
    fn parses_a_message_with_payload_and_metadata() {
        let mut image = PoolImage::new(header());
        image
            .payload(b"hello ")
            .payload(b"world")
            .item(
                KDBUS_ITEM_PAYLOAD_OFF,
                kdbus_vec {
                    size: 3,
                    address_or_offset: !0,
                }
                .as_bytes(),
            )
            .item(KDBUS_ITEM_DST_NAME, b"org.example.Dst\0")
            .item(
                KDBUS_ITEM_CREDS,
                kdbus_creds {
                    uid: 1000,
                    ..Default::default()
                }
                .as_bytes(),
            )
            .item(KDBUS_ITEM_PID_COMM, b"sender\0");
        let buf = image.build();
        let msg = MessageView::parse(buf.as_bytes()).unwrap();
        assert!(msg.is_call() && !msg.is_signal() && !msg.is_kernel());
        assert_eq!(msg.src_id(), 7);
        assert_eq!(msg.dst_id(), 5);
        assert_eq!(msg.cookie(), 99);
        assert_eq!(msg.timeout_ns(), Some(123_456));
        assert_eq!(msg.cookie_reply(), 0, "a call is not a reply");
        assert_eq!(
            msg.payload().collect::<Vec<_>>(),
            [&b"hello "[..], b"world"]
        );
        assert_eq!(msg.payload_to_vec(), b"hello world");
        assert_eq!(msg.payload_len(), 11);
        assert_eq!(
            msg.payload_parts().nth(2),
            Some(PayloadPart::Padding(3)),
            "padding vec"
        );
        assert_eq!(msg.dst_name(), Some("org.example.Dst"));
        let meta = msg.metadata();
        assert_eq!(meta.creds.unwrap().uid, 1000);
        assert_eq!(meta.pid_comm.as_deref(), Some("sender"));
        assert_eq!(msg.notification(), None);
    }

    #[test]
    fn payload_offsets_must_stay_inside_the_slice() {
        let mut image = PoolImage::new(header());
        image.payload(b"12345678");
        let mut buf = image.build();
        // Point the payload 1 byte past the end.
        let at = 64 + 24;
        let off = buf.u64_at(at);
        buf.set_u64(at, off + 1);
        let err = MessageView::parse(buf.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("runs past"), "{err}");
        buf.set_u64(at, u64::MAX - 2);
        assert!(MessageView::parse(buf.as_bytes()).is_err(), "no overflow");
    }

    #[test]
    fn header_size_must_fit_the_slice() {
        let buf = PoolImage::new(header()).build();
        assert!(MessageView::parse(&buf.as_bytes()[..63]).is_err());
        let mut bad = buf.clone();
        bad.set_u64(0, 63);
        assert!(MessageView::parse(bad.as_bytes()).is_err());
        bad.set_u64(0, buf.len() as u64 + 8);
        assert!(MessageView::parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn malformed_items_are_reported_not_trusted() {
        let mut image = PoolImage::new(header());
        image.item(KDBUS_ITEM_ID, &[0; 8]);
        let mut buf = image.build();
        buf.set_u64(64, 1000); // item size beyond the message
        let err = MessageView::parse(buf.as_bytes()).unwrap_err();
        assert!(err.is_malformed());
    }

    fn kernel_header(dst: u64) -> kdbus_msg {
        kdbus_msg {
            flags: KDBUS_MSG_SIGNAL,
            dst_id: dst,
            src_id: KDBUS_SRC_ID_KERNEL,
            payload_type: KDBUS_PAYLOAD_KERNEL,
            ..Default::default()
        }
    }

    fn timestamp() -> Vec<u8> {
        kdbus_timestamp::default().as_bytes().to_vec()
    }

    #[test]
    fn decodes_every_notification() {
        let id_change = |id, flags| kdbus_notify_id_change { id, flags };
        let name_change = |old, new, name: &str| {
            let mut p = kdbus_notify_name_change {
                old_id: old,
                new_id: new,
            }
            .as_bytes()
            .to_vec();
            p.extend(name.as_bytes());
            p.push(0);
            p
        };
        let cases: Vec<(u64, Vec<u8>, Notification)> = vec![
            (
                KDBUS_ITEM_ID_ADD,
                id_change(12, KDBUS_HELLO_ACCEPT_FD).as_bytes().to_vec(),
                Notification::IdAdd {
                    id: 12,
                    flags: HelloFlags::ACCEPT_FD,
                },
            ),
            (
                KDBUS_ITEM_ID_REMOVE,
                id_change(12, 0).as_bytes().to_vec(),
                Notification::IdRemove {
                    id: 12,
                    flags: HelloFlags::empty(),
                },
            ),
            (
                KDBUS_ITEM_NAME_ADD,
                name_change(id_change(0, 0), id_change(3, KDBUS_NAME_PRIMARY), "a.b"),
                Notification::NameAdd {
                    name: "a.b".into(),
                    new_owner: NameOwner {
                        id: 3,
                        flags: NameFlags::PRIMARY,
                    },
                },
            ),
            (
                KDBUS_ITEM_NAME_REMOVE,
                name_change(id_change(3, 0), id_change(0, 0), "a.b"),
                Notification::NameRemove {
                    name: "a.b".into(),
                    old_owner: NameOwner {
                        id: 3,
                        flags: NameFlags::empty(),
                    },
                },
            ),
            (
                KDBUS_ITEM_NAME_CHANGE,
                name_change(
                    id_change(3, KDBUS_NAME_ACTIVATOR),
                    id_change(4, KDBUS_NAME_ALLOW_REPLACEMENT),
                    "a.b",
                ),
                Notification::NameChange {
                    name: "a.b".into(),
                    old_owner: NameOwner {
                        id: 3,
                        flags: NameFlags::ACTIVATOR,
                    },
                    new_owner: NameOwner {
                        id: 4,
                        flags: NameFlags::ALLOW_REPLACEMENT,
                    },
                },
            ),
        ];
        for (type_, payload, expected) in cases {
            let mut image = PoolImage::new(kernel_header(KDBUS_DST_ID_BROADCAST));
            image
                .item(type_, &payload)
                .item(KDBUS_ITEM_TIMESTAMP, &timestamp());
            let buf = image.build();
            let msg = MessageView::parse(buf.as_bytes()).unwrap();
            assert!(msg.is_kernel() && msg.is_broadcast());
            assert_eq!(msg.notification(), Some(expected));
            assert!(msg.metadata().timestamp.is_some());
        }
    }

    #[test]
    fn reply_notifications_carry_the_call_cookie() {
        for (type_, dead) in [
            (KDBUS_ITEM_REPLY_TIMEOUT, false),
            (KDBUS_ITEM_REPLY_DEAD, true),
        ] {
            let mut header = kernel_header(9);
            header.flags = 0;
            header.timeout_ns_or_cookie_reply = 77;
            let mut image = PoolImage::new(header);
            image
                .item(type_, &[])
                .item(KDBUS_ITEM_TIMESTAMP, &timestamp());
            let buf = image.build();
            let msg = MessageView::parse(buf.as_bytes()).unwrap();
            assert_eq!(msg.cookie_reply(), 77);
            let expected = if dead {
                Notification::ReplyDead { cookie: 77 }
            } else {
                Notification::ReplyTimeout { cookie: 77 }
            };
            assert_eq!(msg.notification(), Some(expected));
        }
    }

    #[test]
    fn user_messages_are_not_notifications() {
        let mut image = PoolImage::new(header());
        image.item(
            KDBUS_ITEM_ID_ADD,
            kdbus_notify_id_change::default().as_bytes(),
        );
        let buf = image.build();
        assert_eq!(
            MessageView::parse(buf.as_bytes()).unwrap().notification(),
            None
        );
    }

    #[test]
    fn fds_and_memfds_are_listed() {
        let mut image = PoolImage::new(header());
        image
            .item(
                KDBUS_ITEM_FDS,
                &[5i32.to_ne_bytes(), (-1i32).to_ne_bytes()].concat(),
            )
            .item(
                KDBUS_ITEM_PAYLOAD_MEMFD,
                kdbus_memfd {
                    start: 0,
                    size: 4096,
                    fd: 8,
                    __pad: 0,
                }
                .as_bytes(),
            );
        let buf = image.build();
        let msg = MessageView::parse(buf.as_bytes()).unwrap();
        assert_eq!(msg.fd_numbers(), [5, -1]);
        assert_eq!(msg.memfd_items()[0].fd, 8);
        assert_eq!(
            msg.payload_parts().collect::<Vec<_>>(),
            [PayloadPart::Memfd {
                start: 0,
                size: 4096
            }]
        );
    }

    #[test]
    fn an_owned_message_takes_the_installed_fds() {
        use std::os::fd::IntoRawFd;
        // Stand-ins for fds RECV would have installed.
        let fd = std::fs::File::open("/dev/null").unwrap().into_raw_fd();
        let memfd = crate::memfd::sealed_memfd("t", b"abc")
            .unwrap()
            .into_raw_fd();
        let mut image = PoolImage::new(header());
        image
            .item(
                KDBUS_ITEM_FDS,
                &[fd.to_ne_bytes(), (-1i32).to_ne_bytes()].concat(),
            )
            .item(
                KDBUS_ITEM_PAYLOAD_MEMFD,
                kdbus_memfd {
                    start: 1,
                    size: 2,
                    fd: memfd,
                    __pad: 0,
                }
                .as_bytes(),
            )
            .payload(b"data");
        let bytes = image.build().as_bytes().to_vec();
        let mut msg = OwnedMessage::from_received(bytes, 0).unwrap();
        assert_eq!(msg.view().payload_to_vec(), b"data");
        assert_eq!(msg.fds().len(), 2);
        assert_eq!(msg.fds()[0].as_ref().map(|f| f.as_raw_fd()), Some(fd));
        assert!(msg.fds()[1].is_none(), "-1 means not installed");
        assert_eq!(msg.memfds()[0].read().unwrap(), b"bc");
        let fds = msg.take_fds();
        assert!(msg.fds().is_empty());
        assert!(fds[0].is_some());
    }

    #[test]
    fn encodes_a_call_to_a_name() {
        let data = *b"0123456789";
        let bloom = BloomFilter::new(BloomParams::DEFAULT);
        let msg = MessageBuilder::to_name("org.example.Foo")
            .expect_reply(Duration::from_secs(5))
            .priority(-3)
            .payload(&data)
            .payload(&[])
            .padding(6)
            .bloom(bloom);
        let buf = msg.encode(42).unwrap();
        let header: kdbus_msg = buf.read(0);
        assert_eq!(header.size, buf.len() as u64);
        assert_eq!(header.flags, KDBUS_MSG_EXPECT_REPLY);
        assert_eq!(header.dst_id, KDBUS_DST_ID_NAME);
        assert_eq!(header.cookie, 42);
        assert_eq!(header.priority, -3);
        assert_eq!(header.payload_type, KDBUS_PAYLOAD_DBUS);
        // A 5 s deadline starts from the coarse clock plus one tick of it:
        // never early, at most a tick late.
        let soon = deadline_after(Duration::ZERO);
        let tick = *COARSE_RESOLUTION_NS
            .get()
            .expect("a coarse deadline was taken");
        assert!(header.timeout_ns_or_cookie_reply > soon);
        assert!(header.timeout_ns_or_cookie_reply <= soon + 5_000_000_000 + tick);

        let items = Items::new(&buf.as_bytes()[64..]).decode_all().unwrap();
        assert_eq!(items[0], Item::DstName("org.example.Foo"));
        assert!(
            matches!(&items[1], Item::BloomFilter { generation: 0, words } if words.len() == 8)
        );
        assert_eq!(
            items[2],
            Item::PayloadVec {
                size: 10,
                address: data.as_ptr() as u64
            }
        );
        assert_eq!(
            items[3],
            Item::PayloadVec {
                size: 6,
                address: 0
            },
            "the empty payload was skipped, padding kept"
        );
        assert_eq!(items.len(), 4);
    }

    #[test]
    fn encodes_a_broadcast_and_a_reply() {
        let buf = MessageBuilder::broadcast().encode(1).unwrap();
        let header: kdbus_msg = buf.read(0);
        assert_eq!(header.dst_id, KDBUS_DST_ID_BROADCAST);
        assert_eq!(header.flags, KDBUS_MSG_SIGNAL);

        // a borrowed filter encodes as an owned one
        let mut filter = BloomFilter::new(BloomParams::DEFAULT);
        filter.add_pair("member", "Tick");
        let owned = MessageBuilder::broadcast().bloom(filter.clone());
        let borrowed = MessageBuilder::broadcast().bloom_ref(&filter);
        let bytes = owned.encode(1).unwrap().as_bytes().to_vec();
        assert_eq!(bytes, borrowed.encode(1).unwrap().as_bytes());
        let items = Items::new(&bytes[64..]).decode_all().unwrap();
        assert_eq!(
            items,
            [Item::BloomFilter {
                generation: 0,
                words: filter.words().to_vec()
            }]
        );

        let mut image = PoolImage::new(header_with_cookie(31));
        image.payload(b"x");
        let call_buf = image.build();
        let call = MessageView::parse(call_buf.as_bytes()).unwrap();
        let buf = MessageBuilder::reply_to(&call).encode(2).unwrap();
        let header: kdbus_msg = buf.read(0);
        assert_eq!(header.dst_id, 7);
        assert_eq!(header.timeout_ns_or_cookie_reply, 31);
        assert_eq!(header.flags, 0);
    }

    fn header_with_cookie(cookie: u64) -> kdbus_msg {
        kdbus_msg { cookie, ..header() }
    }

    #[test]
    fn encodes_fds_memfds_and_name_with_id() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&file);
        let buf = MessageBuilder::new(Destination::NameOwnedBy {
            name: "a.b".into(),
            id: 9,
        })
        .memfd(fd, 8, 16)
        .fds(&[fd, fd])
        .encode(1)
        .unwrap();
        let header: kdbus_msg = buf.read(0);
        assert_eq!(header.dst_id, 9);
        let items = Items::new(&buf.as_bytes()[64..]).decode_all().unwrap();
        assert_eq!(items[0], Item::DstName("a.b"));
        assert_eq!(
            items[1],
            Item::PayloadMemfd(kdbus_memfd {
                start: 8,
                size: 16,
                fd: file.as_raw_fd(),
                __pad: 0
            })
        );
        assert_eq!(
            items[2],
            Item::Fds(vec![file.as_raw_fd(), file.as_raw_fd()])
        );
    }

    #[test]
    fn refuses_what_cannot_be_encoded() {
        let both = MessageBuilder::to_id(3)
            .expect_reply(Duration::from_secs(1))
            .cookie_reply(5);
        assert!(both.encode(1).is_err());
        assert!(MessageBuilder::to_name("a\0b").encode(1).is_err());
    }

    #[test]
    fn deadlines_are_monotonic_and_saturate() {
        let a = deadline_after(Duration::ZERO);
        let b = deadline_after(Duration::from_millis(1));
        assert!(b >= a + 1_000_000);
        assert_eq!(deadline_after(Duration::MAX), u64::MAX);
        assert_eq!(Timeout::At(5).deadline_ns(), 5);
    }
}
