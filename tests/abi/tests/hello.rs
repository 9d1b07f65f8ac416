//! HELLO, UPDATE, BYEBYE, CONN_INFO and LIST of connections (spec §2.3,
//! §4.3-§4.9, §14).

use std::os::fd::{AsFd, BorrowedFd};

use kdbus::abi::*;
use kdbus::item::{Item, Items};
use kdbus::{
    Access, AttachFlags, ByeBye, Creds, Errno, HelloBuilder, HelloFlags, ListFlags, MakeFlags,
    MessageBuilder, Metadata, NameFlags, Notification, Peer, Pids, Policy, PolicyAccess, Update,
};
use kdbus_abi_tests::as_user;
use kdbus_abi_tests::fixture::*;

const NOBODY: u32 = 65534;

/// Maps `len` bytes of a pool read-only and copies `size` bytes at `off`.
fn read_mapped(fd: BorrowedFd<'_>, len: usize, off: u64, size: u64) -> Vec<u8> {
    // SAFETY: a fresh read-only shared mapping of the pool, only read
    // within its length and unmapped before returning.
    unsafe {
        let p = rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::SHARED,
            fd,
            0,
        )
        .unwrap();
        assert!(off + size <= len as u64);
        let v =
            std::slice::from_raw_parts(p.cast::<u8>().add(off as usize), size as usize).to_vec();
        rustix::mm::munmap(p, len).unwrap();
        v
    }
}

#[test]
fn hello_returns_id_bus_flags_id128_and_bloom() {
    let bus = TestBus::new();
    let (h, ep) = raw_hello(&bus.endpoint(), 0, &[]).unwrap();
    assert_ne!(h.id, 0);
    assert_eq!(h.bus_flags, KDBUS_MAKE_ACCESS_WORLD);
    assert_ne!(h.id128, [0; 16]);
    assert_eq!(h.id128[6] >> 4, 4, "a version 4 UUID");
    assert_eq!(h.items_size, 32);

    let slice = read_mapped(ep.as_fd(), h.pool_size as usize, h.offset, h.items_size);
    let items = Items::new(&slice).decode_all().unwrap();
    assert_eq!(
        items,
        [Item::BloomParameter(kdbus_bloom_parameter {
            size: BLOOM.size,
            n_hash: 8
        })]
    );

    // a second connection: same bus id128, new id; the library reports
    // what HELLO returned
    let other = bus.conn();
    assert_eq!(other.bus_id128(), h.id128);
    assert!(other.id() > h.id);
    assert_eq!(other.bus_flags(), MakeFlags::ACCESS_WORLD);
    assert_eq!(other.bloom_params(), BLOOM);
}

#[test]
fn hello_slice_must_be_freed_once() {
    let bus = TestBus::new();
    let (h, ep) = raw_hello(&bus.endpoint(), 0, &[]).unwrap();
    let mut f = command(
        &kdbus_cmd_free {
            offset: h.offset,
            ..Default::default()
        },
        &[],
    );
    kdbus::raw::ioctl(&ep, KDBUS_CMD_FREE, &mut f.clone()).unwrap();
    assert_eq!(
        kdbus::raw::ioctl(&ep, KDBUS_CMD_FREE, &mut f),
        Err(Errno::NXIO)
    );
}

#[test]
fn pool_size_must_be_a_nonzero_multiple_of_the_page_size() {
    let bus = TestBus::new();
    for size in [0, 1, 4095, 4097, 4096 * 3 + 8] {
        assert_eq!(
            errno(bus.try_connect(HelloBuilder::new().pool_size(size))),
            Errno::INVAL,
            "pool size {size}"
        );
    }
    bus.connect(HelloBuilder::new().pool_size(4096));
}

