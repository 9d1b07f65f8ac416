//! Activators (spec §10.4, §14): messages to an unowned activatable name
//! queue on the activator and move to the implementer that acquires the
//! name, in order, with their reply slots; and back when it leaves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kdbus::abi::*;
use kdbus_abi_tests::*;
use rustix::io::Errno;

const NAME: &str = "org.example.Activatable";

fn activator(bus: &Bus) -> Conn {
    Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR | KDBUS_HELLO_ACCEPT_FD)
        .name(NAME)
        .connect(&bus.endpoint())
        .unwrap()
}

fn payloads(c: &Conn) -> Vec<Vec<u8>> {
    c.drain().iter().map(|m| m.payload()).collect()
}

#[test]
fn activator_registers_its_name() {
    let bus = Bus::new();
    let w = bus.conn();
    w.match_all();
    let act = activator(&bus);
    let m: Vec<_> = w.drain();
    assert_eq!(m[0].items[0].ty, KDBUS_ITEM_ID_ADD);
    let (old, _, new, new_flags, name) = m[1].items[0].name_change();
    assert_eq!(m[1].items[0].ty, KDBUS_ITEM_NAME_ADD);
    assert_eq!(
        (old, new, new_flags, name.as_str()),
        (0, act.id, KDBUS_NAME_ACTIVATOR, NAME)
    );

    let l = w.list(KDBUS_LIST_ACTIVATORS).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id, act.id);
    assert!(w.list(KDBUS_LIST_NAMES).unwrap().is_empty());

    // one activator per name
    assert_eq!(
        Hello::new()
            .flags(KDBUS_HELLO_ACTIVATOR)
            .name(NAME)
            .connect(&bus.endpoint())
            .err(),
        Some(Errno::EXIST)
    );
}

#[test]
fn messages_to_the_name_queue_on_the_activator() {
    let bus = Bus::new();
    let act = activator(&bus);
    let a = bus.conn();
    assert!(!act.poll_in(0));
    a.send(&MsgBuilder::to_name(NAME).vec(b"one")).unwrap();
    assert!(act.poll_in(0), "a service manager polls the activator");
    // the activator may peek (and free what it peeked)
    let p = act.recv_with(KDBUS_RECV_PEEK, 0).unwrap();
    assert_eq!(p.msg.unwrap().payload(), b"one");
    act.free(p.cmd.msg.offset).unwrap();
    assert_eq!(
        a.send(&MsgBuilder::to_name(NAME).flags(KDBUS_MSG_NO_AUTO_START)),
        Err(Errno::ADDRNOTAVAIL)
    );
    assert_eq!(
        a.send(&MsgBuilder::new(act.id)),
        Err(Errno::NXIO),
        "not addressable by id"
    );
}

#[test]
fn acquiring_moves_the_queued_messages_in_order() {
    let bus = Bus::new();
    let w = bus.conn();
    let act = activator(&bus);
    let a = bus.conn();
    for i in 0u8..10 {
        a.send(&MsgBuilder::to_name(NAME).vec(&[i])).unwrap();
    }
    // a message to the activator that is not for the name stays (none can
    // be sent by id, so only name messages exist); the implementer comes
    let svc = bus.conn();
    w.match_all();
    assert_eq!(
        svc.acquire(NAME, 0),
        Ok(KDBUS_NAME_PRIMARY | KDBUS_NAME_ACQUIRED)
    );
    let got = payloads(&svc);
    assert_eq!(got, (0u8..10).map(|i| vec![i]).collect::<Vec<_>>());
    assert_eq!(
        errno(act.recv()),
        Errno::AGAIN,
        "nothing left on the activator"
    );

    let n = w.recv_msg();
    let (old, old_flags, new, _, name) = n.items[0].name_change();
    assert_eq!(n.items[0].ty, KDBUS_ITEM_NAME_CHANGE);
    assert_eq!(
        (old, old_flags, new, name.as_str()),
        (act.id, KDBUS_NAME_ACTIVATOR, svc.id, NAME)
    );

    // the activator is listed as queued behind the owner
    let l = w.list(KDBUS_LIST_ACTIVATORS).unwrap();
    assert_eq!(
        l[0].item(KDBUS_ITEM_OWNED_NAME).unwrap().name().0,
        KDBUS_NAME_ACTIVATOR | KDBUS_NAME_IN_QUEUE
    );
}

