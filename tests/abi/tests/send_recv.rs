//! Unicast SEND and RECV (spec §8): payload layout, message checks, queue
//! order, priorities, PEEK, DROP, lost messages, poll.

use std::os::fd::AsFd;

use kdbus::abi::*;
use kdbus::item::Item;
use kdbus::{
    BloomFilter, BloomParams, Connection, Destination, Errno, HelloBuilder, MatchRule,
    MessageBuilder, MessageView, MsgFlags, NameFlags, RecvFlags, DEFAULT_POOL_SIZE,
};
use kdbus_abi_tests::fixture::*;
use kdbus_abi_tests::guard::GuardPage;
use kdbus_abi_tests::stall::Stall;
use rustix::event::{PollFd, PollFlags};

/// Byte offset of `src_id` in `kdbus_msg`.
const SRC_ID: usize = 32;
/// Byte offset of `timeout_ns` / `cookie_reply` in `kdbus_msg`.
const TIMEOUT: usize = 56;

/// (size, offset) of every PAYLOAD_OFF item.
fn offs(m: &MessageView<'_>) -> Vec<(u64, u64)> {
    m.items()
        .iter()
        .filter_map(|i| match *i {
            Item::PayloadOff { size, offset } => Some((size, offset)),
            _ => None,
        })
        .collect()
}

fn to<'a>(c: &Connection) -> MessageBuilder<'a> {
    MessageBuilder::to_id(c.id())
}

fn broadcast<'a>() -> MessageBuilder<'a> {
    MessageBuilder::broadcast().bloom(no_bloom())
}

fn nothing_queued(c: &Connection) -> bool {
    c.recv().unwrap().message.is_none()
}

#[test]
fn payload_vecs_become_offsets_into_the_slice() {
    let bus = TestBus::new();
    let a = bus.conn_plain();
    let b = bus.conn_plain();
    a.send(&to(&b).payload(b"abc").payload(b"defgh").payload(b"ij"))
        .unwrap();
    let m = recv_msg(&b);
    // header (64) + 3 items of 32 bytes; no metadata asked for
    let hdr = 64 + 3 * 32;
    assert_eq!(m.header().size, hdr);
    assert_eq!(
        offs(&m),
        [(3, hdr), (5, hdr + 3), (2, hdr + 8)],
        "data back to back, no alignment in between"
    );
    assert_eq!(m.payload_to_vec(), b"abcdefghij");
    let slice = m.as_bytes();
    assert_eq!(
        slice.len() as u64,
        hdr + 16,
        "slice = header + payload padded to 8"
    );
    assert_eq!(&slice[hdr as usize + 10..], &[0u8; 6], "zero padding");
}

#[test]
fn padding_vecs_insert_zeros() {
    let bus = TestBus::new();
    let a = bus.conn_plain();
    let b = bus.conn_plain();
    a.send(&to(&b).payload(b"abc").padding(5).payload(b"xy").padding(16))
        .unwrap();
    let m = recv_msg(&b);
    let hdr = 64 + 4 * 32;
    assert_eq!(
        offs(&m),
        [(3, hdr), (5, !0), (2, hdr + 8), (16, !0)],
        "(size % 8) zero bytes per padding vec"
    );
    assert_eq!(
        &m.as_bytes()[hdr as usize..hdr as usize + 10],
        b"abc\0\0\0\0\0xy"
    );
    assert_eq!(m.payload_to_vec(), b"abcxy");
}

#[test]
fn the_receiver_sees_the_header_as_sent() {
    let bus = TestBus::new();
    let a = bus.conn_plain();
    let b = bus.conn_plain();
    let msg = to(&b)
        .cookie(0xc0ffee)
        .priority(-7)
        .payload_type(0x1234)
        .no_auto_start();
    a.send(&msg).unwrap();
    let m = recv_msg(&b);
    assert_eq!(m.cookie(), 0xc0ffee);
    assert_eq!(m.priority(), -7);
    assert_eq!(m.payload_type(), 0x1234, "any payload type but 0");
    assert_eq!(m.flags(), MsgFlags::NO_AUTO_START);
    assert_eq!(m.src_id(), a.id(), "filled in by the kernel");
    assert_eq!(m.dst_id(), b.id());
    assert_eq!(m.header().timeout_ns_or_cookie_reply, 0);
    drop(m);

    // src_id may be given if it is the sender's own
    let with_src = |src: u64| {
        let mut buf = encode(&to(&b));
        buf.set_u64(SRC_ID, src);
        send_raw(&a, &mut buf).map(|_| ())
    };
    with_src(a.id()).unwrap();
    assert_eq!(recv_msg(&b).src_id(), a.id());
    assert_eq!(with_src(b.id()), Err(Errno::INVAL));
}