#[test]
fn hello_flag_combinations() {
    let bus = TestBus::new();
    let e = |h: HelloBuilder| bus.try_connect(h).err().and_then(|e| e.errno());
    let raw = |flags: u64, name: Option<&str>| {
        let name = name.map(c_str);
        let items: Vec<(u64, &[u8])> = name
            .iter()
            .map(|n| (KDBUS_ITEM_NAME, n.as_slice()))
            .collect();
        raw_hello(&bus.endpoint(), flags, &items).err()
    };
    assert_eq!(
        e(HelloBuilder::new().activator("org.a.b", &[]).monitor()),
        Some(Errno::INVAL)
    );
    assert_eq!(
        raw(KDBUS_HELLO_POLICY_HOLDER | KDBUS_HELLO_MONITOR, None),
        Some(Errno::INVAL)
    );
    assert_eq!(
        e(HelloBuilder::new().flags(HelloFlags::ACTIVATOR)),
        Some(Errno::INVAL),
        "activator without name"
    );
    assert_eq!(
        e(HelloBuilder::new().flags(HelloFlags::POLICY_HOLDER)),
        Some(Errno::INVAL)
    );
    assert_eq!(
        raw(0, Some("org.a.b")),
        Some(Errno::INVAL),
        "name on an ordinary conn"
    );
    assert_eq!(
        e(HelloBuilder::new().activator("org.a.*", &[])),
        Some(Errno::INVAL),
        "wildcard activator"
    );
    assert_eq!(
        e(HelloBuilder::new().activator("noname", &[])),
        Some(Errno::INVAL)
    );
    assert!(e(HelloBuilder::new().policy_holder("org.a.*", &[])).is_none());
    assert!(e(HelloBuilder::new().monitor()).is_none());
}

#[test]
fn attach_flags_are_validated() {
    let bus = TestBus::new();
    let flags = AttachFlags::from_bits_retain;
    assert_eq!(
        errno(bus.try_connect(HelloBuilder::new().attach_send(flags(1 << 14)))),
        Errno::INVAL
    );
    assert_eq!(
        errno(bus.try_connect(HelloBuilder::new().attach_recv(flags(1 << 40)))),
        Errno::INVAL
    );
    bus.connect(
        HelloBuilder::new()
            .attach_send(AttachFlags::ANY)
            .attach_recv(AttachFlags::ANY),
    );
}

#[test]
fn description_rules() {
    let bus = TestBus::new();
    let with = |d: &str| bus.try_connect(TestBus::hello().description(d));
    let c = with("my-conn.1").unwrap();
    let info = bus
        .conn()
        .conn_info(Peer::Id(c.id()), AttachFlags::CONN_DESCRIPTION)
        .unwrap();
    assert_eq!(info.metadata.description.as_deref(), Some("my-conn.1"));
    assert_eq!(errno(with(&"d".repeat(64))), Errno::NAMETOOLONG);
    assert_eq!(errno(with("a b")), Errno::INVAL);
    assert_eq!(errno(with("-a")), Errno::INVAL);
    with(&"d".repeat(63)).unwrap();
}

#[test]
fn special_connections_need_an_owner() {
    let bus = TestBus::new();
    let ep = bus.endpoint();
    let errs = as_user(NOBODY, NOBODY, move || {
        let h = |h: HelloBuilder| h.connect(&ep).err().and_then(|e| e.errno());
        vec![
            h(HelloBuilder::new().activator("org.a.b", &[])),
            h(HelloBuilder::new().policy_holder("org.a.b", &[])),
            h(HelloBuilder::new().monitor()),
            h(HelloBuilder::new().creds(Creds::default())),
            h(HelloBuilder::new().pids(Pids::default())),
            h(HelloBuilder::new().seclabel("x")),
            h(HelloBuilder::new()),
        ]
    });
    assert_eq!(
        errs,
        [
            Some(Errno::PERM),
            Some(Errno::PERM),
            Some(Errno::PERM),
            Some(Errno::PERM),
            Some(Errno::PERM),
            Some(Errno::PERM),
            None
        ]
    );
}

#[test]
fn id_add_and_id_remove_notifications() {
    let bus = TestBus::new();
    let watcher = bus.conn();
    match_all(&watcher);
    let c = bus.connect(HelloBuilder::new());
    let id = c.id();
    let m = recv_msg(&watcher);
    assert_eq!(m.src_id(), KDBUS_SRC_ID_KERNEL);
    assert_eq!(m.dst_id(), KDBUS_DST_ID_BROADCAST);
    assert_eq!(m.flags().bits(), KDBUS_MSG_SIGNAL);
    assert_eq!(m.payload_type(), KDBUS_PAYLOAD_KERNEL);
    assert_eq!(m.cookie(), 0);
    assert_eq!(
        item_types(&m),
        [KDBUS_ITEM_ID_ADD, KDBUS_ITEM_TIMESTAMP],
        "notification + timestamp"
    );
    assert_eq!(
        m.notification(),
        Some(Notification::IdAdd {
            id,
            flags: HelloFlags::empty()
        })
    );
    drop(m);

    drop(c);
    assert!(matches!(
        recv_msg(&watcher).notification(),
        Some(Notification::IdRemove { id: gone, .. }) if gone == id
    ));
}

