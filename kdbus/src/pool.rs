//! The receive pool (spec §8.1): a read-only shared mapping of the
//! connection's shmem file, into which only the kernel writes.

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

use crate::error::{Error, Result};

/// A read-only mapping of a connection's pool.
///
/// The kernel writes into free parts of the pool at any time, but never
/// into a slice it has published (by returning its offset) until userspace
/// frees it. So the only views handed out are of published slices, and
/// they must not outlive the `KDBUS_CMD_FREE` of their slice — the types
/// that hold them ([`crate::Message`] and friends) free on drop.
pub(crate) struct Pool {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and unmapped only on drop; every view
// of it is of a slice the kernel leaves alone while the view exists (see
// above). Sharing or sending the handle across threads changes nothing.
unsafe impl Send for Pool {}
// SAFETY: as above; `Pool` offers only `&self` reads.
unsafe impl Sync for Pool {}

impl Pool {
    /// Maps `len` bytes of the pool of connection `fd`.
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize) -> Result<Pool> {
        if len == 0 {
            return Err(Error::invalid_argument("pool size 0"));
        }
        // SAFETY: a fresh shared read-only mapping chosen by the kernel
        // (null hint, no MAP_FIXED) overlaps nothing of ours.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| Error::system("mmap kdbus pool", e))?;
        let base = NonNull::new(ptr.cast())
            .ok_or_else(|| Error::malformed("pool mapping", "mmap returned a null address"))?;
        Ok(Pool { base, len })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bounds check of a slice the kernel reported.
    fn range(&self, offset: u64, size: u64) -> Result<(usize, usize)> {
        match offset.checked_add(size) {
            Some(end) if end <= self.len as u64 => Ok((offset as usize, size as usize)),
            _ => Err(Error::malformed(
                "pool slice",
                format!(
                    "offset {offset} + size {size} lies outside the {}-byte pool",
                    self.len
                ),
            )),
        }
    }

    /// A view of a published slice.
    ///
    /// The caller guarantees that `offset..offset+size` was published by the
    /// kernel and stays unfreed while the returned view is alive.
    pub(crate) fn published(&self, offset: u64, size: u64) -> Result<&[u8]> {
        let (start, len) = self.range(offset, size)?;
        // SAFETY: in bounds of the live mapping (checked above); the
        // kernel does not write a published slice until it is freed, and
        // the caller keeps it unfreed while the view lives.
        Ok(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(start), len) })
    }

    /// A copy of any part of the pool (for raw users, who track slices
    /// themselves).
    pub(crate) fn copy(&self, offset: u64, size: u64) -> Result<Vec<u8>> {
        let (start, len) = self.range(offset, size)?;
        let mut out = vec![0u8; len];
        // SAFETY: in bounds of the live mapping; a byte copy into our own
        // buffer, which holds no reference into the pool afterwards.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.as_ptr().add(start), out.as_mut_ptr(), len)
        };
        Ok(out)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no views remain
        // because they borrow the connection that owns this pool.
        let _ = unsafe { munmap(self.base.as_ptr().cast(), self.len) };
    }
}
