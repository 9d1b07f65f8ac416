//! BUS_MAKE, the bus node tree and BUS_CREATOR_INFO (spec §2, §4.1, §4.8).

use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

use kdbus::abi::*;
use kdbus_abi_tests::conn::{bus_make_cmd, open_node};
use kdbus_abi_tests::raw::{self, cmd, item_str, item_struct, item_u64};
use kdbus_abi_tests::*;
use rustix::io::Errno;

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn make(domain: &Domain, flags: u64, items: &[Vec<u8>]) -> Result<std::os::fd::OwnedFd, Errno> {
    let control = open_node(&domain.control()).unwrap();
    let mut c = cmd(
        &kdbus_cmd {
            flags,
            ..Default::default()
        },
        items,
    );
    raw::ioctl(control.as_fd(), KDBUS_CMD_BUS_MAKE, &mut c).map(|_| control)
}

fn bloom(size: u64, n_hash: u64) -> Vec<u8> {
    item_struct(
        KDBUS_ITEM_BLOOM_PARAMETER,
        &kdbus_bloom_parameter { size, n_hash },
    )
}

#[test]
fn bus_make_creates_the_bus_directory_and_endpoint() {
    let domain = Domain::new();
    let name = format!("{}-system", euid());
    let _owner = make(
        &domain,
        0,
        &[bloom(64, 8), item_str(KDBUS_ITEM_MAKE_NAME, &name)],
    )
    .unwrap();

    let dir = std::fs::metadata(domain.path().join(&name)).unwrap();
    assert!(dir.is_dir());
    assert_eq!(dir.permissions().mode() & 0o7777, 0o500);
    assert_eq!(dir.uid(), euid());
    let ep = std::fs::metadata(domain.path().join(&name).join("bus")).unwrap();
    assert!(ep.is_file());
    assert_eq!(ep.permissions().mode() & 0o7777, 0o600);
    assert_eq!(ep.uid(), euid());

    let mut entries: Vec<_> = std::fs::read_dir(domain.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    let mut expected = vec!["control".to_owned(), name.clone()];
    expected.sort();
    assert_eq!(entries, expected);
    let inside: Vec<_> = std::fs::read_dir(domain.path().join(&name))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(inside, ["bus"]);
}

#[test]
fn access_flags_set_the_modes() {
    let domain = Domain::new();
    for (flags, dir_mode, ep_mode) in [
        (KDBUS_MAKE_ACCESS_GROUP, 0o550, 0o660),
        (KDBUS_MAKE_ACCESS_WORLD, 0o555, 0o666),
        (
            KDBUS_MAKE_ACCESS_GROUP | KDBUS_MAKE_ACCESS_WORLD,
            0o555,
            0o666,
        ),
    ] {
        let name = format!("{}-mode{flags}", euid());
        let _o = make(
            &domain,
            flags,
            &[bloom(64, 8), item_str(KDBUS_ITEM_MAKE_NAME, &name)],
        )
        .unwrap();
        let d = std::fs::metadata(domain.path().join(&name)).unwrap();
        assert_eq!(d.permissions().mode() & 0o7777, dir_mode, "flags {flags}");
        let e = std::fs::metadata(domain.path().join(&name).join("bus")).unwrap();
        assert_eq!(e.permissions().mode() & 0o7777, ep_mode, "flags {flags}");
    }
}

#[test]
fn closing_the_owner_removes_the_bus() {
    let domain = Arc::new(Domain::new());
    let bus = Bus::make_in(&domain, "gone", 0, &[]).unwrap();
    let conn = bus.conn();
    let endpoint = bus.endpoint();
    let dir = bus.dir.clone();
    drop(bus);

    assert!(!dir.exists(), "bus directory disappears");
    assert!(!endpoint.exists());
    assert_eq!(errno(conn.list(KDBUS_LIST_UNIQUE)), Errno::CONNRESET);
    assert_eq!(errno(conn.byebye()), Errno::CONNRESET);
    // the name is free again
    let again = Bus::make_in(&domain, "gone", 0, &[]).unwrap();
    drop(again);
    drop(conn);
}

#[test]
fn bus_name_rules() {
    let domain = Domain::new();
    let e = euid();
    let long = format!("{e}-{}", "x".repeat(64));
    for (name, err) in [
        ("system".to_owned(), Errno::INVAL),
        (format!("{}-system", e + 1), Errno::INVAL),
        (format!("{e}system"), Errno::INVAL),
        (format!("{e}-sys tem"), Errno::INVAL),
        (format!("{e}-system-"), Errno::INVAL),
        (format!("{e}-sys/tem"), Errno::INVAL),
        (long, Errno::NAMETOOLONG),
    ] {
        assert_eq!(
            make(
                &domain,
                0,
                &[bloom(64, 8), item_str(KDBUS_ITEM_MAKE_NAME, &name)]
            )
            .err(),
            Some(err),
            "{name}"
        );
    }
    // dots and dashes inside are fine, up to 63 characters
    let ok = format!("{e}-a.b-c_d");
    make(
        &domain,
        0,
        &[bloom(64, 8), item_str(KDBUS_ITEM_MAKE_NAME, &ok)],
    )
    .unwrap();
    let max = format!("{e}-{}", "y".repeat(63 - 1 - e.to_string().len()));
    make(
        &domain,
        0,
        &[bloom(64, 8), item_str(KDBUS_ITEM_MAKE_NAME, &max)],
    )
    .unwrap();
}

#[test]
fn bus_name_taken_is_eexist() {
    let domain = Domain::new();
    let name = format!("{}-twice", euid());
    let items = [bloom(64, 8), item_str(KDBUS_ITEM_MAKE_NAME, &name)];
    let _first = make(&domain, 0, &items).unwrap();
    assert_eq!(make(&domain, 0, &items).err(), Some(Errno::EXIST));
    // another domain has its own names
    let other = Domain::new();
    make(&other, 0, &items).unwrap();
}

#[test]
fn bloom_parameter_rules() {
    let domain = Domain::new();
    let name = format!("{}-bloom", euid());
    for (size, n_hash) in [
        (0, 8),
        (4, 8),
        (12, 8),
        (4096 + 8, 8),
        (64, 0),
        (u64::MAX, 1),
    ] {
        assert_eq!(
            make(
                &domain,
                0,
                &[bloom(size, n_hash), item_str(KDBUS_ITEM_MAKE_NAME, &name)]
            )
            .err(),
            Some(Errno::INVAL),
            "size {size} n_hash {n_hash}"
        );
    }
    for (i, size) in [8u64, 4096].into_iter().enumerate() {
        let n = format!("{name}{i}");
        make(
            &domain,
            0,
            &[bloom(size, 1), item_str(KDBUS_ITEM_MAKE_NAME, &n)],
        )
        .unwrap();
    }
}

#[test]
fn mandatory_items() {
    let domain = Domain::new();
    let name = format!("{}-m", euid());
    assert_eq!(make(&domain, 0, &[bloom(64, 8)]).err(), Some(Errno::INVAL));
    assert_eq!(
        make(&domain, 0, &[item_str(KDBUS_ITEM_MAKE_NAME, &name)]).err(),
        Some(Errno::INVAL)
    );
    // master removed ATTACH_FLAGS_RECV from BUS_MAKE
    assert_eq!(
        make(
            &domain,
            0,
            &[
                bloom(64, 8),
                item_str(KDBUS_ITEM_MAKE_NAME, &name),
                item_u64(KDBUS_ITEM_ATTACH_FLAGS_RECV, 0)
            ]
        )
        .err(),
        Some(Errno::INVAL)
    );
    // a second name is a duplicate item
    assert_eq!(
        make(
            &domain,
            0,
            &[
                bloom(64, 8),
                item_str(KDBUS_ITEM_MAKE_NAME, &name),
                item_str(KDBUS_ITEM_MAKE_NAME, &name)
            ]
        )
        .err(),
        Some(Errno::INVAL)
    );
}

#[test]
fn creator_attach_flags_are_validated() {
    let domain = Domain::new();
    let name = format!("{}-af", euid());
    let items = |v: u64| {
        vec![
            bloom(64, 8),
            item_str(KDBUS_ITEM_MAKE_NAME, &name),
            item_u64(KDBUS_ITEM_ATTACH_FLAGS_SEND, v),
        ]
    };
    assert_eq!(make(&domain, 0, &items(1 << 14)).err(), Some(Errno::INVAL));
    let _ok = make(&domain, 0, &items(_KDBUS_ATTACH_ANY)).unwrap();
}

#[test]
fn sixteen_buses_per_user() {
    let domain = Arc::new(Domain::new());
    let mut buses = Vec::new();
    for i in 0..16 {
        buses.push(Bus::make_in(&domain, &format!("b{i}"), 0, &[]).unwrap());
    }
    assert_eq!(
        Bus::make_in(&domain, "b16", 0, &[]).err(),
        Some(Errno::MFILE)
    );
    // closing one owner frees a slot
    buses.pop();
    Bus::make_in(&domain, "b16", 0, &[]).unwrap();
    // another domain counts separately
    let other = Arc::new(Domain::new());
    Bus::make_in(&other, "b0", 0, &[]).unwrap();
}

#[test]
fn bus_owner_handle_accepts_nothing() {
    let bus = Bus::new();
    let mut fds = [rustix::event::PollFd::new(
        &bus.owner,
        rustix::event::PollFlags::IN,
    )];
    rustix::event::poll(&mut fds, None).unwrap();
    assert!(fds[0]
        .revents()
        .contains(rustix::event::PollFlags::ERR | rustix::event::PollFlags::HUP));
    // SAFETY: a mapping attempt on a handle that refuses it; on success it
    // would be unmapped right away.
    let r = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            4096,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::SHARED,
            &bus.owner,
            0,
        )
    };
    assert_eq!(r.err(), Some(Errno::BADFD));
}

