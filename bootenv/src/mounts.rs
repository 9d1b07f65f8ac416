//! Mount helpers: mount points, file system types, moving mounts.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, StatFs};

pub const KDBUS_SUPER_MAGIC: u64 = 0x4442_7573;
pub const RAMFS_MAGIC: u64 = 0x8584_58f6;
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

/// Is `path` the root of a mount? (Its device differs from its parent's,
/// or it is `/`, or it is a bind mount of a directory onto itself: the
/// mount id of the path differs from the parent's.)
pub fn is_mount_point(path: &Path) -> std::io::Result<bool> {
    let canon = path.canonicalize()?;
    if canon == Path::new("/") {
        return Ok(true);
    }
    let me = rustix::fs::statx(
        rustix::fs::CWD,
        &canon,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        rustix::fs::StatxFlags::MNT_ID,
    )?;
    let root = rustix::fs::StatxAttributes::MOUNT_ROOT;
    if me.stx_attributes_mask.contains(root) {
        return Ok(me.stx_attributes.contains(root));
    }
    let parent = canon.parent().unwrap_or(Path::new("/"));
    let up = rustix::fs::statx(
        rustix::fs::CWD,
        parent,
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::MNT_ID,
    )?;
    Ok(me.stx_mnt_id != up.stx_mnt_id
        || (me.stx_dev_major, me.stx_dev_minor) != (up.stx_dev_major, up.stx_dev_minor))
}

pub fn fs_type(path: &Path) -> std::io::Result<u64> {
    let st: StatFs = rustix::fs::statfs(path)?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as u64)
}

pub fn fs_type_fd(fd: impl AsFd) -> std::io::Result<u64> {
    let st: StatFs = rustix::fs::fstatfs(fd)?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as u64)
}

/// Are we in an initramfs? Its root is a ramfs/tmpfs and it says so:
/// systemd's convention file `/etc/initrd-release` (dracut creates it), or
/// the configuration initramfs-tools' init reads (`/conf/initramfs.conf`).
pub fn in_initramfs() -> bool {
    let ram_root = matches!(fs_type(Path::new("/")), Ok(RAMFS_MAGIC | TMPFS_MAGIC));
    ram_root
        && ["/etc/initrd-release", "/conf/initramfs.conf"]
            .iter()
            .any(|f| Path::new(f).exists())
}

/// Opens a directory as an O_PATH handle (to find it again after a root
/// change, when paths no longer lead to it).
pub fn open_path(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// PID 1's root, if it is not ours; `proc` is a handle on /proc taken
/// earlier (after a root change /proc may be mounted elsewhere).
///
/// Our root is opened first, PID 1's second: a pivot_root between the two
/// (which moves both) can then only make us see PID 1 ahead of us, never
/// behind. Roots that cannot be compared count as the same.
pub fn pid1_root_if_elsewhere(proc: impl AsFd) -> std::io::Result<Option<OwnedFd>> {
    let ours = open_path(Path::new("/"))?;
    let theirs = rustix::fs::openat(
        proc,
        "1/root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((!same_file(&theirs, &ours).unwrap_or(true)).then_some(theirs))
}

/// Mounts kdbusfs on `target` (creating the directory if needed).
pub fn mount_kdbusfs(target: &Path) -> std::io::Result<()> {
    if !target.exists() {
        std::fs::create_dir_all(target)?;
    }
    rustix::mount::mount(
        "kdbusfs",
        target,
        "kdbusfs",
        rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NOEXEC
            | rustix::mount::MountFlags::NODEV,
        None,
    )?;
    Ok(())
}

/// Attaches a copy of the mount that `mount_root` is the root of (same
/// super block: for kdbusfs, the same domain) on `target`.
pub fn attach_clone(mount_root: impl AsFd, target: &Path) -> std::io::Result<()> {
    let tree = rustix::mount::open_tree(
        mount_root,
        "",
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::AT_EMPTY_PATH
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// Same file (device and inode)?
pub fn same_file(a: impl AsFd, b: impl AsFd) -> std::io::Result<bool> {
    let a = rustix::fs::fstat(a)?;
    let b = rustix::fs::fstat(b)?;
    Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_proc_are_mount_points() {
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(is_mount_point(Path::new("/proc")).unwrap());
        assert!(!is_mount_point(Path::new("/proc/self/fd")).unwrap_or(false));
        let d = std::env::temp_dir().join(format!("bootenv-mp-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        assert!(!is_mount_point(&d).unwrap());
        std::fs::remove_dir(&d).unwrap();
    }

    #[test]
    fn same_file_compares_inodes() {
        let a = open_path(Path::new("/")).unwrap();
        let b = open_path(Path::new("/.")).unwrap();
        let c = open_path(Path::new("/proc")).unwrap();
        assert!(same_file(&a, &b).unwrap());
        assert!(!same_file(&a, &c).unwrap());
    }
}
