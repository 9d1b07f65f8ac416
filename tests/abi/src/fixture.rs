//! Test buses and the few helpers every test file needs on top of the
//! `kdbus` library: a bus in a domain of its own with the suite's default
//! connection settings, errno extraction, and receiving that must succeed.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kdbus::abi::*;
use kdbus::raw::Buf;
use kdbus::{
    AttachFlags, BloomParams, Bus, BusBuilder, Connection, Errno, HelloBuilder, MakeFlags, Message,
};

use crate::Domain;

/// How long a test waits for a message that must arrive.
pub const WAIT: Duration = Duration::from_secs(5);

/// Bloom geometry of the test buses (the library's default, 64 bytes).
pub const BLOOM: BloomParams = BloomParams::DEFAULT;

/// A bus in its own domain. Dropping it (the owner handle) destroys the
/// bus, then the domain is unmounted.
#[derive(Debug)]
pub struct TestBus {
    // Field order is drop order: the bus goes before its mount.
    pub bus: Bus,
    pub domain: Arc<Domain>,
}

impl TestBus {
    /// A world-accessible bus `<euid>-test` in a fresh domain.
    pub fn new() -> TestBus {
        TestBus::with(|b| b.world_accessible())
    }

    /// A bus `<euid>-test` in a fresh domain, as `make` configures it.
    pub fn with(make: impl FnOnce(BusBuilder) -> BusBuilder) -> TestBus {
        let domain = Arc::new(Domain::new());
        TestBus::make_in(&domain, make(TestBus::builder("test"))).expect("BUS_MAKE")
    }

    /// `<euid>-<suffix>` with the suite's bloom geometry, owner-only.
    pub fn builder(suffix: &str) -> BusBuilder {
        BusBuilder::new(kdbus::own_name(suffix)).bloom(BLOOM)
    }

    /// Creates the bus `builder` describes in `domain`.
    pub fn make_in(domain: &Arc<Domain>, builder: BusBuilder) -> kdbus::Result<TestBus> {
        Ok(TestBus {
            bus: builder.create(domain.control())?,
            domain: domain.clone(),
        })
    }

    /// A world-accessible `<euid>-<suffix>` in `domain`.
    pub fn second_in(domain: &Arc<Domain>, suffix: &str) -> kdbus::Result<TestBus> {
        TestBus::make_in(
            domain,
            TestBus::builder(suffix).flags(MakeFlags::ACCESS_WORLD),
        )
    }

    pub fn name(&self) -> &str {
        self.bus.name()
    }

    /// The bus directory.
    pub fn dir(&self) -> PathBuf {
        self.domain.path().join(self.bus.name())
    }

    /// The default endpoint.
    pub fn endpoint(&self) -> PathBuf {
        self.dir().join("bus")
    }

    /// The suite's ordinary connection: accepts fds, offers and asks for
    /// all metadata.
    pub fn hello() -> HelloBuilder {
        HelloBuilder::new()
            .accept_fds()
            .attach_send(AttachFlags::all())
            .attach_recv(AttachFlags::all())
    }

    /// An ordinary connection (see [`hello`](Self::hello)).
    pub fn conn(&self) -> Connection {
        self.connect(TestBus::hello())
    }

    /// A connection that offers and asks for no metadata at all.
    pub fn conn_plain(&self) -> Connection {
        self.connect(HelloBuilder::new().accept_fds())
    }

    /// Connects to the default endpoint with `hello`; must succeed.
    pub fn connect(&self, hello: HelloBuilder) -> Connection {
        hello.connect(self.endpoint()).expect("HELLO")
    }

    /// Connects to the default endpoint with `hello`.
    pub fn try_connect(&self, hello: HelloBuilder) -> kdbus::Result<Connection> {
        hello.connect(self.endpoint())
    }
}

impl Default for TestBus {
    fn default() -> Self {
        Self::new()
    }
}

/// The errno of a failed library call, for assertions.
#[track_caller]
pub fn errno<T: Debug>(r: kdbus::Result<T>) -> Errno {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e
            .errno()
            .unwrap_or_else(|| panic!("expected an errno, got: {e}")),
    }
}

/// The next queued message; there must be one.
#[track_caller]
pub fn recv_msg(conn: &Connection) -> Message<'_> {
    conn.recv()
        .expect("RECV")
        .message
        .expect("RECV: no message queued")
}

/// Waits up to [`WAIT`] for a message and receives it.
#[track_caller]
pub fn wait_msg(conn: &Connection) -> Message<'_> {
    assert!(
        conn.wait(Some(WAIT)).expect("poll"),
        "no message within {WAIT:?}"
    );
    recv_msg(conn)
}

/// Receives everything queued.
pub fn drain(conn: &Connection) -> Vec<Message<'_>> {
    std::iter::from_fn(|| conn.recv().expect("RECV").message).collect()
}

