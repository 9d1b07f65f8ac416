//! BUS_MAKE, the bus node tree and BUS_CREATOR_INFO (spec §2, §4.1, §4.8).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

use kdbus::abi::*;
use kdbus::{
    own_name, AttachFlags, BloomParams, BusBuilder, EndpointBuilder, Errno, HelloBuilder,
    ListFlags, MakeFlags,
};
use kdbus_abi_tests::fixture::*;
use kdbus_abi_tests::Domain;
use zerocopy::IntoBytes;

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// BUS_MAKE with hand-made items, for the checks the library cannot get
/// wrong (missing, duplicate or foreign items). Returns the owner handle.
fn make(domain: &Domain, flags: u64, items: &[(u64, &[u8])]) -> Result<OwnedFd, Errno> {
    let control = kdbus::raw::open(domain.control()).unwrap();
    let header = kdbus_cmd {
        flags,
        ..Default::default()
    };
    kdbus::raw::ioctl(&control, KDBUS_CMD_BUS_MAKE, &mut command(&header, items)).map(|_| control)
}

/// BUS_MAKE of `name` through the library.
fn create(domain: &Domain, builder: BusBuilder) -> kdbus::Result<kdbus::Bus> {
    builder.bloom(BLOOM).create(domain.control())
}

fn bloom_item(size: u64, n_hash: u64) -> Vec<u8> {
    kdbus_bloom_parameter { size, n_hash }.as_bytes().to_vec()
}

fn name_item(name: &str) -> Vec<u8> {
    [name.as_bytes(), b"\0"].concat()
}

#[test]
fn bus_make_creates_the_bus_directory_and_endpoint() {
    let domain = Domain::new();
    let name = own_name("system");
    let _owner = create(&domain, BusBuilder::new(&name)).unwrap();

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
        (MakeFlags::ACCESS_GROUP, 0o550, 0o660),
        (MakeFlags::ACCESS_WORLD, 0o555, 0o666),
        (MakeFlags::all(), 0o555, 0o666),
    ] {
        let name = own_name(&format!("mode{}", flags.bits()));
        let _o = create(&domain, BusBuilder::new(&name).flags(flags)).unwrap();
        let d = std::fs::metadata(domain.path().join(&name)).unwrap();
        assert_eq!(d.permissions().mode() & 0o7777, dir_mode, "flags {flags:?}");
        let e = std::fs::metadata(domain.path().join(&name).join("bus")).unwrap();
        assert_eq!(e.permissions().mode() & 0o7777, ep_mode, "flags {flags:?}");
    }
}

#[test]
fn closing_the_owner_removes_the_bus() {
    let domain = Arc::new(Domain::new());
    let bus = TestBus::make_in(&domain, TestBus::builder("gone")).unwrap();
    let conn = bus.conn();
    let endpoint = bus.endpoint();
    let dir = bus.dir();
    drop(bus);

    assert!(!dir.exists(), "bus directory disappears");
    assert!(!endpoint.exists());
    assert_eq!(errno(conn.list(ListFlags::UNIQUE)), Errno::CONNRESET);
    assert_eq!(errno(conn.byebye()), Errno::CONNRESET);
    // the name is free again
    let again = TestBus::make_in(&domain, TestBus::builder("gone")).unwrap();
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
            errno(create(&domain, BusBuilder::new(&name))),
            err,
            "{name}"
        );
    }
    // dots and dashes inside are fine, up to 63 characters
    create(&domain, BusBuilder::new(format!("{e}-a.b-c_d"))).unwrap();
    let max = format!("{e}-{}", "y".repeat(63 - 1 - e.to_string().len()));
    create(&domain, BusBuilder::new(max)).unwrap();
}

#[test]
fn bus_name_taken_is_eexist() {
    let domain = Domain::new();
    let name = own_name("twice");
    let _first = create(&domain, BusBuilder::new(&name)).unwrap();
    assert_eq!(errno(create(&domain, BusBuilder::new(&name))), Errno::EXIST);
    // another domain has its own names
    let other = Domain::new();
    create(&other, BusBuilder::new(&name)).unwrap();
}

#[test]
fn bloom_parameter_rules() {
    let domain = Domain::new();
    let name = own_name("bloom");
    for (size, n_hash) in [
        (0, 8),
        (4, 8),
        (12, 8),
        (4096 + 8, 8),
        (64, 0),
        (u64::MAX, 1),
    ] {
        let bus = BusBuilder::new(&name).bloom(BloomParams { size, n_hash });
        assert_eq!(
            errno(bus.create(domain.control())),
            Errno::INVAL,
            "size {size} n_hash {n_hash}"
        );
    }
    for (i, size) in [8u64, 4096].into_iter().enumerate() {
        BusBuilder::new(format!("{name}{i}"))
            .bloom(BloomParams { size, n_hash: 1 })
            .create(domain.control())
            .unwrap();
    }
}

#[test]
fn mandatory_items() {
    let domain = Domain::new();
    let name = name_item(&own_name("m"));
    let bloom = bloom_item(64, 8);
    let param = (KDBUS_ITEM_BLOOM_PARAMETER, bloom.as_slice());
    let make_name = (KDBUS_ITEM_MAKE_NAME, name.as_slice());
    assert_eq!(make(&domain, 0, &[param]).err(), Some(Errno::INVAL));
    assert_eq!(make(&domain, 0, &[make_name]).err(), Some(Errno::INVAL));
    // master removed ATTACH_FLAGS_RECV from BUS_MAKE
    let zero = 0u64.to_ne_bytes();
    assert_eq!(
        make(
            &domain,
            0,
            &[param, make_name, (KDBUS_ITEM_ATTACH_FLAGS_RECV, &zero)]
        )
        .err(),
        Some(Errno::INVAL)
    );
    // a second name is a duplicate item
    assert_eq!(
        make(&domain, 0, &[param, make_name, make_name]).err(),
        Some(Errno::INVAL)
    );
    // both present: fine
    make(&domain, 0, &[param, make_name]).unwrap();
}

