//! HELLO, UPDATE, BYEBYE, CONN_INFO and LIST of connections (spec §2.3,
//! §4.3-§4.9, §14).

use std::os::fd::AsFd;

use kdbus::abi::*;
use kdbus_abi_tests::conn::open_node;
use kdbus_abi_tests::raw::{self, item_str, item_struct, item_u64, read_struct};
use kdbus_abi_tests::*;
use rustix::io::Errno;

const NOBODY: u32 = 65534;

#[test]
fn hello_returns_id_bus_flags_id128_and_bloom() {
    let bus = Bus::new();
    let ep = open_node(&bus.endpoint()).unwrap();
    let mut b = Hello::new().buf();
    raw::ioctl(ep.as_fd(), KDBUS_CMD_HELLO, &mut b).unwrap();
    let h: kdbus_cmd_hello = read_struct(b.bytes());
    assert_ne!(h.id, 0);
    assert_eq!(h.bus_flags, KDBUS_MAKE_ACCESS_WORLD);
    assert_ne!(h.id128, [0; 16]);
    assert_eq!(h.id128[6] >> 4, 4, "a version 4 UUID");
    assert_eq!(h.items_size, 32);

    let pool = Pool::map(ep.as_fd(), h.pool_size as usize).unwrap();
    let items = msg::parse_items(&pool.read(h.offset, h.items_size));
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].ty, KDBUS_ITEM_BLOOM_PARAMETER);
    let p: kdbus_bloom_parameter = items[0].as_struct();
    assert_eq!((p.size, p.n_hash), (BLOOM_SIZE, 8));

    // a second connection: same bus id128, new id
    let other = bus.conn();
    assert_eq!(other.hello.id128, h.id128);
    assert!(other.id > h.id);
}

#[test]
fn hello_slice_must_be_freed_once() {
    let bus = Bus::new();
    let ep = open_node(&bus.endpoint()).unwrap();
    let mut b = Hello::new().buf();
    raw::ioctl(ep.as_fd(), KDBUS_CMD_HELLO, &mut b).unwrap();
    let h: kdbus_cmd_hello = read_struct(b.bytes());
    let mut f = raw::cmd(
        &kdbus_cmd_free {
            offset: h.offset,
            ..Default::default()
        },
        &[],
    );
    raw::ioctl(ep.as_fd(), KDBUS_CMD_FREE, &mut f).unwrap();
    let mut f2 = f.clone();
    assert_eq!(
        raw::ioctl(ep.as_fd(), KDBUS_CMD_FREE, &mut f2),
        Err(Errno::NXIO)
    );
}

#[test]
fn pool_size_must_be_a_nonzero_multiple_of_the_page_size() {
    let bus = Bus::new();
    for size in [0, 1, 4095, 4097, 4096 * 3 + 8] {
        assert_eq!(
            Hello::new().pool_size(size).connect(&bus.endpoint()).err(),
            Some(Errno::INVAL),
            "pool size {size}"
        );
    }
    Hello::new()
        .pool_size(4096)
        .connect(&bus.endpoint())
        .unwrap();
}

#[test]
fn hello_flag_combinations() {
    let bus = Bus::new();
    let ep = bus.endpoint();
    let e = |h: Hello| h.connect(&ep).err();
    assert_eq!(
        e(Hello::new()
            .flags(KDBUS_HELLO_ACTIVATOR | KDBUS_HELLO_MONITOR)
            .name("org.a.b")),
        Some(Errno::INVAL)
    );
    assert_eq!(
        e(Hello::new().flags(KDBUS_HELLO_POLICY_HOLDER | KDBUS_HELLO_MONITOR)),
        Some(Errno::INVAL)
    );
    assert_eq!(
        e(Hello::new().flags(KDBUS_HELLO_ACTIVATOR)),
        Some(Errno::INVAL),
        "activator without name"
    );
    assert_eq!(
        e(Hello::new().flags(KDBUS_HELLO_POLICY_HOLDER)),
        Some(Errno::INVAL)
    );
    assert_eq!(
        e(Hello::new().name("org.a.b")),
        Some(Errno::INVAL),
        "name on an ordinary conn"
    );
    assert_eq!(
        e(Hello::new().flags(KDBUS_HELLO_ACTIVATOR).name("org.a.*")),
        Some(Errno::INVAL),
        "wildcard activator"
    );
    assert_eq!(
        e(Hello::new().flags(KDBUS_HELLO_ACTIVATOR).name("noname")),
        Some(Errno::INVAL)
    );
    assert!(e(Hello::new()
        .flags(KDBUS_HELLO_POLICY_HOLDER)
        .name("org.a.*"))
    .is_none());
    assert!(e(Hello::new().flags(KDBUS_HELLO_MONITOR)).is_none());
}

