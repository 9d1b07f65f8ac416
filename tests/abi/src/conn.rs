//! Buses and connections for the tests: thin wrappers over the raw ioctls
//! that keep the results (and errnos) visible.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kdbus::abi::*;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use crate::msg::{Info, Msg, MsgBuilder};
use crate::raw::{self, cmd, item_str, item_struct, read_struct, Buf};
use crate::Domain;

/// Pool size of the test connections (pages are only used when written).
pub const POOL_SIZE: u64 = 16 * 1024 * 1024;

/// Bloom filter size of the test buses.
pub const BLOOM_SIZE: u64 = 64;

/// A bus in its own domain; dropping it (the owner handle) destroys it.
pub struct Bus {
    pub owner: OwnedFd,
    pub name: String,
    pub dir: PathBuf,
    pub domain: Arc<Domain>,
}

/// The BUS_MAKE command for `name`.
pub fn bus_make_cmd(name: &str, flags: u64, extra: &[Vec<u8>]) -> Buf {
    let bloom = kdbus_bloom_parameter {
        size: BLOOM_SIZE,
        n_hash: 8,
    };
    let mut items = vec![
        item_struct(KDBUS_ITEM_BLOOM_PARAMETER, &bloom),
        item_str(KDBUS_ITEM_MAKE_NAME, name),
    ];
    items.extend_from_slice(extra);
    cmd(
        &kdbus_cmd {
            flags,
            ..Default::default()
        },
        &items,
    )
}

/// Opens a kdbusfs node read-write.
pub fn open_node(path: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
}

impl Bus {
    /// A world-accessible bus "<euid>-test" in a fresh domain.
    pub fn new() -> Bus {
        Bus::new_with(KDBUS_MAKE_ACCESS_WORLD, &[])
    }

    pub fn new_with(flags: u64, extra: &[Vec<u8>]) -> Bus {
        let domain = Arc::new(Domain::new());
        Bus::make_in(&domain, "test", flags, extra).expect("BUS_MAKE")
    }

    /// Creates "<euid>-<suffix>" in `domain`.
    pub fn make_in(
        domain: &Arc<Domain>,
        suffix: &str,
        flags: u64,
        extra: &[Vec<u8>],
    ) -> Result<Bus, Errno> {
        let name = format!("{}-{suffix}", rustix::process::geteuid().as_raw());
        let owner = open_node(&domain.control())?;
        let mut c = bus_make_cmd(&name, flags, extra);
        raw::ioctl(owner.as_fd(), KDBUS_CMD_BUS_MAKE, &mut c)?;
        Ok(Bus {
            owner,
            dir: domain.path().join(&name),
            name,
            domain: domain.clone(),
        })
    }

    /// Path of the default endpoint.
    pub fn endpoint(&self) -> PathBuf {
        self.dir.join("bus")
    }

    /// An ordinary connection (ACCEPT_FD, all metadata asked for).
    pub fn conn(&self) -> Conn {
        Hello::new().connect(&self.endpoint()).expect("HELLO")
    }

    /// A connection that asks for no metadata at all.
    pub fn conn_plain(&self) -> Conn {
        Hello::new()
            .attach(0, 0)
            .connect(&self.endpoint())
            .expect("HELLO")
    }
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

/// The HELLO command of a new connection.
#[derive(Clone)]
pub struct Hello {
    pub cmd: kdbus_cmd_hello,
    pub items: Vec<Vec<u8>>,
}

impl Hello {
    pub fn new() -> Hello {
        Hello {
            cmd: kdbus_cmd_hello {
                flags: KDBUS_HELLO_ACCEPT_FD,
                attach_flags_send: _KDBUS_ATTACH_ALL,
                attach_flags_recv: _KDBUS_ATTACH_ALL,
                pool_size: POOL_SIZE,
                ..Default::default()
            },
            items: Vec::new(),
        }
    }

    pub fn flags(mut self, flags: u64) -> Self {
        self.cmd.flags = flags;
        self
    }