#[test]
fn sending_to_oneself() {
    let bus = TestBus::new();
    let a = bus.conn();
    a.send(&to(&a).payload(b"me")).unwrap();
    let m = recv_msg(&a);
    assert_eq!((m.src_id(), m.payload_to_vec()), (a.id(), b"me".to_vec()));
}

#[test]
fn message_checks() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let e = |m: MessageBuilder| a.send(&m).err().and_then(|e| e.errno());
    let raw =
        |m: MessageBuilder, ty: u64, payload: &[u8]| send_with_item(&a, &m, ty, payload).err();

    assert_eq!(e(to(&b).payload_type(0)), Some(Errno::INVAL));
    assert_eq!(
        e(MessageBuilder::to_id(KDBUS_DST_ID_BROADCAST)),
        Some(Errno::BADMSG),
        "broadcast without SIGNAL"
    );
    let mut timed = encode(&broadcast());
    timed.set_u64(TIMEOUT, 5);
    assert_eq!(
        send_raw(&a, &mut timed).err(),
        Some(Errno::NOTUNIQ),
        "broadcast with timeout"
    );
    assert_eq!(
        e(to(&b).flags(MsgFlags::EXPECT_REPLY)),
        Some(Errno::INVAL),
        "call without timeout"
    );
    assert_eq!(
        e(to(&b)
            .signal()
            .bloom(no_bloom())
            .expect_reply_by(deadline_ms(1000))),
        Some(Errno::NOTUNIQ),
        "signal expecting a reply"
    );
    assert_eq!(
        e(to(&b).signal().bloom(no_bloom()).cookie_reply(5)),
        Some(Errno::INVAL),
        "reply marked as signal"
    );
    assert_eq!(
        e(to(&b).signal()),
        Some(Errno::BADMSG),
        "signal without bloom filter"
    );
    assert_eq!(
        e(to(&b).bloom(no_bloom())),
        Some(Errno::BADMSG),
        "bloom filter on a non-signal"
    );
    let small = BloomParams {
        size: 32,
        n_hash: 8,
    };
    assert_eq!(
        e(MessageBuilder::broadcast().bloom(BloomFilter::new(small))),
        Some(Errno::DOM),
        "bloom size differs from the bus"
    );
    assert_eq!(
        raw(
            MessageBuilder::broadcast(),
            KDBUS_ITEM_BLOOM_FILTER,
            &[0u8; 8 + 60]
        ),
        Some(Errno::FAULT),
        "bloom data not a multiple of 8"
    );
    assert_eq!(
        e(MessageBuilder::to_id(KDBUS_DST_ID_NAME)),
        Some(Errno::DESTADDRREQ)
    );
    assert_eq!(e(MessageBuilder::to_name("no-dot")), Some(Errno::INVAL));
    assert_eq!(
        e(MessageBuilder::new(Destination::NameOwnedBy {
            name: "org.a.b".into(),
            id: KDBUS_DST_ID_BROADCAST
        })
        .signal()
        .bloom(no_bloom())),
        Some(Errno::BADMSG),
        "name on a broadcast"
    );
    let stdin = std::io::stdin();
    assert_eq!(
        e(broadcast().fds(&[stdin.as_fd()])),
        Some(Errno::NOTUNIQ),
        "fds on a broadcast"
    );
    assert_eq!(
        raw(to(&b), KDBUS_ITEM_NAME, &c_str("org.a.b")),
        Some(Errno::INVAL),
        "item not allowed in messages"
    );
    assert_eq!(
        raw(to(&b), KDBUS_ITEM_CANCEL_FD, &0u64.to_ne_bytes()),
        Some(Errno::INVAL)
    );
    assert_eq!(
        raw(to(&b), KDBUS_ITEM_PAYLOAD_VEC, &vec_payload(0x1000, 0)),
        Some(Errno::INVAL),
        "empty vec"
    );
    assert!(nothing_queued(&b), "nothing was sent");
}

