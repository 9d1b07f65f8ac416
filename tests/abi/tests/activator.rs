//! Activators (spec §10.4, §14): messages to an unowned activatable name
//! queue on the activator and move to the implementer that acquires the
//! name, in order, with their reply slots; and back when it leaves.

use std::os::fd::AsFd;
use std::sync::Arc;

use kdbus::abi::*;
use kdbus::{
    AttachFlags, ByeBye, Connection, Errno, HelloBuilder, ListFlags, MatchRule, MessageBuilder,
    NameFlags, NameOwner, Notification, Peer,
};
use kdbus_abi_tests::fixture::*;

const NAME: &str = "org.example.Activatable";

fn activator_hello() -> HelloBuilder {
    HelloBuilder::new().accept_fds().activator(NAME, &[])
}

fn activator(bus: &TestBus) -> Connection {
    bus.connect(activator_hello())
}

fn payloads(c: &Connection) -> Vec<Vec<u8>> {
    drain(c).iter().map(|m| m.payload_to_vec()).collect()
}

fn owner(id: u64, flags: NameFlags) -> NameOwner {
    NameOwner { id, flags }
}

#[test]
fn activator_registers_its_name() {
    let bus = TestBus::new();
    let w = bus.conn();
    match_all(&w);
    let act = activator(&bus);
    let m = drain(&w);
    assert!(
        matches!(m[0].notification(), Some(Notification::IdAdd { id, .. }) if id == act.id()),
        "{:?}",
        m[0]
    );
    assert_eq!(
        m[1].notification(),
        Some(Notification::NameAdd {
            name: NAME.into(),
            new_owner: owner(act.id(), NameFlags::ACTIVATOR),
        })
    );
    drop(m);

    let l = w.list(ListFlags::ACTIVATORS).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id, act.id());
    assert!(w.list(ListFlags::NAMES).unwrap().is_empty());

    // one activator per name
    assert_eq!(
        errno(bus.try_connect(HelloBuilder::new().activator(NAME, &[]))),
        Errno::EXIST
    );
}

#[test]
fn messages_to_the_name_queue_on_the_activator() {
    let bus = TestBus::new();
    let act = activator(&bus);
    let a = bus.conn();
    assert!(!readable(&act));
    a.send(&MessageBuilder::to_name(NAME).payload(b"one"))
        .unwrap();
    assert!(readable(&act), "a service manager polls the activator");
    // the activator may peek (and free what it peeked)
    let (r, p) = raw_recv(&act, KDBUS_RECV_PEEK, 0);
    r.unwrap();
    let bytes = act.read_pool(p.msg.offset, p.msg.msg_size).unwrap();
    assert_eq!(
        kdbus::MessageView::parse(&bytes).unwrap().payload_to_vec(),
        b"one"
    );
    raw_free(&act, p.msg.offset).unwrap();
    assert_eq!(
        act.peek().unwrap().message.unwrap().view().payload_to_vec(),
        b"one"
    );
    assert_eq!(
        errno(a.send(&MessageBuilder::to_name(NAME).no_auto_start())),
        Errno::ADDRNOTAVAIL
    );
    assert_eq!(
        errno(a.send(&MessageBuilder::to_id(act.id()))),
        Errno::NXIO,
        "not addressable by id"
    );
}

#[test]
fn acquiring_moves_the_queued_messages_in_order() {
    let bus = TestBus::new();
    let w = bus.conn();
    let act = activator(&bus);
    let a = bus.conn();
    for i in 0u8..10 {
        a.send(&MessageBuilder::to_name(NAME).payload(&[i]))
            .unwrap();
    }
    // a message to the activator that is not for the name stays (none can
    // be sent by id, so only name messages exist); the implementer comes
    let svc = bus.conn();
    match_all(&w);
    assert_eq!(
        svc.acquire_name(NAME, NameFlags::empty()).unwrap(),
        NameFlags::PRIMARY | NameFlags::ACQUIRED
    );
    let got = payloads(&svc);
    assert_eq!(got, (0u8..10).map(|i| vec![i]).collect::<Vec<_>>());
    assert!(
        act.recv().unwrap().message.is_none(),
        "nothing left on the activator"
    );

    assert_eq!(
        recv_msg(&w).notification(),
        Some(Notification::NameChange {
            name: NAME.into(),
            old_owner: owner(act.id(), NameFlags::ACTIVATOR),
            // the flags the new owner acquired with
            new_owner: owner(svc.id(), NameFlags::empty()),
        })
    );

    // the activator is listed as queued behind the owner
    let l = w.list(ListFlags::ACTIVATORS).unwrap();
    assert_eq!(
        l[0].name.as_ref().unwrap().flags,
        NameFlags::ACTIVATOR | NameFlags::IN_QUEUE
    );
}

