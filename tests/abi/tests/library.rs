//! The `kdbus` library against the real module: every safe-API operation
//! end to end (buses, connections, messages, calls, names, matches,
//! notifications, info, BYEBYE, adoption across exec).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use kdbus::abi::*;
use kdbus::{
    own_name, AttachFlags, Bus, BusBuilder, ByeBye, Connection, Errno, HelloBuilder, ListFlags,
    MatchRule, MessageBuilder, NameFlags, Notification, Peer,
};
use kdbus_abi_tests::Domain;

const WAIT: Duration = Duration::from_secs(10);

struct Fixture {
    // Field order: connections go before the bus, the bus before the mount.
    bus: Bus,
    domain: Domain,
}

impl Fixture {
    fn new() -> Fixture {
        let domain = Domain::new();
        let bus = BusBuilder::new(own_name("lib"))
            .creator_attach_flags(AttachFlags::ANY)
            .create_in(domain.path())
            .expect("BUS_MAKE");
        Fixture { bus, domain }
    }

    fn connect(&self) -> Connection {
        HelloBuilder::new()
            .attach_send(AttachFlags::ANY)
            .attach_recv(AttachFlags::ANY)
            .pool_size(1 << 20)
            .connect(self.bus.endpoint().unwrap())
            .expect("HELLO")
    }
}

/// Waits for and receives the next message on `conn`.
fn next(conn: &Connection) -> kdbus::Message<'_> {
    assert!(conn.wait(Some(WAIT)).unwrap(), "no message within {WAIT:?}");
    conn.recv().unwrap().message.expect("a message")
}

/// Skips kernel notifications until a user message arrives.
fn next_user(conn: &Connection) -> kdbus::Message<'_> {
    loop {
        let msg = next(conn);
        if !msg.is_kernel() {
            return msg;
        }
    }
}

#[test]
fn bus_and_connections_report_their_ids() {
    let f = Fixture::new();
    let endpoint = f.bus.endpoint().unwrap();
    assert!(endpoint.exists(), "{} exists", endpoint.display());
    assert_eq!(
        endpoint.parent().unwrap().parent().unwrap(),
        f.domain.path()
    );
    let a = f.connect();
    let b = f.connect();
    assert_ne!(a.id(), b.id());
    assert_eq!(a.bus_id128(), b.bus_id128());
    assert_ne!(a.bus_id128(), [0; 16]);
    assert_eq!(a.bloom_params(), kdbus::BloomParams::DEFAULT);
    assert_eq!(a.pool_size(), 1 << 20);

    let creator = a.bus_creator_info(AttachFlags::ANY).unwrap();
    assert_eq!(creator.name, f.bus.name());
    assert_eq!(
        creator.metadata.pids.map(|p| p.pid),
        Some(std::process::id() as u64)
    );
}

#[test]
fn a_second_bus_with_the_same_name_is_refused() {
    let f = Fixture::new();
    let err = BusBuilder::new(f.bus.name())
        .create_in(f.domain.path())
        .unwrap_err();
    assert!(err.is(Errno::EXIST), "{err}");
    assert!(
        err.to_string()
            .starts_with("KDBUS_CMD_BUS_MAKE: File exists (EEXIST)"),
        "{err}"
    );
}

#[test]
fn unicast_payload_arrives_intact_with_metadata() {
    let f = Fixture::new();
    let a = f.connect();
    let b = f.connect();
    assert!(
        b.recv().unwrap().message.is_none(),
        "empty queue: no message"
    );
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let cookie = a
        .send(
            &MessageBuilder::to_id(b.id())
                .payload(b"head")
                .payload(&data)
                .priority(3),
        )
        .unwrap();
    let msg = next_user(&b);
    assert_eq!(msg.src_id(), a.id());
    assert_eq!(msg.dst_id(), b.id());
    assert_eq!(msg.cookie(), cookie);
    assert_eq!(msg.priority(), 3);
    assert_eq!(msg.payload_len(), 4 + data.len());
    let payload = msg.payload_to_vec();
    assert_eq!(&payload[..4], b"head");
    assert_eq!(&payload[4..], &data[..]);
    let meta = msg.metadata();
    assert!(meta.timestamp.is_some());
    assert_eq!(meta.pids.map(|p| p.pid), Some(std::process::id() as u64));
    assert_eq!(
        meta.creds.map(|c| c.uid),
        Some(rustix::process::getuid().as_raw() as u64)
    );
}

