//! Memory whose pages stay missing until the test lets them in
//! (userfaultfd(2) in MISSING mode): a kernel access to it blocks for as
//! long as the test wants, the way a slow FUSE file or a hostile
//! userfaultfd handler would make it block.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};

const UFFD_API: u64 = 0xaa;
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_ZEROPAGE: libc::c_ulong = 0xc020_aa04;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;

/// An anonymous mapping registered with a userfaultfd; unmapped on drop.
pub struct Stall {
    uffd: OwnedFd,
    addr: u64,
    len: usize,
}

fn uffd_ioctl(fd: &OwnedFd, req: libc::c_ulong, arg: &mut [u64]) {
    // SAFETY: `arg` is the complete argument struct of `req` (all of them
    // are arrays of u64), owned for the duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req, arg.as_mut_ptr()) };
    assert_eq!(
        rc,
        0,
        "userfaultfd ioctl {req:#x}: {}",
        std::io::Error::last_os_error()
    );
}

impl Stall {
    /// `pages` missing pages.
    pub fn new(pages: usize) -> Stall {
        // O_NONBLOCK: poll() on a blocking userfaultfd reports POLLERR at
        // once instead of waiting for a fault.
        // SAFETY: creates a userfaultfd, owned right below.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) }
            as i32;
        assert!(fd >= 0, "userfaultfd: {}", std::io::Error::last_os_error());
        // SAFETY: takes ownership of the descriptor just created.
        let uffd = unsafe { OwnedFd::from_raw_fd(fd) };
        uffd_ioctl(&uffd, UFFDIO_API, &mut [UFFD_API, 0, 0]);
        let len = pages * 4096;
        // SAFETY: a fresh anonymous mapping, unmapped in Drop.
        let addr = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
            .unwrap()
        } as u64;
        uffd_ioctl(
            &uffd,
            UFFDIO_REGISTER,
            &mut [addr, len as u64, UFFDIO_REGISTER_MODE_MISSING, 0],
        );
        Stall { uffd, addr, len }
    }

    /// The address of the first page.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Waits (5 s at most, then panics) until some task blocks on a page.
    pub fn wait_fault(&self) {
        let mut fds = [PollFd::new(&self.uffd, PollFlags::IN)];
        let t = Timespec {
            tv_sec: 5,
            tv_nsec: 0,
        };
        assert_eq!(
            poll(&mut fds, Some(&t)).unwrap(),
            1,
            "nothing faulted on the stalled region"
        );
        assert_eq!(
            fds[0].revents(),
            PollFlags::IN,
            "the userfaultfd reports no pending fault"
        );
    }

    /// Maps zero pages over the whole region: whoever waits on it goes on.
    pub fn zero(&self) {
        uffd_ioctl(
            &self.uffd,
            UFFDIO_ZEROPAGE,
            &mut [self.addr, self.len as u64, 0, 0],
        );
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        // SAFETY: unmaps the region mapped in new(); nothing refers to it.
        unsafe { munmap(self.addr as *mut _, self.len).unwrap() };
    }
}
