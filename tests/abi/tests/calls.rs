//! Method calls and replies (spec §9): reply slots, EBADSLT, REPLY_TIMEOUT,
//! REPLY_DEAD, the pending-call limit, synchronous calls with deadline,
//! cancel fd and signal restart.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kdbus::abi::*;
use kdbus_abi_tests::raw::{self, cmd, item, read_struct};
use kdbus_abi_tests::*;
use rustix::io::Errno;

fn reply(to: &Conn, call: &Msg, data: &[u8]) -> Result<(), Errno> {
    let m = MsgBuilder::new(call.hdr.src_id).reply_to(call.hdr.cookie);
    // an empty PAYLOAD_VEC is invalid: no vec for no data
    let m = if data.is_empty() { m } else { m.vec(data) };
    to.send(&m)
}

#[test]
fn async_call_and_reply() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(
        &MsgBuilder::new(b.id)
            .cookie(77)
            .expect_reply(deadline_ms(5000))
            .vec(b"q"),
    )
    .unwrap();
    let call = b.recv_msg();
    assert_eq!(
        call.hdr.flags & KDBUS_MSG_EXPECT_REPLY,
        KDBUS_MSG_EXPECT_REPLY
    );
    assert_eq!(call.hdr.cookie, 77);
    reply(&b, &call, b"r").unwrap();
    let r = a.recv_msg();
    assert_eq!(r.cookie_reply(), 77);
    assert_eq!(r.hdr.src_id, b.id);
    assert_eq!(r.payload(), b"r");
    // the slot is gone
    assert_eq!(reply(&b, &call, b"again"), Err(Errno::BADSLT));
}

#[test]
fn replies_need_a_slot() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    // no call at all
    assert_eq!(
        b.send(&MsgBuilder::new(a.id).reply_to(1)),
        Err(Errno::BADSLT)
    );
    a.send(
        &MsgBuilder::new(b.id)
            .cookie(5)
            .expect_reply(deadline_ms(5000)),
    )
    .unwrap();
    let call = b.recv_msg();
    // wrong cookie, wrong replier, wrong destination
    assert_eq!(
        b.send(&MsgBuilder::new(a.id).reply_to(6)),
        Err(Errno::BADSLT)
    );
    assert_eq!(reply(&c, &call, b""), Err(Errno::BADSLT));
    assert_eq!(
        b.send(&MsgBuilder::new(c.id).reply_to(5)),
        Err(Errno::BADSLT)
    );
    reply(&b, &call, b"").unwrap();
}

#[test]
fn replies_are_not_filtered() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MsgBuilder::new(b.id).expect_reply(deadline_ms(5000)))
        .unwrap();
    let call = b.recv_msg();
    // a reply is not a signal: delivered without any match rule
    reply(&b, &call, b"x").unwrap();
    assert_eq!(a.recv_msg().payload(), b"x");
}

#[test]
fn reply_timeout_notification() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let start = Instant::now();
    a.send(
        &MsgBuilder::new(b.id)
            .cookie(9)
            .expect_reply(deadline_ms(200)),
    )
    .unwrap();
    let call = b.recv_msg();
    let m = a.wait_msg();
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert_eq!(m.hdr.src_id, KDBUS_SRC_ID_KERNEL);
    assert_eq!(m.hdr.dst_id, a.id);
    assert_eq!(m.hdr.flags, 0);
    assert_eq!(m.cookie_reply(), 9);
    assert_eq!(m.items[0].ty, KDBUS_ITEM_REPLY_TIMEOUT);
    assert!(m.items[0].data.is_empty());
    assert_eq!(m.items[1].ty, KDBUS_ITEM_TIMESTAMP);
    // a late reply has no slot any more
    assert_eq!(reply(&b, &call, b""), Err(Errno::BADSLT));
}

#[test]
fn reply_dead_when_the_callee_disconnects() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    // one call still queued on b, one received by c
    a.send(
        &MsgBuilder::new(b.id)
            .cookie(1)
            .expect_reply(deadline_ms(10_000)),
    )
    .unwrap();
    a.send(
        &MsgBuilder::new(c.id)
            .cookie(2)
            .expect_reply(deadline_ms(10_000)),
    )
    .unwrap();
    c.recv_msg();
    drop(b);
    drop(c);
    let mut dead: Vec<u64> = a
        .drain()
        .iter()
        .map(|m| {
            assert_eq!(m.items[0].ty, KDBUS_ITEM_REPLY_DEAD);
            m.cookie_reply()
        })
        .collect();
    dead.sort_unstable();
    assert_eq!(dead, [1, 2]);
}

#[test]
fn reply_dead_when_the_callee_drops_the_call() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(
        &MsgBuilder::new(b.id)
            .cookie(3)
            .expect_reply(deadline_ms(10_000)),
    )
    .unwrap();
    b.recv_with(KDBUS_RECV_DROP, 0).unwrap();
    let m = a.recv_msg();
    assert_eq!(
        (m.items[0].ty, m.cookie_reply()),
        (KDBUS_ITEM_REPLY_DEAD, 3)
    );
}

