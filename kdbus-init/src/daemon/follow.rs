//! Following root changes: noticing that PID 1 (or our own binary) moved to
//! another root, entering it, and re-executing that root's kdbus-init with
//! the state and the handles — or a copy of the running binary, when that
//! root has no kdbus-init or one that cannot take the state over (its
//! hand-over marker says so, see `crate::handover`).

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bootenv::mounts;
use bootenv::status::{Activation, Phase, RootKind};
use tracing::{info, warn};

use super::{pid, Daemon, DOMAIN};
use crate::state::monotonic_us;
use crate::{fds, handover};

/// Where kdbus-init may be installed in a root.
pub const BINARY_PATHS: [&str; 3] = [
    "/usr/sbin/kdbus-init",
    "/usr/bin/kdbus-init",
    "/sbin/kdbus-init",
];

/// Where the running binary is copied for a root that has none (on /run,
/// which every root shares).
pub const BINARY_COPY: &str = "/run/kdbus/kdbus-init-copy";

/// Tells whether a file changed since it was looked at: device, inode,
/// size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        let st = rustix::fs::stat(path).ok()?;
        Some(FileId {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
        })
    }
}

/// Copies `from` to `to` as an executable, atomically: an existing copy
/// (perhaps running) is replaced, never half-written.
fn copy_binary(from: &Path, to: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let copied = std::fs::copy(from, &tmp)
        .and_then(|_| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)))
        .and_then(|_| std::fs::rename(&tmp, to));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(to.to_path_buf())
}

/// Which root are we in, given where we were before? An initramfs-like
/// root after the real root, or one with the real root kept at /oldroot
/// (systemd-shutdown's layout; our history may be lost), is the shutdown
/// root.
pub fn root_kind(previous: Option<RootKind>) -> RootKind {
    let initrd_like = mounts::in_initramfs()
        || (Path::new("/etc/initrd-release").exists() && Path::new("/shutdown").exists());
    let oldroot = mounts::is_mount_point(Path::new("/oldroot")).unwrap_or(false);
    match (initrd_like, previous) {
        (true, Some(RootKind::RealRoot | RootKind::ShutdownRoot)) => RootKind::ShutdownRoot,
        (true, _) if oldroot => RootKind::ShutdownRoot,
        (true, _) => RootKind::Initramfs,
        (false, _) => RootKind::RealRoot,
    }
}

impl Daemon {
    /// Settles into the current root: the bus mount is visible, service
    /// files are read, the phase is recorded.
    pub(super) fn enter_root(&mut self) {
        self.ensure_domain_visible();
        let exe = std::fs::read_link("/proc/self/exe")
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.history.phases.push(Phase {
            root: self.root,
            since_us: monotonic_us(),
            pid: pid(),
            exe: exe.clone(),
            bus_id: self.bus.status.as_ref().and_then(|b| b.id.clone()),
        });
        info!(
            root = self.root.as_str(),
            exe = exe.as_str(),
            bus_id = self
                .bus
                .status
                .as_ref()
                .and_then(|b| b.id.as_deref())
                .unwrap_or("none"),
            "running in the {}",
            self.root.as_str()
        );
        self.check_module();
        self.settle();
    }

    /// The bus runs on the module loaded at boot; a root that could not
    /// load it again (no kdbus.ko for this kernel) is worth saying once.
    fn check_module(&mut self) {
        let dir = super::setup::modules_dir();
        if let Err(why) = super::setup::module_in_root(&dir) {
            self.problem(format!(
                "the {} has no kdbus.ko for the running kernel ({why}): the bus {} goes on \
                 with the module loaded at boot, but this root could not load it again; \
                 install kdbus.ko for this kernel in it",
                self.root.as_str(),
                super::BUS_NAME
            ));
        }
    }

    /// Reads the service files and starts what was deferred.
    pub(super) fn settle(&mut self) {
        self.load_services();
        // Deferred starts may work here.
        for i in 0..self.activators.len() {
            if matches!(
                self.activators[i].state.activation,
                Activation::Deferred { .. }
            ) {
                self.activate(i);
            }
        }
        self.write_pid_file();
        self.publish();
    }