#[test]
fn duplicate_single_items_are_eexist() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let twice = |m: MessageBuilder, ty: u64, payload: &[u8]| {
        let mut buf = encode(&m);
        buf.push_item(ty, payload);
        buf.push_item(ty, payload);
        buf.finish();
        send_raw(&a, &mut buf).err()
    };
    assert_eq!(twice(to(&b), KDBUS_ITEM_FDS, &[]), Some(Errno::EXIST));
    let bloom = no_bloom().filter_item_payload();
    assert_eq!(
        send_with_item(&a, &broadcast(), KDBUS_ITEM_BLOOM_FILTER, &bloom).err(),
        Some(Errno::EXIST)
    );
    assert_eq!(
        send_with_item(
            &a,
            &MessageBuilder::to_name("org.a.b"),
            KDBUS_ITEM_DST_NAME,
            &c_str("org.a.b")
        )
        .err(),
        Some(Errno::EXIST)
    );
}

#[test]
fn inline_payload_limit_is_2mib() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let data = vec![0xa5u8; 2 * 1024 * 1024];
    a.send(&to(&b).payload(&data)).unwrap();
    let m = recv_msg(&b);
    assert_eq!(m.payload_len(), data.len());
    assert!(m.payload().flatten().all(|&x| x == 0xa5));
    drop(m);

    let one = [1u8];
    assert_eq!(
        errno(a.send(&to(&b).payload(&data).payload(&one))),
        Errno::MSGSIZE
    );
    assert_eq!(
        errno(a.send(&to(&b).payload(&data[..1024]).padding(2 * 1024 * 1024))),
        Errno::MSGSIZE,
        "padding counts"
    );
    assert_eq!(
        send_with_item(
            &a,
            &to(&b),
            KDBUS_ITEM_PAYLOAD_VEC,
            &vec_payload(data.as_ptr() as u64, u64::MAX)
        )
        .err(),
        Some(Errno::MSGSIZE)
    );
}

#[test]
fn unreadable_payload_is_efault() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let guard = GuardPage::new();
    let none = guard.none_page() as u64;
    let vec_at = |m: MessageBuilder, addr: u64| {
        send_with_item(&a, &m, KDBUS_ITEM_PAYLOAD_VEC, &vec_payload(addr, 16)).err()
    };
    assert_eq!(vec_at(to(&b), none), Some(Errno::FAULT));
    assert_eq!(
        vec_at(to(&b), 0xffff_8000_0000_0000),
        Some(Errno::FAULT),
        "kernel address"
    );
    let data = [1u8; 16];
    assert_eq!(
        vec_at(to(&b).payload(&data), none - 8),
        Some(Errno::FAULT),
        "partly readable"
    );
    assert!(nothing_queued(&b), "a failed copy queues nothing");
}

#[test]
fn destinations_that_are_not_ordinary_connections_are_enxio() {
    let bus = TestBus::new();
    let a = bus.conn();
    let mon = bus.connect(HelloBuilder::new().monitor());
    let act = bus.connect(HelloBuilder::new().activator("org.act.x", &[]));
    assert_eq!(errno(a.send(&to(&mon))), Errno::NXIO);
    assert_eq!(errno(a.send(&to(&act))), Errno::NXIO);
    assert_eq!(errno(a.send(&MessageBuilder::to_id(123_456))), Errno::NXIO);
}

#[test]
fn special_connections_cannot_send() {
    let bus = TestBus::new();
    let a = bus.conn();
    let mon = bus.connect(HelloBuilder::new().monitor());
    let act = bus.connect(HelloBuilder::new().activator("org.act.x", &[]));
    assert_eq!(errno(mon.send(&to(&a))), Errno::OPNOTSUPP);
    assert_eq!(errno(act.send(&to(&a))), Errno::OPNOTSUPP);
    let holder = bus.connect(HelloBuilder::new().policy_holder("org.h.x", &[]));
    assert_eq!(errno(holder.send(&to(&a))), Errno::OPNOTSUPP);
    assert_eq!(errno(holder.recv()), Errno::OPNOTSUPP);
}

#[test]
fn fifo_order_and_eagain() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    assert_eq!(raw_recv(&b, 0, 0).0, Err(Errno::AGAIN));
    assert!(nothing_queued(&b));
    for i in 0u8..20 {
        a.send(&to(&b).payload(&[i])).unwrap();
    }
    for i in 0u8..20 {
        assert_eq!(recv_msg(&b).payload_to_vec(), [i]);
    }
    assert!(nothing_queued(&b));
}

