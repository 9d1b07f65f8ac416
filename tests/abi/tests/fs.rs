//! kdbusfs: mount point, domains, the control node (spec §2).

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use kdbus_abi_tests::Domain;

const KDBUS_SUPER_MAGIC: i64 = 0x4442_7573;

#[test]
fn module_creates_sys_fs_kdbus() {
    let meta =
        std::fs::metadata("/sys/fs/kdbus").expect("/sys/fs/kdbus exists once kdbus.ko is loaded");
    assert!(meta.is_dir());
}

#[test]
fn filesystem_type_is_registered() {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap();
    assert!(
        fs.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["nodev", "kdbusfs"]),
        "kdbusfs missing from /proc/filesystems:\n{fs}"
    );
}

#[test]
fn mount_shows_domain_and_control_node() {
    let domain = Domain::new();
    let root = std::fs::metadata(domain.path()).unwrap();
    assert!(root.is_dir());
    assert_eq!(
        root.permissions().mode() & 0o7777,
        0o555,
        "domain directory mode"
    );

    let control = std::fs::metadata(domain.control()).expect("control node");
    assert!(control.file_type().is_file());
    assert_eq!(
        control.permissions().mode() & 0o7777,
        0o666,
        "control node mode"
    );

    let statfs = rustix::fs::statfs(domain.path()).unwrap();
    assert_eq!(statfs.f_type as i64, KDBUS_SUPER_MAGIC, "superblock magic");

    let entries: Vec<_> = std::fs::read_dir(domain.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        entries,
        ["control"],
        "a fresh domain holds only the control node"
    );
}

#[test]
fn every_mount_is_a_separate_domain() {
    let a = Domain::new();
    let b = Domain::new();
    let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
    assert_ne!(
        dev(a.path()),
        dev(b.path()),
        "two mounts must not share a superblock"
    );
    assert!(a.control().exists() && b.control().exists());
    // Unmounting one domain leaves the other intact.
    drop(a);
    assert!(b.control().exists());
}

#[test]
fn control_node_can_be_opened_by_anyone() {
    let domain = Domain::new();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(domain.control());
    assert!(f.is_ok(), "open control: {f:?}");
}

#[test]
fn control_node_is_not_a_device() {
    let domain = Domain::new();
    let ft = std::fs::metadata(domain.control()).unwrap().file_type();
    assert!(!ft.is_char_device() && !ft.is_block_device());
}
