//! Getting the bus: created at the first start (module, kdbusfs mount, bus),
//! or taken over from a previous process image with its handles.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;
use std::process::{Command, Stdio};

use bootenv::log::BootLog;
use bootenv::mounts;
use bootenv::status::{BusStatus, RootKind};
use kdbus::{AttachFlags, Bus, BusBuilder, Connection};
use tracing::{debug, info, warn};

use super::{root_kind, Activator, Daemon, Options, BUS_NAME, DOMAIN};
use crate::activator;
use crate::error::{Error, Result};
use crate::fds;
use crate::state::{monotonic_us, Saved, SavedActivator};
use crate::store;

/// Where kdbus-init is installed when the state does not say.
const DEFAULT_BINARY: &str = "/usr/sbin/kdbus-init";

/// The bus's id128 as hex, read with a short-lived HELLO.
pub(super) fn bus_id(path: &Path) -> Option<String> {
    match activator::peer(path) {
        Ok(c) => Some(kdbus::id128_hex(c.bus_id128())),
        Err(e) => {
            warn!("cannot read the bus id ({e})");
            None
        }
    }
}

impl Daemon {
    /// First start: load the module, mount kdbusfs, create the bus.
    /// Errors are reported by the caller; the boot goes on without the bus.
    pub fn start(opts: Options, log: BootLog, exe_path: String) -> Result<Daemon> {
        let mut d = Daemon::new(opts, log, exe_path)?;
        d.root = root_kind(None);
        info!(root = d.root.as_str(), "kdbus-init starting: kdbus=1");
        load_module()?;
        let domain = Path::new(DOMAIN);
        if mounts::fs_type(domain).ok() != Some(mounts::KDBUS_SUPER_MAGIC) {
            mounts::mount_kdbusfs(domain).map_err(Error::Mount)?;
            info!("mounted kdbusfs on {DOMAIN}");
        }
        d.bus.domain = Some(mounts::open_path(domain).map_err(Error::OpenDomain)?);
        let path = kdbus::bus_path(DOMAIN, BUS_NAME);
        // The system bus: everyone may connect; the creator's metadata is
        // there for `kdbusctl status` (BUS_CREATOR_INFO).
        let made = BusBuilder::new(BUS_NAME)
            .world_accessible()
            .creator_attach_flags(AttachFlags::all())
            .create_in(domain);
        let owner = match made {
            Ok(bus) => Some(bus),
            Err(e) if e.is(kdbus::Errno::EXIST) => {
                warn!("bus {BUS_NAME} already exists: adopting it without its owner handle");
                None
            }
            Err(e) if e.is(kdbus::Errno::NOTTY) => return Err(Error::NoBusMake),
            Err(e) => return Err(Error::BusMake(e)),
        };
        let id = bus_id(&path);
        d.bus.status = Some(BusStatus {
            name: BUS_NAME.into(),
            path: path.display().to_string(),
            id: id.clone(),
            owner_held: owner.is_some(),
            created_us: monotonic_us(),
        });
        d.bus.owner = owner;
        info!(
            bus_id = id.as_deref().unwrap_or("unknown"),
            "bus {BUS_NAME} ready"
        );
        d.choose_keeper();
        d.enter_root();
        if d.root == RootKind::Initramfs {
            need_shutdown();
        }
        d.keep_all();
        Ok(d)
    }

    /// After a re-exec: take over the bus from the state blob.
    pub fn resume(
        opts: Options,
        log: BootLog,
        saved: Result<Saved>,
        state_fd: RawFd,
    ) -> Result<Daemon> {
        match saved {
            Ok(saved) => {
                let mut d = Daemon::new(opts, log, saved.exe_path.clone())?;
                d.keeping.restarts = saved.restarts;
                d.keeping.last_restart_us = saved.last_restart_us;
                d.history.phases = saved.history;
                d.history.activations = saved.activations;
                d.history.problems = saved.problems;
                d.bus.orphans = saved
                    .orphan_fds
                    .into_iter()
                    .filter_map(fds::adopt)
                    .collect();
                // The domain first: adopting the bus needs its node.
                d.bus.domain = saved.domain_fd.and_then(fds::adopt);
                d.ensure_domain_visible();
                d.bus.status = saved.bus;
                if let Some(fd) = saved.owner_fd.and_then(fds::adopt) {
                    d.bus.owner = d.take_over(fd, "the bus owner handle", |fd| {
                        Bus::adopt(fd, DOMAIN, BUS_NAME)
                    });
                } else if saved.owner_fd.is_some() {
                    d.problem("the bus owner handle did not survive the re-exec".into());
                }
                if let Some(b) = d.bus.status.as_mut() {
                    b.owner_held = d.bus.owner.is_some();
                }
                for a in saved.activators {
                    let Some(fd) = fds::adopt(a.fd) else {
                        d.problem(format!(
                            "the activator of {} (fd {}) did not survive the re-exec; recreating it",
                            a.status.name, a.fd
                        ));
                        continue;
                    };
                    d.adopt_activator(fd, a);
                }
                let previous = d.history.phases.last().map(|p| p.root);
                d.root = root_kind(previous);
                d.choose_keeper();
                d.enter_root();
                d.keep_all();
                Ok(d)
            }
            Err(why) => {
                // Whatever the blob said, the bus lives as long as one of
                // its handles: keep every kdbusfs fd we inherited.
                let mut d = Daemon::new(opts, log, DEFAULT_BINARY.to_owned())?;
                d.bus.orphans = fds::kdbus_fds(&[state_fd]);
                d.problem(format!(
                    "{why}; keeping {} inherited kdbus handle(s) open so the bus survives, \
                     activators are recreated where possible",
                    d.bus.orphans.len()
                ));
                d.root = root_kind(None);
                d.choose_keeper();
                let path = kdbus::bus_path(DOMAIN, BUS_NAME);
                if path.exists() {
                    d.bus.status = Some(BusStatus {
                        name: BUS_NAME.into(),
                        path: path.display().to_string(),
                        id: bus_id(&path),
                        owner_held: false,
                        created_us: monotonic_us(),
                    });
                }
                d.bus.domain = mounts::open_path(Path::new(DOMAIN)).ok();
                d.enter_root();
                d.keep_all();
                Ok(d)
            }
        }
    }

