//! Unicast SEND and RECV (spec §8): payload layout, message checks, queue
//! order, priorities, PEEK, DROP, lost messages, poll.

use std::os::fd::AsFd;

use kdbus::abi::*;
use kdbus_abi_tests::raw::{item, item_str, item_u64};
use kdbus_abi_tests::*;
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

fn off_items(m: &Msg) -> Vec<kdbus_vec> {
    m.items_of(KDBUS_ITEM_PAYLOAD_OFF)
        .iter()
        .map(|i| i.as_struct())
        .collect()
}

#[test]
fn payload_vecs_become_offsets_into_the_slice() {
    let bus = Bus::new();
    let a = bus.conn_plain();
    let b = bus.conn_plain();
    a.send(&MsgBuilder::new(b.id).vec(b"abc").vec(b"defgh").vec(b"ij"))
        .unwrap();
    let m = b.recv_msg();
    let offs = off_items(&m);
    assert_eq!(offs.len(), 3);
    // header (64) + 3 items of 32 bytes; no metadata asked for
    let hdr = 64 + 3 * 32;
    assert_eq!(m.hdr.size, hdr);
    assert_eq!(
        offs.iter()
            .map(|v| (v.size, v.address_or_offset))
            .collect::<Vec<_>>(),
        [(3, hdr), (5, hdr + 3), (2, hdr + 8)],
        "data back to back, no alignment in between"
    );
    assert_eq!(m.payload(), b"abcdefghij");
    assert_eq!(
        m.slice.len() as u64,
        hdr + 16,
        "slice = header + payload padded to 8"
    );
    assert_eq!(&m.slice[hdr as usize + 10..], &[0u8; 6], "zero padding");
}

#[test]
fn padding_vecs_insert_zeros() {
    let bus = Bus::new();
    let a = bus.conn_plain();
    let b = bus.conn_plain();
    a.send(
        &MsgBuilder::new(b.id)
            .vec(b"abc")
            .vec_padding(5)
            .vec(b"xy")
            .vec_padding(16),
    )
    .unwrap();
    let m = b.recv_msg();
    let offs = off_items(&m);
    let hdr = 64 + 4 * 32;
    assert_eq!(
        offs.iter()
            .map(|v| (v.size, v.address_or_offset))
            .collect::<Vec<_>>(),
        [(3, hdr), (5, !0), (2, hdr + 8), (16, !0)],
        "(size % 8) zero bytes per padding vec"
    );
    assert_eq!(
        &m.slice[hdr as usize..hdr as usize + 10],
        b"abc\0\0\0\0\0xy"
    );
    assert_eq!(m.payload(), b"abcxy");
}

#[test]
fn the_receiver_sees_the_header_as_sent() {
    let bus = Bus::new();
    let a = bus.conn_plain();
    let b = bus.conn_plain();
    let msg = MsgBuilder::new(b.id)
        .cookie(0xc0ffee)
        .priority(-7)
        .payload_type(0x1234)
        .flags(KDBUS_MSG_NO_AUTO_START);
    a.send(&msg).unwrap();
    let m = b.recv_msg();
    assert_eq!(m.hdr.cookie, 0xc0ffee);
    assert_eq!(m.hdr.priority, -7);
    assert_eq!(m.hdr.payload_type, 0x1234, "any payload type but 0");
    assert_eq!(m.hdr.flags, KDBUS_MSG_NO_AUTO_START);
    assert_eq!(m.hdr.src_id, a.id, "filled in by the kernel");
    assert_eq!(m.hdr.dst_id, b.id);
    assert_eq!(m.hdr.timeout_ns_or_cookie_reply, 0);

    // src_id may be given if it is the sender's own
    a.send(&MsgBuilder::new(b.id).src_id(a.id)).unwrap();
    assert_eq!(b.recv_msg().hdr.src_id, a.id);
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).src_id(b.id)),
        Err(Errno::INVAL)
    );
}

#[test]
fn sending_to_oneself() {
    let bus = Bus::new();
    let a = bus.conn();
    a.send(&MsgBuilder::new(a.id).vec(b"me")).unwrap();
    let m = a.recv_msg();
    assert_eq!((m.hdr.src_id, m.payload()), (a.id, b"me".to_vec()));
}