#[test]
fn at_most_128_pending_calls() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    for i in 0..128 {
        a.send(
            &MsgBuilder::new(b.id)
                .cookie(1000 + i)
                .expect_reply(deadline_ms(60_000)),
        )
        .unwrap();
    }
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).expect_reply(deadline_ms(60_000))),
        Err(Errno::MLINK)
    );
    // other messages still go through
    a.send(&MsgBuilder::new(b.id)).unwrap();
    // one answered call frees one slot
    let call = b.recv_msg();
    reply(&b, &call, b"").unwrap();
    a.send(&MsgBuilder::new(b.id).expect_reply(deadline_ms(60_000)))
        .unwrap();
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).expect_reply(deadline_ms(60_000))),
        Err(Errno::MLINK)
    );
}

#[test]
fn sync_call_returns_the_reply() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let bid = b.id;
    let t = std::thread::spawn(move || {
        let call = b.wait_msg();
        reply(&b, &call, b"answer").unwrap();
        b
    });
    let r = a
        .call(
            &MsgBuilder::new(bid)
                .cookie(42)
                .expect_reply(deadline_ms(5000))
                .vec(b"question"),
        )
        .unwrap();
    assert_eq!(r.payload(), b"answer");
    assert_eq!(r.cookie_reply(), 42);
    let _b = t.join().unwrap();
    assert_eq!(errno(a.recv()), Errno::AGAIN, "the reply is not queued");
}

#[test]
fn sync_call_timeouts() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    // deadline passed already: nothing is sent
    assert_eq!(
        errno(a.call(&MsgBuilder::new(b.id).expect_reply(now_ns() - 1))),
        Errno::TIMEDOUT
    );
    assert_eq!(errno(b.recv()), Errno::AGAIN);

    let start = Instant::now();
    assert_eq!(
        errno(
            a.call(
                &MsgBuilder::new(b.id)
                    .cookie(8)
                    .expect_reply(deadline_ms(300))
            )
        ),
        Errno::TIMEDOUT
    );
    assert!(start.elapsed() >= Duration::from_millis(290));
    // no timeout notification for synchronous calls, and the slot is gone
    let call = b.recv_msg();
    assert_eq!(reply(&b, &call, b""), Err(Errno::BADSLT));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(errno(a.recv()), Errno::AGAIN);
}

#[test]
fn sync_call_epipe_when_the_callee_goes_away() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    let (bid, cid) = (b.id, c.id);
    let t = std::thread::spawn(move || {
        assert!(b.poll_in(5000));
        drop(b);
        assert!(c.poll_in(5000));
        c.recv_with(KDBUS_RECV_DROP, 0).unwrap();
        c
    });
    assert_eq!(
        errno(a.call(&MsgBuilder::new(bid).expect_reply(deadline_ms(5000)))),
        Errno::PIPE,
        "callee disconnected"
    );
    assert_eq!(
        errno(a.call(&MsgBuilder::new(cid).expect_reply(deadline_ms(5000)))),
        Errno::PIPE,
        "callee dropped the call"
    );
    t.join().unwrap();
}

#[test]
fn sync_call_cancel_fd() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let (r, w) = rustix::pipe::pipe().unwrap();
    let cancel = item(KDBUS_ITEM_CANCEL_FD, &r.as_raw_fd().to_ne_bytes());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        rustix::io::write(&w, b"x").unwrap();
        w
    });
    let start = Instant::now();
    let e = a.send_with(
        &MsgBuilder::new(b.id).expect_reply(deadline_ms(10_000)),
        KDBUS_SEND_SYNC_REPLY,
        std::slice::from_ref(&cancel),
    );
    assert_eq!(e.err(), Some(Errno::CANCELED));
    assert!(start.elapsed() < Duration::from_secs(5));
    let _w = t.join().unwrap();

    // a cancel fd that is readable already cancels at once
    assert_eq!(
        a.send_with(
            &MsgBuilder::new(b.id).expect_reply(deadline_ms(10_000)),
            KDBUS_SEND_SYNC_REPLY,
            &[cancel]
        )
        .err(),
        Some(Errno::CANCELED)
    );
}

#[test]
fn cancel_fd_must_be_valid_and_pollable() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let msg = MsgBuilder::new(b.id).expect_reply(deadline_ms(1000));
    let bad = item(KDBUS_ITEM_CANCEL_FD, &(-1i32).to_ne_bytes());
    assert_eq!(
        a.send_with(&msg, KDBUS_SEND_SYNC_REPLY, &[bad]).err(),
        Some(Errno::BADF)
    );
    let closed = item(KDBUS_ITEM_CANCEL_FD, &9999i32.to_ne_bytes());
    assert_eq!(
        a.send_with(&msg, KDBUS_SEND_SYNC_REPLY, &[closed]).err(),
        Some(Errno::BADF)
    );
    // a tmpfs file cannot be polled
    let f = rustix::fs::memfd_create("nopoll", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let np = item(KDBUS_ITEM_CANCEL_FD, &f.as_raw_fd().to_ne_bytes());
    assert_eq!(
        a.send_with(&msg, KDBUS_SEND_SYNC_REPLY, &[np]).err(),
        Some(Errno::INVAL)
    );
    let short = item(KDBUS_ITEM_CANCEL_FD, &[0u8; 8]);
    assert_eq!(
        a.send_with(&msg, KDBUS_SEND_SYNC_REPLY, &[short]).err(),
        Some(Errno::INVAL),
        "CANCEL_FD payload is exactly one int"
    );
}

