//! Raw access to the kdbus ioctls: aligned argument buffers, items, and an
//! ioctl wrapper that passes any pointer the test wants (wrong sizes,
//! unaligned or unmapped arguments are part of what is tested).

use std::os::fd::BorrowedFd;

use kdbus::abi::*;
use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

const MIN_STORAGE: usize = 256;

/// An 8-byte aligned byte buffer for ioctl arguments and items.
#[derive(Clone)]
pub struct Buf {
    words: Vec<u64>,
    len: usize,
}

impl Buf {
    pub fn zeroed(len: usize) -> Buf {
        // Never less than the largest fixed command struct plus a word, so
        // the kernel's write-backs stay inside even for short arguments.
        Buf {
            words: vec![0; (len.div_ceil(8) + 1).max(MIN_STORAGE / 8)],
            len,
        }
    }

    /// Bytes of storage behind ptr().
    pub fn storage(&self) -> usize {
        self.words.len() * 8
    }

    pub fn from_bytes(bytes: &[u8]) -> Buf {
        let mut b = Buf::zeroed(bytes.len());
        b.bytes_mut().copy_from_slice(bytes);
        b
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: plain reinterpretation of initialized u64 storage as
        // bytes; `len` never exceeds the storage.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in bytes(), with exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }

    /// Pointer to the start (8-byte aligned); one spare word of storage
    /// follows the buffer so that `ptr() + 1..7` stays inside it.
    pub fn ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr().cast()
    }

    pub fn addr(&self) -> u64 {
        self.words.as_ptr() as u64
    }

    pub fn u64_at(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.bytes()[off..off + 8].try_into().unwrap())
    }

    pub fn set_u64(&mut self, off: usize, v: u64) {
        self.bytes_mut()[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
}

/// A struct of the ABI viewed as bytes.
pub fn struct_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: the ABI structs are plain #[repr(C)] integers without padding
    // bytes that could be uninitialized.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// Reads a plain ABI struct from (possibly unaligned) bytes.
pub fn read_struct<T: Copy + Default>(bytes: &[u8]) -> T {
    let mut v = T::default();
    let n = std::mem::size_of::<T>().min(bytes.len());
    // SAFETY: T is a plain #[repr(C)] struct of integers; any bit pattern
    // is valid and at most size_of::<T>() bytes are written.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&mut v as *mut T).cast::<u8>(), n);
    }
    v
}

/// One item: `size` = 16 + payload length, padded to 8 in a stream.
pub fn item(ty: u64, payload: &[u8]) -> Vec<u8> {
    let size = 16 + payload.len();
    let mut v = Vec::with_capacity(size.div_ceil(8) * 8);
    v.extend_from_slice(&(size as u64).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(size.div_ceil(8) * 8, 0);
    v
}

pub fn item_u64(ty: u64, v: u64) -> Vec<u8> {
    item(ty, &v.to_ne_bytes())
}

/// A string item (NUL-terminated).
pub fn item_str(ty: u64, s: &str) -> Vec<u8> {
    let mut p = s.as_bytes().to_vec();
    p.push(0);
    item(ty, &p)
}

pub fn item_struct<T: Copy>(ty: u64, v: &T) -> Vec<u8> {
    item(ty, struct_bytes(v))
}

/// A NEGOTIATE item listing item types.
pub fn item_negotiate(types: &[u64]) -> Vec<u8> {
    let p: Vec<u8> = types.iter().flat_map(|t| t.to_ne_bytes()).collect();
    item(KDBUS_ITEM_NEGOTIATE, &p)
}

/// A command: the fixed struct followed by items; `size` is set to the
/// total length.
pub fn cmd<T: Copy>(fixed: &T, items: &[Vec<u8>]) -> Buf {
    cmd_bytes(struct_bytes(fixed), items)
}

/// A command from the bytes of its fixed part (at least 8) and items.
pub fn cmd_bytes(fixed: &[u8], items: &[Vec<u8>]) -> Buf {
    let mut bytes = fixed.to_vec();
    for i in items {
        bytes.extend_from_slice(i);
    }
    let mut b = Buf::from_bytes(&bytes);
    let len = b.len() as u64;
    b.set_u64(0, len);
    b
}

struct RawIoctl {
    cmd: u32,
    arg: *mut u8,
}

// SAFETY: the opcode and pointer are passed through unchanged; the output
// is only the return value, never read from the pointer.
unsafe impl rustix::ioctl::Ioctl for RawIoctl {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> rustix::ioctl::Opcode {
        self.cmd as rustix::ioctl::Opcode
    }

    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        self.arg.cast()
    }

    unsafe fn output_from_ptr(
        _out: rustix::ioctl::IoctlOutput,
        _ptr: *mut core::ffi::c_void,
    ) -> rustix::io::Result<()> {
        Ok(())
    }
}

