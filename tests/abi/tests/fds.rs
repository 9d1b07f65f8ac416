//! File descriptors and memfds (spec §8.2-§8.4): passing, ACCEPT_FD,
//! refused kinds of files, limits, PEEK, memfd seals and ranges.

use std::os::fd::{AsFd, BorrowedFd};

use kdbus::abi::*;
use kdbus::{BloomFilter, Errno, HelloBuilder, MessageBuilder};
use kdbus_abi_tests::fixture::*;
use rustix::fs::{MemfdFlags, SealFlags};

fn sealed_memfd(data: &[u8]) -> std::os::fd::OwnedFd {
    kdbus::sealed_memfd("kdbus-test", data).unwrap()
}

#[test]
fn passing_a_pipe() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let (r, w) = rustix::pipe::pipe().unwrap();
    a.send(&MessageBuilder::to_id(b.id()).fds(&[r.as_fd(), w.as_fd()]))
        .unwrap();
    drop((r, w));
    let mut m = recv_msg(&b);
    assert_eq!(m.fd_numbers().len(), 2);
    assert!(m.fd_numbers().iter().all(|&f| f >= 0));
    assert!(!m.incomplete_fds());
    let mut fds = m.take_fds().into_iter().map(|f| f.expect("installed"));
    let (r, w) = (fds.next().unwrap(), fds.next().unwrap());
    let flags = rustix::io::fcntl_getfd(&r).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    rustix::io::write(&w, b"through kdbus").unwrap();
    let mut buf = [0u8; 13];
    rustix::io::read(&r, &mut buf).unwrap();
    assert_eq!(&buf, b"through kdbus");
}

#[test]
fn receivers_must_accept_fds() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.connect(HelloBuilder::new());
    let (r, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(
        errno(a.send(&MessageBuilder::to_id(b.id()).fds(&[r.as_fd()]))),
        Errno::COMM
    );
    // an empty fd list is no fd
    assert_eq!(
        send_with_item(&a, &MessageBuilder::to_id(b.id()), KDBUS_ITEM_FDS, &[]).map(|_| ()),
        Ok(())
    );
    assert!(recv_msg(&b).fd_numbers().is_empty());
}

#[test]
fn refused_descriptors() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let to_b = MessageBuilder::to_id(b.id());
    for bad in [-1, 9999] {
        assert_eq!(
            send_with_item(&a, &to_b, KDBUS_ITEM_FDS, &fds_payload(&[bad])),
            Err(Errno::BADF),
            "fd {bad}"
        );
    }
    assert_eq!(
        errno(a.send(&MessageBuilder::to_id(b.id()).fds(&[a.as_fd()]))),
        Errno::OPNOTSUPP,
        "kdbus handles"
    );
    let (s1, _s2) = std::os::unix::net::UnixStream::pair().unwrap();
    assert_eq!(
        errno(a.send(&MessageBuilder::to_id(b.id()).fds(&[s1.as_fd()]))),
        Errno::OPNOTSUPP,
        "unix sockets"
    );
    // O_PATH descriptors are fine
    let p = rustix::fs::open("/", rustix::fs::OFlags::PATH, rustix::fs::Mode::empty()).unwrap();
    a.send(&MessageBuilder::to_id(b.id()).fds(&[p.as_fd()]))
        .unwrap();
    let m = recv_msg(&b);
    assert!(m.fds()[0].is_some());
    drop(m);
    assert!(
        b.recv().unwrap().message.is_none(),
        "failed sends queue nothing"
    );
}

#[test]
fn at_most_16_fds() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    let fds: Vec<BorrowedFd<'_>> = vec![r.as_fd(); 17];
    assert_eq!(
        errno(a.send(&MessageBuilder::to_id(b.id()).fds(&fds))),
        Errno::MFILE
    );
    a.send(&MessageBuilder::to_id(b.id()).fds(&fds[..16]))
        .unwrap();
    // and 16 in flight per sending user per receiver
    assert_eq!(
        errno(a.send(&MessageBuilder::to_id(b.id()).fds(&fds[..1]))),
        Errno::MFILE
    );
    let m = recv_msg(&b);
    assert_eq!(m.fds().len(), 16);
    assert!(m.fds().iter().all(Option::is_some));
    drop(m);
    a.send(&MessageBuilder::to_id(b.id()).fds(&fds[..1]))
        .unwrap();
}