#[test]
fn reply_slots_follow_the_messages() {
    let bus = TestBus::new();
    let _act = activator(&bus);
    let a = bus.conn();
    for cookie in [11, 12] {
        a.send(
            &MessageBuilder::to_name(NAME)
                .cookie(cookie)
                .expect_reply_by(deadline_ms(10_000)),
        )
        .unwrap();
    }
    let svc = bus.conn();
    svc.acquire_name(NAME, NameFlags::empty()).unwrap();
    let c1 = recv_msg(&svc);
    svc.send(&MessageBuilder::reply_to(&c1).payload(b"r"))
        .unwrap();
    let r = recv_msg(&a);
    assert_eq!((r.cookie_reply(), r.src_id()), (11, svc.id()));
    // the implementer received the call, released the name, and died
    // owing the reply: the slot did not follow the name to the activator
    drop(recv_msg(&svc));
    svc.release_name(NAME).unwrap();
    drop(c1);
    drop(svc);
    assert_eq!(
        recv_msg(&a).notification(),
        Some(Notification::ReplyDead { cookie: 12 })
    );
}

#[test]
fn releasing_hands_unreceived_messages_back() {
    let bus = TestBus::new();
    let act = activator(&bus);
    let a = bus.conn();
    let svc = bus.conn();
    svc.acquire_name(NAME, NameFlags::empty()).unwrap();
    a.send(&MessageBuilder::to_name(NAME).payload(b"name-1"))
        .unwrap();
    a.send(&MessageBuilder::to_id(svc.id()).payload(b"by-id"))
        .unwrap();
    a.send(&MessageBuilder::to_name(NAME).payload(b"name-2"))
        .unwrap();
    svc.release_name(NAME).unwrap();
    assert_eq!(payloads(&act), [b"name-1".to_vec(), b"name-2".to_vec()]);
    assert_eq!(
        payloads(&svc),
        [b"by-id".to_vec()],
        "messages to the id stay"
    );

    // and when the implementer disconnects
    let svc2 = bus.conn();
    svc2.acquire_name(NAME, NameFlags::empty()).unwrap();
    a.send(&MessageBuilder::to_name(NAME).payload(b"name-3"))
        .unwrap();
    drop(svc2);
    assert_eq!(payloads(&act), [b"name-3".to_vec()]);
}

#[test]
fn exit_on_idle_loses_nothing() {
    let bus = TestBus::new();
    let act = activator(&bus);
    let a = Arc::new(bus.conn());
    // below the 256 messages one user may queue on a receiver
    const N: u32 = 200;
    let a2 = a.clone();
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            a2.send(&MessageBuilder::to_name(NAME).payload(&i.to_ne_bytes()))
                .unwrap_or_else(|e| panic!("send {i} of {N} to {NAME}: {e}"));
        }
    });

    let mut seen = Vec::new();
    let mut rounds = 0;
    let take = |svc: &Connection, seen: &mut Vec<u32>| {
        for m in drain(svc) {
            seen.push(u32::from_ne_bytes(m.payload_to_vec().try_into().unwrap()));
        }
    };
    // services come and go; each leaves only when idle (BYEBYE), and
    // takes over what queued on the activator meanwhile. Until the sender
    // has *ended*: a send that fails must fail the test, not leave this
    // loop waiting for a sender that is gone.
    while !sender.is_finished() || readable(&act) {
        rounds += 1;
        let svc = bus.conn();
        svc.acquire_name(NAME, NameFlags::empty()).unwrap();
        for _ in 0..3 {
            take(&svc, &mut seen);
            std::thread::yield_now();
        }
        loop {
            take(&svc, &mut seen);
            match svc.byebye().expect("BYEBYE") {
                ByeBye::Disconnected => break,
                ByeBye::Busy => continue,
            }
        }
    }
    if let Err(panic) = sender.join() {
        std::panic::resume_unwind(panic);
    }
    eprintln!("exit on idle: {rounds} services");
    assert_eq!(seen, (0..N).collect::<Vec<_>>(), "all, once, in order");
}

