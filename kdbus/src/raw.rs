//! Raw access to the kdbus ioctls, for the ABI test suite and for the safe
//! layer built on top of it.
//!
//! [`Buf`] is an 8-byte aligned byte buffer to assemble any command — well
//! formed or deliberately broken — and [`ioctl`] issues it and hands back the
//! bare errno. Nothing here validates the content: that is the kernel's job,
//! and testing it is the point.
//!
//! The kernel reads and writes an ioctl argument only within its declared
//! `size` (at most [`crate::abi::KDBUS_CMD_MAX_SIZE`];
//! larger sizes are refused before anything is copied). The safe functions
//! here make sure that much memory exists behind the pointer they pass, so a
//! lying `size` field provokes an errno, never a stray write into memory the
//! program uses for something else.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::abi::*;

/// Byte offset of `msg_address` in `kdbus_cmd_send`.
const SEND_MSG_ADDRESS: usize = 24;

/// An 8-byte aligned, growable byte buffer holding one ioctl argument (or a
/// message, or a hand-made pool image).
///
/// The item helpers follow spec §5.1: an item's `size` counts its 16-byte
/// header and its payload without padding, and the next item starts at the
/// next multiple of 8.
#[derive(Clone, Default)]
pub struct Buf {
    /// u64 storage gives the 8-byte alignment the kernel demands.
    words: Vec<u64>,
    /// Length in bytes; `words` may hold more (zeroed) capacity.
    len: usize,
}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buf")
            .field("len", &self.len)
            .field("bytes", &self.as_bytes())
            .finish()
    }
}

impl Buf {
    /// An empty buffer.
    pub const fn new() -> Buf {
        Buf {
            words: Vec::new(),
            len: 0,
        }
    }

    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Buf {
        let mut buf = Buf::new();
        buf.resize(len);
        buf
    }

    /// An empty buffer with room for `bytes` without reallocating.
    pub fn with_capacity(bytes: usize) -> Buf {
        // zeroed storage, not bare capacity: appends only write
        Buf {
            words: vec![0; bytes.div_ceil(8)],
            len: 0,
        }
    }

    /// A buffer starting with the bytes of `header` (a command or message
    /// struct from [`crate::abi`]), with room for a few items.
    pub fn with_header<T: IntoBytes + Immutable>(header: &T) -> Buf {
        let mut buf = Buf::with_capacity(std::mem::size_of::<T>() + 192);
        buf.extend(header.as_bytes());
        buf
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.words.as_bytes()[..self.len]
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.words.as_mut_bytes()[..len]
    }

    /// Grows (with zeros) or shrinks to `len` bytes.
    pub fn resize(&mut self, len: usize) {
        self.reserve_bytes(len);
        if len < self.len {
            // Keep everything past `len` zero, so growing again reads zeros.
            let end = self.len;
            self.words.as_mut_bytes()[len..end].fill(0);
        }
        self.len = len;
    }

    /// Makes room for `bytes` more bytes without reallocating.
    pub fn reserve(&mut self, bytes: usize) {
        self.reserve_bytes(self.len + bytes);
    }

    /// Bytes of storage, used or not.
    pub fn capacity(&self) -> usize {
        self.words.len() * 8
    }

    /// Makes sure `len` bytes of storage exist, without changing `len()`.
    #[inline]
    fn reserve_bytes(&mut self, len: usize) {
        let words = len.div_ceil(8);
        if self.words.len() < words {
            // doubling: a buffer built item by item grows a few times
            self.words.resize(words.max(2 * self.words.len()), 0);
        }
    }

    /// Appends raw bytes.
    #[inline]
    pub fn extend(&mut self, bytes: &[u8]) {
        let start = self.len;
        let end = start + bytes.len();
        // what lies past `len` is zero: no need to clear before copying
        self.reserve_bytes(end);
        self.words.as_mut_bytes()[start..end].copy_from_slice(bytes);
        self.len = end;
    }

    /// Appends zero bytes up to the next multiple of 8.
    #[inline]
    pub fn pad8(&mut self) {
        if self.len % 8 != 0 {
            self.resize(align8(self.len));
        }
    }

    /// Appends an item: header, payload, zero padding to 8.
    pub fn push_item(&mut self, type_: u64, payload: &[u8]) {
        self.push_item_parts(type_, &[payload]);
    }