/// The `SEND` command for a raw message: `flags` and command `items`
/// (pre-encoded, e.g. a `CANCEL_FD`).
pub fn send_cmd(flags: u64, items: &[(u64, &[u8])]) -> Buf {
    let mut cmd = Buf::with_header(&kdbus_cmd_send {
        flags,
        ..Default::default()
    });
    for (ty, payload) in items {
        cmd.push_item(*ty, payload);
    }
    cmd.finish();
    cmd
}

/// Sends a hand-made (typically malformed) message blob through `conn`
/// and returns the SEND command as the kernel wrote it back.
pub fn send_raw(conn: &Connection, msg: &mut Buf) -> Result<kdbus_cmd_send, Errno> {
    let mut cmd = send_cmd(0, &[]);
    kdbus::raw::send(conn, &mut cmd, msg)?;
    Ok(cmd.read(0))
}

/// The encoded form of `msg` (cookie 1), to break on purpose before
/// [`send_raw`]: append an item with `push_*` and call `finish()`.
pub fn encode(msg: &kdbus::MessageBuilder<'_>) -> Buf {
    msg.encode(1).expect("encode message")
}

/// A deadline `ms` milliseconds from now (CLOCK_MONOTONIC ns).
pub fn deadline_ms(ms: u64) -> u64 {
    kdbus::deadline_after(Duration::from_millis(ms))
}

/// A match rule without conditions: every signal and notification.
pub fn match_all(conn: &Connection) {
    conn.add_match(&kdbus::MatchRule::new(0))
        .expect("MATCH_ADD");
}

/// `KDBUS_CMD_RECV` through the raw layer: the slice is neither read nor
/// freed (see [`raw_free`]), and the command comes back as the kernel
/// wrote it, also on error.
pub fn raw_recv(
    conn: &Connection,
    flags: u64,
    priority: i64,
) -> (Result<(), Errno>, kdbus_cmd_recv) {
    let mut buf = Buf::with_header(&kdbus_cmd_recv {
        size: std::mem::size_of::<kdbus_cmd_recv>() as u64,
        flags,
        priority,
        ..Default::default()
    });
    let r = kdbus::raw::ioctl(conn, KDBUS_CMD_RECV, &mut buf);
    (r, buf.read(0))
}

/// `KDBUS_CMD_FREE` of `offset` through the raw layer.
pub fn raw_free(conn: &Connection, offset: u64) -> Result<(), Errno> {
    let mut buf = Buf::with_header(&kdbus_cmd_free {
        size: std::mem::size_of::<kdbus_cmd_free>() as u64,
        offset,
        ..Default::default()
    });
    kdbus::raw::ioctl(conn, KDBUS_CMD_FREE, &mut buf)
}

/// `msg` encoded, with one more item appended as given (a bad fd, an item
/// not allowed in messages...), sent through the raw layer.
pub fn send_with_item(
    conn: &Connection,
    msg: &kdbus::MessageBuilder<'_>,
    type_: u64,
    payload: &[u8],
) -> Result<kdbus_cmd_send, Errno> {
    let mut buf = encode(msg);
    buf.push_item(type_, payload);
    buf.finish();
    send_raw(conn, &mut buf)
}

/// The payload of a `KDBUS_ITEM_FDS` item holding `fds`.
pub fn fds_payload(fds: &[i32]) -> Vec<u8> {
    fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect()
}

/// Whether `conn` polls readable right now.
pub fn readable(conn: &Connection) -> bool {
    conn.wait(Some(Duration::ZERO)).expect("poll")
}

/// The item types of a message in order, as the kernel wrote them.
pub fn item_types(msg: &kdbus::MessageView<'_>) -> Vec<u64> {
    let header = std::mem::size_of::<kdbus_msg>();
    let end = msg.header().size as usize;
    kdbus::item::Items::new(&msg.as_bytes()[header..end])
        .map(|item| item.expect("well-formed item").type_)
        .collect()
}

/// A command blob: the fixed struct `header` (its `size` set to the
/// total), then `items` as (type, payload), framed as spec §5.1 says.
pub fn command<T: zerocopy::IntoBytes + zerocopy::Immutable>(
    header: &T,
    items: &[(u64, &[u8])],
) -> Buf {
    let mut buf = Buf::with_header(header);
    for (ty, payload) in items {
        buf.push_item(*ty, payload);
    }
    buf.finish();
    buf
}

/// `KDBUS_CMD_MATCH_ADD` with hand-made rule items.
pub fn raw_match_add(
    conn: &Connection,
    cookie: u64,
    flags: u64,
    items: &[(u64, &[u8])],
) -> Result<(), Errno> {
    let header = kdbus_cmd_match {
        flags,
        cookie,
        ..Default::default()
    };
    kdbus::raw::ioctl(conn, KDBUS_CMD_MATCH_ADD, &mut command(&header, items))
}