#[test]
fn sync_call_returns_the_reply_and_times_out() {
    let f = Fixture::new();
    let client = f.connect();
    let server = f.connect();
    std::thread::scope(|s| {
        s.spawn(|| {
            let call = next_user(&server);
            assert!(call.is_call());
            let mut reply = call.payload_to_vec();
            reply.reverse();
            server
                .send(&MessageBuilder::reply_to(&call).payload(&reply))
                .unwrap();
        });
        let reply = client
            .call(
                &MessageBuilder::to_id(server.id())
                    .payload(b"abc")
                    .expect_reply(WAIT),
            )
            .unwrap();
        assert_eq!(reply.payload_to_vec(), b"cba");
        assert_eq!(reply.src_id(), server.id());
    });
    let err = client
        .call(
            &MessageBuilder::to_id(server.id())
                .payload(b"nobody answers")
                .expect_reply(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert!(err.is(Errno::TIMEDOUT), "{err}");
}

#[test]
fn a_dropped_call_tells_the_caller() {
    let f = Fixture::new();
    let caller = f.connect();
    let callee = f.connect();
    let cookie = caller
        .send(
            &MessageBuilder::to_id(callee.id())
                .payload(b"x")
                .expect_reply(WAIT),
        )
        .unwrap();
    assert!(callee.wait(Some(WAIT)).unwrap());
    let dropped = callee.drop_next().unwrap();
    assert!(dropped.message.is_none());
    let note = next(&caller);
    assert_eq!(
        note.notification(),
        Some(Notification::ReplyDead { cookie })
    );
}

#[test]
fn names_are_acquired_queued_listed_and_addressed() {
    let f = Fixture::new();
    let a = f.connect();
    let b = f.connect();
    let name = "org.example.Lib";
    let got = a.acquire_name(name, NameFlags::empty()).unwrap();
    assert!(
        got.contains(NameFlags::PRIMARY | NameFlags::ACQUIRED),
        "{got:?}"
    );

    let err = b.acquire_name(name, NameFlags::empty()).unwrap_err();
    assert!(err.is(Errno::EXIST), "{err}");
    let queued = b.acquire_name(name, NameFlags::QUEUE).unwrap();
    assert!(queued.contains(NameFlags::IN_QUEUE), "{queued:?}");

    let list = a
        .list(ListFlags::NAMES | ListFlags::QUEUED | ListFlags::UNIQUE)
        .unwrap();
    let owner = list
        .iter()
        .find(|e| e.name.as_ref().is_some_and(|n| n.name == name) && e.id == a.id());
    assert!(owner.is_some(), "{list:?}");
    assert!(
        list.iter().any(|e| e.id == b.id()
            && e.name
                .as_ref()
                .is_some_and(|n| n.flags.contains(NameFlags::IN_QUEUE))),
        "{list:?}"
    );

    a.send(&MessageBuilder::to_name(name).payload(b"to the name"))
        .unwrap();
    let msg = next_user(&a);
    assert_eq!(msg.payload_to_vec(), b"to the name");
    assert_eq!(msg.dst_name(), Some(name));

    let info = b.conn_info(Peer::Name(name), AttachFlags::ANY).unwrap();
    assert_eq!(info.id, a.id());

    a.release_name(name).unwrap();
    let err = a.release_name(name).unwrap_err();
    assert!(err.is(Errno::ADDRINUSE) || err.is(Errno::SRCH), "{err}");
    let info = a.conn_info(Peer::Name(name), AttachFlags::empty()).unwrap();
    assert_eq!(info.id, b.id(), "the queued owner took over");
}

#[test]
fn notifications_follow_connections_and_names() {
    let f = Fixture::new();
    let watcher = f.connect();
    watcher
        .add_match(&MatchRule::new(1).id_added(None))
        .unwrap();
    for rule in MatchRule::name_changes(2, Some("org.example.Watched")) {
        watcher.add_match(&rule).unwrap();
    }
    let peer = f.connect();
    let note = next(&watcher).notification();
    assert!(
        matches!(note, Some(Notification::IdAdd { id, .. }) if id == peer.id()),
        "{note:?}"
    );
    peer.acquire_name("org.example.Watched", NameFlags::empty())
        .unwrap();
    match next(&watcher).notification() {
        Some(Notification::NameAdd { name, new_owner }) => {
            assert_eq!(name, "org.example.Watched");
            assert_eq!(new_owner.id, peer.id());
        }
        other => panic!("{other:?}"),
    }
    watcher.remove_match(2).unwrap();
    let err = watcher.remove_match(2).unwrap_err();
    assert!(err.is(Errno::BADSLT), "{err}");
}

#[test]
fn conn_info_carries_the_peers_metadata() {
    let f = Fixture::new();
    let a = f.connect();
    let b = HelloBuilder::new()
        .attach_send(AttachFlags::ANY)
        .description("described")
        .connect(f.bus.endpoint().unwrap())
        .unwrap();
    let info = a.conn_info(Peer::Id(b.id()), AttachFlags::ANY).unwrap();
    assert_eq!(info.id, b.id());
    assert_eq!(info.metadata.description.as_deref(), Some("described"));
    assert_eq!(
        info.metadata.pids.map(|p| p.pid),
        Some(std::process::id() as u64)
    );
    let err = a
        .conn_info(Peer::Id(u64::MAX - 1), AttachFlags::empty())
        .unwrap_err();
    assert!(err.is(Errno::NXIO), "{err}");
}

#[test]
fn byebye_waits_for_an_empty_queue() {
    let f = Fixture::new();
    let a = f.connect();
    let b = f.connect();
    a.send(&MessageBuilder::to_id(b.id()).payload(b"pending"))
        .unwrap();
    assert_eq!(b.byebye().unwrap(), ByeBye::Busy);
    drop(next_user(&b));
    assert_eq!(b.byebye().unwrap(), ByeBye::Disconnected);
    let err = b.recv().unwrap_err();
    assert!(err.is(Errno::CONNRESET) || err.is(Errno::SHUTDOWN), "{err}");
    let err = a
        .send(&MessageBuilder::to_id(b.id()).payload(b"late"))
        .unwrap_err();
    assert!(err.errno().is_some(), "{err}");
}

#[test]
fn peek_leaves_the_message_queued() {
    let f = Fixture::new();
    let a = f.connect();
    let b = f.connect();
    a.send(&MessageBuilder::to_id(b.id()).payload(b"twice"))
        .unwrap();
    assert!(b.wait(Some(WAIT)).unwrap());
    let peeked = b.peek().unwrap().message.expect("peeked");
    assert_eq!(peeked.view().payload_to_vec(), b"twice");
    let msg = b.recv().unwrap().message.expect("still queued");
    assert_eq!(msg.cookie(), peeked.view().cookie());
    drop(peeked);
    assert_eq!(
        msg.payload_to_vec(),
        b"twice",
        "the view survives the peek copy"
    );
}

#[test]
fn priorities_pick_the_lowest_value_first() {
    let f = Fixture::new();
    let a = f.connect();
    let b = f.connect();
    for p in [5i64, -2, 9] {
        a.send(
            &MessageBuilder::to_id(b.id())
                .payload(&p.to_ne_bytes())
                .priority(p),
        )
        .unwrap();
    }
    assert!(b.wait(Some(WAIT)).unwrap());
    assert!(b.recv_priority(-3).unwrap().message.is_none());
    let first = b.recv_priority(i64::MAX).unwrap().message.unwrap();
    assert_eq!(first.priority(), -2);
    drop(first);
    let fifo = b.recv().unwrap().message.unwrap();
    assert_eq!(fifo.priority(), 5, "without USE_PRIORITY: FIFO");
}

#[test]
fn an_adopted_bus_owner_keeps_the_bus() {
    let f = Fixture::new();
    let Fixture { bus, domain } = f;
    let name = bus.name().to_owned();
    let dup: OwnedFd = bus.as_fd().try_clone_to_owned().unwrap();
    drop(bus);
    let adopted = Bus::adopt(dup, domain.path(), &name).expect("adopt");
    let conn = Connection::connect(adopted.endpoint().unwrap()).unwrap();
    assert!(conn.id() > 0);
    drop(conn);
    drop(adopted);
    assert!(
        !kdbus::bus_path(domain.path(), &name).exists(),
        "closing the last owner handle removes the bus"
    );
}

#[test]
fn adopt_refuses_handles_that_are_not_bus_owners() {
    let f = Fixture::new();
    let conn = f.connect();
    let fd = conn.as_fd().try_clone_to_owned().unwrap();
    let err = Bus::adopt(fd, f.domain.path(), f.bus.name()).unwrap_err();
    assert!(err.to_string().contains("a connection"), "{err}");
}

#[test]
fn an_adopted_connection_keeps_receiving() {
    let f = Fixture::new();
    let a = f.connect();
    let b = f.connect();
    let params = b.params();
    let fd = b.as_fd().try_clone_to_owned().unwrap();
    drop(b);
    let b = Connection::adopt(fd, params).expect("adopt connection");
    a.send(&MessageBuilder::to_id(b.id()).payload(b"after exec"))
        .unwrap();
    assert_eq!(next_user(&b).payload_to_vec(), b"after exec");
}

#[test]
fn errors_name_the_command() {
    let f = Fixture::new();
    let a = f.connect();
    let err = a
        .send(&MessageBuilder::to_name("org.example.Nobody").payload(b"x"))
        .unwrap_err();
    assert_eq!(err.command_name(), Some("KDBUS_CMD_SEND"));
    assert!(err.is(Errno::SRCH), "{err}");
    let err = a
        .acquire_name("not-a-valid-name", NameFlags::empty())
        .unwrap_err();
    assert!(err.is(Errno::INVAL), "{err}");
    assert!(
        err.to_string()
            .starts_with("KDBUS_CMD_NAME_ACQUIRE: Invalid argument (EINVAL)"),
        "{err}"
    );
}

#[test]
fn raw_layer_reports_bare_errnos() {
    let f = Fixture::new();
    let a = f.connect();
    // An unaligned argument pointer is EFAULT (spec §1).
    let mut buf = kdbus::raw::Buf::zeroed(64);
    buf.write(
        1,
        &kdbus_cmd {
            size: 24,
            flags: 0,
            return_flags: 0,
        },
    );
    assert_eq!(
        kdbus::raw::ioctl_at(&a, KDBUS_CMD_BYEBYE, &mut buf, 1),
        Err(Errno::FAULT)
    );
    // A size below the fixed struct is EINVAL.
    let mut small = kdbus::raw::Buf::zeroed(24);
    small.set_u64(0, 16);
    assert_eq!(
        kdbus::raw::ioctl(&a, KDBUS_CMD_BYEBYE, &mut small),
        Err(Errno::INVAL)
    );
}

#[test]
fn one_connection_is_shared_by_many_threads() {
    let f = Fixture::new();
    let client = f.connect();
    let server = f.connect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Two threads receive on the same server connection.
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if !server.wait(Some(Duration::from_millis(20))).unwrap() {
                        continue;
                    }
                    let Some(call) = server.recv().unwrap().message else {
                        continue; // the other thread was faster
                    };
                    server
                        .send(&MessageBuilder::reply_to(&call).payload(&call.payload_to_vec()))
                        .unwrap();
                }
            });
        }
        // Four threads call through the same client connection.
        let callers: Vec<_> = (0..4u32)
            .map(|t| {
                let client = &client;
                let server_id = server.id();
                s.spawn(move || {
                    for i in 0..50u32 {
                        let body = [t.to_ne_bytes(), i.to_ne_bytes()].concat();
                        let reply = client
                            .call(
                                &MessageBuilder::to_id(server_id)
                                    .payload(&body)
                                    .expect_reply(WAIT),
                            )
                            .unwrap();
                        assert_eq!(reply.payload_to_vec(), body, "each caller gets its reply");
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

#[test]
fn update_changes_what_a_connection_offers() {
    let f = Fixture::new();
    let a = f.connect();
    let b = HelloBuilder::new()
        .description("updating")
        .connect(f.bus.endpoint().unwrap())
        .unwrap();
    let info = a.conn_info(Peer::Id(b.id()), AttachFlags::ANY).unwrap();
    assert_eq!(info.metadata.pids, None, "offers nothing yet");
    b.update(&kdbus::Update {
        attach_send: Some(AttachFlags::PIDS),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(b.attach_send(), AttachFlags::PIDS);
    let info = a.conn_info(Peer::Id(b.id()), AttachFlags::ANY).unwrap();
    assert_eq!(
        info.metadata.pids.map(|p| p.pid),
        Some(std::process::id() as u64)
    );
}

#[test]
fn a_readable_cancel_fd_cancels_a_sync_call() {
    let f = Fixture::new();
    let client = f.connect();
    let server = f.connect();
    let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
    std::io::Write::write_all(&mut writer, b"x").unwrap();
    let err = client
        .call_cancellable(
            &MessageBuilder::to_id(server.id())
                .payload(b"never answered")
                .expect_reply(WAIT),
            Some(reader.as_fd()),
        )
        .unwrap_err();
    assert!(err.is(Errno::CANCELED), "{err}");
}

#[test]
fn recv_timeout_waits_for_the_next_message() {
    let f = Fixture::new();
    let a = f.connect();
    let b = f.connect();
    let empty = b.recv_timeout(Duration::from_millis(100)).unwrap();
    assert!(empty.message.is_none());
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            a.send(&MessageBuilder::to_id(b.id()).payload(b"late"))
                .unwrap();
        });
        let got = b.recv_timeout(WAIT).unwrap().message.expect("message");
        assert_eq!(got.payload_to_vec(), b"late");
    });
}

#[test]
fn a_custom_endpoint_enforces_its_policy() {
    let f = Fixture::new();
    let service = f.connect();
    service
        .acquire_name("org.example.Public", NameFlags::empty())
        .unwrap();
    // TALK through a custom endpoint needs a granted name owned by the
    // peer (spec §12.3): this one owns none.
    let private = f.connect();
    private
        .acquire_name("org.example.Private", NameFlags::empty())
        .unwrap();
    let endpoint = kdbus::EndpointBuilder::new(own_name("ep"))
        .flags(kdbus::MakeFlags::ACCESS_WORLD)
        .create(f.bus.endpoint().unwrap())
        .expect("ENDPOINT_MAKE");
    endpoint
        .set_policy(&[kdbus::Policy::new(
            "org.example.Public",
            [kdbus::PolicyAccess::world(kdbus::Access::Talk)],
        )])
        .expect("ENDPOINT_UPDATE");
    let outsider = Connection::connect(endpoint.path()).expect("HELLO on the custom endpoint");
    outsider
        .send(&MessageBuilder::to_name("org.example.Public").payload(b"ok"))
        .unwrap();
    let err = outsider
        .send(&MessageBuilder::to_name("org.example.Private").payload(b"no"))
        .unwrap_err();
    assert!(err.is(Errno::SRCH) || err.is(Errno::PERM), "{err}");
    assert_eq!(next_user(&service).payload_to_vec(), b"ok");
}

#[test]
fn a_policy_holder_holds_and_replaces_its_policy() {
    let f = Fixture::new();
    let own = [kdbus::PolicyAccess::user(1000, kdbus::Access::Own)];
    let holder = HelloBuilder::new()
        .policy_holder("org.example.Held", &own)
        .connect(f.bus.endpoint().unwrap())
        .expect("policy holder HELLO");
    assert!(holder.flags().contains(kdbus::HelloFlags::POLICY_HOLDER));
    let err = HelloBuilder::new()
        .policy_holder("org.example.Held", &own)
        .connect(f.bus.endpoint().unwrap())
        .unwrap_err();
    assert!(err.is(Errno::EXIST), "{err}");
    holder
        .update(&kdbus::Update {
            policy: Some(kdbus::Policy::new(
                "org.example.Held",
                [kdbus::PolicyAccess::world(kdbus::Access::Talk)],
            )),
            ..Default::default()
        })
        .expect("UPDATE of a holder's policy");
    let err = holder
        .send(&MessageBuilder::to_id(holder.id()).payload(b"x"))
        .unwrap_err();
    assert!(err.is(Errno::OPNOTSUPP), "holders cannot send: {err}");
}