#[test]
fn creator_attach_flags_are_validated() {
    let domain = Domain::new();
    let bus = |flags: u64| {
        BusBuilder::new(own_name("af")).creator_attach_flags(AttachFlags::from_bits_retain(flags))
    };
    assert_eq!(errno(create(&domain, bus(1 << 14))), Errno::INVAL);
    let _ok = create(&domain, bus(_KDBUS_ATTACH_ANY)).unwrap();
}

#[test]
fn sixteen_buses_per_user() {
    let domain = Arc::new(Domain::new());
    let make = |d: &Arc<Domain>, n: &str| TestBus::make_in(d, TestBus::builder(n));
    let mut buses = Vec::new();
    for i in 0..16 {
        buses.push(make(&domain, &format!("b{i}")).unwrap());
    }
    assert_eq!(errno(make(&domain, "b16")), Errno::MFILE);
    // closing one owner frees a slot
    buses.pop();
    make(&domain, "b16").unwrap();
    // another domain counts separately
    let other = Arc::new(Domain::new());
    make(&other, "b0").unwrap();
}

#[test]
fn bus_owner_handle_accepts_nothing() {
    let bus = TestBus::new();
    assert_not_a_connection(&bus.bus);
}

#[test]
fn bus_and_connection_ids_are_unique_in_a_domain() {
    let domain = Arc::new(Domain::new());
    let b1 = TestBus::make_in(&domain, TestBus::builder("one")).unwrap();
    let b2 = TestBus::make_in(&domain, TestBus::builder("two")).unwrap();
    let c1 = b1.conn();
    let c2 = b2.conn();
    let i1 = c1.bus_creator_info(AttachFlags::empty()).unwrap();
    let i2 = c2.bus_creator_info(AttachFlags::empty()).unwrap();
    let mut ids = vec![i1.id, i2.id, c1.id(), c2.id()];
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "bus and connection ids share one counter");
    assert!(ids.iter().all(|&i| i != 0 && i != u64::MAX));
}

#[test]
fn bus_creator_info() {
    let domain = Arc::new(Domain::new());
    let attach = AttachFlags::CREDS | AttachFlags::PIDS | AttachFlags::PID_COMM;
    let bus = TestBus::make_in(
        &domain,
        TestBus::builder("creator")
            .world_accessible()
            .creator_attach_flags(attach),
    )
    .unwrap();
    let conn = bus.conn();
    let info = conn.bus_creator_info(AttachFlags::all()).unwrap();
    assert_eq!(
        info.flags,
        MakeFlags::ACCESS_WORLD,
        "flags = BUS_MAKE flags"
    );
    assert_eq!(info.name, bus.name());
    let meta = &info.metadata;
    assert_eq!(meta.creds.expect("CREDS").euid, euid() as u64);
    assert_eq!(meta.pids.expect("PIDS").pid, std::process::id() as u64);
    assert!(meta.pid_comm.is_some());
    // only what the creator allowed
    assert!(meta.cmdline.is_none());
    assert!(meta.exe.is_none());
    assert!(meta.timestamp.is_none());

    // and only what was asked for
    let info = conn.bus_creator_info(AttachFlags::PIDS).unwrap();
    assert!(info.metadata.creds.is_none());
    assert!(info.metadata.pids.is_some());

    assert_eq!(
        errno(conn.bus_creator_info(AttachFlags::from_bits_retain(1 << 20))),
        Errno::INVAL
    );
}

#[test]
fn bus_creator_info_of_a_bus_without_attach_flags() {
    let bus = TestBus::new();
    let conn = bus.conn();
    let info = conn.bus_creator_info(AttachFlags::ANY).unwrap();
    assert!(info.metadata.is_empty(), "{:?}", info.metadata);
    assert_eq!(info.name, bus.name());
    // the record as the kernel wrote it: the name and nothing else
    let mut cmd = command(
        &kdbus_cmd_info {
            attach_flags: _KDBUS_ATTACH_ANY,
            ..Default::default()
        },
        &[],
    );
    kdbus::raw::ioctl(&conn, KDBUS_CMD_BUS_CREATOR_INFO, &mut cmd).unwrap();
    let reply: kdbus_cmd_info = cmd.read(0);
    let bytes = conn.take_slice(reply.offset, reply.info_size).unwrap();
    let (_, items) = kdbus::info::parse_info(&bytes).unwrap();
    assert_eq!(
        items,
        [kdbus::item::Item::MakeName(bus.name())],
        "only the name"
    );
}

#[test]
fn handles_of_a_removed_bus_are_eshutdown() {
    use std::os::fd::AsRawFd;
    let domain = Arc::new(Domain::new());
    let bus = TestBus::second_in(&domain, "dying").unwrap();
    let fresh = kdbus::raw::open(bus.endpoint()).unwrap();
    let dir = rustix::fs::open(
        bus.dir(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let endpoint = EndpointBuilder::new(own_name("ep"))
        .create(bus.endpoint())
        .unwrap();
    drop(bus);

    // setup and endpoint-owner ioctls on handles opened before
    assert_eq!(
        errno(HelloBuilder::new().connect_fd(fresh.try_clone().unwrap())),
        Errno::SHUTDOWN
    );
    assert_eq!(errno(endpoint.set_policy(&[])), Errno::SHUTDOWN);
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
    let _ = endpoint.as_fd();
}