#[test]
fn notifications_carry_a_timestamp_even_without_attach_flags() {
    let bus = TestBus::new();
    let watcher = bus.conn_plain();
    match_all(&watcher);
    let _c = bus.conn();
    let ts = recv_msg(&watcher).metadata().timestamp.expect("TIMESTAMP");
    assert!(ts.monotonic_ns > 0 && ts.realtime_ns > 0 && ts.seqnum > 0);
}

#[test]
fn update_attach_flags() {
    let bus = TestBus::new();
    let a = bus.conn_plain();
    let b = bus.conn_plain();
    let meta = || {
        a.send(&MessageBuilder::to_id(b.id())).unwrap();
        recv_msg(&b).metadata()
    };
    assert!(meta().creds.is_none());

    b.update(&Update {
        attach_recv: Some(AttachFlags::CREDS | AttachFlags::PID_COMM),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(b.attach_recv(), AttachFlags::CREDS | AttachFlags::PID_COMM);
    let m = meta();
    assert!(m.creds.is_some(), "implicit item granted");
    assert!(m.pid_comm.is_none(), "sender did not opt in");

    a.update(&Update {
        attach_send: Some(AttachFlags::PID_COMM),
        ..Default::default()
    })
    .unwrap();
    assert!(meta().pid_comm.is_some());

    // everything is validated before anything is applied
    let bad = Update {
        attach_send: Some(AttachFlags::empty()),
        attach_recv: Some(AttachFlags::from_bits_retain(1 << 30)),
        ..Default::default()
    };
    assert_eq!(errno(a.update(&bad)), Errno::INVAL);
    assert_eq!(a.attach_send(), AttachFlags::PID_COMM);
    assert!(meta().pid_comm.is_some(), "send flags unchanged");

    // policy items are for policy holders only
    let policy = Update {
        policy: Some(Policy::new("org.a.b", [])),
        ..Default::default()
    };
    assert_eq!(errno(a.update(&policy)), Errno::OPNOTSUPP);
}

#[test]
fn update_per_connection_kind() {
    let bus = TestBus::new();
    let send = |f| Update {
        attach_send: Some(f),
        ..Default::default()
    };
    let recv = |f| Update {
        attach_recv: Some(f),
        ..Default::default()
    };
    let none = AttachFlags::empty();
    let act = bus.connect(HelloBuilder::new().activator("org.act.x", &[]));
    assert_eq!(errno(act.update(&send(none))), Errno::OPNOTSUPP);
    act.update(&recv(none)).unwrap();

    let mon = bus.connect(HelloBuilder::new().monitor());
    mon.update(&send(none)).unwrap();
    mon.update(&recv(none)).unwrap();

    let holder = bus.connect(HelloBuilder::new().policy_holder("org.hold.*", &[]));
    assert_eq!(errno(holder.update(&send(none))), Errno::OPNOTSUPP);
    assert_eq!(errno(holder.update(&recv(none))), Errno::OPNOTSUPP);
    holder
        .update(&Update {
            policy: Some(Policy::new(
                "org.hold.other",
                [PolicyAccess::world(Access::Own)],
            )),
            ..Default::default()
        })
        .unwrap();
    let (a, b) = (c_str("org.x.a"), c_str("org.x.b"));
    let mut two_names = command(
        &kdbus_cmd::default(),
        &[(KDBUS_ITEM_NAME, &a), (KDBUS_ITEM_NAME, &b)],
    );
    assert_eq!(
        kdbus::raw::ioctl(&holder, KDBUS_CMD_UPDATE, &mut two_names),
        Err(Errno::TOOBIG),
        "one name per holder"
    );
}

#[test]
fn byebye_disconnects_an_idle_connection() {
    let bus = TestBus::new();
    let watcher = bus.conn();
    match_all(&watcher);
    let c = bus.conn();
    let id = c.id();
    assert!(matches!(
        recv_msg(&watcher).notification(),
        Some(Notification::IdAdd { .. })
    ));
    assert_eq!(c.byebye().unwrap(), ByeBye::Disconnected);
    assert!(matches!(
        recv_msg(&watcher).notification(),
        Some(Notification::IdRemove { id: gone, .. }) if gone == id
    ));
    assert_eq!(errno(c.byebye()), Errno::CONNRESET);
    assert_eq!(errno(c.recv()), Errno::CONNRESET);
    assert_eq!(errno(watcher.send(&MessageBuilder::to_id(id))), Errno::NXIO);
    // poll reports the dead connection
    let mut fds = [rustix::event::PollFd::new(&c, rustix::event::PollFlags::IN)];
    rustix::event::poll(&mut fds, None).unwrap();
    assert!(fds[0].revents().contains(rustix::event::PollFlags::HUP));
    assert_eq!(errno(c.wait(None)), Errno::CONNRESET);
}

#[test]
fn byebye_with_queued_messages_is_ebusy() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MessageBuilder::to_id(b.id())).unwrap();
    assert_eq!(b.byebye().unwrap(), ByeBye::Busy);
    let mut cmd = command(&kdbus_cmd::default(), &[]);
    assert_eq!(
        kdbus::raw::ioctl(&b, KDBUS_CMD_BYEBYE, &mut cmd),
        Err(Errno::BUSY)
    );
    // nothing changed
    assert_eq!(recv_msg(&b).src_id(), a.id());
    assert_eq!(b.byebye().unwrap(), ByeBye::Disconnected);
}

