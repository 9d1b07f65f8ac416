//! Monitors (spec §14): a copy of all traffic, invisible on the bus.

use std::os::fd::AsFd;

use kdbus::abi::*;
use kdbus::{
    BloomFilter, Connection, Errno, HelloBuilder, ListFlags, MessageBuilder, NameFlags,
    Notification,
};
use kdbus_abi_tests::fixture::*;

fn monitor(bus: &TestBus, hello: HelloBuilder) -> Connection {
    bus.connect(hello.monitor())
}

fn signal<'a>(dst: Option<u64>) -> MessageBuilder<'a> {
    let m = match dst {
        Some(id) => MessageBuilder::to_id(id).signal(),
        None => MessageBuilder::broadcast(),
    };
    m.bloom(BloomFilter::new(BLOOM))
}

#[test]
fn monitors_see_all_traffic() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let w = bus.conn();
    match_all(&w);
    let mon = monitor(&bus, HelloBuilder::new().accept_fds());
    assert!(drain(&w).is_empty(), "no ID_ADD for a monitor");

    a.send(&MessageBuilder::to_id(b.id()).payload(b"unicast"))
        .unwrap();
    // a unicast signal b does not want: dropped for b, seen by the monitor
    a.send(&signal(Some(b.id())).payload(b"signal")).unwrap();
    a.send(&signal(None).payload(b"bcast")).unwrap();
    a.send(
        &MessageBuilder::to_id(b.id())
            .cookie(5)
            .expect_reply_by(deadline_ms(5000))
            .payload(b"call"),
    )
    .unwrap();
    drop(drain(&b));
    b.send(
        &MessageBuilder::to_id(a.id())
            .cookie_reply(5)
            .payload(b"reply"),
    )
    .unwrap();
    b.acquire_name("org.mon.n", NameFlags::empty()).unwrap();

    let seen: Vec<(u64, Vec<u8>)> = drain(&mon)
        .iter()
        .map(|m| match m.notification() {
            Some(Notification::NameAdd { .. }) => (KDBUS_ITEM_NAME_ADD, Vec::new()),
            Some(n) => panic!("unexpected notification {n:?}"),
            None => (m.src_id(), m.payload_to_vec()),
        })
        .collect();
    assert_eq!(
        seen,
        [
            (a.id(), b"unicast".to_vec()),
            (a.id(), b"signal".to_vec()),
            (a.id(), b"bcast".to_vec()),
            (a.id(), b"call".to_vec()),
            (b.id(), b"reply".to_vec()),
            (KDBUS_ITEM_NAME_ADD, Vec::new()),
        ]
    );
    assert!(b.recv().unwrap().message.is_none(), "b: EAGAIN");
}

#[test]
fn monitors_are_invisible() {
    let bus = TestBus::new();
    let w = bus.conn();
    match_all(&w);
    let mon = monitor(&bus, HelloBuilder::new());
    let ids: Vec<u64> = w
        .list(ListFlags::UNIQUE)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, [w.id()]);
    drop(mon);
    assert!(drain(&w).is_empty(), "no ID_REMOVE either");
}

/// Spec §8.4: monitors get messages with fds also without ACCEPT_FD, but
/// their FDS slots read -1; memfds are payload and installed for them.
#[test]
fn monitors_get_messages_with_fds_without_installing_them() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let mon = monitor(&bus, HelloBuilder::new());
    let (r, _w) = rustix::pipe::pipe().unwrap();
    let memfd = kdbus::sealed_memfd("mon", b"memfd data").unwrap();
    a.send(
        &MessageBuilder::to_id(b.id())
            .fds(&[r.as_fd()])
            .memfd(memfd.as_fd(), 0, 10),
    )
    .unwrap();
    let m = recv_msg(&mon);
    assert_eq!(m.fd_numbers(), [-1]);
    assert!(m.fds()[0].is_none());
    assert_eq!(m.memfds()[0].read().unwrap(), b"memfd data");
    let got = recv_msg(&b);
    assert!(got.fds()[0].is_some(), "installed for the receiver");
    assert_eq!(got.memfds()[0].read().unwrap(), b"memfd data");
}

#[test]
fn monitors_count_what_they_miss() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let mon = monitor(&bus, HelloBuilder::new().pool_size(4096));
    let data = [0u8; 1500];
    for _ in 0..4 {
        a.send(&MessageBuilder::to_id(b.id()).payload(&data))
            .unwrap();
    }
    // nothing fits a third of half a page: all four are lost, and the
    // count comes with EAGAIN
    let (r, recv) = raw_recv(&mon, 0, 0);
    assert_eq!(r, Err(Errno::AGAIN));
    assert_eq!(recv.dropped_msgs, 4);
    assert_eq!(drain(&b).len(), 4, "the receiver is not affected");
}