#[test]
fn peek_does_not_install_fds() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    a.send(&MessageBuilder::to_id(b.id()).fds(&[r.as_fd(), r.as_fd()]))
        .unwrap();
    let p = b.peek().unwrap().message.expect("a message to peek at");
    assert_eq!(p.view().fd_numbers(), [-1, -1]);
    assert!(p.fds().iter().all(Option::is_none));
    let m = recv_msg(&b);
    let fds = m.fd_numbers();
    assert!(fds.iter().all(|&f| f >= 0), "{fds:?}");
    assert!(m.fds().iter().all(Option::is_some));
}

#[test]
fn passing_a_sealed_memfd() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let data = b"0123456789abcdef-memfd-payload";
    let mfd = sealed_memfd(data);
    a.send(&MessageBuilder::to_id(b.id()).memfd(mfd.as_fd(), 4, 10))
        .unwrap();
    let m = recv_msg(&b);
    let it = m.memfd_items()[0];
    assert_eq!((it.start, it.size), (4, 10));
    assert!(it.fd >= 0);
    assert_eq!(m.memfds()[0].read().unwrap(), b"456789abcd");
    // no inline bytes were added for the memfd
    assert_eq!(m.payload_len(), 0);
    assert_eq!(m.as_bytes().len() as u64, m.header().size);
}

#[test]
fn memfd_checks() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let memfd = |fd: BorrowedFd<'_>, start: u64, size: u64| {
        a.send(&MessageBuilder::to_id(b.id()).memfd(fd, start, size))
    };
    let unsealed =
        rustix::fs::memfd_create("u", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::io::write(&unsealed, b"data").unwrap();
    assert_eq!(errno(memfd(unsealed.as_fd(), 0, 4)), Errno::TXTBSY);
    rustix::fs::fcntl_add_seals(
        &unsealed,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .unwrap();
    assert_eq!(
        errno(memfd(unsealed.as_fd(), 0, 4)),
        Errno::TXTBSY,
        "F_SEAL_SEAL is needed too"
    );
    let (r, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(errno(memfd(r.as_fd(), 0, 4)), Errno::MEDIUMTYPE);
    let sealed = sealed_memfd(b"12345678");
    assert_eq!(
        errno(memfd(sealed.as_fd(), 4, 5)),
        Errno::FAULT,
        "range beyond the file"
    );
    assert_eq!(
        errno(memfd(sealed.as_fd(), u64::MAX, 2)),
        Errno::MSGSIZE,
        "overflowing range"
    );
    assert_eq!(errno(memfd(sealed.as_fd(), 0, 0)), Errno::INVAL);
    let bad_fd = kdbus_memfd {
        start: 0,
        size: 1,
        fd: -1,
        __pad: 0,
    };
    assert_eq!(
        send_with_item(
            &a,
            &MessageBuilder::to_id(b.id()),
            KDBUS_ITEM_PAYLOAD_MEMFD,
            zerocopy::IntoBytes::as_bytes(&bad_fd)
        ),
        Err(Errno::BADF)
    );
    let mut m = MessageBuilder::to_id(b.id());
    for _ in 0..17 {
        m = m.memfd(sealed.as_fd(), 0, 8);
    }
    assert_eq!(errno(a.send(&m)), Errno::TOOBIG);
    assert!(b.recv().unwrap().message.is_none(), "EAGAIN");
}

#[test]
fn memfds_are_allowed_on_broadcasts() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    match_all(&b);
    let mfd = sealed_memfd(b"broadcast");
    a.send(
        &MessageBuilder::broadcast()
            .bloom(BloomFilter::new(BLOOM))
            .memfd(mfd.as_fd(), 0, 9),
    )
    .unwrap();
    let m = recv_msg(&b);
    assert_eq!(m.memfds()[0].read().unwrap(), b"broadcast");
}