    /// After kdbus-init died or was stopped: take the bus back from the
    /// fd store (`stored`, by name) with the state it left in the state
    /// file. Activations go on where they were: a name whose service was
    /// being started is not started again, a queued message not yet seen
    /// is seen now.
    pub fn restart(
        opts: Options,
        log: BootLog,
        saved: Result<Saved>,
        stored: Vec<(String, OwnedFd)>,
    ) -> Result<Daemon> {
        let mut stored: HashMap<String, OwnedFd> = stored.into_iter().collect();
        let exe = saved
            .as_ref()
            .map_or(DEFAULT_BINARY.to_owned(), |s| s.exe_path.clone());
        let mut d = Daemon::new(opts, log, exe)?;
        d.keeping.last_restart_us = Some(monotonic_us());
        let previous = match saved {
            Ok(saved) => {
                d.keeping.restarts = saved.restarts + 1;
                d.history.phases = saved.history;
                d.history.activations = saved.activations;
                d.history.problems = saved.problems;
                d.bus.status = saved.bus;
                d.bus.domain = stored.remove(store::BUS_DOMAIN);
                d.ensure_domain_visible();
                match stored.remove(store::BUS_OWNER) {
                    Some(fd) => {
                        d.bus.owner = d.take_over(fd, "the bus owner handle", |fd| {
                            Bus::adopt(fd, DOMAIN, BUS_NAME)
                        })
                    }
                    None if saved.owner_fd.is_some() => {
                        d.problem("the bus owner handle was not in the fd store".into())
                    }
                    None => {}
                }
                for a in saved.activators {
                    let Some(fd) = stored.remove(&store::activator_name(a.status.conn_id)) else {
                        d.problem(format!(
                            "the activator of {} was not in the fd store; recreating it",
                            a.status.name
                        ));
                        continue;
                    };
                    d.adopt_activator(fd, a);
                }
                d.history.phases.last().map(|p| p.root)
            }
            Err(why) => {
                d.keeping.restarts = 1;
                d.problem(format!(
                    "{why}; keeping the {} handle(s) of the fd store open so the bus survives, \
                     activators are recreated where possible",
                    stored.len()
                ));
                let path = kdbus::bus_path(DOMAIN, BUS_NAME);
                d.bus.status = path.exists().then(|| BusStatus {
                    name: BUS_NAME.into(),
                    path: path.display().to_string(),
                    id: bus_id(&path),
                    owner_held: false,
                    created_us: monotonic_us(),
                });
                d.bus.domain = stored.remove(store::BUS_DOMAIN);
                None
            }
        };
        // Whatever is left (handles kept for their messages) stays open.
        d.bus.orphans.extend(stored.into_values());
        if let Some(b) = d.bus.status.as_mut() {
            b.owner_held = d.bus.owner.is_some();
        }
        d.root = root_kind(previous);
        d.choose_keeper();
        info!(
            restarts = d.keeping.restarts,
            bus_id = d
                .bus
                .status
                .as_ref()
                .and_then(|b| b.id.as_deref())
                .unwrap_or("none"),
            activators = d.activators.len(),
            "restart {} in the {}: took over the bus from the fd store",
            d.keeping.restarts,
            d.root.as_str()
        );
        d.settle();
        d.keep_all();
        Ok(d)
    }

    /// Takes over an inherited kdbus handle with `adopt`. If that fails the
    /// handle is kept open anyway — the bus, or the messages queued on an
    /// activator, live as long as it — and the failure is reported.
    /// Takes back a saved activator's connection from its handle.
    fn adopt_activator(&mut self, fd: OwnedFd, a: SavedActivator) {
        let what = format!("the activator of {}", a.status.name);
        if let Some(conn) = self.take_over(fd, &what, |fd| Connection::adopt(fd, a.conn)) {
            self.activators.push(Activator {
                conn,
                state: a.status,
                child: None,
            });
        }
    }