#[test]
fn activator_rights() {
    let bus = TestBus::new();
    let act = activator(&bus);
    assert_eq!(
        errno(act.acquire_name("org.other.n", NameFlags::empty())),
        Errno::OPNOTSUPP
    );
    assert_eq!(
        errno(act.send(&MessageBuilder::to_name(NAME))),
        Errno::OPNOTSUPP
    );
    assert_eq!(errno(act.add_match(&MatchRule::new(1))), Errno::OPNOTSUPP);
    act.list(ListFlags::ACTIVATORS).unwrap();
    act.conn_info(Peer::Id(act.id()), AttachFlags::empty())
        .unwrap();
}

#[test]
fn messages_with_fds_are_dropped_for_an_implementer_without_accept_fd() {
    let bus = TestBus::new();
    let act = activator(&bus);
    let a = bus.conn();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    a.send(&MessageBuilder::to_name(NAME).fds(&[r.as_fd()]))
        .unwrap();
    a.send(&MessageBuilder::to_name(NAME).payload(b"plain"))
        .unwrap();
    let svc = bus.connect(HelloBuilder::new());
    svc.acquire_name(NAME, NameFlags::empty()).unwrap();
    let r = svc.recv().unwrap();
    assert_eq!(r.dropped_msgs, 1);
    assert_eq!(r.message.unwrap().payload_to_vec(), b"plain");
    assert!(act.recv().unwrap().message.is_none(), "EAGAIN");
}

#[test]
fn activator_leaving_removes_the_name() {
    let bus = TestBus::new();
    let w = bus.conn();
    let act = activator(&bus);
    match_all(&w);
    let id = act.id();
    drop(act);
    let kinds: Vec<Notification> = drain(&w)
        .iter()
        .map(|m| m.notification().expect("a notification"))
        .collect();
    assert_eq!(
        kinds,
        [
            Notification::NameRemove {
                name: NAME.into(),
                old_owner: owner(id, NameFlags::ACTIVATOR),
            },
            Notification::IdRemove {
                id,
                flags: kdbus::HelloFlags::ACTIVATOR | kdbus::HelloFlags::ACCEPT_FD,
            },
        ]
    );
    let a = bus.conn();
    assert_eq!(errno(a.send(&MessageBuilder::to_name(NAME))), Errno::SRCH);
}

#[test]
fn queued_calls_follow_the_name_back_and_forth() {
    let bus = TestBus::new();
    let act = activator(&bus);
    let a = bus.conn();
    let svc1 = bus.conn();
    svc1.acquire_name(NAME, NameFlags::empty()).unwrap();
    a.send(
        &MessageBuilder::to_name(NAME)
            .cookie(21)
            .expect_reply_by(deadline_ms(10_000)),
    )
    .unwrap();
    // not received: the call and its slot go back to the activator...
    svc1.release_name(NAME).unwrap();
    assert!(readable(&act));
    // ...and on to the next implementer, who can answer it
    let svc2 = bus.conn();
    svc2.acquire_name(NAME, NameFlags::empty()).unwrap();
    let call = recv_msg(&svc2);
    assert_eq!(call.cookie(), 21);
    assert_eq!(
        errno(svc1.send(&MessageBuilder::to_id(a.id()).cookie_reply(21))),
        Errno::BADSLT,
        "the first implementer owes nothing any more"
    );
    svc2.send(&MessageBuilder::reply_to(&call).payload(b"ok"))
        .unwrap();
    let r = recv_msg(&a);
    assert_eq!((r.cookie_reply(), r.payload_to_vec()), (21, b"ok".to_vec()));
}

