//! The kdbus ABI test suite: fixtures the `kdbus` library does not (and
//! should not) offer.
//!
//! The tests use the library's safe API for ordinary paths and error
//! paths, and `kdbus::raw` for deliberately malformed arguments. What is
//! here exists only for testing: every test mounts its own kdbusfs
//! instance, i.e. its own domain, so tests are independent of each other
//! and may run in parallel (`Domain`, `fixture::TestBus`); a thread can
//! drop to another user (`as_user`); guard pages provoke faults
//! (`guard`) and userfaultfd stalls slow ones (`stall`); the module's
//! object counters show leaks (`kdbus_objects`).

pub mod fixture;
pub mod guard;
pub mod stall;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

/// A fresh kdbusfs mount (a new domain), detached on drop (it disappears
/// once the last file opened in it is closed).
#[derive(Debug)]
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