    /// Appends an item whose payload is the concatenation of `parts`.
    #[inline]
    pub fn push_item_parts(&mut self, type_: u64, parts: &[&[u8]]) {
        self.pad8();
        let payload: usize = parts.iter().map(|p| p.len()).sum();
        self.push_u64(KDBUS_ITEM_HEADER_SIZE + payload as u64);
        self.push_u64(type_);
        for part in parts {
            self.extend(part);
        }
        self.pad8();
    }

    /// Appends an item whose `size` field says `size` whatever the payload
    /// (to test the kernel's size checks); padded to 8 like any item.
    pub fn push_item_with_size(&mut self, size: u64, type_: u64, payload: &[u8]) {
        self.pad8();
        self.push_u64(size);
        self.push_u64(type_);
        self.extend(payload);
        self.pad8();
    }

    /// Appends an item with a NUL-terminated string payload.
    pub fn push_str_item(&mut self, type_: u64, s: &str) {
        self.push_item_parts(type_, &[s.as_bytes(), b"\0"]);
    }

    /// Appends an item with a single `u64` payload.
    pub fn push_u64_item(&mut self, type_: u64, value: u64) {
        self.push_item(type_, &value.to_ne_bytes());
    }

    /// Appends an item whose payload is a struct from [`crate::abi`].
    pub fn push_struct_item<T: IntoBytes + Immutable>(&mut self, type_: u64, payload: &T) {
        self.push_item(type_, payload.as_bytes());
    }

    /// Appends one native-endian `u64`.
    #[inline]
    pub fn push_u64(&mut self, value: u64) {
        if self.len % 8 != 0 {
            return self.extend(&value.to_ne_bytes());
        }
        // the common case, a whole word: no byte copy
        let word = self.len / 8;
        self.reserve_bytes(self.len + 8);
        self.words[word] = value;
        self.len += 8;
    }

    /// Writes the current length into the leading `size` field.
    pub fn finish(&mut self) {
        let len = self.len as u64;
        if self.len < 8 {
            // too short to hold the field: it grows, and lies about its size
            return self.set_u64(0, len);
        }
        self.words[0] = len;
    }

    /// Reads the native-endian `u64` at `offset`.
    ///
    /// Panics if the buffer is too short, like slice indexing.
    pub fn u64_at(&self, offset: usize) -> u64 {
        u64::from_ne_bytes(self.as_bytes()[offset..offset + 8].try_into().unwrap())
    }

    /// Writes a native-endian `u64` at `offset`, growing the buffer if needed.
    pub fn set_u64(&mut self, offset: usize, value: u64) {
        self.write_bytes(offset, &value.to_ne_bytes());
    }

    /// Copies `bytes` to `offset`, growing the buffer if needed.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        if self.len < offset + bytes.len() {
            self.resize(offset + bytes.len());
        }
        self.as_bytes_mut()[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    /// Writes a struct at `offset`.
    pub fn write<T: IntoBytes + Immutable>(&mut self, offset: usize, value: &T) {
        self.write_bytes(offset, value.as_bytes());
    }

    /// Reads a struct at `offset` (a copy).
    ///
    /// Panics if the buffer is too short, like slice indexing.
    pub fn read<T: FromBytes>(&self, offset: usize) -> T {
        let bytes = &self.as_bytes()[offset..offset + std::mem::size_of::<T>()];
        T::read_from_bytes(bytes).expect("length checked")
    }

    /// Pointer to byte `offset`, with at least `reach` bytes of storage
    /// behind it (zero-filled beyond `len()`).
    fn kernel_ptr(&mut self, offset: usize, reach: usize) -> *mut std::ffi::c_void {
        self.reserve_bytes(offset + reach);
        // In bounds: storage reaches at least `offset + reach` bytes.
        self.words.as_mut_bytes()[offset..].as_mut_ptr().cast()
    }

    /// The `u64` at `offset` (which may be unaligned) as the kernel reads
    /// it — a blob's `size`, a `msg_address` — or 0 where the buffer is too
    /// short to hold one.
    fn u64_or_zero(&self, offset: usize) -> u64 {
        let bytes = self.as_bytes();
        match bytes.get(offset..offset + 8) {
            Some(b) => u64::from_ne_bytes(b.try_into().unwrap()),
            None => 0,
        }
    }

    /// How many bytes from `offset` the kernel may touch for a blob whose
    /// fixed part is `fixed` bytes.
    fn kernel_reach(&self, offset: usize, fixed: usize) -> usize {
        let declared = self.u64_or_zero(offset).min(KDBUS_CMD_MAX_SIZE) as usize;
        declared.max(fixed).max(8)
    }
}