#[test]
fn reply_slots_follow_the_messages() {
    let bus = Bus::new();
    let _act = activator(&bus);
    let a = bus.conn();
    a.send(
        &MsgBuilder::to_name(NAME)
            .cookie(11)
            .expect_reply(deadline_ms(10_000)),
    )
    .unwrap();
    a.send(
        &MsgBuilder::to_name(NAME)
            .cookie(12)
            .expect_reply(deadline_ms(10_000)),
    )
    .unwrap();
    let svc = bus.conn();
    svc.acquire(NAME, 0).unwrap();
    let c1 = svc.recv_msg();
    svc.send(&MsgBuilder::new(a.id).reply_to(c1.hdr.cookie).vec(b"r"))
        .unwrap();
    let r = a.recv_msg();
    assert_eq!((r.cookie_reply(), r.hdr.src_id), (11, svc.id));
    // the implementer received the call, released the name, and died
    // owing the reply: the slot did not follow the name to the activator
    svc.recv_msg();
    svc.release(NAME).unwrap();
    drop(svc);
    let d = a.recv_msg();
    assert_eq!(
        (d.items[0].ty, d.cookie_reply()),
        (KDBUS_ITEM_REPLY_DEAD, 12)
    );
}

#[test]
fn releasing_hands_unreceived_messages_back() {
    let bus = Bus::new();
    let act = activator(&bus);
    let a = bus.conn();
    let svc = bus.conn();
    svc.acquire(NAME, 0).unwrap();
    a.send(&MsgBuilder::to_name(NAME).vec(b"name-1")).unwrap();
    a.send(&MsgBuilder::new(svc.id).vec(b"by-id")).unwrap();
    a.send(&MsgBuilder::to_name(NAME).vec(b"name-2")).unwrap();
    svc.release(NAME).unwrap();
    assert_eq!(payloads(&act), [b"name-1".to_vec(), b"name-2".to_vec()]);
    assert_eq!(
        payloads(&svc),
        [b"by-id".to_vec()],
        "messages to the id stay"
    );

    // and when the implementer disconnects
    let svc2 = bus.conn();
    svc2.acquire(NAME, 0).unwrap();
    a.send(&MsgBuilder::to_name(NAME).vec(b"name-3")).unwrap();
    drop(svc2);
    assert_eq!(payloads(&act), [b"name-3".to_vec()]);
}

#[test]
fn exit_on_idle_loses_nothing() {
    let bus = Bus::new();
    let act = activator(&bus);
    let a = Arc::new(bus.conn());
    // below the 256 messages one user may queue on a receiver
    const N: u32 = 200;
    let done = Arc::new(AtomicBool::new(false));
    let (a2, done2) = (a.clone(), done.clone());
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            a2.send(&MsgBuilder::to_name(NAME).vec(&i.to_ne_bytes()))
                .unwrap();
        }
        done2.store(true, Ordering::SeqCst);
    });

    let mut seen = Vec::new();
    let mut rounds = 0;
    // services come and go; each leaves only when idle (BYEBYE), and
    // takes over what queued on the activator meanwhile
    while !done.load(Ordering::SeqCst) || act.poll_in(0) {
        rounds += 1;
        let svc = bus.conn();
        svc.acquire(NAME, 0).unwrap();
        for _ in 0..3 {
            for m in svc.drain() {
                seen.push(u32::from_ne_bytes(m.payload().try_into().unwrap()));
            }
            std::thread::yield_now();
        }
        loop {
            for m in svc.drain() {
                seen.push(u32::from_ne_bytes(m.payload().try_into().unwrap()));
            }
            match svc.byebye() {
                Ok(()) => break,
                Err(Errno::BUSY) => continue,
                Err(e) => panic!("BYEBYE: {e}"),
            }
        }
    }
    sender.join().unwrap();
    eprintln!("exit on idle: {rounds} services");
    assert_eq!(seen, (0..N).collect::<Vec<_>>(), "all, once, in order");
}