#[test]
fn priorities() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    for (i, p) in [5i64, -3, 5, 0, -3, 10].into_iter().enumerate() {
        a.send(&to(&b).priority(p).payload(&[i as u8])).unwrap();
    }
    let by_prio = |max: i64| {
        b.recv_priority(max)
            .unwrap()
            .message
            .map(|m| m.payload_to_vec()[0])
    };
    // lowest numeric value first, FIFO among equals, threshold respected
    assert_eq!(by_prio(-4), None, "EAGAIN");
    assert_eq!(
        raw_recv(&b, KDBUS_RECV_USE_PRIORITY, -4).0,
        Err(Errno::AGAIN)
    );
    assert_eq!(by_prio(-3), Some(1));
    assert_eq!(by_prio(i64::MAX), Some(4));
    assert_eq!(by_prio(0), Some(3));
    assert_eq!(by_prio(4), None);
    // a peek at the same threshold shows the same message
    assert_eq!(
        b.peek_priority(5)
            .unwrap()
            .message
            .map(|m| m.view().payload_to_vec()),
        Some(vec![0])
    );
    // without priority: FIFO of what is left
    assert_eq!(recv_msg(&b).payload_to_vec(), [0]);
    assert_eq!(by_prio(5), Some(2));
    assert_eq!(by_prio(i64::MAX), Some(5));
    assert!(nothing_queued(&b));
}

#[test]
fn peek_leaves_the_message_queued() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&to(&b).payload(b"one")).unwrap();
    a.send(&to(&b).payload(b"two")).unwrap();
    let (r1, p1) = raw_recv(&b, KDBUS_RECV_PEEK, 0);
    let (r2, p2) = raw_recv(&b, KDBUS_RECV_PEEK, 0);
    r1.unwrap();
    r2.unwrap();
    assert_eq!(p1.msg.offset, p2.msg.offset);
    let peeked = b.peek().unwrap().message.expect("a message to peek at");
    assert_eq!(peeked.view().payload_to_vec(), b"one");
    let r = recv_msg(&b);
    assert_eq!(r.offset(), p1.msg.offset);
    assert_eq!(r.payload_to_vec(), b"one");
    drop(r);
    assert_eq!(recv_msg(&b).payload_to_vec(), b"two");
}

#[test]
fn drop_discards_the_message() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&to(&b).payload(b"one")).unwrap();
    a.send(&to(&b).payload(b"two")).unwrap();
    let (r, dropped) = raw_recv(&b, KDBUS_RECV_DROP, 0);
    r.unwrap();
    assert_eq!(
        (dropped.msg.offset, dropped.msg.msg_size),
        (DEFAULT_POOL_SIZE, 0)
    );
    assert_eq!(recv_msg(&b).payload_to_vec(), b"two");
    a.send(&to(&b).payload(b"three")).unwrap();
    assert!(b.drop_next().unwrap().message.is_none());
    assert!(nothing_queued(&b));
    assert_eq!(raw_recv(&b, KDBUS_RECV_DROP, 0).0, Err(Errno::AGAIN));
    assert_eq!(
        errno(b.recv_with(RecvFlags::DROP | RecvFlags::USE_PRIORITY, 0)),
        Errno::INVAL
    );
}

/// RECV through the raw layer until EAGAIN, freeing every slice: the
/// messages received and the sum of `dropped_msgs`, checking that
/// `KDBUS_RECV_RETURN_DROPPED_MSGS` comes with every non-zero count.
fn receive_counting(b: &Connection) -> (u64, u64) {
    let (mut received, mut dropped) = (0, 0);
    loop {
        let (r, cmd) = raw_recv(b, 0, 0);
        dropped += cmd.dropped_msgs;
        if cmd.dropped_msgs > 0 {
            assert_ne!(cmd.return_flags & KDBUS_RECV_RETURN_DROPPED_MSGS, 0);
        }
        match r {
            Ok(()) => {
                raw_free(b, cmd.msg.offset).unwrap();
                received += 1;
            }
            Err(e) => {
                assert_eq!(e, Errno::AGAIN);
                return (received, dropped);
            }
        }
    }
}

#[test]
fn lost_broadcasts_are_counted_once() {
    let bus = TestBus::new();
    let a = bus.conn();
    // one page of pool: half of it for incoming messages, a third of
    // that for one sending user
    let b = bus.connect(HelloBuilder::new().pool_size(4096));
    match_all(&b);
    let payload = [0u8; 100];
    let sent = 10;
    for _ in 0..sent {
        a.send(&broadcast().payload(&payload)).unwrap();
    }
    let (received, dropped) = receive_counting(&b);
    assert!(dropped > 0, "the quota cannot hold all of them");
    assert!(received > 0, "the quota holds some of them");
    assert_eq!(received + dropped, sent);
    // reset after reading
    let r = b.recv().unwrap();
    assert!(r.message.is_none());
    assert_eq!(r.dropped_msgs, 0);
}