/// Opens a kdbusfs node (control file or endpoint) read-write and
/// close-on-exec: a fresh handle for a setup ioctl.
pub fn open(path: impl AsRef<std::path::Path>) -> Result<std::os::fd::OwnedFd, Errno> {
    rustix::fs::open(
        path.as_ref(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
}

/// `n` rounded up to a multiple of 8.
pub const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// The `KDBUS_CMD_*` name of an ioctl number, for messages.
pub fn command_name(cmd: u32) -> &'static str {
    match cmd {
        KDBUS_CMD_BUS_MAKE => "KDBUS_CMD_BUS_MAKE",
        KDBUS_CMD_ENDPOINT_MAKE => "KDBUS_CMD_ENDPOINT_MAKE",
        KDBUS_CMD_ENDPOINT_UPDATE => "KDBUS_CMD_ENDPOINT_UPDATE",
        KDBUS_CMD_HELLO => "KDBUS_CMD_HELLO",
        KDBUS_CMD_UPDATE => "KDBUS_CMD_UPDATE",
        KDBUS_CMD_BYEBYE => "KDBUS_CMD_BYEBYE",
        KDBUS_CMD_FREE => "KDBUS_CMD_FREE",
        KDBUS_CMD_CONN_INFO => "KDBUS_CMD_CONN_INFO",
        KDBUS_CMD_BUS_CREATOR_INFO => "KDBUS_CMD_BUS_CREATOR_INFO",
        KDBUS_CMD_LIST => "KDBUS_CMD_LIST",
        KDBUS_CMD_SEND => "KDBUS_CMD_SEND",
        KDBUS_CMD_RECV => "KDBUS_CMD_RECV",
        KDBUS_CMD_NAME_ACQUIRE => "KDBUS_CMD_NAME_ACQUIRE",
        KDBUS_CMD_NAME_RELEASE => "KDBUS_CMD_NAME_RELEASE",
        KDBUS_CMD_MATCH_ADD => "KDBUS_CMD_MATCH_ADD",
        KDBUS_CMD_MATCH_REMOVE => "KDBUS_CMD_MATCH_REMOVE",
        _ => "unknown kdbus ioctl",
    }
}

/// Size of the fixed struct encoded in an ioctl number (`_IOC_SIZE`).
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x3fff) as usize
}

/// A kdbus ioctl: opcode plus a pointer to a size-prefixed blob.
struct KdbusIoctl {
    opcode: u32,
    arg: *mut std::ffi::c_void,
}

// SAFETY: kdbus ioctls take a pointer to a size-prefixed blob and may write
// back into it (`IS_MUTATING`); they return 0 or an errno, no output value.
// Whether the pointed-to memory may be touched is the caller's contract
// (see `ioctl_ptr`).
unsafe impl Ioctl for KdbusIoctl {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode as Opcode
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        self.arg
    }

    unsafe fn output_from_ptr(_: IoctlOutput, _: *mut std::ffi::c_void) -> rustix::io::Result<()> {
        Ok(())
    }
}

/// Issues kdbus ioctl `cmd` with an arbitrary argument pointer (null,
/// unmapped, unaligned...), for tests of the kernel's pointer checks.
///
/// # Safety
/// The kernel may write anywhere within the blob `arg` points to (up to its
/// declared size, at most 32 KiB) and, for `KDBUS_CMD_SEND`, into the
/// message at `msg_address`: that memory must be writable and not in use
/// by anything else, or unmapped.
pub unsafe fn ioctl_ptr(
    fd: BorrowedFd<'_>,
    cmd: u32,
    arg: *mut std::ffi::c_void,
) -> Result<(), Errno> {
    // SAFETY: forwarded to the caller, see above.
    unsafe { rustix::ioctl::ioctl(fd, KdbusIoctl { opcode: cmd, arg }) }
}

