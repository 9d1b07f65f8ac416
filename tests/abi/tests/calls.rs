//! Method calls and replies (spec §9): reply slots, EBADSLT, REPLY_TIMEOUT,
//! REPLY_DEAD, the pending-call limit, synchronous calls with deadline,
//! cancel fd and signal restart.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kdbus::abi::*;
use kdbus::{
    Connection, Errno, HelloBuilder, Message, MessageBuilder, MessageView, MsgFlags, NameFlags,
    Notification,
};
use kdbus_abi_tests::fixture::*;

fn reply(to: &Connection, call: &Message<'_>, data: &[u8]) -> kdbus::Result<u64> {
    // an empty slice adds no PAYLOAD_VEC (an empty one is invalid)
    to.send(&MessageBuilder::reply_to(call).payload(data))
}

fn call_to<'a>(id: u64, ms: u64) -> MessageBuilder<'a> {
    MessageBuilder::to_id(id).expect_reply_by(deadline_ms(ms))
}

#[test]
fn async_call_and_reply() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&call_to(b.id(), 5000).cookie(77).payload(b"q"))
        .unwrap();
    let call = recv_msg(&b);
    assert!(call.flags().contains(MsgFlags::EXPECT_REPLY));
    assert!(call.is_call());
    assert_eq!(call.cookie(), 77);
    reply(&b, &call, b"r").unwrap();
    let r = recv_msg(&a);
    assert_eq!(r.cookie_reply(), 77);
    assert_eq!(r.src_id(), b.id());
    assert_eq!(r.payload_to_vec(), b"r");
    // the slot is gone
    assert_eq!(errno(reply(&b, &call, b"again")), Errno::BADSLT);
}

#[test]
fn replies_need_a_slot() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    let reply_to = |id: u64, cookie: u64| MessageBuilder::to_id(id).cookie_reply(cookie);
    // no call at all
    assert_eq!(errno(b.send(&reply_to(a.id(), 1))), Errno::BADSLT);
    a.send(&call_to(b.id(), 5000).cookie(5)).unwrap();
    let call = recv_msg(&b);
    // wrong cookie, wrong replier, wrong destination
    assert_eq!(errno(b.send(&reply_to(a.id(), 6))), Errno::BADSLT);
    assert_eq!(errno(reply(&c, &call, b"")), Errno::BADSLT);
    assert_eq!(errno(b.send(&reply_to(c.id(), 5))), Errno::BADSLT);
    reply(&b, &call, b"").unwrap();
}

#[test]
fn replies_are_not_filtered() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&call_to(b.id(), 5000)).unwrap();
    let call = recv_msg(&b);
    // a reply is not a signal: delivered without any match rule
    reply(&b, &call, b"x").unwrap();
    assert_eq!(recv_msg(&a).payload_to_vec(), b"x");
}

#[test]
fn reply_timeout_notification() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let start = Instant::now();
    a.send(&call_to(b.id(), 200).cookie(9)).unwrap();
    let call = recv_msg(&b);
    let m = wait_msg(&a);
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert_eq!(m.src_id(), KDBUS_SRC_ID_KERNEL);
    assert_eq!(m.dst_id(), a.id());
    assert_eq!(m.flags(), MsgFlags::empty());
    assert_eq!(m.cookie_reply(), 9);
    // REPLY_TIMEOUT decodes only with an empty payload
    assert_eq!(
        m.notification(),
        Some(Notification::ReplyTimeout { cookie: 9 })
    );
    assert_eq!(
        item_types(&m),
        [KDBUS_ITEM_REPLY_TIMEOUT, KDBUS_ITEM_TIMESTAMP]
    );
    // a late reply has no slot any more
    assert_eq!(errno(reply(&b, &call, b"")), Errno::BADSLT);
}

#[test]
fn reply_dead_when_the_callee_disconnects() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    // one call still queued on b, one received by c
    a.send(&call_to(b.id(), 10_000).cookie(1)).unwrap();
    a.send(&call_to(c.id(), 10_000).cookie(2)).unwrap();
    drop(recv_msg(&c));
    drop(b);
    drop(c);
    let mut dead: Vec<u64> = drain(&a)
        .iter()
        .map(|m| match m.notification() {
            Some(Notification::ReplyDead { cookie }) => cookie,
            other => panic!("not REPLY_DEAD: {other:?}"),
        })
        .collect();
    dead.sort_unstable();
    assert_eq!(dead, [1, 2]);
}

