//! Quotas and limits (spec §16): queued messages per sending user, the
//! pool share rules, connections per user, lost notifications.

use std::sync::Arc;

use kdbus::{Errno, HelloBuilder, MessageBuilder, Notification};
use kdbus_abi_tests::as_user;
use kdbus_abi_tests::fixture::*;

fn small_pool(bus: &TestBus, size: u64) -> kdbus::Connection {
    bus.connect(HelloBuilder::new().pool_size(size))
}

#[test]
fn at_most_256_queued_messages_per_sending_user() {
    let bus = TestBus::new();
    let a = bus.conn_plain();
    let a2 = bus.conn_plain();
    let b = bus.conn_plain();
    match_all(&b);
    for _ in 0..256 {
        a.send(&MessageBuilder::to_id(b.id())).unwrap();
    }
    assert_eq!(errno(a.send(&MessageBuilder::to_id(b.id()))), Errno::NOBUFS);
    // the limit is per user, not per connection
    assert_eq!(
        errno(a2.send(&MessageBuilder::to_id(b.id()))),
        Errno::NOBUFS
    );
    // kernel notifications have their own account
    let c = bus.conn();
    drop(c);
    let msgs = drain(&b);
    assert_eq!(msgs.len(), 258);
    assert!(
        matches!(msgs[256].notification(), Some(Notification::IdAdd { .. })),
        "{:?}",
        msgs[256]
    );
    drop(msgs);
    // received messages no longer count
    a.send(&MessageBuilder::to_id(b.id())).unwrap();
}

#[test]
fn incoming_messages_get_half_the_pool_and_a_user_a_third_of_it() {
    let bus = TestBus::new();
    let a = bus.conn_plain();
    // 64 KiB pool: 32 KiB for incoming messages, ~10.7 KiB for one user
    let b = small_pool(&bus, 64 * 1024);
    let data = vec![1u8; 8 * 1024];
    a.send(&MessageBuilder::to_id(b.id()).payload(&data))
        .unwrap();
    assert_eq!(
        errno(a.send(&MessageBuilder::to_id(b.id()).payload(&data))),
        Errno::NOBUFS
    );
    let small = vec![1u8; 1024];
    a.send(&MessageBuilder::to_id(b.id()).payload(&small))
        .unwrap();

    // a received and freed message no longer counts
    drop(recv_msg(&b));
    a.send(&MessageBuilder::to_id(b.id()).payload(&data))
        .unwrap();
}

#[test]
fn unfreed_slices_fill_the_incoming_half() {
    let bus = TestBus::new();
    let a = bus.conn_plain();
    let b = small_pool(&bus, 64 * 1024);
    let data = vec![1u8; 6 * 1024];
    let mut kept = Vec::new();
    let err = loop {
        match a.send(&MessageBuilder::to_id(b.id()).payload(&data)) {
            Ok(_) => {
                // receive without FREE: the slice stays accounted
                let (r, recv) = raw_recv(&b, 0, 0);
                r.unwrap();
                kept.push(recv.msg.offset);
            }
            Err(e) => break e.errno(),
        }
        assert!(kept.len() < 100);
    };
    assert_eq!(err, Some(Errno::NOBUFS));
    // a user may add a third of what is left of the 32 KiB: 6240-byte
    // slices fit while (32768 - 6240 * n) / 3 >= 6240
    assert_eq!(kept.len(), 3);
    for off in kept {
        raw_free(&b, off).unwrap();
    }
    a.send(&MessageBuilder::to_id(b.id()).payload(&data))
        .unwrap();
}

#[test]
fn at_most_1024_connections_per_user() {
    // room for more than 1024 open connections in this process
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(8192),
            maximum: Some(8192),
        },
    )
    .unwrap();
    let bus = Arc::new(TestBus::new());
    let tiny = || HelloBuilder::new().pool_size(4096);
    let mut conns = Vec::new();
    for _ in 0..1024 {
        conns.push(bus.connect(tiny()));
    }
    assert_eq!(errno(bus.try_connect(tiny())), Errno::MFILE);
    // another user has its own count
    let ep = bus.endpoint();
    as_user(1000, 1000, move || {
        HelloBuilder::new().pool_size(4096).connect(&ep).unwrap();
    });
    conns.pop();
    bus.connect(tiny());
    // the count is per domain
    let other = TestBus::new();
    other.connect(tiny());
    // opening is not limited, only HELLO
    let _ = kdbus::raw::open(bus.endpoint()).unwrap();
}

#[test]
fn notifications_that_do_not_fit_are_counted_as_lost() {
    let bus = TestBus::new();
    let w = small_pool(&bus, 4096);
    match_all(&w);
    for _ in 0..40 {
        let c = bus.conn();
        drop(c);
    }
    let first = w.recv().unwrap();
    assert!(first.message.is_some());
    assert!(first.dropped_msgs > 0);
    drop(first.message);
    let rest = drain(&w).len() as u64 + 1;
    assert_eq!(rest + first.dropped_msgs, 80);
}