/// Issues kdbus ioctl `cmd` with `buf` as argument and returns the errno.
///
/// `buf` is passed as is: sizes, flags and items may be anything. Output
/// fields the kernel writes back (`offset`, `return_flags`...) land in
/// `buf`. For `KDBUS_CMD_SEND` use [`send`], which points `msg_address` at
/// a message buffer.
///
/// # Panics
/// For `KDBUS_CMD_SEND` with a non-zero `msg_address`: the kernel may write
/// to that address, which only [`send`] or [`ioctl_ptr`] can vouch for.
pub fn ioctl(fd: impl AsFd, cmd: u32, buf: &mut Buf) -> Result<(), Errno> {
    ioctl_at(fd, cmd, buf, 0)
}

/// Like [`ioctl`], but passes a pointer `offset` bytes into `buf` — an
/// offset that is not a multiple of 8 tests the kernel's alignment check.
pub fn ioctl_at(fd: impl AsFd, cmd: u32, buf: &mut Buf, offset: usize) -> Result<(), Errno> {
    if cmd == KDBUS_CMD_SEND {
        let address = buf.u64_or_zero(offset + SEND_MSG_ADDRESS);
        assert!(
            address == 0,
            "raw::ioctl with KDBUS_CMD_SEND and a msg_address: use raw::send"
        );
    }
    let reach = buf.kernel_reach(offset, ioc_size(cmd));
    let arg = buf.kernel_ptr(offset, reach);
    // SAFETY: `arg` points into `buf`, which we borrow mutably for the call
    // and which has storage for everything the kernel may touch (`reach`
    // bytes: the declared size, capped at the largest size the kernel
    // accepts, and at least the fixed struct). A SEND's message address
    // is zero (checked above), so there is no second blob.
    unsafe { ioctl_ptr(fd.as_fd(), cmd, arg) }
}

/// Issues kdbus ioctl `cmd` with a command struct that has no items, such
/// as `kdbus_cmd_recv` or `kdbus_cmd_free`, in place: no buffer to
/// allocate on the paths every received message takes.
///
/// # Panics
/// If `arg`'s `size` field (its first `u64`) is not the size of `T`, or
/// for `KDBUS_CMD_SEND`, whose message only [`send`] can vouch for.
pub fn ioctl_fixed<T: IntoBytes + FromBytes + Immutable>(
    fd: impl AsFd,
    cmd: u32,
    arg: &mut T,
) -> Result<(), Errno> {
    assert!(
        cmd != KDBUS_CMD_SEND,
        "ioctl_fixed cannot SEND: use raw::send"
    );
    assert!(
        std::mem::align_of::<T>() >= 8,
        "kdbus arguments are 8-aligned"
    );
    let size = u64::read_from_prefix(arg.as_bytes()).map(|(size, _)| size);
    assert_eq!(size.ok(), Some(std::mem::size_of::<T>() as u64));
    // SAFETY: `arg` is an 8-aligned struct we borrow mutably for the call;
    // its `size` field (checked above) keeps the kernel within it, and
    // without SEND there is no second blob.
    unsafe { ioctl_ptr(fd.as_fd(), cmd, (arg as *mut T).cast()) }
}

/// `KDBUS_CMD_SEND` with `cmd` (a `kdbus_cmd_send` blob) whose
/// `msg_address` is set to `msg` (a `kdbus_msg` blob).
pub fn send(fd: impl AsFd, cmd: &mut Buf, msg: &mut Buf) -> Result<(), Errno> {
    send_at(fd, cmd, 0, msg, 0)
}

/// Like [`send`], with each blob starting `*_offset` bytes into its buffer
/// (unaligned offsets test the kernel's alignment checks).
pub fn send_at(
    fd: impl AsFd,
    cmd: &mut Buf,
    cmd_offset: usize,
    msg: &mut Buf,
    msg_offset: usize,
) -> Result<(), Errno> {
    let msg_reach = msg.kernel_reach(msg_offset, std::mem::size_of::<kdbus_msg>());
    let msg_ptr = msg.kernel_ptr(msg_offset, msg_reach);
    cmd.write_bytes(
        cmd_offset + SEND_MSG_ADDRESS,
        &(msg_ptr as usize as u64).to_ne_bytes(),
    );
    let reach = cmd.kernel_reach(cmd_offset, ioc_size(KDBUS_CMD_SEND));
    let arg = cmd.kernel_ptr(cmd_offset, reach);
    // SAFETY: both pointers point into buffers we borrow mutably for the
    // call, each with storage for all the kernel may touch (see `ioctl_at`).
    unsafe { ioctl_ptr(fd.as_fd(), KDBUS_CMD_SEND, arg) }
}

