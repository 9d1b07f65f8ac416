//! The bus the benchmarks run on: a fresh bus in the kdbusfs domain at
//! `/sys/fs/kdbus` if one is mounted, else in a private kdbusfs mount that
//! is removed again afterwards.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kdbus::{own_name, Bus, BusBuilder, HelloBuilder, KDBUSFS_MOUNT};
use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

/// Pool size of benchmark connections: room for a few 1 MiB messages
/// within the pool quota (half the pool for incoming messages).
pub const POOL_SIZE: u64 = 64 * 1024 * 1024;

pub struct BenchBus {
    /// Declared first: the bus goes before its mount.
    bus: Bus,
    endpoint: PathBuf,
    _mount: Option<PrivateMount>,
}

impl BenchBus {
    /// A new bus, in `mount` if given (a kdbusfs mount point), else as
    /// described above.
    pub fn create(mount: Option<&Path>) -> Result<BenchBus> {
        let (dir, private) = match mount {
            Some(dir) => (dir.to_owned(), None),
            None if Path::new(KDBUSFS_MOUNT).join("control").exists() => {
                (PathBuf::from(KDBUSFS_MOUNT), None)
            }
            None => {
                let m = PrivateMount::new()?;
                (m.path.clone(), Some(m))
            }
        };
        let name = own_name(&format!("bench-{}", std::process::id()));
        let bus = BusBuilder::new(&name)
            .create_in(&dir)
            .with_context(|| format!("creating bus {name} in {}", dir.display()))?;
        let endpoint = bus.endpoint().context("bus endpoint")?;
        Ok(BenchBus {
            bus,
            endpoint,
            _mount: private,
        })
    }

    /// A connection for benchmarks.
    pub fn connect(&self, description: &str) -> Result<kdbus::Connection> {
        self.connect_with(
            HelloBuilder::new()
                .pool_size(POOL_SIZE)
                .description(description),
        )
    }

    /// A connection as `hello` describes it.
    pub fn connect_with(&self, hello: HelloBuilder) -> Result<kdbus::Connection> {
        hello
            .connect(&self.endpoint)
            .with_context(|| format!("connecting to {}", self.endpoint.display()))
    }

    /// The bus's endpoint file.
    pub fn endpoint(&self) -> &Path {
        &self.endpoint
    }

    pub fn name(&self) -> &str {
        self.bus.name()
    }
}

/// A kdbusfs mount of our own (a fresh domain).
struct PrivateMount {
    path: PathBuf,
}

impl PrivateMount {
    fn new() -> Result<PrivateMount> {
        if !Path::new("/proc/filesystems").exists()
            || !std::fs::read_to_string("/proc/filesystems")?.contains("kdbusfs")
        {
            bail!("kdbusfs is not available: load kdbus.ko first (insmod kmod/kdbus.ko)");
        }
        let path = std::env::temp_dir().join(format!("kdbus-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        mount("kdbusfs", &path, "kdbusfs", MountFlags::empty(), None).with_context(|| {
            format!(
                "mounting kdbusfs on {} (needs root, or pass --mount)",
                path.display()
            )
        })?;
        Ok(PrivateMount { path })
    }
}

impl Drop for PrivateMount {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.path, UnmountFlags::DETACH) {
            eprintln!("kdbus-bench: unmount {}: {e}", self.path.display());
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
