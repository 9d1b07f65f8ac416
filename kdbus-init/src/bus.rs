//! The few kdbus operations kdbus-init needs, on top of `kdbus::abi`:
//! BUS_MAKE, HELLO (as an activator or a plain peer), RECV with PEEK and
//! FREE. Kept in this one file so that it can be replaced by the `kdbus`
//! library's safe API once that provides the same operations.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use kdbus::abi::*;
use rustix::fs::{Mode, OFlags};
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};

/// Bloom parameters of the system bus (systemd's PORTING-DBUS1 defaults).
const BLOOM_SIZE: u64 = 64;
const BLOOM_N_HASH: u64 = 8;
/// Pool of an activator: queued messages live here until the service
/// takes the name.
const ACTIVATOR_POOL: u64 = 8 * 1024 * 1024;
/// Pool of a short-lived peer that only asks for the bus id.
pub(crate) const PEER_POOL: u64 = 64 * 1024;

/// A command buffer: the fixed command struct followed by items, 8-byte
/// aligned as the kernel requires.
pub(crate) struct Cmd {
    words: Vec<u64>,
    opcode: u32,
}

impl Cmd {
    pub(crate) fn new<T: Copy>(opcode: u32, head: T) -> Cmd {
        let size = std::mem::size_of::<T>();
        let mut words = vec![0u64; size.div_ceil(8)];
        // SAFETY: `words` has at least `size` bytes; T is plain #[repr(C)] data.
        unsafe {
            std::ptr::copy_nonoverlapping(
                &head as *const T as *const u8,
                words.as_mut_ptr() as *mut u8,
                size,
            )
        };
        Cmd { words, opcode }
    }

    pub(crate) fn item(mut self, type_: u64, payload: &[u8]) -> Cmd {
        let size = KDBUS_ITEM_HEADER_SIZE as usize + payload.len();
        let start = self.words.len();
        self.words.resize(start + size.div_ceil(8), 0);
        self.words[start] = size as u64;
        self.words[start + 1] = type_;
        let bytes = words_as_bytes_mut(&mut self.words[start + 2..]);
        bytes[..payload.len()].copy_from_slice(payload);
        self
    }

    pub(crate) fn string_item(self, type_: u64, s: &str) -> Cmd {
        let mut bytes = s.as_bytes().to_vec();
        bytes.push(0);
        self.item(type_, &bytes)
    }

    /// Sets the leading `size` field to the whole buffer and runs the ioctl.
    pub(crate) fn run(mut self, fd: BorrowedFd<'_>) -> io::Result<Cmd> {
        self.words[0] = (self.words.len() * 8) as u64;
        // SAFETY: the buffer is a complete, correctly sized kdbus command
        // that lives for the duration of the call; the kernel writes back
        // at most the command's own size.
        unsafe { rustix::ioctl::ioctl(fd, &mut self)? };
        Ok(self)
    }

    /// The finished buffer's address (for a message that a SEND command
    /// points at); the leading size field is set. (kdbus-init sends
    /// nothing; the boot-test probe, which shares this file, does.)
    #[allow(dead_code)]
    pub(crate) fn finished_address(&mut self) -> u64 {
        self.words[0] = (self.words.len() * 8) as u64;
        self.words.as_ptr() as u64
    }

    pub(crate) fn head<T: Copy>(&self) -> T {
        // SAFETY: the buffer was created from a T and is at least that large.
        unsafe { std::ptr::read_unaligned(self.words.as_ptr() as *const T) }
    }
}

fn words_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no invalid bit patterns and a stricter alignment than u8.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 8) }
}

// SAFETY: opcode and pointer describe the buffer exactly; output is the
// ioctl's return value, which kdbus commands do not use.
unsafe impl Ioctl for &mut Cmd {
    type Output = ();
    const IS_MUTATING: bool = true;
    fn opcode(&self) -> Opcode {
        self.opcode as Opcode
    }
    fn as_ptr(&mut self) -> *mut c_void {
        self.words.as_mut_ptr() as *mut c_void
    }
    unsafe fn output_from_ptr(_: IoctlOutput, _: *mut c_void) -> rustix::io::Result<()> {
        Ok(())
    }
}

fn open_rw(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?)
}

/// Creates the bus `name` in the domain mounted at `domain`; the returned
/// handle owns it (closing it destroys the bus).
pub fn make_bus(domain: &Path, name: &str) -> io::Result<OwnedFd> {
    let control = open_rw(&domain.join("control"))?;
    let bloom = [BLOOM_SIZE.to_ne_bytes(), BLOOM_N_HASH.to_ne_bytes()].concat();
    Cmd::new(
        KDBUS_CMD_BUS_MAKE,
        kdbus_cmd {
            size: 0,
            flags: KDBUS_MAKE_ACCESS_WORLD,
            return_flags: 0,
        },
    )
    .item(KDBUS_ITEM_BLOOM_PARAMETER, &bloom)
    .string_item(KDBUS_ITEM_MAKE_NAME, name)
    .item(
        KDBUS_ITEM_ATTACH_FLAGS_SEND,
        &_KDBUS_ATTACH_ALL.to_ne_bytes(),
    )
    .run(control.as_fd())?;
    Ok(control)
}

