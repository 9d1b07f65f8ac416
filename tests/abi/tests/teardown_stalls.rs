//! Object lifetime: tearing down a bus or an endpoint waits for
//! the ioctls in progress on it, so no ioctl may wait for anything its
//! caller controls (such as a page fault on its own memory) while it holds
//! the active reference that teardown waits for.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc;
use std::time::Duration;

use kdbus::abi::*;
use kdbus::MessageBuilder;
use kdbus_abi_tests::fixture::*;
use kdbus_abi_tests::stall::Stall;

/// Runs `teardown` in a thread while `stall` is blocking an ioctl; returns
/// whether it completed within 5 s. The stall is resolved afterwards in
/// any case, so nothing stays blocked.
fn completes_while_stalled(stall: &Stall, teardown: impl FnOnce() + Send + 'static) -> bool {
    stall.wait_fault();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        teardown();
        let _ = tx.send(());
    });
    let done = rx.recv_timeout(Duration::from_secs(5)).is_ok();
    stall.zero();
    t.join().unwrap();
    done
}

/// An ioctl whose argument lies in `addr` (in a stalled region).
fn ioctl_at(fd: i32, cmd: u32, addr: u64) -> Result<(), rustix::io::Errno> {
    // SAFETY: `fd` is owned by the calling test, which keeps it open until
    // this call has returned; the kernel reads and writes the argument at
    // `addr`, a mapping owned by the test for the duration of the call.
    unsafe {
        kdbus::raw::ioctl_ptr(
            std::os::fd::BorrowedFd::borrow_raw(fd),
            cmd,
            addr as *mut std::ffi::c_void,
        )
    }
}

#[test]
fn a_send_stalled_on_its_payload_does_not_block_bus_teardown() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let stall = Stall::new(1);

    // a payload larger than the inline copy: its pages are pinned at SEND
    let (bid, addr) = (b.id(), stall.addr());
    let sender = std::thread::spawn(move || {
        let msg = MessageBuilder::to_id(bid);
        let r = send_with_item(&a, &msg, KDBUS_ITEM_PAYLOAD_VEC, &vec_payload(addr, 4096));
        (r.err(), a)
    });
    let closed = completes_while_stalled(&stall, move || drop(bus));
    let (r, _a) = sender.join().unwrap();
    assert!(
        closed,
        "closing the bus waited for a SEND stalled on its payload"
    );
    assert_eq!(r, Some(rustix::io::Errno::CONNRESET));
}

#[test]
fn a_command_stalled_on_its_argument_does_not_block_bus_teardown() {
    let bus = TestBus::new();
    let a = bus.conn();
    let stall = Stall::new(1);

    let (fd, addr) = (a.as_fd().as_raw_fd(), stall.addr());
    let caller = std::thread::spawn(move || ioctl_at(fd, KDBUS_CMD_MATCH_ADD, addr));
    let closed = completes_while_stalled(&stall, move || drop(bus));
    let r = caller.join().unwrap();
    assert!(
        closed,
        "closing the bus waited for a MATCH_ADD stalled on its argument"
    );
    // the argument reads as zeros: too small
    assert_eq!(r, Err(rustix::io::Errno::INVAL));
    drop(a);
}

#[test]
fn a_hello_stalled_on_its_argument_does_not_block_bus_teardown() {
    let bus = TestBus::new();
    let stall = Stall::new(1);
    let ep = kdbus::raw::open(bus.endpoint()).unwrap();

    let (fd, addr) = (ep.as_fd().as_raw_fd(), stall.addr());
    let caller = std::thread::spawn(move || ioctl_at(fd, KDBUS_CMD_HELLO, addr));
    let closed = completes_while_stalled(&stall, move || drop(bus));
    let r = caller.join().unwrap();
    assert!(
        closed,
        "closing the bus waited for a HELLO stalled on its argument"
    );
    assert!(
        matches!(
            r,
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::SHUTDOWN)
        ),
        "{r:?}"
    );
    drop(ep);
}
