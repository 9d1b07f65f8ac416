//! Inherited file descriptors: taking them over by number, finding the
//! kdbus handles among them, and marking which ones an exec keeps.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use bootenv::mounts;
use rustix::io::FdFlags;

pub fn clear_cloexec(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    rustix::io::fcntl_setfd(fd, FdFlags::empty())?;
    Ok(())
}

pub fn set_cloexec(fd: BorrowedFd<'_>) {
    let _ = rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC);
}

/// Takes ownership of an inherited fd number, checking it is open.
pub fn adopt(raw: RawFd) -> Option<OwnedFd> {
    if raw < 0 {
        return None;
    }
    // SAFETY: F_GETFD on an arbitrary number has no side effects; we take
    // the fd only if it is open, and the state that named it was handed to
    // us together with it, so nobody else owns it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    rustix::io::fcntl_getfd(borrowed).ok()?;
    set_cloexec(borrowed);
    // SAFETY: see above; the fd is open and now owned by us alone.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The open fds of this process that lead into a kdbusfs mount (to keep a
/// bus alive when the state describing them is lost).
pub fn kdbus_fds(except: &[RawFd]) -> Vec<OwnedFd> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    let nums: Vec<RawFd> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for n in nums {
        if n <= 2 || except.contains(&n) {
            continue;
        }
        // SAFETY: borrowed only for fstatfs; see adopt for taking it.
        let b = unsafe { BorrowedFd::borrow_raw(n) };
        if mounts::fs_type_fd(b).ok() == Some(mounts::KDBUS_SUPER_MAGIC) {
            if let Some(fd) = adopt(n) {
                out.push(fd);
            }
        }
    }
    out
}
