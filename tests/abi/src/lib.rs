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

/// Runs `f` in a new thread whose credentials are `uid`/`gid` (real,
/// effective and saved; no supplementary groups). Credentials are
/// per-thread in the kernel, so the rest of the test keeps root; files
/// opened in `f` carry the new credentials.
pub fn as_user<T: Send + 'static>(uid: u32, gid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
        let gid = rustix::process::Gid::from_raw(gid);
        set_thread_groups(&[]).expect("setgroups");
        set_thread_res_gid(gid, gid, gid).expect("setresgid");
        let uid = rustix::process::Uid::from_raw(uid);
        set_thread_res_uid(uid, uid, uid).expect("setresuid");
        f()
    })
    .join()
    .expect("thread of another user panicked")
}

/// The live object counters of kdbus.ko (debugfs kdbus/objects).
pub fn kdbus_objects() -> std::collections::BTreeMap<String, i64> {
    let path = Path::new("/sys/kernel/debug/kdbus/objects");
    if !path.exists() {
        // debugfs may not be mounted in the test VM
        let _ = mount(
            "debugfs",
            "/sys/kernel/debug",
            "debugfs",
            MountFlags::empty(),
            None,
        );
    }
    let text = std::fs::read_to_string(path).expect("read debugfs kdbus/objects");
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}