#[test]
fn byebye_only_for_ordinary_connections() {
    let bus = TestBus::new();
    let act = bus.connect(HelloBuilder::new().activator("org.act.x", &[]));
    assert_eq!(errno(act.byebye()), Errno::OPNOTSUPP);
    let mon = bus.connect(HelloBuilder::new().monitor());
    assert_eq!(errno(mon.byebye()), Errno::OPNOTSUPP);
}

/// CONN_INFO through the raw layer, for combinations the library does not
/// build (an id and a name, neither).
fn raw_conn_info(
    conn: &kdbus::Connection,
    id: u64,
    name: Option<&str>,
    attach: u64,
) -> Result<u64, Errno> {
    let name = name.map(c_str);
    let items: Vec<(u64, &[u8])> = name
        .iter()
        .map(|n| (KDBUS_ITEM_NAME, n.as_slice()))
        .collect();
    let mut cmd = command(
        &kdbus_cmd_info {
            id,
            attach_flags: attach,
            ..Default::default()
        },
        &items,
    );
    kdbus::raw::ioctl(conn, KDBUS_CMD_CONN_INFO, &mut cmd)?;
    let info: kdbus_cmd_info = cmd.read(0);
    let bytes = conn.take_slice(info.offset, info.info_size).unwrap();
    Ok(kdbus::info::parse_info(&bytes).unwrap().0.id)
}

#[test]
fn conn_info_by_id_and_by_name() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.connect(TestBus::hello().description("bee"));
    b.acquire_name("org.example.bee", NameFlags::empty())
        .unwrap();
    let none = AttachFlags::empty();

    let info = a.conn_info(Peer::Id(b.id()), none).unwrap();
    assert_eq!(info.id, b.id());
    assert_eq!(info.flags, HelloFlags::ACCEPT_FD);
    assert!(
        info.metadata.is_empty(),
        "no metadata asked for: {:?}",
        info.metadata
    );

    let info = a.conn_info(Peer::Name("org.example.bee"), none).unwrap();
    assert_eq!(info.id, b.id());
    assert_eq!(
        raw_conn_info(&a, b.id(), Some("org.example.bee"), 0),
        Ok(b.id()),
        "id and name of the same connection"
    );
    assert_eq!(
        raw_conn_info(&a, a.id(), Some("org.example.bee"), 0),
        Err(Errno::SRCH)
    );
    assert_eq!(
        errno(a.conn_info(Peer::Name("org.example.none"), none)),
        Errno::SRCH
    );
    assert_eq!(errno(a.conn_info(Peer::Id(12345), none)), Errno::NXIO);
    assert_eq!(errno(a.conn_info(Peer::Id(0), none)), Errno::INVAL);
    assert_eq!(
        errno(a.conn_info(Peer::Id(b.id()), AttachFlags::from_bits_retain(1 << 20))),
        Errno::INVAL
    );

    // the names and description of the target, without timestamp
    let info = a
        .conn_info(
            Peer::Id(b.id()),
            AttachFlags::NAMES | AttachFlags::CONN_DESCRIPTION | AttachFlags::TIMESTAMP,
        )
        .unwrap();
    let names = info.metadata.names.expect("OWNED_NAME");
    assert_eq!(names[0].name, "org.example.bee");
    assert!(names[0].flags.contains(NameFlags::PRIMARY));
    assert_eq!(info.metadata.description.as_deref(), Some("bee"));
    assert!(info.metadata.timestamp.is_none());
}