#[test]
fn bus_and_connection_ids_are_unique_in_a_domain() {
    let domain = Arc::new(Domain::new());
    let b1 = Bus::make_in(&domain, "one", 0, &[]).unwrap();
    let b2 = Bus::make_in(&domain, "two", 0, &[]).unwrap();
    let c1 = b1.conn();
    let c2 = b2.conn();
    let i1 = c1.bus_creator_info(0).unwrap();
    let i2 = c2.bus_creator_info(0).unwrap();
    let mut ids = vec![i1.id, i2.id, c1.id, c2.id];
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "bus and connection ids share one counter");
    assert!(ids.iter().all(|&i| i != 0 && i != u64::MAX));
}

#[test]
fn bus_creator_info() {
    let domain = Arc::new(Domain::new());
    let attach = KDBUS_ATTACH_CREDS | KDBUS_ATTACH_PIDS | KDBUS_ATTACH_PID_COMM;
    let bus = Bus::make_in(
        &domain,
        "creator",
        KDBUS_MAKE_ACCESS_WORLD,
        &[item_u64(KDBUS_ITEM_ATTACH_FLAGS_SEND, attach)],
    )
    .unwrap();
    let conn = bus.conn();
    let info = conn.bus_creator_info(_KDBUS_ATTACH_ALL).unwrap();
    assert_eq!(
        info.flags, KDBUS_MAKE_ACCESS_WORLD,
        "flags = BUS_MAKE flags"
    );
    assert_eq!(info.item(KDBUS_ITEM_MAKE_NAME).unwrap().str(), bus.name);
    let creds: kdbus_creds = info.item(KDBUS_ITEM_CREDS).unwrap().as_struct();
    assert_eq!(creds.euid, euid() as u64);
    let pids: kdbus_pids = info.item(KDBUS_ITEM_PIDS).unwrap().as_struct();
    assert_eq!(pids.pid, std::process::id() as u64);
    assert!(info.item(KDBUS_ITEM_PID_COMM).is_some());
    // only what the creator allowed
    assert!(info.item(KDBUS_ITEM_CMDLINE).is_none());
    assert!(info.item(KDBUS_ITEM_EXE).is_none());
    assert!(info.item(KDBUS_ITEM_TIMESTAMP).is_none());

    // and only what was asked for
    let info = conn.bus_creator_info(KDBUS_ATTACH_PIDS).unwrap();
    assert!(info.item(KDBUS_ITEM_CREDS).is_none());
    assert!(info.item(KDBUS_ITEM_PIDS).is_some());

    assert_eq!(errno(conn.bus_creator_info(1 << 20)), Errno::INVAL);
}