#[test]
fn attach_flags_are_validated() {
    let bus = Bus::new();
    let ep = bus.endpoint();
    assert_eq!(
        Hello::new().attach(1 << 14, 0).connect(&ep).err(),
        Some(Errno::INVAL)
    );
    assert_eq!(
        Hello::new().attach(0, 1 << 40).connect(&ep).err(),
        Some(Errno::INVAL)
    );
    Hello::new()
        .attach(_KDBUS_ATTACH_ANY, _KDBUS_ATTACH_ANY)
        .connect(&ep)
        .unwrap();
}

#[test]
fn description_rules() {
    let bus = Bus::new();
    let ep = bus.endpoint();
    let c = Hello::new().description("my-conn.1").connect(&ep).unwrap();
    let info = bus
        .conn()
        .conn_info(c.id, None, KDBUS_ATTACH_CONN_DESCRIPTION)
        .unwrap();
    assert_eq!(
        info.item(KDBUS_ITEM_CONN_DESCRIPTION).unwrap().str(),
        "my-conn.1"
    );
    assert_eq!(
        Hello::new().description(&"d".repeat(64)).connect(&ep).err(),
        Some(Errno::NAMETOOLONG)
    );
    assert_eq!(
        Hello::new().description("a b").connect(&ep).err(),
        Some(Errno::INVAL)
    );
    assert_eq!(
        Hello::new().description("-a").connect(&ep).err(),
        Some(Errno::INVAL)
    );
    Hello::new()
        .description(&"d".repeat(63))
        .connect(&ep)
        .unwrap();
}

