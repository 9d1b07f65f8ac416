//! The checks and the switch itself.

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use bootenv::mounts;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::mount::MountPropagationFlags;

/// The API file systems that move with us.
const MOVED: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];
/// Where kdbus-init leaves its pid (below /run, which moves along).
const KDBUS_INIT_PID: &str = "run/kdbus/kdbus-init.pid";

/// Says `msg` on stderr and in the kernel log (the console may be all a
/// user has at this point).
pub fn report(msg: &str) {
    eprintln!("switch-root: {msg}");
    if let Ok(mut k) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        for rec in bootenv::kmsg::records(3, "switch-root", std::process::id(), msg) {
            let _ = k.write_all(&rec);
        }
    }
}

fn info(msg: &str) {
    if let Ok(mut k) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        for rec in bootenv::kmsg::records(6, "switch-root", std::process::id(), msg) {
            let _ = k.write_all(&rec);
        }
    }
}

/// A switch that passed every check.
#[derive(Debug)]
pub struct Plan {
    pub newroot: PathBuf,
    /// INIT as a path inside NEWROOT (absolute).
    pub init: PathBuf,
}

#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: String) -> Result<T, Error> {
    Err(Error(msg))
}

impl Plan {
    pub fn check(newroot: &Path, init: &Path) -> Result<Plan, Error> {
        let root_type =
            mounts::fs_type(Path::new("/")).map_err(|e| Error(format!("cannot stat /: {e}")))?;
        if root_type != mounts::RAMFS_MAGIC && root_type != mounts::TMPFS_MAGIC {
            return err(
                "/ is not an initramfs (neither ramfs nor tmpfs): refusing to switch away \
                 and delete its contents"
                    .into(),
            );
        }
        let newroot = match newroot.canonicalize() {
            Ok(p) => p,
            Err(e) => {
                return err(format!(
                    "NEWROOT {}: {e} (mount the real root there first)",
                    newroot.display()
                ))
            }
        };
        if newroot == Path::new("/") {
            return err("NEWROOT is the current root: nothing to switch to".into());
        }
        if !newroot.is_dir() {
            return err(format!("NEWROOT {} is not a directory", newroot.display()));
        }
        match mounts::is_mount_point(&newroot) {
            Ok(true) => {}
            Ok(false) => {
                return err(format!(
                    "NEWROOT {} is not a mount point (mount the real root there, or \
                     bind-mount the directory onto itself)",
                    newroot.display()
                ))
            }
            Err(e) => return err(format!("NEWROOT {}: {e}", newroot.display())),
        }
        let resolved = resolve_inside(&newroot, init)?;
        let host = newroot.join(resolved.strip_prefix("/").unwrap_or(&resolved));
        let meta = match std::fs::metadata(&host) {
            Ok(m) => m,
            Err(e) => {
                return err(format!(
                    "INIT {} not found in NEWROOT {} ({e}): pass init= with a program that \
                     exists in the real root",
                    init.display(),
                    newroot.display()
                ))
            }
        };
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return err(format!(
                "INIT {} in NEWROOT {} is not an executable file",
                init.display(),
                newroot.display()
            ));
        }
        Ok(Plan {
            newroot,
            init: resolved,
        })
    }

    /// Performs the switch and execs INIT; returns only on failure.
    pub fn execute(&self, args: &[OsString]) -> Error {
        match self.switch() {
            Ok(()) => {}
            Err(e) => return e,
        }
        let path = match CString::new(self.init.as_os_str().as_bytes()) {
            Ok(p) => p,
            Err(_) => return Error("INIT contains a NUL byte".into()),
        };
        let mut argv = vec![path.clone()];
        for a in args {
            match CString::new(a.as_bytes()) {
                Ok(a) => argv.push(a),
                Err(_) => return Error("an argument contains a NUL byte".into()),
            }
        }
        let e = exec(&path, &argv);
        Error(format!(
            "executing {} failed after the switch: {e}",
            self.init.display()
        ))
    }

    fn switch(&self) -> Result<(), Error> {
        let newroot = &self.newroot;
        // MS_MOVE is refused below a shared mount.
        let _ = rustix::mount::mount_change(
            "/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        );
        for api in MOVED {
            let from = Path::new(api);
            if !mounts::is_mount_point(from).unwrap_or(false) {
                continue;
            }
            let to = newroot.join(&api[1..]);
            if !to.is_dir() && std::fs::create_dir_all(&to).is_err() {
                report(&format!(
                    "{} is missing in NEWROOT and cannot be created: unmounting {api}",
                    to.display()
                ));
                let _ = rustix::mount::unmount(from, rustix::mount::UnmountFlags::DETACH);
                continue;
            }
            if let Err(e) = rustix::mount::mount_move(from, &to) {
                report(&format!(
                    "moving {api} to {} failed ({e}): unmounting it",
                    to.display()
                ));
                let _ = rustix::mount::unmount(from, rustix::mount::UnmountFlags::DETACH);
            }
        }
        rustix::process::chdir(newroot)
            .map_err(|e| Error(format!("chdir {}: {e}", newroot.display())))?;
        let old_root = rustix::fs::open(
            "/",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error(format!("open /: {e}")))?;
        rustix::mount::mount_move(newroot, "/").map_err(|e| {
            Error(format!(
                "moving {} onto / failed: {e} (the API file systems were already moved into it)",
                newroot.display()
            ))
        })?;
        rustix::process::chroot(".").map_err(|e| Error(format!("chroot: {e}")))?;
        rustix::process::chdir("/").map_err(|e| Error(format!("chdir /: {e}")))?;

        notify_kdbus_init();
        // The old root is unreachable by path now; only our fd leads to it.
        let removed = remove_children(&old_root);
        info(&format!(
            "switched to {}, removed {removed} initramfs entries, executing {}",
            newroot.display(),
            self.init.display()
        ));
        Ok(())
    }
}