#[test]
fn activator_rights() {
    let bus = Bus::new();
    let act = activator(&bus);
    assert_eq!(act.acquire("org.other.n", 0), Err(Errno::OPNOTSUPP));
    assert_eq!(act.send(&MsgBuilder::to_name(NAME)), Err(Errno::OPNOTSUPP));
    assert_eq!(act.match_add(1, 0, &[]), Err(Errno::OPNOTSUPP));
    act.list(KDBUS_LIST_ACTIVATORS).unwrap();
    act.conn_info(act.id, None, 0).unwrap();
}

#[test]
fn messages_with_fds_are_dropped_for_an_implementer_without_accept_fd() {
    let bus = Bus::new();
    let act = activator(&bus);
    let a = bus.conn();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    use std::os::fd::AsRawFd;
    a.send(&MsgBuilder::to_name(NAME).fds(&[r.as_raw_fd()]))
        .unwrap();
    a.send(&MsgBuilder::to_name(NAME).vec(b"plain")).unwrap();
    let svc = Hello::new().flags(0).connect(&bus.endpoint()).unwrap();
    svc.acquire(NAME, 0).unwrap();
    let r = svc.recv_with(0, 0).unwrap();
    assert_eq!(r.cmd.dropped_msgs, 1);
    assert_eq!(r.msg.unwrap().payload(), b"plain");
    assert_eq!(errno(act.recv()), Errno::AGAIN);
}

#[test]
fn activator_leaving_removes_the_name() {
    let bus = Bus::new();
    let w = bus.conn();
    let act = activator(&bus);
    w.match_all();
    let id = act.id;
    drop(act);
    let kinds: Vec<(u64, u64)> = w
        .drain()
        .iter()
        .map(|m| (m.items[0].ty, m.items[0].u64s()[0]))
        .collect();
    assert_eq!(
        kinds,
        [(KDBUS_ITEM_NAME_REMOVE, id), (KDBUS_ITEM_ID_REMOVE, id)]
    );
    let a = bus.conn();
    assert_eq!(a.send(&MsgBuilder::to_name(NAME)), Err(Errno::SRCH));
}

#[test]
fn queued_calls_follow_the_name_back_and_forth() {
    let bus = Bus::new();
    let act = activator(&bus);
    let a = bus.conn();
    let svc1 = bus.conn();
    svc1.acquire(NAME, 0).unwrap();
    a.send(
        &MsgBuilder::to_name(NAME)
            .cookie(21)
            .expect_reply(deadline_ms(10_000)),
    )
    .unwrap();
    // not received: the call and its slot go back to the activator...
    svc1.release(NAME).unwrap();
    assert!(act.poll_in(0));
    // ...and on to the next implementer, who can answer it
    let svc2 = bus.conn();
    svc2.acquire(NAME, 0).unwrap();
    let call = svc2.recv_msg();
    assert_eq!(call.hdr.cookie, 21);
    assert_eq!(
        svc1.send(&MsgBuilder::new(a.id).reply_to(21)),
        Err(Errno::BADSLT),
        "the first implementer owes nothing any more"
    );
    svc2.send(&MsgBuilder::new(a.id).reply_to(21).vec(b"ok"))
        .unwrap();
    let r = a.recv_msg();
    assert_eq!((r.cookie_reply(), r.payload()), (21, b"ok".to_vec()));
}