    fn take_over<T>(
        &mut self,
        fd: OwnedFd,
        what: &str,
        adopt: impl FnOnce(OwnedFd) -> kdbus::Result<T>,
    ) -> Option<T> {
        let result = match fd.try_clone() {
            Ok(copy) => adopt(copy).map_err(|source| Error::TakeOver {
                what: what.to_owned(),
                source,
            }),
            Err(source) => Err(Error::Dup {
                what: what.to_owned(),
                source,
            }),
        };
        match result {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(format!(
                    "{e}; keeping its handle open so that nothing queued on it is lost"
                ));
                self.bus.orphans.push(fd);
                None
            }
        }
    }
}

/// Loads kdbus.ko unless it is loaded (or built in).
fn load_module() -> Result<()> {
    if Path::new("/sys/module/kdbus").exists() {
        return Ok(());
    }
    let out = Command::new("modprobe")
        .args(["-q", "kdbus"])
        .stdin(Stdio::null())
        .output()
        .map_err(Error::Modprobe)?;
    if out.status.success() {
        info!("loaded kdbus.ko");
        return Ok(());
    }
    Err(Error::ModuleMissing {
        kernel: release(),
        detail: match String::from_utf8_lossy(&out.stderr).trim() {
            "" => format!("exit status {}", out.status),
            s => s.to_owned(),
        },
    })
}

/// Can this root load kdbus.ko for the running kernel (`modules_dir` is
/// its `/lib/modules/RELEASE`)? Built in, or named in modules.dep with the
/// file there; otherwise says what is missing.
pub(super) fn module_in_root(modules_dir: &Path) -> Result<()> {
    let is_kdbus = |path: &str| {
        Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "kdbus.ko" || n.starts_with("kdbus.ko."))
    };
    let builtin = std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    if builtin.lines().any(|l| is_kdbus(l.trim())) {
        return Ok(());
    }
    let dep = modules_dir.join("modules.dep");
    let text = std::fs::read_to_string(&dep).map_err(|source| Error::ModulesDep {
        path: dep.display().to_string(),
        source,
    })?;
    let entry = text
        .lines()
        .filter_map(|l| l.split_once(':').map(|(m, _)| m.trim()))
        .find(|m| is_kdbus(m))
        .ok_or_else(|| Error::ModuleNotListed(dep.display().to_string()))?;
    let file = modules_dir.join(entry);
    if file.is_file() {
        Ok(())
    } else {
        Err(Error::ModuleFileMissing {
            dep: dep.display().to_string(),
            entry: entry.to_owned(),
            file: file.display().to_string(),
        })
    }
}

/// This root's module directory for the running kernel.
pub(super) fn modules_dir() -> std::path::PathBuf {
    Path::new("/lib/modules").join(release())
}

fn release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// Asks dracut to unpack the initramfs into /run/initramfs at shutdown, so
/// the bus has a root to move into (dracut-shutdown.service does nothing
/// without this flag).
fn need_shutdown() {
    let _ = std::fs::create_dir_all("/run/initramfs");
    match File::create("/run/initramfs/.need_shutdown") {
        Ok(_) => debug!("requested the shutdown root (/run/initramfs/.need_shutdown)"),
        Err(e) => warn!("cannot request the shutdown root: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::module_in_root;

    #[test]
    fn a_root_without_the_module_is_told_apart() {
        let dir = std::env::temp_dir().join(format!("kdbus-init-modules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("extra")).unwrap();
        let err = module_in_root(&dir).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("modules.dep"),
            "{err}"
        );
        std::fs::write(dir.join("modules.dep"), "kernel/fs/fuse/fuse.ko:\n").unwrap();
        let err = module_in_root(&dir).unwrap_err().to_string();
        assert!(err.contains("does not name kdbus.ko"), "{err}");
        // Named, but the file was removed without depmod.
        std::fs::write(
            dir.join("modules.dep"),
            "kernel/fs/fuse/fuse.ko:\nextra/kdbus.ko.xz: kernel/fs/fuse/fuse.ko\n",
        )
        .unwrap();
        let err = module_in_root(&dir).unwrap_err().to_string();
        assert!(
            err.contains("extra/kdbus.ko.xz") && err.contains("missing"),
            "{err}"
        );
        std::fs::write(dir.join("extra/kdbus.ko.xz"), b"").unwrap();
        assert!(module_in_root(&dir).is_ok());
        // Built in: no file needed.
        std::fs::remove_file(dir.join("extra/kdbus.ko.xz")).unwrap();
        std::fs::write(dir.join("modules.builtin"), "kernel/ipc/kdbus.ko\n").unwrap();
        assert!(module_in_root(&dir).is_ok());
        // A module of another name ending the same way is not ours.
        std::fs::write(dir.join("modules.builtin"), "kernel/ipc/notkdbus.ko\n").unwrap();
        assert!(module_in_root(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
