//! Shared fixtures of the kdbus ABI test suite.
//!
//! Every test mounts its own kdbusfs instance, i.e. its own domain, so tests
//! are independent of each other and may run in parallel.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

/// A fresh kdbusfs mount (a new domain), unmounted on drop.
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
        if let Err(e) = unmount(&self.path, UnmountFlags::empty()) {
            // A failed unmount is a test failure, not something to hide.
            if !std::thread::panicking() {
                panic!("unmount {}: {e}", self.path.display());
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