    pub fn attach(mut self, send: u64, recv: u64) -> Self {
        self.cmd.attach_flags_send = send;
        self.cmd.attach_flags_recv = recv;
        self
    }

    pub fn pool_size(mut self, size: u64) -> Self {
        self.cmd.pool_size = size;
        self
    }

    pub fn item(mut self, item: Vec<u8>) -> Self {
        self.items.push(item);
        self
    }

    pub fn name(self, name: &str) -> Self {
        self.item(item_str(KDBUS_ITEM_NAME, name))
    }

    pub fn description(self, d: &str) -> Self {
        self.item(item_str(KDBUS_ITEM_CONN_DESCRIPTION, d))
    }

    /// Policy access for activators and policy holders.
    pub fn access(self, ty: u64, access: u64, id: u64) -> Self {
        self.item(item_struct(
            KDBUS_ITEM_POLICY_ACCESS,
            &kdbus_policy_access {
                type_: ty,
                access,
                id,
            },
        ))
    }

    pub fn buf(&self) -> Buf {
        cmd(&self.cmd, &self.items)
    }

    /// Opens `endpoint` and says HELLO.
    pub fn connect(&self, endpoint: &Path) -> Result<Conn, Errno> {
        let fd = open_node(endpoint)?;
        self.connect_fd(fd)
    }