#[test]
fn message_checks() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let bloom = vec![0u64; BLOOM_SIZE as usize / 8];
    let e = |m: MsgBuilder| a.send(&m).err();
    let bcast = KDBUS_DST_ID_BROADCAST;

    assert_eq!(e(MsgBuilder::new(b.id).payload_type(0)), Some(Errno::INVAL));
    assert_eq!(
        e(MsgBuilder::new(bcast)),
        Some(Errno::BADMSG),
        "broadcast without SIGNAL"
    );
    assert_eq!(
        e(MsgBuilder::signal(bcast, 64).timeout_raw(5)),
        Some(Errno::NOTUNIQ),
        "broadcast with timeout"
    );
    assert_eq!(
        e(MsgBuilder::new(b.id).flags(KDBUS_MSG_EXPECT_REPLY)),
        Some(Errno::INVAL),
        "call without timeout"
    );
    assert_eq!(
        e(MsgBuilder::signal(b.id, 64).expect_reply(deadline_ms(1000))),
        Some(Errno::NOTUNIQ),
        "signal expecting a reply"
    );
    assert_eq!(
        e(MsgBuilder::signal(b.id, 64).reply_to(5)),
        Some(Errno::INVAL),
        "reply marked as signal"
    );
    assert_eq!(
        e(MsgBuilder::new(b.id).flags(KDBUS_MSG_SIGNAL)),
        Some(Errno::BADMSG),
        "signal without bloom filter"
    );
    assert_eq!(
        e(MsgBuilder::new(b.id).bloom(0, &bloom)),
        Some(Errno::BADMSG),
        "bloom filter on a non-signal"
    );
    assert_eq!(
        e(MsgBuilder::new(bcast)
            .flags(KDBUS_MSG_SIGNAL)
            .bloom(0, &bloom[..4])),
        Some(Errno::DOM),
        "bloom size differs from the bus"
    );
    assert_eq!(
        e(MsgBuilder::new(bcast)
            .flags(KDBUS_MSG_SIGNAL)
            .raw_item(&item(KDBUS_ITEM_BLOOM_FILTER, &[0u8; 8 + 60]))),
        Some(Errno::FAULT),
        "bloom data not a multiple of 8"
    );
    assert_eq!(
        e(MsgBuilder::new(KDBUS_DST_ID_NAME)),
        Some(Errno::DESTADDRREQ)
    );
    assert_eq!(e(MsgBuilder::to_name("no-dot")), Some(Errno::INVAL));
    assert_eq!(
        e(MsgBuilder::signal(bcast, 64).dst_name("org.a.b")),
        Some(Errno::BADMSG),
        "name on a broadcast"
    );
    assert_eq!(
        e(MsgBuilder::signal(bcast, 64).fds(&[0])),
        Some(Errno::NOTUNIQ),
        "fds on a broadcast"
    );
    assert_eq!(
        e(MsgBuilder::new(b.id).raw_item(&item_str(KDBUS_ITEM_NAME, "org.a.b"))),
        Some(Errno::INVAL),
        "item not allowed in messages"
    );
    assert_eq!(
        e(MsgBuilder::new(b.id).raw_item(&item_u64(KDBUS_ITEM_CANCEL_FD, 0))),
        Some(Errno::INVAL)
    );
    assert_eq!(
        e(MsgBuilder::new(b.id).vec_raw(0x1000, 0)),
        Some(Errno::INVAL),
        "empty vec"
    );
    assert_eq!(errno(b.recv()), Errno::AGAIN, "nothing was sent");
}

#[test]
fn duplicate_single_items_are_eexist() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let bloom = vec![0u64; 8];
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).fds(&[]).fds(&[])),
        Err(Errno::EXIST)
    );
    assert_eq!(
        a.send(&MsgBuilder::signal(KDBUS_DST_ID_BROADCAST, 64).bloom(0, &bloom)),
        Err(Errno::EXIST)
    );
    assert_eq!(
        a.send(&MsgBuilder::to_name("org.a.b").dst_name("org.a.b")),
        Err(Errno::EXIST)
    );
}