#[test]
fn special_connections_need_an_owner() {
    let bus = Bus::new();
    let ep = bus.endpoint();
    let errs = as_user(NOBODY, NOBODY, move || {
        let h = |h: Hello| h.connect(&ep).err();
        vec![
            h(Hello::new().flags(KDBUS_HELLO_ACTIVATOR).name("org.a.b")),
            h(Hello::new()
                .flags(KDBUS_HELLO_POLICY_HOLDER)
                .name("org.a.b")),
            h(Hello::new().flags(KDBUS_HELLO_MONITOR)),
            h(Hello::new().item(item_struct(KDBUS_ITEM_CREDS, &kdbus_creds::default()))),
            h(Hello::new().item(item_struct(KDBUS_ITEM_PIDS, &kdbus_pids::default()))),
            h(Hello::new().item(item_str(KDBUS_ITEM_SECLABEL, "x"))),
            h(Hello::new()),
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
    let bus = Bus::new();
    let watcher = bus.conn();
    watcher.match_all();
    let c = Hello::new().flags(0).connect(&bus.endpoint()).unwrap();
    let id = c.id;
    let m = watcher.recv_msg();
    assert_eq!(m.hdr.src_id, KDBUS_SRC_ID_KERNEL);
    assert_eq!(m.hdr.dst_id, KDBUS_DST_ID_BROADCAST);
    assert_eq!(m.hdr.flags, KDBUS_MSG_SIGNAL);
    assert_eq!(m.hdr.payload_type, KDBUS_PAYLOAD_KERNEL);
    assert_eq!(m.hdr.cookie, 0);
    assert_eq!(m.items.len(), 2, "notification + timestamp");
    assert_eq!(m.items[0].ty, KDBUS_ITEM_ID_ADD);
    let n: kdbus_notify_id_change = m.items[0].as_struct();
    assert_eq!((n.id, n.flags), (id, 0));
    assert_eq!(m.items[1].ty, KDBUS_ITEM_TIMESTAMP);

    drop(c);
    let m = watcher.recv_msg();
    assert_eq!(m.items[0].ty, KDBUS_ITEM_ID_REMOVE);
    let n: kdbus_notify_id_change = m.items[0].as_struct();
    assert_eq!(n.id, id);
}

#[test]
fn notifications_carry_a_timestamp_even_without_attach_flags() {
    let bus = Bus::new();
    let watcher = bus.conn_plain();
    watcher.match_all();
    let _c = bus.conn();
    let m = watcher.recv_msg();
    let ts: kdbus_timestamp = m.item(KDBUS_ITEM_TIMESTAMP).unwrap().as_struct();
    assert!(ts.monotonic_ns > 0 && ts.realtime_ns > 0 && ts.seqnum > 0);
}

#[test]
fn update_attach_flags() {
    let bus = Bus::new();
    let a = bus.conn_plain();
    let b = bus.conn_plain();
    a.send(&MsgBuilder::new(b.id)).unwrap();
    assert!(!b.recv_msg().has(KDBUS_ITEM_CREDS));

    b.update(&[item_u64(
        KDBUS_ITEM_ATTACH_FLAGS_RECV,
        KDBUS_ATTACH_CREDS | KDBUS_ATTACH_PID_COMM,
    )])
    .unwrap();
    a.send(&MsgBuilder::new(b.id)).unwrap();
    let m = b.recv_msg();
    assert!(m.has(KDBUS_ITEM_CREDS), "implicit item granted");
    assert!(!m.has(KDBUS_ITEM_PID_COMM), "sender did not opt in");

    a.update(&[item_u64(
        KDBUS_ITEM_ATTACH_FLAGS_SEND,
        KDBUS_ATTACH_PID_COMM,
    )])
    .unwrap();
    a.send(&MsgBuilder::new(b.id)).unwrap();
    assert!(b.recv_msg().has(KDBUS_ITEM_PID_COMM));

    // everything is validated before anything is applied
    assert_eq!(
        a.update(&[
            item_u64(KDBUS_ITEM_ATTACH_FLAGS_SEND, 0),
            item_u64(KDBUS_ITEM_ATTACH_FLAGS_RECV, 1 << 30)
        ]),
        Err(Errno::INVAL)
    );
    a.send(&MsgBuilder::new(b.id)).unwrap();
    assert!(
        b.recv_msg().has(KDBUS_ITEM_PID_COMM),
        "send flags unchanged"
    );

    // policy items are for policy holders only
    assert_eq!(
        a.update(&[item_str(KDBUS_ITEM_NAME, "org.a.b")]),
        Err(Errno::OPNOTSUPP)
    );
}

#[test]
fn update_per_connection_kind() {
    let bus = Bus::new();
    let act = Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR)
        .name("org.act.x")
        .connect(&bus.endpoint())
        .unwrap();
    assert_eq!(
        act.update(&[item_u64(KDBUS_ITEM_ATTACH_FLAGS_SEND, 0)]),
        Err(Errno::OPNOTSUPP)
    );
    act.update(&[item_u64(KDBUS_ITEM_ATTACH_FLAGS_RECV, 0)])
        .unwrap();

    let mon = Hello::new()
        .flags(KDBUS_HELLO_MONITOR)
        .connect(&bus.endpoint())
        .unwrap();
    mon.update(&[item_u64(KDBUS_ITEM_ATTACH_FLAGS_SEND, 0)])
        .unwrap();
    mon.update(&[item_u64(KDBUS_ITEM_ATTACH_FLAGS_RECV, 0)])
        .unwrap();

    let holder = Hello::new()
        .flags(KDBUS_HELLO_POLICY_HOLDER)
        .name("org.hold.*")
        .connect(&bus.endpoint())
        .unwrap();
    assert_eq!(
        holder.update(&[item_u64(KDBUS_ITEM_ATTACH_FLAGS_SEND, 0)]),
        Err(Errno::OPNOTSUPP)
    );
    assert_eq!(
        holder.update(&[item_u64(KDBUS_ITEM_ATTACH_FLAGS_RECV, 0)]),
        Err(Errno::OPNOTSUPP)
    );
    holder
        .update(&[
            item_str(KDBUS_ITEM_NAME, "org.hold.other"),
            item_struct(
                KDBUS_ITEM_POLICY_ACCESS,
                &kdbus_policy_access {
                    type_: KDBUS_POLICY_ACCESS_WORLD,
                    access: KDBUS_POLICY_OWN,
                    id: 0,
                },
            ),
        ])
        .unwrap();
    assert_eq!(
        holder.update(&[
            item_str(KDBUS_ITEM_NAME, "org.x.a"),
            item_str(KDBUS_ITEM_NAME, "org.x.b")
        ]),
        Err(Errno::TOOBIG),
        "one name per holder"
    );
}

#[test]
fn byebye_disconnects_an_idle_connection() {
    let bus = Bus::new();
    let watcher = bus.conn();
    watcher.match_all();
    let c = bus.conn();
    let id = c.id;
    assert_eq!(watcher.recv_msg().notification().ty, KDBUS_ITEM_ID_ADD);
    c.byebye().unwrap();
    let m = watcher.recv_msg();
    assert_eq!(m.notification().ty, KDBUS_ITEM_ID_REMOVE);
    assert_eq!(
        m.notification().as_struct::<kdbus_notify_id_change>().id,
        id
    );
    assert_eq!(c.byebye(), Err(Errno::CONNRESET));
    assert_eq!(errno(c.recv()), Errno::CONNRESET);
    assert_eq!(watcher.send(&MsgBuilder::new(id)), Err(Errno::NXIO));
    // poll reports the dead connection
    let mut fds = [rustix::event::PollFd::new(
        &c.fd,
        rustix::event::PollFlags::IN,
    )];
    rustix::event::poll(&mut fds, None).unwrap();
    assert!(fds[0].revents().contains(rustix::event::PollFlags::HUP));
}

#[test]
fn byebye_with_queued_messages_is_ebusy() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MsgBuilder::new(b.id)).unwrap();
    assert_eq!(b.byebye(), Err(Errno::BUSY));
    // nothing changed
    let m = b.recv_msg();
    assert_eq!(m.hdr.src_id, a.id);
    b.byebye().unwrap();
}