#[test]
fn reply_dead_when_the_callee_drops_the_call() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&call_to(b.id(), 10_000).cookie(3)).unwrap();
    assert!(b.drop_next().unwrap().message.is_none());
    assert_eq!(
        recv_msg(&a).notification(),
        Some(Notification::ReplyDead { cookie: 3 })
    );
}

#[test]
fn at_most_128_pending_calls() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    for i in 0..128 {
        a.send(&call_to(b.id(), 60_000).cookie(1000 + i)).unwrap();
    }
    assert_eq!(errno(a.send(&call_to(b.id(), 60_000))), Errno::MLINK);
    // other messages still go through
    a.send(&MessageBuilder::to_id(b.id())).unwrap();
    // one answered call frees one slot
    let call = recv_msg(&b);
    reply(&b, &call, b"").unwrap();
    a.send(&call_to(b.id(), 60_000)).unwrap();
    assert_eq!(errno(a.send(&call_to(b.id(), 60_000))), Errno::MLINK);
}

#[test]
fn sync_call_returns_the_reply() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let bid = b.id();
    let t = std::thread::spawn(move || {
        let call = wait_msg(&b);
        reply(&b, &call, b"answer").unwrap();
        drop(call);
        b
    });
    let r = a
        .call(&call_to(bid, 5000).cookie(42).payload(b"question"))
        .unwrap();
    assert_eq!(r.payload_to_vec(), b"answer");
    assert_eq!(r.cookie_reply(), 42);
    drop(r);
    let _b = t.join().unwrap();
    assert!(
        a.recv().unwrap().message.is_none(),
        "the reply is not queued"
    );
}

#[test]
fn sync_call_timeouts() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    // deadline passed already: nothing is sent
    let past = MessageBuilder::to_id(b.id()).expect_reply_by(deadline_ms(0) - 1);
    assert_eq!(errno(a.call(&past)), Errno::TIMEDOUT);
    assert!(b.recv().unwrap().message.is_none());

    let start = Instant::now();
    assert_eq!(
        errno(a.call(&call_to(b.id(), 300).cookie(8))),
        Errno::TIMEDOUT
    );
    assert!(start.elapsed() >= Duration::from_millis(290));
    // no timeout notification for synchronous calls, and the slot is gone
    let call = recv_msg(&b);
    assert_eq!(errno(reply(&b, &call, b"")), Errno::BADSLT);
    std::thread::sleep(Duration::from_millis(100));
    assert!(a.recv().unwrap().message.is_none());
}

#[test]
fn sync_call_epipe_when_the_callee_goes_away() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    let (bid, cid) = (b.id(), c.id());
    let t = std::thread::spawn(move || {
        assert!(b.wait(Some(WAIT)).unwrap());
        drop(b);
        assert!(c.wait(Some(WAIT)).unwrap());
        assert!(c.drop_next().unwrap().message.is_none());
        c
    });
    assert_eq!(
        errno(a.call(&call_to(bid, 5000))),
        Errno::PIPE,
        "callee disconnected"
    );
    assert_eq!(
        errno(a.call(&call_to(cid, 5000))),
        Errno::PIPE,
        "callee dropped the call"
    );
    t.join().unwrap();
}

#[test]
fn sync_call_cancel_fd() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let (r, w) = rustix::pipe::pipe().unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        rustix::io::write(&w, b"x").unwrap();
        w
    });
    let start = Instant::now();
    let e = a.call_cancellable(&call_to(b.id(), 10_000), Some(r.as_fd()));
    assert_eq!(errno(e), Errno::CANCELED);
    assert!(start.elapsed() < Duration::from_secs(5));
    let _w = t.join().unwrap();

    // a cancel fd that is readable already cancels at once
    assert_eq!(
        errno(a.call_cancellable(&call_to(b.id(), 10_000), Some(r.as_fd()))),
        Errno::CANCELED
    );
}