    /// Says HELLO on an already opened endpoint handle.
    pub fn connect_fd(&self, fd: OwnedFd) -> Result<Conn, Errno> {
        let mut b = self.buf();
        raw::ioctl(fd.as_fd(), KDBUS_CMD_HELLO, &mut b)?;
        let hello: kdbus_cmd_hello = read_struct(b.bytes());
        let pool = Pool::map(fd.as_fd(), hello.pool_size as usize)?;
        let conn = Conn {
            fd,
            id: hello.id,
            hello,
            pool,
        };
        // the bloom parameter slice of HELLO belongs to the caller (policy
        // holders cannot FREE at all)
        if hello.flags & KDBUS_HELLO_POLICY_HOLDER == 0 {
            conn.free(hello.offset).expect("FREE of the HELLO slice");
        } else {
            assert_eq!(conn.free(hello.offset), Err(Errno::OPNOTSUPP));
        }
        Ok(conn)
    }
}

impl Default for Hello {
    fn default() -> Self {
        Self::new()
    }
}

/// The read-only mapping of a receive pool.
pub struct Pool {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is read-only for us and owned by the Pool.
unsafe impl Send for Pool {}
// SAFETY: as above; reads of published slices do not race with writes.
unsafe impl Sync for Pool {}

impl Pool {
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> Result<Pool, Errno> {
        // SAFETY: a new shared read-only mapping of the connection's pool,
        // unmapped in Drop.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        Ok(Pool {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `len` bytes at `off` out of the pool.
    pub fn read(&self, off: u64, len: u64) -> Vec<u8> {
        let (off, len) = (off as usize, len as usize);
        assert!(
            off.checked_add(len).is_some_and(|e| e <= self.len),
            "slice outside the pool"
        );
        let mut v = vec![0u8; len];
        // SAFETY: the range is inside the mapping (checked above); the
        // kernel does not write a slice once it was published to us.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), v.as_mut_ptr(), len) };
        v
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in map().
        unsafe {
            let _ = rustix::mm::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// The result of a RECV.
#[derive(Debug)]
pub struct Recv {
    pub cmd: kdbus_cmd_recv,
    /// The message (its slice is already freed), None for DROP.
    pub msg: Option<Msg>,
}

/// The result of a SEND.
#[derive(Debug)]
pub struct Sent {
    pub cmd: kdbus_cmd_send,
    /// The reply of a synchronous call (its slice is already freed).
    pub reply: Option<Msg>,
}

/// A connection to a bus.
pub struct Conn {
    pub fd: OwnedFd,
    pub id: u64,
    pub hello: kdbus_cmd_hello,
    pub pool: Pool,
}

impl Conn {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    pub fn ioctl(&self, cmd: u32, b: &mut Buf) -> Result<(), Errno> {
        raw::ioctl(self.fd(), cmd, b)
    }

    /// Reads a published slice and frees it.
    pub fn take(&self, off: u64, size: u64) -> Vec<u8> {
        let data = self.pool.read(off, size);
        self.free_after_use(off);
        data
    }

    /// FREE of a slice just used: only a connection that was disconnected
    /// meanwhile (by another thread) may refuse it.
    fn free_after_use(&self, off: u64) {
        match self.free(off) {
            Ok(()) | Err(Errno::CONNRESET) => {}
            Err(e) => panic!("FREE of offset {off}: {e}"),
        }
    }

    pub fn free(&self, offset: u64) -> Result<(), Errno> {
        let mut b = cmd(
            &kdbus_cmd_free {
                offset,
                ..Default::default()
            },
            &[],
        );
        self.ioctl(KDBUS_CMD_FREE, &mut b)
    }

    /// SEND with flags and command items.
    pub fn send_with(
        &self,
        msg: &MsgBuilder<'_>,
        flags: u64,
        items: &[Vec<u8>],
    ) -> Result<Sent, Errno> {
        let mut m = msg.build();
        let mut c = cmd(
            &kdbus_cmd_send {
                flags,
                msg_address: m.addr(),
                ..Default::default()
            },
            items,
        );
        let r = self.ioctl(KDBUS_CMD_SEND, &mut c);
        // the message buffer must live until here
        let _ = m.ptr();
        r?;
        let sent: kdbus_cmd_send = read_struct(c.bytes());
        let reply = if sent.reply.msg_size > 0 {
            Some(Msg::parse(
                self.take(sent.reply.offset, sent.reply.msg_size),
            ))
        } else {
            None
        };
        Ok(Sent { cmd: sent, reply })
    }

    pub fn send(&self, msg: &MsgBuilder<'_>) -> Result<(), Errno> {
        self.send_with(msg, 0, &[]).map(|_| ())
    }

    /// A synchronous call: returns the reply.
    pub fn call(&self, msg: &MsgBuilder<'_>) -> Result<Msg, Errno> {
        let sent = self.send_with(msg, KDBUS_SEND_SYNC_REPLY, &[])?;
        Ok(sent.reply.expect("sync call returned no reply"))
    }

    pub fn recv_with(&self, flags: u64, priority: i64) -> Result<Recv, Errno> {
        let mut c = cmd(
            &kdbus_cmd_recv {
                flags,
                priority,
                ..Default::default()
            },
            &[],
        );
        let r = self.ioctl(KDBUS_CMD_RECV, &mut c);
        let rc: kdbus_cmd_recv = read_struct(c.bytes());
        r?;
        let msg = if rc.msg.offset != self.pool.len() as u64 {
            let data = self.pool.read(rc.msg.offset, rc.msg.msg_size);
            if flags & KDBUS_RECV_PEEK == 0 {
                self.free_after_use(rc.msg.offset);
            }
            Some(Msg::parse(data))
        } else {
            None
        };
        Ok(Recv { cmd: rc, msg })
    }

    pub fn recv(&self) -> Result<Msg, Errno> {
        Ok(self.recv_with(0, 0)?.msg.expect("RECV returned no message"))
    }

    /// RECV that must succeed.
    pub fn recv_msg(&self) -> Msg {
        self.recv().expect("RECV")
    }

    /// Waits up to `ms` for the connection to become readable.
    pub fn poll_in(&self, ms: i32) -> bool {
        let mut fds = [rustix::event::PollFd::new(
            &self.fd,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: (ms / 1000) as _,
            tv_nsec: ((ms % 1000) * 1_000_000) as _,
        };
        rustix::event::poll(&mut fds, Some(&ts)).expect("poll") > 0
            && fds[0].revents().contains(rustix::event::PollFlags::IN)
    }

    /// Waits for a message (up to 5 s) and receives it.
    pub fn wait_msg(&self) -> Msg {
        assert!(self.poll_in(5000), "no message within 5 s");
        self.recv_msg()
    }

    /// Receives everything queued.
    pub fn drain(&self) -> Vec<Msg> {
        let mut v = Vec::new();
        while let Ok(m) = self.recv() {
            v.push(m);
        }
        v
    }

    pub fn acquire(&self, name: &str, flags: u64) -> Result<u64, Errno> {
        let mut c = cmd(
            &kdbus_cmd {
                flags,
                ..Default::default()
            },
            &[item_str(KDBUS_ITEM_NAME, name)],
        );
        let r = self.ioctl(KDBUS_CMD_NAME_ACQUIRE, &mut c);
        r.map(|_| c.u64_at(16))
    }

    pub fn release(&self, name: &str) -> Result<(), Errno> {
        let mut c = cmd(&kdbus_cmd::default(), &[item_str(KDBUS_ITEM_NAME, name)]);
        self.ioctl(KDBUS_CMD_NAME_RELEASE, &mut c)
    }

    pub fn match_add(&self, cookie: u64, flags: u64, items: &[Vec<u8>]) -> Result<(), Errno> {
        let mut c = cmd(
            &kdbus_cmd_match {
                flags,
                cookie,
                ..Default::default()
            },
            items,
        );
        self.ioctl(KDBUS_CMD_MATCH_ADD, &mut c)
    }

    /// A match entry without rules: every signal and notification.
    pub fn match_all(&self) {
        self.match_add(0, 0, &[]).expect("MATCH_ADD");
    }

    pub fn match_remove(&self, cookie: u64) -> Result<(), Errno> {
        let mut c = cmd(
            &kdbus_cmd_match {
                cookie,
                ..Default::default()
            },
            &[],
        );
        self.ioctl(KDBUS_CMD_MATCH_REMOVE, &mut c)
    }

    pub fn conn_info(&self, id: u64, name: Option<&str>, attach: u64) -> Result<Info, Errno> {
        let items: Vec<Vec<u8>> = name
            .map(|n| item_str(KDBUS_ITEM_NAME, n))
            .into_iter()
            .collect();
        let mut c = cmd(
            &kdbus_cmd_info {
                id,
                attach_flags: attach,
                ..Default::default()
            },
            &items,
        );
        self.ioctl(KDBUS_CMD_CONN_INFO, &mut c)?;
        let info: kdbus_cmd_info = read_struct(c.bytes());
        Ok(Info::parse(&self.take(info.offset, info.info_size)))
    }

    pub fn bus_creator_info(&self, attach: u64) -> Result<Info, Errno> {
        let mut c = cmd(
            &kdbus_cmd_info {
                attach_flags: attach,
                ..Default::default()
            },
            &[],
        );
        self.ioctl(KDBUS_CMD_BUS_CREATOR_INFO, &mut c)?;
        let info: kdbus_cmd_info = read_struct(c.bytes());
        Ok(Info::parse(&self.take(info.offset, info.info_size)))
    }

    pub fn list(&self, flags: u64) -> Result<Vec<Info>, Errno> {
        let mut c = cmd(
            &kdbus_cmd_list {
                flags,
                ..Default::default()
            },
            &[],
        );
        self.ioctl(KDBUS_CMD_LIST, &mut c)?;
        let l: kdbus_cmd_list = read_struct(c.bytes());
        if l.list_size == 0 {
            assert_eq!(l.offset, self.pool.len() as u64, "empty LIST offset");
            return Ok(Vec::new());
        }
        Ok(Info::parse_list(&self.take(l.offset, l.list_size)))
    }

    pub fn update(&self, items: &[Vec<u8>]) -> Result<(), Errno> {
        let mut c = cmd(&kdbus_cmd::default(), items);
        self.ioctl(KDBUS_CMD_UPDATE, &mut c)
    }

    pub fn byebye(&self) -> Result<(), Errno> {
        let mut c = cmd(&kdbus_cmd::default(), &[]);
        self.ioctl(KDBUS_CMD_BYEBYE, &mut c)
    }
}