/// A connection made with HELLO.
pub struct Conn {
    pub fd: OwnedFd,
    pub id: u64,
    /// The bus's UUID.
    pub id128: [u8; 16],
}

/// Who may do what with an activator's name.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub type_: u64,
    pub id: u64,
    pub access: u64,
}

impl Access {
    pub fn world_talk() -> Access {
        Access {
            type_: KDBUS_POLICY_ACCESS_WORLD,
            id: 0,
            access: KDBUS_POLICY_TALK,
        }
    }
    pub fn user_own(uid: u32) -> Access {
        Access {
            type_: KDBUS_POLICY_ACCESS_USER,
            id: uid as u64,
            access: KDBUS_POLICY_OWN,
        }
    }
}

fn hello(
    bus: &Path,
    flags: u64,
    pool: u64,
    name: Option<&str>,
    policy: &[Access],
) -> io::Result<Conn> {
    let fd = open_rw(bus)?;
    let mut cmd = Cmd::new(
        KDBUS_CMD_HELLO,
        kdbus_cmd_hello {
            flags,
            attach_flags_send: 0,
            attach_flags_recv: 0,
            pool_size: pool,
            ..Default::default()
        },
    );
    if let Some(name) = name {
        cmd = cmd.string_item(KDBUS_ITEM_NAME, name);
    }
    for a in policy {
        let payload = [
            a.type_.to_ne_bytes(),
            a.access.to_ne_bytes(),
            a.id.to_ne_bytes(),
        ]
        .concat();
        cmd = cmd.item(KDBUS_ITEM_POLICY_ACCESS, &payload);
    }
    cmd = cmd.string_item(KDBUS_ITEM_CONN_DESCRIPTION, "kdbus-init");
    let done = cmd.run(fd.as_fd())?;
    let out: kdbus_cmd_hello = done.head();
    free(fd.as_fd(), out.offset);
    Ok(Conn {
        fd,
        id: out.id,
        id128: out.id128,
    })
}

/// Registers an activator for `name`: messages to the name queue on it
/// until an implementer acquires the name.
pub fn activator(bus: &Path, name: &str, policy: &[Access]) -> io::Result<Conn> {
    hello(
        bus,
        KDBUS_HELLO_ACTIVATOR,
        ACTIVATOR_POOL,
        Some(name),
        policy,
    )
}

/// Connects an ordinary peer (to learn the bus id).
pub fn peer(bus: &Path) -> io::Result<Conn> {
    hello(bus, 0, PEER_POOL, None, &[])
}

/// Releases a pool slice.
pub(crate) fn free(fd: BorrowedFd<'_>, offset: u64) {
    let _ = Cmd::new(
        KDBUS_CMD_FREE,
        kdbus_cmd_free {
            offset,
            ..Default::default()
        },
    )
    .run(fd);
}

/// Is a message waiting on this connection? (PEEK leaves it queued.)
pub fn has_queued(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match Cmd::new(
        KDBUS_CMD_RECV,
        kdbus_cmd_recv {
            flags: KDBUS_RECV_PEEK,
            ..Default::default()
        },
    )
    .run(fd)
    {
        Ok(done) => {
            let out: kdbus_cmd_recv = done.head();
            free(fd, out.msg.offset);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// The bus UUID as the usual 32 hex digits.
pub fn id128_hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_sized_and_aligned() {
        let cmd = Cmd::new(KDBUS_CMD_BUS_MAKE, kdbus_cmd::default())
            .string_item(KDBUS_ITEM_MAKE_NAME, "0-system")
            .item(KDBUS_ITEM_BLOOM_PARAMETER, &[0u8; 16]);
        // 24-byte head, then 16 + 9 = 25 -> padded to 32, then 16 + 16.
        assert_eq!(cmd.words.len() * 8, 24 + 32 + 32);
        assert_eq!(cmd.words[3], 25);
        assert_eq!(cmd.words[4], KDBUS_ITEM_MAKE_NAME);
        assert_eq!(cmd.words[7], 32);
        assert_eq!(cmd.words[8], KDBUS_ITEM_BLOOM_PARAMETER);
    }

    #[test]
    fn id128_is_hex() {
        let mut id = [0u8; 16];
        id[0] = 0xab;
        id[15] = 1;
        assert_eq!(id128_hex(&id), "ab000000000000000000000000000001");
    }
}