#[test]
fn conn_info_is_limited_by_the_targets_send_flags() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.connect(HelloBuilder::new().attach_send(AttachFlags::CREDS));
    let info = a.conn_info(Peer::Id(b.id()), AttachFlags::all()).unwrap();
    assert!(info.metadata.creds.is_some());
    assert_eq!(
        info.metadata,
        Metadata {
            creds: info.metadata.creds,
            ..Default::default()
        },
        "CREDS only"
    );
}

#[test]
fn conn_info_sees_monitors_and_activators() {
    let bus = TestBus::new();
    let a = bus.conn();
    let mon = bus.connect(HelloBuilder::new().monitor());
    let act = bus.connect(HelloBuilder::new().activator("org.act.x", &[]));
    let none = AttachFlags::empty();
    assert_eq!(
        a.conn_info(Peer::Id(mon.id()), none).unwrap().flags,
        HelloFlags::MONITOR
    );
    assert_eq!(
        a.conn_info(Peer::Id(act.id()), none).unwrap().flags,
        HelloFlags::ACTIVATOR
    );
    assert_eq!(
        a.conn_info(Peer::Name("org.act.x"), none).unwrap().id,
        act.id(),
        "a name without owner resolves to its activator"
    );
}

#[test]
fn list_unique_ids() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let _mon = bus.connect(HelloBuilder::new().monitor());
    let list = a.list(ListFlags::UNIQUE).unwrap();
    let mut ids: Vec<u64> = list.iter().map(|i| i.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [a.id(), b.id()], "monitors are not listed");
    for i in &list {
        assert_eq!(i.flags, HelloFlags::ACCEPT_FD);
        assert!(i.name.is_none());
    }
    // records of 24 bytes: no items
    let mut cmd = command(
        &kdbus_cmd_list {
            flags: KDBUS_LIST_UNIQUE,
            ..Default::default()
        },
        &[],
    );
    kdbus::raw::ioctl(&a, KDBUS_CMD_LIST, &mut cmd).unwrap();
    let l: kdbus_cmd_list = cmd.read(0);
    assert_eq!(l.list_size, 2 * 24);
    raw_free(&a, l.offset).unwrap();
    assert!(
        a.list(ListFlags::empty()).unwrap().is_empty(),
        "nothing asked for, nothing listed"
    );
}

#[test]
fn poll_and_mmap_need_a_connection() {
    let bus = TestBus::new();
    let ep = kdbus::raw::open(bus.endpoint()).unwrap();
    assert_not_a_connection(&ep);

    let c = bus.conn();
    let mut fds = [rustix::event::PollFd::new(
        &c,
        rustix::event::PollFlags::IN | rustix::event::PollFlags::OUT,
    )];
    rustix::event::poll(&mut fds, None).unwrap();
    assert_eq!(fds[0].revents(), rustix::event::PollFlags::OUT);
    assert!(!readable(&c));
}

#[test]
fn endpoint_of_another_user_is_protected_by_its_mode() {
    let bus = TestBus::with(|b| b);
    let ep = bus.endpoint();
    assert_eq!(
        as_user(NOBODY, NOBODY, move || kdbus::raw::open(&ep).err()),
        Some(Errno::ACCESS)
    );
}