#[test]
fn inline_payload_limit_is_2mib() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let data = vec![0xa5u8; 2 * 1024 * 1024];
    a.send(&MsgBuilder::new(b.id).vec(&data)).unwrap();
    let m = b.recv_msg();
    assert_eq!(m.payload().len(), data.len());
    assert!(m.payload().iter().all(|&x| x == 0xa5));

    let one = [1u8];
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).vec(&data).vec(&one)),
        Err(Errno::MSGSIZE)
    );
    assert_eq!(
        a.send(
            &MsgBuilder::new(b.id)
                .vec(&data[..1024])
                .vec_padding(2 * 1024 * 1024)
        ),
        Err(Errno::MSGSIZE),
        "padding counts"
    );
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).vec_raw(data.as_ptr() as u64, u64::MAX)),
        Err(Errno::MSGSIZE)
    );
}

#[test]
fn unreadable_payload_is_efault() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let guard = GuardPage::new();
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).vec_raw(guard.none_page() as u64, 16)),
        Err(Errno::FAULT)
    );
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).vec_raw(0xffff_8000_0000_0000, 16)),
        Err(Errno::FAULT),
        "kernel address"
    );
    let data = [1u8; 16];
    assert_eq!(
        a.send(
            &MsgBuilder::new(b.id)
                .vec(&data)
                .vec_raw(guard.none_page() as u64 - 8, 16)
        ),
        Err(Errno::FAULT),
        "partly readable"
    );
    assert_eq!(
        errno(b.recv()),
        Errno::AGAIN,
        "a failed copy queues nothing"
    );
}

#[test]
fn destinations_that_are_not_ordinary_connections_are_enxio() {
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
    assert_eq!(a.send(&MsgBuilder::new(mon.id)), Err(Errno::NXIO));
    assert_eq!(a.send(&MsgBuilder::new(act.id)), Err(Errno::NXIO));
    assert_eq!(a.send(&MsgBuilder::new(123_456)), Err(Errno::NXIO));
}

#[test]
fn special_connections_cannot_send() {
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
    assert_eq!(mon.send(&MsgBuilder::new(a.id)), Err(Errno::OPNOTSUPP));
    assert_eq!(act.send(&MsgBuilder::new(a.id)), Err(Errno::OPNOTSUPP));
    let holder = Hello::new()
        .flags(KDBUS_HELLO_POLICY_HOLDER)
        .name("org.h.x")
        .connect(&bus.endpoint())
        .unwrap();
    assert_eq!(holder.send(&MsgBuilder::new(a.id)), Err(Errno::OPNOTSUPP));
    assert_eq!(errno(holder.recv()), Errno::OPNOTSUPP);
}

#[test]
fn fifo_order_and_eagain() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    assert_eq!(errno(b.recv()), Errno::AGAIN);
    for i in 0u8..20 {
        a.send(&MsgBuilder::new(b.id).vec(&[i])).unwrap();
    }
    for i in 0u8..20 {
        assert_eq!(b.recv_msg().payload(), [i]);
    }
    assert_eq!(errno(b.recv()), Errno::AGAIN);
}

#[test]
fn priorities() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    for (i, p) in [5i64, -3, 5, 0, -3, 10].into_iter().enumerate() {
        a.send(&MsgBuilder::new(b.id).priority(p).vec(&[i as u8]))
            .unwrap();
    }
    let by_prio = |max: i64| {
        b.recv_with(KDBUS_RECV_USE_PRIORITY, max)
            .map(|r| r.msg.unwrap().payload()[0])
    };
    // lowest numeric value first, FIFO among equals, threshold respected
    assert_eq!(by_prio(-4), Err(Errno::AGAIN));
    assert_eq!(by_prio(-3), Ok(1));
    assert_eq!(by_prio(i64::MAX), Ok(4));
    assert_eq!(by_prio(0), Ok(3));
    assert_eq!(by_prio(4), Err(Errno::AGAIN));
    // without priority: FIFO of what is left
    assert_eq!(b.recv_msg().payload(), [0]);
    assert_eq!(by_prio(5), Ok(2));
    assert_eq!(by_prio(i64::MAX), Ok(5));
    assert_eq!(errno(b.recv()), Errno::AGAIN);
}