#[test]
fn byebye_only_for_ordinary_connections() {
    let bus = Bus::new();
    let act = Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR)
        .name("org.act.x")
        .connect(&bus.endpoint())
        .unwrap();
    assert_eq!(act.byebye(), Err(Errno::OPNOTSUPP));
    let mon = Hello::new()
        .flags(KDBUS_HELLO_MONITOR)
        .connect(&bus.endpoint())
        .unwrap();
    assert_eq!(mon.byebye(), Err(Errno::OPNOTSUPP));
}

#[test]
fn conn_info_by_id_and_by_name() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = Hello::new()
        .flags(KDBUS_HELLO_ACCEPT_FD)
        .description("bee")
        .connect(&bus.endpoint())
        .unwrap();
    b.acquire("org.example.bee", 0).unwrap();

    let info = a.conn_info(b.id, None, 0).unwrap();
    assert_eq!(info.id, b.id);
    assert_eq!(info.flags, KDBUS_HELLO_ACCEPT_FD);
    assert!(
        info.items.is_empty(),
        "no metadata asked for: {:?}",
        info.items
    );

    let info = a.conn_info(0, Some("org.example.bee"), 0).unwrap();
    assert_eq!(info.id, b.id);
    let info = a.conn_info(b.id, Some("org.example.bee"), 0).unwrap();
    assert_eq!(info.id, b.id);

    assert_eq!(
        errno(a.conn_info(a.id, Some("org.example.bee"), 0)),
        Errno::SRCH
    );
    assert_eq!(
        errno(a.conn_info(0, Some("org.example.none"), 0)),
        Errno::SRCH
    );
    assert_eq!(errno(a.conn_info(12345, None, 0)), Errno::NXIO);
    assert_eq!(errno(a.conn_info(0, None, 0)), Errno::INVAL);
    assert_eq!(errno(a.conn_info(b.id, None, 1 << 20)), Errno::INVAL);

    // the names and description of the target, without timestamp
    let info = a
        .conn_info(
            b.id,
            None,
            KDBUS_ATTACH_NAMES | KDBUS_ATTACH_CONN_DESCRIPTION | KDBUS_ATTACH_TIMESTAMP,
        )
        .unwrap();
    let (flags, name) = info.item(KDBUS_ITEM_OWNED_NAME).unwrap().name();
    assert_eq!(name, "org.example.bee");
    assert_ne!(flags & KDBUS_NAME_PRIMARY, 0);
    assert_eq!(info.item(KDBUS_ITEM_CONN_DESCRIPTION).unwrap().str(), "bee");
    assert!(info.item(KDBUS_ITEM_TIMESTAMP).is_none());
}