/// Issues a kdbus ioctl on `buf`, the kernel reads and writes the buffer.
pub fn ioctl(fd: BorrowedFd<'_>, cmd: u32, buf: &mut Buf) -> Result<(), Errno> {
    ioctl_at(fd, cmd, buf, 0)
}

/// Issues a kdbus ioctl with the argument at `buf + offset` (offset 1..7
/// gives an unaligned pointer). The kernel never accesses memory beyond
/// the buffer's storage: it copies at most `size` bytes, which the test
/// controls through the buffer's content.
pub fn ioctl_at(fd: BorrowedFd<'_>, cmd: u32, buf: &mut Buf, offset: usize) -> Result<(), Errno> {
    assert!(offset < 8);
    // Arguments that claim to be larger than their storage belong on a
    // GuardPage, where the kernel faults instead of reading our heap.
    if offset == 0 && buf.len() >= 8 {
        assert!(
            buf.u64_at(0) as usize <= buf.storage(),
            "size beyond storage"
        );
    }
    let arg = buf.ptr().wrapping_add(offset);
    // SAFETY: `arg` points into `buf`, which we own mutably for the call;
    // the kernel bounds every access by the size field it reads first and
    // fails with EFAULT/EINVAL/EMSGSIZE otherwise.
    unsafe { rustix::ioctl::ioctl(fd, RawIoctl { cmd, arg }) }
}

/// Issues a kdbus ioctl with an argument pointer into a page that is not
/// accessible (expected outcome: EFAULT).
pub fn ioctl_unmapped(fd: BorrowedFd<'_>, cmd: u32, guard: &GuardPage) -> Result<(), Errno> {
    // SAFETY: the pointer targets a PROT_NONE page: the kernel can neither
    // read nor write it, so no memory of this process is touched.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            RawIoctl {
                cmd,
                arg: guard.none_page(),
            },
        )
    }
}

/// A read-write page followed by an inaccessible one: data placed at the
/// end of the first page lets the kernel run into the second.
pub struct GuardPage {
    base: *mut u8,
    page: usize,
}

// SAFETY: the mapping is owned; accesses go through &self / &mut self.
unsafe impl Send for GuardPage {}
// SAFETY: shared access only reads addresses, never the memory.
unsafe impl Sync for GuardPage {}

impl GuardPage {
    pub fn new() -> GuardPage {
        let page = rustix::param::page_size();
        // SAFETY: a fresh anonymous mapping of two pages; the second is
        // made inaccessible.
        let base = unsafe {
            let p = rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                2 * page,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
            .expect("mmap guard pages");
            rustix::mm::mprotect(
                p.cast::<u8>().add(page).cast(),
                page,
                MprotectFlags::empty(),
            )
            .expect("mprotect guard page");
            p.cast::<u8>()
        };
        GuardPage { base, page }
    }

    /// Address of the inaccessible page.
    pub fn none_page(&self) -> *mut u8 {
        self.base.wrapping_add(self.page)
    }

    /// Copies `bytes` so that they end exactly at the inaccessible page and
    /// returns their address (8-byte aligned if `bytes.len()` is a multiple
    /// of 8).
    pub fn place_at_end(&mut self, bytes: &[u8]) -> u64 {
        assert!(bytes.len() <= self.page);
        let start = self.page - bytes.len();
        // SAFETY: the destination lies within the first (writable) page.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(start), bytes.len());
        }
        self.base as u64 + start as u64
    }

    /// Issues an ioctl whose argument is `bytes` placed at the end of the
    /// writable page: a size field larger than `bytes` makes the kernel
    /// read into the inaccessible page.
    pub fn ioctl_at_end(
        &mut self,
        fd: BorrowedFd<'_>,
        cmd: u32,
        bytes: &[u8],
    ) -> Result<(), Errno> {
        let addr = self.place_at_end(bytes);
        // SAFETY: the argument lies in our writable page followed by the
        // PROT_NONE page; the kernel writes only within the declared
        // command, which is inside the writable page or faults.
        unsafe {
            rustix::ioctl::ioctl(
                fd,
                RawIoctl {
                    cmd,
                    arg: addr as *mut u8,
                },
            )
        }
    }
}

impl Default for GuardPage {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for GuardPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in new().
        unsafe {
            let _ = rustix::mm::munmap(self.base.cast(), 2 * self.page);
        }
    }
}