#[test]
fn dropped_count_is_reported_with_eagain() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.connect(HelloBuilder::new().pool_size(4096));
    match_all(&b);
    let payload = [0u8; 3000];
    a.send(&broadcast().payload(&payload)).unwrap();
    // readable because of the lost counter
    assert!(readable(&b));
    let (r, cmd) = raw_recv(&b, 0, 0);
    assert_eq!(r, Err(Errno::AGAIN));
    assert_eq!(cmd.dropped_msgs, 1);
    assert_eq!(cmd.return_flags, KDBUS_RECV_RETURN_DROPPED_MSGS);
    assert!(!readable(&b));

    // the library reports the count with "no message"
    a.send(&broadcast().payload(&payload)).unwrap();
    let r = b.recv().unwrap();
    assert!(r.message.is_none());
    assert_eq!(r.dropped_msgs, 1);
}

#[test]
fn poll_and_epoll_readiness() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let mut fds = [PollFd::new(&b, PollFlags::IN | PollFlags::OUT)];
    rustix::event::poll(&mut fds, None).unwrap();
    assert_eq!(fds[0].revents(), PollFlags::OUT, "always writable");

    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    rustix::event::epoll::add(
        &ep,
        b.as_fd(),
        rustix::event::epoll::EventData::new_u64(7),
        rustix::event::epoll::EventFlags::IN,
    )
    .unwrap();
    let mut events = Vec::with_capacity(4);
    let t = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), Some(&t)).unwrap();
    assert!(events.is_empty());

    let waiter = std::thread::spawn(move || {
        let mut events = Vec::with_capacity(4);
        let t = rustix::event::Timespec {
            tv_sec: 5,
            tv_nsec: 0,
        };
        rustix::event::epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), Some(&t))
            .unwrap();
        events.len()
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    a.send(&to(&b)).unwrap();
    assert_eq!(waiter.join().unwrap(), 1, "epoll woken by the message");

    let mut fds = [PollFd::new(&b, PollFlags::IN)];
    rustix::event::poll(&mut fds, None).unwrap();
    assert!(fds[0].revents().contains(PollFlags::IN));
    drop(recv_msg(&b));
    assert!(!readable(&b));
}

#[test]
fn unicast_signals_need_a_match() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    // silently dropped without a matching rule
    a.send(&to(&b).signal().bloom(no_bloom()).payload(b"lost"))
        .unwrap();
    assert!(nothing_queued(&b));
    b.add_match(&MatchRule::new(1).sender(a.id())).unwrap();
    a.send(&to(&b).signal().bloom(no_bloom()).payload(b"seen"))
        .unwrap();
    assert_eq!(recv_msg(&b).payload_to_vec(), b"seen");
}

#[test]
fn a_stalled_payload_copy_blocks_no_one() {
    use std::sync::mpsc;
    use std::time::Duration;

    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();

    let stall = Stall::new(1);
    let region = stall.addr();

    // the sender's payload page is missing: SEND waits for the fault
    let bid = b.id();
    let sender = std::thread::spawn(move || {
        send_with_item(
            &a,
            &MessageBuilder::to_id(bid),
            KDBUS_ITEM_PAYLOAD_VEC,
            &vec_payload(region, 4096),
        )
        .map(|_| a)
    });
    stall.wait_fault();

    // meanwhile the bus works: names change owners, messages flow
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        c.acquire_name("org.stall.x", NameFlags::empty()).unwrap();
        c.send(&MessageBuilder::to_id(bid).payload(b"not stalled"))
            .unwrap();
        c.release_name("org.stall.x").unwrap();
        tx.send(()).unwrap();
        c
    });
    let progressed = rx.recv_timeout(Duration::from_secs(10)).is_ok();

    // resolve the fault with zeros; the stalled SEND completes
    stall.zero();
    let _a = sender.join().unwrap().expect("the stalled SEND");
    let _c = worker.join().unwrap();
    assert!(progressed, "a stalled payload copy held up the bus");
    let got: Vec<Vec<u8>> = drain(&b).iter().map(|m| m.payload_to_vec()).collect();
    assert_eq!(got, [b"not stalled".to_vec(), vec![0u8; 4096]]);
}
