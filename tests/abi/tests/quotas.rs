//! Quotas and limits (spec §16): queued messages per sending user, the
//! pool share rules, connections per user, lost notifications.

use std::sync::Arc;

use kdbus::abi::*;
use kdbus_abi_tests::conn::open_node;
use kdbus_abi_tests::*;
use rustix::io::Errno;

#[test]
fn at_most_256_queued_messages_per_sending_user() {
    let bus = Bus::new();
    let a = bus.conn_plain();
    let a2 = bus.conn_plain();
    let b = bus.conn_plain();
    b.match_all();
    for _ in 0..256 {
        a.send(&MsgBuilder::new(b.id)).unwrap();
    }
    assert_eq!(a.send(&MsgBuilder::new(b.id)), Err(Errno::NOBUFS));
    // the limit is per user, not per connection
    assert_eq!(a2.send(&MsgBuilder::new(b.id)), Err(Errno::NOBUFS));
    // kernel notifications have their own account
    let c = bus.conn();
    drop(c);
    let msgs = b.drain();
    assert_eq!(msgs.len(), 258);
    assert_eq!(msgs[256].items[0].ty, KDBUS_ITEM_ID_ADD);
    // received messages no longer count
    a.send(&MsgBuilder::new(b.id)).unwrap();
}

#[test]
fn incoming_messages_get_half_the_pool_and_a_user_a_third_of_it() {
    let bus = Bus::new();
    let a = bus.conn_plain();
    // 64 KiB pool: 32 KiB for incoming messages, ~10.7 KiB for one user
    let b = Hello::new()
        .pool_size(64 * 1024)
        .attach(0, 0)
        .connect(&bus.endpoint())
        .unwrap();
    let data = vec![1u8; 8 * 1024];
    a.send(&MsgBuilder::new(b.id).vec(&data)).unwrap();
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).vec(&data)),
        Err(Errno::NOBUFS)
    );
    let small = vec![1u8; 1024];
    a.send(&MsgBuilder::new(b.id).vec(&small)).unwrap();

    // a received and freed message no longer counts
    let r = b.recv_with(0, 0).unwrap();
    assert!(r.msg.is_some());
    a.send(&MsgBuilder::new(b.id).vec(&data)).unwrap();
}

#[test]
fn unfreed_slices_fill_the_incoming_half() {
    let bus = Bus::new();
    let a = bus.conn_plain();
    let b = Hello::new()
        .pool_size(64 * 1024)
        .attach(0, 0)
        .connect(&bus.endpoint())
        .unwrap();
    let data = vec![1u8; 6 * 1024];
    let mut kept = Vec::new();
    let err = loop {
        match a.send(&MsgBuilder::new(b.id).vec(&data)) {
            Ok(()) => {
                // receive without FREE: the slice stays accounted
                let mut c = kdbus_abi_tests::raw::cmd(&kdbus_cmd_recv::default(), &[]);
                b.ioctl(KDBUS_CMD_RECV, &mut c).unwrap();
                kept.push(c.u64_at(40));
            }
            Err(e) => break e,
        }
        assert!(kept.len() < 100);
    };
    assert_eq!(err, Errno::NOBUFS);
    // a user may add a third of what is left of the 32 KiB: 6240-byte
    // slices fit while (32768 - 6240 * n) / 3 >= 6240
    assert_eq!(kept.len(), 3);
    for off in kept {
        b.free(off).unwrap();
    }
    a.send(&MsgBuilder::new(b.id).vec(&data)).unwrap();
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
    let bus = Arc::new(Bus::new());
    let mut conns = Vec::new();
    for _ in 0..1024 {
        conns.push(
            Hello::new()
                .pool_size(4096)
                .attach(0, 0)
                .connect(&bus.endpoint())
                .unwrap(),
        );
    }
    assert_eq!(
        Hello::new().pool_size(4096).connect(&bus.endpoint()).err(),
        Some(Errno::MFILE)
    );
    // another user has its own count
    let ep = bus.endpoint();
    as_user(1000, 1000, move || {
        Hello::new().pool_size(4096).connect(&ep).unwrap();
    });
    conns.pop();
    Hello::new()
        .pool_size(4096)
        .connect(&bus.endpoint())
        .unwrap();
    // the count is per domain
    let other = Bus::new();
    Hello::new()
        .pool_size(4096)
        .connect(&other.endpoint())
        .unwrap();
    // opening is not limited, only HELLO
    let _ = open_node(&bus.endpoint()).unwrap();
}

#[test]
fn notifications_that_do_not_fit_are_counted_as_lost() {
    let bus = Bus::new();
    let w = Hello::new()
        .pool_size(4096)
        .attach(0, 0)
        .connect(&bus.endpoint())
        .unwrap();
    w.match_all();
    for _ in 0..40 {
        let c = bus.conn();
        drop(c);
    }
    let first = w.recv_with(0, 0).unwrap();
    assert!(first.cmd.dropped_msgs > 0);
    let rest = w.drain().len() as u64 + 1;
    assert_eq!(rest + first.cmd.dropped_msgs, 80);
}