/// `KDBUS_CMD_SEND` with `cmd` — a `kdbus_cmd_send`, possibly followed by
/// its items, in one struct — in place, its `msg_address` set to `msg`:
/// the command of every send needs no buffer of its own.
///
/// # Panics
/// If `cmd`'s `size` field (its first `u64`) is smaller than a
/// `kdbus_cmd_send` or larger than `T`.
pub fn send_fixed<T: IntoBytes + FromBytes + Immutable>(
    fd: impl AsFd,
    cmd: &mut T,
    msg: &mut Buf,
) -> Result<(), Errno> {
    assert!(
        std::mem::align_of::<T>() >= 8,
        "kdbus arguments are 8-aligned"
    );
    let fixed = std::mem::size_of::<kdbus_cmd_send>();
    let size = u64::read_from_prefix(cmd.as_bytes()).map_or(0, |(size, _)| size as usize);
    assert!((fixed..=std::mem::size_of::<T>()).contains(&size));
    let msg_reach = msg.kernel_reach(0, std::mem::size_of::<kdbus_msg>());
    let msg_ptr = msg.kernel_ptr(0, msg_reach);
    cmd.as_mut_bytes()[SEND_MSG_ADDRESS..SEND_MSG_ADDRESS + 8]
        .copy_from_slice(&(msg_ptr as usize as u64).to_ne_bytes());
    // SAFETY: `cmd` is an 8-aligned struct we borrow mutably for the call,
    // its `size` (checked above) within it; `msg_ptr` points into `msg`,
    // which we borrow mutably too, with storage for all the kernel may
    // touch (see `ioctl_at`).
    unsafe { ioctl_ptr(fd.as_fd(), KDBUS_CMD_SEND, (cmd as *mut T).cast()) }
}