    /// Makes /sys/fs/kdbus show our domain in this root: systemd-shutdown
    /// binds /sys into the shutdown root without its submounts.
    pub(super) fn ensure_domain_visible(&mut self) {
        let Some(domain) = &self.bus.domain else {
            return;
        };
        let target = Path::new(DOMAIN);
        let shown = mounts::open_path(target)
            .ok()
            .filter(|fd| mounts::fs_type_fd(fd).ok() == Some(mounts::KDBUS_SUPER_MAGIC))
            .and_then(|fd| mounts::same_file(&fd, domain).ok())
            .unwrap_or(false);
        if shown {
            return;
        }
        match mounts::attach_clone(domain, target) {
            Ok(()) => info!("re-attached the bus domain on {DOMAIN}"),
            Err(e) => {
                warn!("the bus domain is not visible on {DOMAIN} and cannot be attached there: {e}")
            }
        }
    }

    /// Has the root moved away from us? Returns the directory to follow
    /// into (PID 1's root), or None when we are where PID 1 is and our
    /// binary is this root's.
    pub(super) fn root_change(&mut self) -> Option<OwnedFd> {
        // A root that cannot be opened now is looked at again next time.
        if let Some(pid1_root) = mounts::pid1_root_if_elsewhere(&self.watch.proc_dir).ok()? {
            return Some(pid1_root);
        }
        // Same root, but is our binary still this root's? (systemd-shutdown
        // pivots everyone into the shutdown root; our binary then lives
        // under /oldroot.)
        let exe = File::open("/proc/self/exe").ok()?;
        let here = match self.binary_here() {
            Some(path) => Some((File::open(&path).ok()?, path)),
            None => None,
        };
        match here {
            Some((file, _)) if mounts::same_file(&exe, &file).unwrap_or(true) => None,
            // "/" as it is now, after whatever moved us.
            Some((_, path)) if self.refusal(&path).is_none() => {
                mounts::open_path(Path::new("/")).ok()
            }
            // No binary here that could take over (none, or one that cannot
            // read our state): whether this is still the root we entered
            // tells (systemd-shutdown's pivot into a shutdown root without
            // a usable kdbus-init).
            _ => (root_kind(Some(self.root)) != self.root)
                .then(|| mounts::open_path(Path::new("/")).ok())
                .flatten(),
        }
    }

    /// Why the binary at `path` cannot take our state over (None: it can),
    /// from its hand-over marker; read once per file, not at every check.
    fn refusal(&mut self, path: &Path) -> Option<String> {
        let id = FileId::of(path);
        if let (Some(id), Some((seen, verdict))) = (id, &self.watch.checked) {
            if id == *seen {
                return verdict.clone();
            }
        }
        let verdict = handover::refusal(path);
        if let Some(id) = id {
            self.watch.checked = Some((id, verdict.clone()));
        }
        verdict
    }

    fn same_root(&self, fd: &OwnedFd) -> bool {
        mounts::open_path(Path::new("/"))
            .ok()
            .and_then(|ours| mounts::same_file(&ours, fd).ok())
            .unwrap_or(false)
    }

    fn binary_here(&self) -> Option<PathBuf> {
        std::iter::once(self.exe_path.as_str())
            .chain(BINARY_PATHS)
            .map(PathBuf::from)
            .find(|p| p.is_file())
    }