#[test]
fn peek_leaves_the_message_queued() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MsgBuilder::new(b.id).vec(b"one")).unwrap();
    a.send(&MsgBuilder::new(b.id).vec(b"two")).unwrap();
    let p1 = b.recv_with(KDBUS_RECV_PEEK, 0).unwrap();
    let p2 = b.recv_with(KDBUS_RECV_PEEK, 0).unwrap();
    assert_eq!(p1.cmd.msg.offset, p2.cmd.msg.offset);
    assert_eq!(p1.msg.unwrap().payload(), b"one");
    let r = b.recv_with(0, 0).unwrap();
    assert_eq!(r.cmd.msg.offset, p1.cmd.msg.offset);
    assert_eq!(r.msg.unwrap().payload(), b"one");
    assert_eq!(b.recv_msg().payload(), b"two");
}

#[test]
fn drop_discards_the_message() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MsgBuilder::new(b.id).vec(b"one")).unwrap();
    a.send(&MsgBuilder::new(b.id).vec(b"two")).unwrap();
    let r = b.recv_with(KDBUS_RECV_DROP, 0).unwrap();
    assert!(r.msg.is_none());
    assert_eq!((r.cmd.msg.offset, r.cmd.msg.msg_size), (POOL_SIZE, 0));
    assert_eq!(b.recv_msg().payload(), b"two");
    assert_eq!(errno(b.recv_with(KDBUS_RECV_DROP, 0)), Errno::AGAIN);
    assert_eq!(
        errno(b.recv_with(KDBUS_RECV_DROP | KDBUS_RECV_USE_PRIORITY, 0)),
        Errno::INVAL
    );
}

#[test]
fn lost_broadcasts_are_counted_once() {
    let bus = Bus::new();
    let a = bus.conn();
    // one page of pool: half of it for incoming messages, a third of
    // that for one sending user
    let b = Hello::new()
        .pool_size(4096)
        .attach(0, 0)
        .connect(&bus.endpoint())
        .unwrap();
    b.match_all();
    let payload = [0u8; 100];
    let mut sent = 0;
    for _ in 0..10 {
        a.send(&MsgBuilder::signal(KDBUS_DST_ID_BROADCAST, 64).vec(&payload))
            .unwrap();
        sent += 1;
    }
    let mut received = 0;
    let mut dropped = 0;
    loop {
        match b.recv_with(0, 0) {
            Ok(r) => {
                dropped += r.cmd.dropped_msgs;
                if r.cmd.dropped_msgs > 0 {
                    assert_ne!(r.cmd.return_flags & KDBUS_RECV_RETURN_DROPPED_MSGS, 0);
                }
                received += 1;
            }
            Err(e) => {
                assert_eq!(e, Errno::AGAIN);
                break;
            }
        }
    }
    assert!(dropped > 0, "the quota cannot hold all of them");
    assert!(received > 0, "the quota holds some of them");
    assert_eq!(received + dropped, sent);
    // reset after reading
    let r = b.recv_with(0, 0);
    assert_eq!(r.err(), Some(Errno::AGAIN));
}

#[test]
fn dropped_count_is_reported_with_eagain() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = Hello::new()
        .pool_size(4096)
        .attach(0, 0)
        .connect(&bus.endpoint())
        .unwrap();
    b.match_all();
    let payload = [0u8; 3000];
    a.send(&MsgBuilder::signal(KDBUS_DST_ID_BROADCAST, 64).vec(&payload))
        .unwrap();
    // readable because of the lost counter
    assert!(b.poll_in(0));
    let mut c = kdbus_abi_tests::raw::cmd(&kdbus_cmd_recv::default(), &[]);
    assert_eq!(b.ioctl(KDBUS_CMD_RECV, &mut c), Err(Errno::AGAIN));
    let r: kdbus_cmd_recv = kdbus_abi_tests::raw::read_struct(c.bytes());
    assert_eq!(r.dropped_msgs, 1);
    assert_eq!(r.return_flags, KDBUS_RECV_RETURN_DROPPED_MSGS);
    assert!(!b.poll_in(0));
}

#[test]
fn poll_and_epoll_readiness() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let mut fds = [PollFd::new(&b.fd, PollFlags::IN | PollFlags::OUT)];
    rustix::event::poll(&mut fds, None).unwrap();
    assert_eq!(fds[0].revents(), PollFlags::OUT, "always writable");

    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    rustix::event::epoll::add(
        &ep,
        b.fd.as_fd(),
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
    a.send(&MsgBuilder::new(b.id)).unwrap();
    assert_eq!(waiter.join().unwrap(), 1, "epoll woken by the message");

    let mut fds = [PollFd::new(&b.fd, PollFlags::IN)];
    rustix::event::poll(&mut fds, None).unwrap();
    assert!(fds[0].revents().contains(PollFlags::IN));
    b.recv_msg();
    assert!(!b.poll_in(0));
}