/// A bloom filter of the test buses with the bits `ns` set.
pub fn bloom_bits(generation: u64, ns: &[usize]) -> kdbus::BloomFilter {
    let mut words = vec![0u64; BLOOM.size as usize / 8];
    for &n in ns {
        words[n / 64] |= 1 << (n % 64);
    }
    kdbus::BloomFilter::from_words(BLOOM, generation, words).expect("bus bloom size")
}

/// An empty bloom filter of the test buses (what a signal must carry).
pub fn no_bloom() -> kdbus::BloomFilter {
    kdbus::BloomFilter::new(BLOOM)
}

/// `KDBUS_CMD_HELLO` with hand-made flags and items on a fresh handle of
/// `endpoint` (16 MiB pool, no metadata): the command as the kernel wrote
/// it back, and the handle.
pub fn raw_hello(
    endpoint: &std::path::Path,
    flags: u64,
    items: &[(u64, &[u8])],
) -> Result<(kdbus_cmd_hello, std::os::fd::OwnedFd), Errno> {
    let fd = kdbus::raw::open(endpoint)?;
    let header = kdbus_cmd_hello {
        flags,
        pool_size: kdbus::DEFAULT_POOL_SIZE,
        ..Default::default()
    };
    let mut cmd = command(&header, items);
    kdbus::raw::ioctl(&fd, KDBUS_CMD_HELLO, &mut cmd)?;
    Ok((cmd.read(0), fd))
}

/// A string item's payload: the bytes and the terminating NUL.
pub fn c_str(s: &str) -> Vec<u8> {
    [s.as_bytes(), b"\0"].concat()
}

/// A `PAYLOAD_VEC` item's payload pointing anywhere (unreadable memory,
/// kernel addresses, absurd sizes).
pub fn vec_payload(address: u64, size: u64) -> Vec<u8> {
    zerocopy::IntoBytes::as_bytes(&kdbus_vec {
        size,
        address_or_offset: address,
    })
    .to_vec()
}

/// Framed items as byte vectors, for hand-made (often malformed)
/// commands: header, payload, zero padding to 8 (spec §5.1).
pub mod items {
    use kdbus::abi::KDBUS_ITEM_NEGOTIATE;
    use kdbus::raw::Buf;

    /// One item of type `ty`.
    pub fn item(ty: u64, payload: &[u8]) -> Vec<u8> {
        let mut b = Buf::new();
        b.push_item(ty, payload);
        b.as_bytes().to_vec()
    }

    pub fn item_u64(ty: u64, v: u64) -> Vec<u8> {
        item(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string item.
    pub fn item_str(ty: u64, s: &str) -> Vec<u8> {
        item(ty, &super::c_str(s))
    }

    /// An item whose payload is an ABI struct.
    pub fn item_struct<T: zerocopy::IntoBytes + zerocopy::Immutable>(ty: u64, v: &T) -> Vec<u8> {
        item(ty, v.as_bytes())
    }

    /// A NEGOTIATE item listing item types.
    pub fn item_negotiate(types: &[u64]) -> Vec<u8> {
        let p: Vec<u8> = types.iter().flat_map(|t| t.to_ne_bytes()).collect();
        item(KDBUS_ITEM_NEGOTIATE, &p)
    }

    /// A command from the bytes of its fixed part and framed items, with
    /// `size` set to the total.
    pub fn cmd_bytes(fixed: &[u8], items: &[Vec<u8>]) -> Buf {
        let mut b = Buf::new();
        b.extend(fixed);
        for i in items {
            b.extend(i);
        }
        b.finish();
        b
    }

    /// A command of `fixed` zero bytes with `flags`, followed by `items`.
    pub fn cmd_zeroed(fixed: usize, flags: u64, items: &[Vec<u8>]) -> Buf {
        let mut head = vec![0u8; fixed];
        head[8..16].copy_from_slice(&flags.to_ne_bytes());
        cmd_bytes(&head, items)
    }

    /// A command from an ABI struct and framed items.
    pub fn cmd<T: zerocopy::IntoBytes + zerocopy::Immutable>(fixed: &T, items: &[Vec<u8>]) -> Buf {
        cmd_bytes(fixed.as_bytes(), items)
    }
}

/// A handle that is not a connection (fresh, bus or endpoint owner) polls
/// as ERR|HUP and cannot be mapped (EBADFD).
#[track_caller]
pub fn assert_not_a_connection(fd: impl std::os::fd::AsFd) {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    rustix::event::poll(&mut fds, None).expect("poll");
    assert!(fds[0].revents().contains(PollFlags::ERR | PollFlags::HUP));
    // SAFETY: a mapping attempt that must fail; unmapped if it did not.
    let r = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            4096,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::SHARED,
            &fd,
            0,
        )
    };
    if let Ok(p) = r {
        // SAFETY: unmaps the mapping that should not exist.
        unsafe { rustix::mm::munmap(p, 4096).expect("munmap") };
    }
    assert_eq!(r.err(), Some(Errno::BADFD), "mmap");
}