#[test]
fn conn_info_is_limited_by_the_targets_send_flags() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = Hello::new()
        .attach(KDBUS_ATTACH_CREDS, 0)
        .connect(&bus.endpoint())
        .unwrap();
    let info = a.conn_info(b.id, None, _KDBUS_ATTACH_ALL).unwrap();
    let types: Vec<u64> = info.items.iter().map(|i| i.ty).collect();
    assert_eq!(types, [KDBUS_ITEM_CREDS]);
}

#[test]
fn conn_info_sees_monitors_and_activators() {
    let bus = Bus::new();
    let a = bus.conn();
    let mon = Hello::new()
        .flags(KDBUS_HELLO_MONITOR)
        .connect(&bus.endpoint())
        .unwrap();
    let act = Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR)
        .name("org.act.x")
        .connect(&bus.endpoint())
        .unwrap();
    assert_eq!(
        a.conn_info(mon.id, None, 0).unwrap().flags,
        KDBUS_HELLO_MONITOR
    );
    assert_eq!(
        a.conn_info(act.id, None, 0).unwrap().flags,
        KDBUS_HELLO_ACTIVATOR
    );
    assert_eq!(
        a.conn_info(0, Some("org.act.x"), 0).unwrap().id,
        act.id,
        "a name without owner resolves to its activator"
    );
}

#[test]
fn list_unique_ids() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let _mon = Hello::new()
        .flags(KDBUS_HELLO_MONITOR)
        .connect(&bus.endpoint())
        .unwrap();
    let mut ids: Vec<u64> = a
        .list(KDBUS_LIST_UNIQUE)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [a.id, b.id], "monitors are not listed");
    for i in a.list(KDBUS_LIST_UNIQUE).unwrap() {
        assert_eq!(i.size, 24);
        assert_eq!(i.flags, KDBUS_HELLO_ACCEPT_FD);
    }
    assert!(
        a.list(0).unwrap().is_empty(),
        "nothing asked for, nothing listed"
    );
}

#[test]
fn poll_and_mmap_need_a_connection() {
    let bus = Bus::new();
    let ep = open_node(&bus.endpoint()).unwrap();
    let mut fds = [rustix::event::PollFd::new(
        &ep,
        rustix::event::PollFlags::IN,
    )];
    rustix::event::poll(&mut fds, None).unwrap();
    assert!(fds[0]
        .revents()
        .contains(rustix::event::PollFlags::ERR | rustix::event::PollFlags::HUP));
    assert_eq!(Pool::map(ep.as_fd(), 4096).err(), Some(Errno::BADFD));

    let c = bus.conn();
    let mut fds = [rustix::event::PollFd::new(
        &c.fd,
        rustix::event::PollFlags::IN | rustix::event::PollFlags::OUT,
    )];
    rustix::event::poll(&mut fds, None).unwrap();
    assert_eq!(fds[0].revents(), rustix::event::PollFlags::OUT);
}

#[test]
fn endpoint_of_another_user_is_protected_by_its_mode() {
    let bus = Bus::new_with(0, &[]);
    let ep = bus.endpoint();
    assert_eq!(
        as_user(NOBODY, NOBODY, move || open_node(&ep).err()),
        Some(Errno::ACCESS)
    );
}