/// Negotiation (spec §7): issues `cmd` with only `KDBUS_FLAG_NEGOTIATE`
/// set and returns the flags the kernel reports as supported.
pub fn negotiate_flags(fd: impl AsFd, cmd: u32) -> Result<u64, Errno> {
    let size = ioc_size(cmd);
    let mut buf = Buf::zeroed(size);
    buf.set_u64(0, size as u64);
    buf.set_u64(8, KDBUS_FLAG_NEGOTIATE);
    ioctl(fd, cmd, &mut buf)?;
    Ok(buf.u64_at(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_8_byte_aligned() {
        for len in [0, 1, 7, 8, 9, 100, 4096] {
            let mut buf = Buf::zeroed(len);
            let ptr = buf.kernel_ptr(0, 8);
            assert_eq!(ptr as usize % 8, 0);
        }
    }

    #[test]
    fn items_follow_the_framing_rules() {
        let mut buf = Buf::with_header(&kdbus_cmd::default());
        buf.push_str_item(KDBUS_ITEM_NAME, "org.example.Foo");
        buf.push_u64_item(KDBUS_ITEM_ID, 42);
        buf.finish();
        let b = buf.as_bytes();
        // header 24, name item: 16 + 16 ("org.example.Foo\0") = 32, id item 24.
        assert_eq!(b.len(), 24 + 32 + 24);
        assert_eq!(buf.u64_at(0), b.len() as u64);
        assert_eq!(buf.u64_at(24), 32);
        assert_eq!(buf.u64_at(32), KDBUS_ITEM_NAME);
        assert_eq!(&b[40..56], b"org.example.Foo\0");
        assert_eq!(buf.u64_at(56), 24);
        assert_eq!(buf.u64_at(64), KDBUS_ITEM_ID);
        assert_eq!(buf.u64_at(72), 42);
    }

    #[test]
    fn items_can_lie_about_their_size() {
        let mut buf = Buf::new();
        buf.push_item_with_size(3, KDBUS_ITEM_ID, &7u64.to_ne_bytes());
        assert_eq!(buf.u64_at(0), 3);
        assert_eq!(buf.u64_at(16), 7);
        assert_eq!(buf.len(), 24);
    }

    #[test]
    fn words_are_pushed_at_any_offset() {
        let mut buf = Buf::new();
        buf.extend(&[1, 2, 3]);
        buf.push_u64(0x1122_3344_5566_7788);
        assert_eq!(buf.len(), 11);
        assert_eq!(buf.as_bytes()[3..], 0x1122_3344_5566_7788u64.to_ne_bytes());
        buf.pad8();
        buf.push_u64(7);
        assert_eq!(buf.len(), 24);
        assert_eq!(buf.u64_at(16), 7);
    }

    #[test]
    fn item_size_excludes_padding() {
        let mut buf = Buf::new();
        buf.push_str_item(KDBUS_ITEM_DST_NAME, "a.b"); // 16 + 4
        assert_eq!(buf.u64_at(0), 20);
        assert_eq!(buf.len(), 24);
        assert_eq!(&buf.as_bytes()[16..24], b"a.b\0\0\0\0\0");
    }

    #[test]
    fn shrinking_then_growing_reads_zeros() {
        let mut buf = Buf::new();
        buf.extend(&[0xff; 16]);
        buf.resize(3);
        buf.resize(16);
        assert_eq!(
            buf.as_bytes(),
            &[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    #[should_panic]
    fn ioctl_fixed_refuses_a_size_other_than_the_struct() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let mut cmd = kdbus_cmd_free {
            size: 8,
            ..Default::default()
        };
        let _ = ioctl_fixed(&null, KDBUS_CMD_FREE, &mut cmd);
    }

    #[test]
    fn kernel_reach_covers_declared_size_and_fixed_struct() {
        let mut buf = Buf::zeroed(24);
        buf.set_u64(0, 1 << 40); // a lie: capped at what the kernel accepts
        assert_eq!(buf.kernel_reach(0, 24), KDBUS_CMD_MAX_SIZE as usize);
        buf.set_u64(0, 4);
        assert_eq!(buf.kernel_reach(0, 96), 96);
        buf.set_u64(0, 200);
        assert_eq!(buf.kernel_reach(0, 24), 200);
        let _ = buf.kernel_ptr(3, 200);
        assert!(buf.words.len() * 8 >= 203);
        assert_eq!(buf.len(), 24, "hidden capacity does not change the length");
    }

    #[test]
    fn unaligned_u64_or_zero_is_read_where_the_kernel_reads_it() {
        let mut buf = Buf::zeroed(64);
        buf.write_bytes(3, &100u64.to_ne_bytes());
        assert_eq!(buf.u64_or_zero(3), 100);
        assert_eq!(buf.u64_or_zero(60), 0, "too short to hold a size");
    }

    #[test]
    fn ioctl_sizes_come_from_the_ioctl_number() {
        assert_eq!(ioc_size(KDBUS_CMD_HELLO), 96);
        assert_eq!(ioc_size(KDBUS_CMD_SEND), 56);
        assert_eq!(ioc_size(KDBUS_CMD_RECV), 64);
        assert_eq!(ioc_size(KDBUS_CMD_BYEBYE), 24);
        assert_eq!(
            command_name(KDBUS_CMD_MATCH_REMOVE),
            "KDBUS_CMD_MATCH_REMOVE"
        );
    }

    #[test]
    fn ioctl_on_a_non_kdbus_fd_returns_the_errno() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let mut buf = Buf::zeroed(24);
        buf.finish();
        assert_eq!(ioctl(&file, KDBUS_CMD_BYEBYE, &mut buf), Err(Errno::NOTTY));
        let mut msg = Buf::zeroed(64);
        msg.finish();
        let mut cmd = Buf::zeroed(56);
        cmd.finish();
        assert_eq!(send(&file, &mut cmd, &mut msg), Err(Errno::NOTTY));
        assert_ne!(cmd.u64_at(24), 0, "msg_address was filled in");
    }

    #[test]
    #[should_panic(expected = "use raw::send")]
    fn ioctl_refuses_a_send_with_a_message_pointer() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let mut cmd = Buf::zeroed(56);
        cmd.finish();
        cmd.set_u64(24, 0x1000);
        let _ = ioctl(&file, KDBUS_CMD_SEND, &mut cmd);
    }
}