#[test]
fn cancel_fd_must_be_valid_and_pollable() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let msg = call_to(b.id(), 1000);
    let with_cancel = |payload: &[u8]| {
        let mut m = encode(&msg);
        let mut cmd = send_cmd(KDBUS_SEND_SYNC_REPLY, &[(KDBUS_ITEM_CANCEL_FD, payload)]);
        kdbus::raw::send(&a, &mut cmd, &mut m)
    };
    assert_eq!(with_cancel(&(-1i32).to_ne_bytes()), Err(Errno::BADF));
    assert_eq!(with_cancel(&9999i32.to_ne_bytes()), Err(Errno::BADF));
    // a tmpfs file cannot be polled
    let f = rustix::fs::memfd_create("nopoll", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    assert_eq!(with_cancel(&f.as_raw_fd().to_ne_bytes()), Err(Errno::INVAL));
    assert_eq!(
        errno(a.call_cancellable(&msg, Some(f.as_fd()))),
        Errno::INVAL,
        "also through the library"
    );
    assert_eq!(
        with_cancel(&[0u8; 8]),
        Err(Errno::INVAL),
        "CANCEL_FD payload is exactly one int"
    );
}

#[test]
fn sync_call_econnreset_when_the_caller_says_byebye() {
    let bus = TestBus::new();
    let a = Arc::new(bus.conn());
    let b = bus.conn();
    let a2 = a.clone();
    let bid = b.id();
    let t =
        std::thread::spawn(move || a2.call(&call_to(bid, 10_000)).err().and_then(|e| e.errno()));
    assert!(b.wait(Some(WAIT)).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(a.byebye().unwrap(), kdbus::ByeBye::Disconnected);
    assert_eq!(t.join().unwrap(), Some(Errno::CONNRESET));
    // the caller is gone: its id is unknown now
    let call = recv_msg(&b);
    assert_eq!(errno(reply(&b, &call, b"")), Errno::NXIO);
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
/// slot instead of sending the call a second time. (The raw layer shows
/// the EINTR that `Connection::call` retries on its own.)
#[test]
fn sync_call_survives_signals() {
    for restart in [false, true] {
        install_handler(restart);
        let bus = TestBus::new();
        let a = bus.conn();
        let b = bus.conn();
        let bid = b.id();
        let t = std::thread::spawn(move || {
            let mut m = encode(&call_to(bid, 20_000).cookie(4242).payload(b"call"));
            let mut c = send_cmd(KDBUS_SEND_SYNC_REPLY, &[]);
            let mut interrupted = 0;
            loop {
                match kdbus::raw::send(&a, &mut c, &mut m) {
                    Err(Errno::INTR) => interrupted += 1,
                    Err(e) => panic!("sync call: {e}"),
                    Ok(()) => break,
                }
            }
            let sent: kdbus_cmd_send = c.read(0);
            let bytes = a
                .take_slice(sent.reply.offset, sent.reply.msg_size)
                .unwrap();
            let payload = MessageView::parse(&bytes).unwrap().payload_to_vec();
            (interrupted, payload, a)
        });
        assert!(b.wait(Some(WAIT)).unwrap());
        let call = recv_msg(&b);
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            signal_thread(&t);
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            b.recv().unwrap().message.is_none(),
            "the call was sent once"
        );
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
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    b.acquire_name("org.example.Echo", NameFlags::empty())
        .unwrap();
    let t = std::thread::spawn(move || {
        let call = wait_msg(&b);
        assert_eq!(call.dst_name(), Some("org.example.Echo"));
        reply(&b, &call, &call.payload_to_vec()).unwrap();
        drop(call);
        b
    });
    let r = a
        .call(
            &MessageBuilder::to_name("org.example.Echo")
                .expect_reply_by(deadline_ms(5000))
                .payload(b"echo"),
        )
        .unwrap();
    assert_eq!(r.payload_to_vec(), b"echo");
    drop(r);
    t.join().unwrap();
}

#[test]
fn sync_reply_with_fds_to_a_caller_without_accept_fd() {
    let bus = TestBus::new();
    let a = bus.connect(HelloBuilder::new());
    let b = bus.conn();
    let bid = b.id();
    let t = std::thread::spawn(move || {
        let call = wait_msg(&b);
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let e = b
            .send(&MessageBuilder::reply_to(&call).fds(&[r.as_fd()]))
            .err()
            .and_then(|e| e.errno());
        drop(call);
        (e, b)
    });
    assert_eq!(errno(a.call(&call_to(bid, 5000))), Errno::REMOTEIO);
    let (e, _b) = t.join().unwrap();
    assert_eq!(e, Some(Errno::COMM));
}