#[test]
fn sync_call_econnreset_when_the_caller_says_byebye() {
    let bus = Bus::new();
    let a = Arc::new(bus.conn());
    let b = bus.conn();
    let a2 = a.clone();
    let bid = b.id;
    let t = std::thread::spawn(move || {
        a2.call(&MsgBuilder::new(bid).expect_reply(deadline_ms(10_000)))
            .err()
    });
    assert!(b.poll_in(5000));
    std::thread::sleep(Duration::from_millis(100));
    a.byebye().unwrap();
    assert_eq!(t.join().unwrap(), Some(Errno::CONNRESET));
    // the caller is gone: its id is unknown now
    let call = b.recv_msg();
    assert_eq!(reply(&b, &call, b""), Err(Errno::NXIO));
}

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_sig: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

fn install_handler(restart: bool) {
    // SAFETY: installs a handler that only touches an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

fn signal_thread(t: &std::thread::JoinHandle<impl Send>) {
    use std::os::unix::thread::JoinHandleExt;
    // SAFETY: the thread is alive (it is joined later) and handles SIGUSR1.
    let rc = unsafe { libc::pthread_kill(t.as_pthread_t(), libc::SIGUSR1) };
    assert_eq!(rc, 0);
}

/// A signal interrupts the wait; the same SEND issued again resumes the
/// slot instead of sending the call a second time.
#[test]
fn sync_call_survives_signals() {
    for restart in [false, true] {
        install_handler(restart);
        let bus = Bus::new();
        let a = bus.conn();
        let b = bus.conn();
        let bid = b.id;
        let t = std::thread::spawn(move || {
            let data = b"call";
            let mut m = MsgBuilder::new(bid)
                .cookie(4242)
                .expect_reply(deadline_ms(20_000))
                .vec(data)
                .build();
            let mut c = cmd(
                &kdbus_cmd_send {
                    flags: KDBUS_SEND_SYNC_REPLY,
                    msg_address: m.addr(),
                    ..Default::default()
                },
                &[],
            );
            let mut interrupted = 0;
            loop {
                match raw::ioctl(a.fd(), KDBUS_CMD_SEND, &mut c) {
                    Err(Errno::INTR) => interrupted += 1,
                    Err(e) => panic!("sync call: {e}"),
                    Ok(()) => break,
                }
            }
            let _ = m.ptr();
            let sent: kdbus_cmd_send = read_struct(c.bytes());
            let r = Msg::parse(a.take(sent.reply.offset, sent.reply.msg_size));
            (interrupted, r.payload(), a)
        });
        assert!(b.poll_in(5000));
        let call = b.recv_msg();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            signal_thread(&t);
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(errno(b.recv()), Errno::AGAIN, "the call was sent once");
        reply(&b, &call, b"done").unwrap();
        let (interrupted, payload, _a) = t.join().unwrap();
        assert_eq!(payload, b"done");
        if restart {
            assert_eq!(interrupted, 0, "SA_RESTART restarts transparently");
        } else {
            assert!(interrupted >= 1, "EINTR without SA_RESTART");
        }
    }
    assert!(SIGNALS.load(Ordering::SeqCst) >= 6);
}

#[test]
fn sync_call_to_a_name() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    b.acquire("org.example.Echo", 0).unwrap();
    let t = std::thread::spawn(move || {
        let call = b.wait_msg();
        assert!(call.item(KDBUS_ITEM_DST_NAME).is_some());
        reply(&b, &call, &call.payload()).unwrap();
        b
    });
    let r = a
        .call(
            &MsgBuilder::to_name("org.example.Echo")
                .expect_reply(deadline_ms(5000))
                .vec(b"echo"),
        )
        .unwrap();
    assert_eq!(r.payload(), b"echo");
    t.join().unwrap();
}

#[test]
fn sync_reply_with_fds_to_a_caller_without_accept_fd() {
    let bus = Bus::new();
    let a = Hello::new().flags(0).connect(&bus.endpoint()).unwrap();
    let b = bus.conn();
    let bid = b.id;
    let t = std::thread::spawn(move || {
        let call = b.wait_msg();
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let e = b.send(
            &MsgBuilder::new(call.hdr.src_id)
                .reply_to(call.hdr.cookie)
                .fds(&[r.as_fd().as_raw_fd()]),
        );
        (e, b)
    });
    assert_eq!(
        errno(a.call(&MsgBuilder::new(bid).expect_reply(deadline_ms(5000)))),
        Errno::REMOTEIO
    );
    let (e, _b) = t.join().unwrap();
    assert_eq!(e, Err(Errno::COMM));
}
