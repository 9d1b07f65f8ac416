//! The kdbus ABI test suite: fixtures and a raw-ioctl layer.
//!
//! Every test mounts its own kdbusfs instance, i.e. its own domain, so tests
//! are independent of each other and may run in parallel. The raw layer
//! (`raw`) lets a test send arbitrary bytes, unaligned or unmapped
//! arguments and wrong sizes; `conn` wraps the commands for the common
//! paths while keeping every errno visible.

pub mod conn;
pub mod msg;
pub mod raw;

pub use conn::{Bus, Conn, Hello, Pool, Recv, Sent, BLOOM_SIZE, POOL_SIZE};
pub use msg::{Info, Item, Msg, MsgBuilder};
pub use raw::{Buf, GuardPage};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

/// A fresh kdbusfs mount (a new domain), detached on drop (it disappears
/// once the last file opened in it is closed).
pub struct Domain {
    path: PathBuf,
}

impl Domain {
    pub fn new() -> Domain {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "kdbus-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create mount point");
        mount("kdbusfs", &path, "kdbusfs", MountFlags::empty(), None).unwrap_or_else(|e| {
            panic!(
                "mount kdbusfs on {}: {e} (is kdbus.ko loaded?)",
                path.display()
            )
        });
        Domain { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn control(&self) -> PathBuf {
        self.path.join("control")
    }
}

impl Default for Domain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.path, UnmountFlags::DETACH) {
            // A failed unmount is a test failure, not something to hide.
            if !std::thread::panicking() {
                panic!("unmount {}: {e}", self.path.display());
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A cookie not used before in this process.
pub fn next_cookie() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// CLOCK_MONOTONIC now, in ns (the clock of kdbus deadlines).
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A deadline `ms` milliseconds from now.
pub fn deadline_ms(ms: u64) -> u64 {
    now_ns() + ms * 1_000_000
}

/// The errno of a failed result, for assertions.
pub fn errno<T: std::fmt::Debug>(r: Result<T, rustix::io::Errno>) -> rustix::io::Errno {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}