#[test]
fn unicast_signals_need_a_match() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    // silently dropped without a matching rule
    a.send(&MsgBuilder::signal(b.id, 64).vec(b"lost")).unwrap();
    assert_eq!(errno(b.recv()), Errno::AGAIN);
    b.match_add(1, 0, &[kdbus_abi_tests::raw::item_u64(KDBUS_ITEM_ID, a.id)])
        .unwrap();
    a.send(&MsgBuilder::signal(b.id, 64).vec(b"seen")).unwrap();
    assert_eq!(b.recv_msg().payload(), b"seen");
}

/// userfaultfd(2) plumbing for the test below.
mod uffd {
    pub const API: u64 = 0xaa;
    pub const IOC_API: libc::c_ulong = 0xc018_aa3f;
    pub const IOC_REGISTER: libc::c_ulong = 0xc020_aa00;
    pub const IOC_ZEROPAGE: libc::c_ulong = 0xc020_aa04;
    pub const MODE_MISSING: u64 = 1;

    /// ioctl(2) on a userfaultfd with a plain struct of u64 words.
    pub fn ioctl(fd: i32, req: libc::c_ulong, arg: &mut [u64]) {
        // SAFETY: `arg` is the complete argument struct of `req` (all of
        // them are arrays of u64), owned for the duration of the call.
        let rc = unsafe { libc::ioctl(fd, req, arg.as_mut_ptr()) };
        assert_eq!(
            rc,
            0,
            "userfaultfd ioctl {req:#x}: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[test]
fn a_stalled_payload_copy_blocks_no_one() {
    use std::sync::mpsc;
    use std::time::Duration;

    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();

    // SAFETY: creates a userfaultfd, owned below.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) } as i32;
    assert!(fd >= 0, "userfaultfd: {}", std::io::Error::last_os_error());
    // SAFETY: takes ownership of the descriptor just created.
    let fd_owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    uffd::ioctl(fd, uffd::IOC_API, &mut [uffd::API, 0, 0]);
    let len = 2 * 4096usize;
    // SAFETY: a fresh anonymous mapping, unmapped at the end.
    let region = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::PRIVATE,
        )
        .unwrap()
    } as u64;
    uffd::ioctl(
        fd,
        uffd::IOC_REGISTER,
        &mut [region, len as u64, uffd::MODE_MISSING, 0],
    );

    // the sender's payload page is missing: SEND waits for the fault
    let bid = b.id;
    let sender = std::thread::spawn(move || {
        a.send(&MsgBuilder::new(bid).vec_raw(region, 4096))
            .map(|_| a)
    });
    let mut fds = [rustix::event::PollFd::new(
        &fd_owned,
        rustix::event::PollFlags::IN,
    )];
    let t = rustix::event::Timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    assert_eq!(
        rustix::event::poll(&mut fds, Some(&t)).unwrap(),
        1,
        "the fault arrived"
    );

    // meanwhile the bus works: names change owners, messages flow
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        c.acquire("org.stall.x", 0).unwrap();
        c.send(&MsgBuilder::new(bid).vec(b"not stalled")).unwrap();
        c.release("org.stall.x").unwrap();
        tx.send(()).unwrap();
        c
    });
    let progressed = rx.recv_timeout(Duration::from_secs(10)).is_ok();

    // resolve the fault with zeros; the stalled SEND completes
    uffd::ioctl(fd, uffd::IOC_ZEROPAGE, &mut [region, 4096, 0, 0]);
    let _a = sender.join().unwrap().expect("the stalled SEND");
    let _c = worker.join().unwrap();
    assert!(progressed, "a stalled payload copy held up the bus");
    let got: Vec<Vec<u8>> = b.drain().iter().map(|m| m.payload()).collect();
    assert_eq!(got, [b"not stalled".to_vec(), vec![0u8; 4096]]);
    // SAFETY: unmaps the region mapped above.
    unsafe { rustix::mm::munmap(region as *mut _, len).unwrap() };
}
