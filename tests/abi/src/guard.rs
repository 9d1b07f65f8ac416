//! Guard pages: memory the kernel must fault on, for the pointer checks of
//! every command (unmapped arguments, sizes that run past readable
//! memory, unreadable payload).

use std::os::fd::BorrowedFd;

use kdbus::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

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

    /// Issues kdbus ioctl `cmd` with the inaccessible page as argument
    /// (expected outcome: EFAULT).
    pub fn ioctl_unmapped(&self, fd: BorrowedFd<'_>, cmd: u32) -> Result<(), Errno> {
        // SAFETY: the kernel can neither read nor write a PROT_NONE page,
        // so no memory of this process is touched.
        unsafe { kdbus::raw::ioctl_ptr(fd, cmd, self.none_page().cast()) }
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
        unsafe { kdbus::raw::ioctl_ptr(fd, cmd, addr as *mut std::ffi::c_void) }
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