/// Resolves `init` inside `root`, following absolute symlinks relative to
/// `root` (as dracut does for `init=`), at most 40 times.
fn resolve_inside(root: &Path, init: &Path) -> Result<PathBuf, Error> {
    if !init.is_absolute() {
        return err(format!("INIT {} must be an absolute path", init.display()));
    }
    let mut path = PathBuf::from("/");
    let mut todo: Vec<PathBuf> = vec![init.to_path_buf()];
    let mut hops = 0;
    while let Some(p) = todo.pop() {
        let mut comps: Vec<Component> = p.components().collect();
        comps.reverse();
        while let Some(c) = comps.pop() {
            match c {
                Component::RootDir => path = PathBuf::from("/"),
                Component::CurDir => {}
                Component::ParentDir => {
                    path.pop();
                }
                Component::Normal(n) => {
                    let candidate = path.join(n);
                    let host = root.join(candidate.strip_prefix("/").unwrap());
                    match std::fs::read_link(&host) {
                        Ok(target) => {
                            hops += 1;
                            if hops > 40 {
                                return err(format!("INIT {}: too many symlinks", init.display()));
                            }
                            // Continue with the link target, then the rest.
                            let rest: PathBuf = comps.iter().rev().collect();
                            comps.clear();
                            todo.push(rest);
                            todo.push(target);
                            break;
                        }
                        Err(_) => path = candidate,
                    }
                }
                Component::Prefix(_) => {}
            }
        }
    }
    Ok(path)
}

/// Sends SIGUSR1 to kdbus-init, if it runs (its pid file is below /run,
/// which has just moved into the new root).
fn notify_kdbus_init() {
    let Ok(text) = std::fs::read_to_string(Path::new("/").join(KDBUS_INIT_PID)) else {
        return;
    };
    let Some(pid) = text
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    match rustix::process::kill_process(pid, rustix::process::Signal::USR1) {
        Ok(()) => info(&format!(
            "told kdbus-init (pid {}) to follow",
            pid.as_raw_nonzero()
        )),
        Err(e) => report(&format!(
            "kdbus-init (pid {}) could not be told to follow: {e}",
            pid.as_raw_nonzero()
        )),
    }
}

/// Deletes everything below `dir` that lives on the same file system,
/// never descending into other mounts. Returns the number of entries
/// removed.
pub fn remove_children(dir: &OwnedFd) -> usize {
    let Ok(st) = rustix::fs::fstat(dir) else {
        return 0;
    };
    let Ok(dup) = rustix::io::fcntl_dupfd_cloexec(dir, 0) else {
        return 0;
    };
    let Ok(mut entries) = rustix::fs::Dir::new(dup) else {
        return 0;
    };
    let mut removed = 0;
    let mut names = Vec::new();
    while let Some(Ok(e)) = entries.next() {
        let name = e.file_name().to_owned();
        if name.as_bytes() == b"." || name.as_bytes() == b".." {
            continue;
        }
        names.push(name);
    }
    for name in names {
        let Ok(child) = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if child.st_dev != st.st_dev {
            continue;
        }
        let is_dir = FileType::from_raw_mode(child.st_mode) == FileType::Directory;
        if is_dir {
            if let Ok(sub) = rustix::fs::openat(
                dir,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                removed += remove_children(&sub);
            }
        }
        let flags = if is_dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        if rustix::fs::unlinkat(dir.as_fd(), &name, flags).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn exec(path: &CString, argv: &[CString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let path = std::ffi::OsStr::from_bytes(path.as_bytes());
    let mut cmd = std::process::Command::new(path);
    for a in &argv[1..] {
        cmd.arg(std::ffi::OsStr::from_bytes(a.as_bytes()));
    }
    cmd.exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_symlinks_resolve_inside_newroot() {
        let root = std::env::temp_dir().join(format!("switch-root-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
        std::fs::create_dir_all(root.join("sbin")).unwrap();
        std::fs::write(root.join("usr/lib/systemd/systemd"), "").unwrap();
        // Absolute link: must resolve inside root, not on the host.
        std::os::unix::fs::symlink("/usr/lib/systemd/systemd", root.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("../usr/lib", root.join("sbin/lib")).unwrap();
        assert_eq!(
            resolve_inside(&root, Path::new("/sbin/init")).unwrap(),
            PathBuf::from("/usr/lib/systemd/systemd")
        );
        assert_eq!(
            resolve_inside(&root, Path::new("/sbin/lib/systemd/systemd")).unwrap(),
            PathBuf::from("/usr/lib/systemd/systemd")
        );
        std::os::unix::fs::symlink("/sbin/loop", root.join("sbin/loop")).unwrap();
        assert!(resolve_inside(&root, Path::new("/sbin/loop")).is_err());
        assert!(resolve_inside(&root, Path::new("sbin/init")).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