/// Each message's number as its payload, for checking order and loss.
fn numbered(i: u16) -> [u8; 2] {
    i.to_le_bytes()
}

fn numbers(range: std::ops::Range<u16>) -> Vec<Vec<u8>> {
    range.map(|i| numbered(i).to_vec()).collect()
}

#[test]
fn a_take_over_moves_what_the_quota_admits_and_counts_the_rest_as_dropped() {
    let bus = TestBus::new();
    let act = activator(&bus);
    let a = bus.conn_plain();
    let svc = bus.conn_plain();
    // 100 of the 256 messages one user may queue on svc (spec §16) are used
    for i in 0..100 {
        a.send(&MessageBuilder::to_id(svc.id()).payload(&numbered(i)))
            .unwrap();
    }
    // the activator takes the full 256; the last one is a call
    for i in 0..255 {
        a.send(&MessageBuilder::to_name(NAME).payload(&numbered(i)))
            .unwrap();
    }
    a.send(
        &MessageBuilder::to_name(NAME)
            .payload(&numbered(255))
            .cookie(77)
            .expect_reply_by(deadline_ms(10_000)),
    )
    .unwrap();

    svc.acquire_name(NAME, NameFlags::empty()).unwrap();
    // the first 156 fit in what is left of the quota, in order; exactly
    // the 100 others are dropped and reported once
    let first = svc.recv().unwrap();
    assert_eq!(first.dropped_msgs, 100, "dropped on the take-over");
    let mut got = vec![first.message.expect("a message").payload_to_vec()];
    for _ in 1..256 {
        let r = svc.recv().unwrap();
        assert_eq!(r.dropped_msgs, 0, "the loss is reported once");
        got.push(r.message.expect("a message").payload_to_vec());
    }
    let mut want = numbers(0..100);
    want.extend(numbers(0..156));
    assert_eq!(got, want);
    let r = svc.recv().unwrap();
    assert!(r.message.is_none() && r.dropped_msgs == 0, "nothing more");
    let r = act.recv().unwrap();
    assert!(
        r.message.is_none() && r.dropped_msgs == 0,
        "nothing stays on or is lost by the activator"
    );
    // the dropped call is answered as dead
    assert_eq!(
        recv_msg(&a).notification(),
        Some(Notification::ReplyDead { cookie: 77 })
    );
}

#[test]
fn a_hand_back_moves_what_the_pool_quota_admits_and_counts_the_rest() {
    let bus = TestBus::new();
    // 64 KiB pool: one sending user may fill about 10.7 KiB of it
    let act = bus.connect(activator_hello().pool_size(64 * 1024));
    let a = bus.conn_plain();
    let svc = bus.conn_plain();
    svc.acquire_name(NAME, NameFlags::empty()).unwrap();
    let payload = |i: u16| {
        let mut p = vec![0u8; 1024];
        p[..2].copy_from_slice(&numbered(i));
        p
    };
    for i in 0..20 {
        a.send(&MessageBuilder::to_name(NAME).payload(&payload(i)))
            .unwrap();
    }
    svc.release_name(NAME).unwrap();

    let first = act.recv().unwrap();
    let dropped = first.dropped_msgs;
    let mut got = Vec::new();
    let mut next = first.message;
    while let Some(m) = next {
        got.push(m.payload_to_vec());
        drop(m);
        let r = act.recv().unwrap();
        assert_eq!(r.dropped_msgs, 0, "the loss is reported once");
        next = r.message;
    }
    let kept = got.len() as u16;
    assert!(
        kept > 0 && kept < 20,
        "some but not all fit the activator's quota: {kept} of 20"
    );
    assert_eq!(got, (0..kept).map(payload).collect::<Vec<_>>(), "in order");
    assert_eq!(dropped, u64::from(20 - kept), "exactly the rest dropped");
    let r = svc.recv().unwrap();
    assert!(
        r.message.is_none() && r.dropped_msgs == 0,
        "nothing stays on or is lost by the implementer"
    );
}