#[test]
fn bus_creator_info_of_a_bus_without_attach_flags() {
    let bus = Bus::new();
    let conn = bus.conn();
    let info = conn.bus_creator_info(_KDBUS_ATTACH_ANY).unwrap();
    assert_eq!(info.items.len(), 1, "only the name: {:?}", info.items);
    assert_eq!(info.items[0].ty, KDBUS_ITEM_MAKE_NAME);
}

#[test]
fn bus_make_cmd_helper_builds_a_valid_command() {
    let domain = Domain::new();
    let control = open_node(&domain.control()).unwrap();
    let mut c = bus_make_cmd(&format!("{}-h", euid()), 0, &[]);
    raw::ioctl(control.as_fd(), KDBUS_CMD_BUS_MAKE, &mut c).unwrap();
}

#[test]
fn handles_of_a_removed_bus_are_eshutdown() {
    use std::os::fd::AsRawFd;
    let domain = Arc::new(Domain::new());
    let bus = Bus::make_in(&domain, "dying", KDBUS_MAKE_ACCESS_WORLD, &[]).unwrap();
    let fresh = open_node(&bus.endpoint()).unwrap();
    let dir = rustix::fs::open(
        &bus.dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let name = format!("{}-ep", euid());
    let ep_owner = open_node(&bus.endpoint()).unwrap();
    let mut c = cmd(
        &kdbus_cmd::default(),
        &[item_str(KDBUS_ITEM_MAKE_NAME, &name)],
    );
    raw::ioctl(ep_owner.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut c).unwrap();
    drop(bus);

    // setup and endpoint-owner ioctls on handles opened before
    let mut hello = Hello::new().buf();
    assert_eq!(
        raw::ioctl(fresh.as_fd(), KDBUS_CMD_HELLO, &mut hello),
        Err(Errno::SHUTDOWN)
    );
    let mut update = cmd(&kdbus_cmd::default(), &[]);
    assert_eq!(
        raw::ioctl(ep_owner.as_fd(), KDBUS_CMD_ENDPOINT_UPDATE, &mut update),
        Err(Errno::SHUTDOWN)
    );
    // opening the nodes again through the old handles
    for fd in [fresh.as_raw_fd(), dir.as_raw_fd()] {
        let path = format!("/proc/self/fd/{fd}");
        assert_eq!(
            rustix::fs::open(
                path.as_str(),
                rustix::fs::OFlags::RDONLY,
                rustix::fs::Mode::empty()
            )
            .err(),
            Some(Errno::SHUTDOWN),
            "{path}"
        );
    }
    // re-opening a removed directory fails too
    assert_eq!(
        rustix::fs::openat(
            &dir,
            ".",
            rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty()
        )
        .err(),
        Some(Errno::SHUTDOWN)
    );
    // and a directory that was open before lists nothing any more
    let mut buf = Vec::with_capacity(4096);
    let mut raw_dir = rustix::fs::RawDir::new(&dir, buf.spare_capacity_mut());
    let mut names = Vec::new();
    while let Some(e) = raw_dir.next() {
        names.push(e.unwrap().file_name().to_string_lossy().into_owned());
    }
    names.retain(|n| n != "." && n != "..");
    assert!(names.is_empty(), "{names:?}");
}