    /// The handles the next process image must inherit.
    fn handles(&self) -> Vec<BorrowedFd<'_>> {
        let mut keep: Vec<BorrowedFd> = Vec::new();
        keep.extend(self.bus.owner.as_ref().map(|b| b.as_fd()));
        keep.extend(self.bus.domain.as_ref().map(|f| f.as_fd()));
        keep.extend(self.activators.iter().map(|a| a.conn.fd()));
        keep.extend(self.bus.orphans.iter().map(|f| f.as_fd()));
        keep
    }

    /// Moves into `root` and re-executes this root's kdbus-init with our
    /// state. Returns only if that failed (we then go on as we are).
    pub(super) fn follow(&mut self, mut root: OwnedFd) {
        // The root may move on while we follow it (switch-root and a quick
        // shutdown): enter until we are where PID 1 is.
        for _ in 0..5 {
            let entered = rustix::process::fchdir(&root)
                .and_then(|_| rustix::process::chroot("."))
                .and_then(|_| rustix::process::chdir("/"));
            if let Err(e) = entered {
                self.problem(format!(
                    "cannot enter the new root: {e}; staying where we are"
                ));
                return;
            }
            match self.root_change() {
                Some(next) if !self.same_root(&next) => root = next,
                _ => break,
            }
        }
        // The new image needs /proc to find its way; without it, wait for
        // the next change rather than exec into a root we cannot run in.
        if !Path::new("/proc/self/mountinfo").exists() {
            warn!("the new root has no /proc yet: following later");
            self.watch.follow_until = Some(Instant::now() + Duration::from_secs(3));
            return;
        }
        // /dev may be a different mount now: reopen our kmsg handle.
        self.log.reopen_kmsg();
        let here = self.binary_here();
        let refused = here
            .clone()
            .and_then(|b| self.refusal(&b).map(|why| (b, why)));
        let binary = match (here, refused) {
            (Some(b), None) => b,
            // A copy in /run holds nothing of the previous root, which can
            // then be unmounted; only if that fails does the old one stay.
            (_, refused) => {
                let (unusable, fix) = match &refused {
                    None => (
                        format!(
                            "the new root has no kdbus-init binary ({})",
                            BINARY_PATHS.join(", ")
                        ),
                        "install kdbus-init in this root".to_owned(),
                    ),
                    Some((b, why)) => (
                        format!(
                            "the new root's kdbus-init {} cannot take over the running one's \
                             state ({why})",
                            b.display()
                        ),
                        format!(
                            "install kdbus-init {} or later in this root",
                            env!("CARGO_PKG_VERSION")
                        ),
                    ),
                };
                // On the console too: the log may be between sinks while
                // the root changes, and this needs someone to act.
                match copy_binary(Path::new("/proc/self/exe"), Path::new(BINARY_COPY)) {
                    Ok(copy) => {
                        let msg = format!(
                            "{unusable}: running a copy of the previous root's at \
                             {BINARY_COPY}; {fix}"
                        );
                        crate::console(&msg);
                        self.problem(msg);
                        copy
                    }
                    Err(e) => {
                        let msg = format!(
                            "{unusable} and copying the running one to {BINARY_COPY} failed \
                             ({e}): going on with the old one, which keeps the previous \
                             root's files referenced; {fix}"
                        );
                        crate::console(&msg);
                        self.problem(msg);
                        self.root = root_kind(Some(self.root));
                        self.enter_root();
                        return;
                    }
                }
            }
        };
        info!(binary = %binary.display(), "root changed: re-executing from the new root");
        let saved = {
            let mut s = self.saved();
            s.log = self.log.save();
            s
        };
        let blob = match bootenv::state::seal("kdbus-init-state", &saved) {
            Ok(fd) => fd,
            Err(e) => {
                self.problem(format!(
                    "cannot save the state for the re-exec: {e}; staying as we are"
                ));
                return;
            }
        };
        let mut keep = self.handles();
        keep.push(blob.as_fd());
        for fd in &keep {
            let _ = fds::clear_cloexec(*fd);
        }
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "--state-fd".into(),
            blob.as_raw_fd().to_string().into(),
        ];
        if self.opts.foreground {
            args.push("--foreground".into());
        }
        if self.opts.debug {
            args.push("--debug".into());
        }
        args.push("--services-dir".into());
        args.push(self.opts.services_dir.clone().into());
        let err = Command::new(&binary).arg0("@kdbus-init").args(&args).exec();
        // Still here: the exec failed. Nothing is lost (saving the log
        // state copied the waiting records, it did not take them); go on.
        for fd in &keep {
            fds::set_cloexec(*fd);
        }
        self.problem(format!(
            "re-executing {} failed: {err}; going on with the running binary",
            binary.display()
        ));
        self.root = root_kind(Some(self.root));
        self.enter_root();
    }
}

#[cfg(test)]
mod tests {
    use super::copy_binary;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_running_binary_is_copied_whole_and_executable() {
        let dir = std::env::temp_dir().join(format!("kdbus-init-copy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let to = dir.join("run/kdbus/kdbus-init-copy");
        let exe = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(
            copy_binary(std::path::Path::new("/proc/self/exe"), &to).unwrap(),
            to
        );
        assert_eq!(std::fs::read(&to).unwrap(), exe);
        let mode = std::fs::metadata(&to).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        // Again over the first copy (a running one is replaced, not written).
        copy_binary(std::path::Path::new("/proc/self/exe"), &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), exe);
        // A failed copy leaves nothing behind.
        let err = copy_binary(&dir.join("missing"), &dir.join("other")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(!dir.join("other.tmp").exists() && !dir.join("other").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
