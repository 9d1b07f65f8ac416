//! File descriptors and memfds (spec §8.2-§8.4): passing, ACCEPT_FD,
//! refused kinds of files, limits, PEEK, memfd seals and ranges.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use kdbus::abi::*;
use kdbus_abi_tests::*;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::io::Errno;

fn fds_of(m: &Msg) -> Vec<RawFd> {
    m.item(KDBUS_ITEM_FDS)
        .map(|i| {
            i.data
                .chunks_exact(4)
                .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

fn sealed_memfd(data: &[u8]) -> OwnedFd {
    let fd = rustix::fs::memfd_create(
        "kdbus-test",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .unwrap();
    rustix::io::write(&fd, data).unwrap();
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
    )
    .unwrap();
    fd
}

#[test]
fn passing_a_pipe() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let (r, w) = rustix::pipe::pipe().unwrap();
    a.send(&MsgBuilder::new(b.id).fds(&[r.as_raw_fd(), w.as_raw_fd()]))
        .unwrap();
    drop((r, w));
    let m = b.recv_msg();
    let fds = fds_of(&m);
    assert_eq!(fds.len(), 2);
    assert!(fds.iter().all(|&f| f >= 0));
    // SAFETY: the kernel installed these descriptors for us.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let flags = rustix::io::fcntl_getfd(&r).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    rustix::io::write(&w, b"through kdbus").unwrap();
    let mut buf = [0u8; 13];
    rustix::io::read(&r, &mut buf).unwrap();
    assert_eq!(&buf, b"through kdbus");
}

#[test]
fn receivers_must_accept_fds() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = Hello::new().flags(0).connect(&bus.endpoint()).unwrap();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).fds(&[r.as_raw_fd()])),
        Err(Errno::COMM)
    );
    // an empty fd list is no fd
    a.send(&MsgBuilder::new(b.id).fds(&[])).unwrap();
}

#[test]
fn refused_descriptors() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    assert_eq!(a.send(&MsgBuilder::new(b.id).fds(&[-1])), Err(Errno::BADF));
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).fds(&[9999])),
        Err(Errno::BADF)
    );
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).fds(&[a.raw_fd()])),
        Err(Errno::OPNOTSUPP),
        "kdbus handles"
    );
    let (s1, _s2) = std::os::unix::net::UnixStream::pair().unwrap();
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).fds(&[s1.as_raw_fd()])),
        Err(Errno::OPNOTSUPP),
        "unix sockets"
    );
    // O_PATH descriptors are fine
    let p = rustix::fs::open("/", rustix::fs::OFlags::PATH, rustix::fs::Mode::empty()).unwrap();
    a.send(&MsgBuilder::new(b.id).fds(&[p.as_raw_fd()]))
        .unwrap();
    let m = b.recv_msg();
    // SAFETY: installed for us by the kernel.
    drop(unsafe { OwnedFd::from_raw_fd(fds_of(&m)[0]) });
    assert_eq!(errno(b.recv()), Errno::AGAIN, "failed sends queue nothing");
}

#[test]
fn at_most_16_fds() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    let fds = vec![r.as_raw_fd(); 17];
    assert_eq!(a.send(&MsgBuilder::new(b.id).fds(&fds)), Err(Errno::MFILE));
    a.send(&MsgBuilder::new(b.id).fds(&fds[..16])).unwrap();
    // and 16 in flight per sending user per receiver
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).fds(&fds[..1])),
        Err(Errno::MFILE)
    );
    let m = b.recv_msg();
    for fd in fds_of(&m) {
        // SAFETY: installed for us by the kernel.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    a.send(&MsgBuilder::new(b.id).fds(&fds[..1])).unwrap();
}

#[test]
fn peek_does_not_install_fds() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    a.send(&MsgBuilder::new(b.id).fds(&[r.as_raw_fd(), r.as_raw_fd()]))
        .unwrap();
    let p = b.recv_with(KDBUS_RECV_PEEK, 0).unwrap();
    assert_eq!(fds_of(p.msg.as_ref().unwrap()), [-1, -1]);
    let m = b.recv_msg();
    let fds = fds_of(&m);
    assert!(fds.iter().all(|&f| f >= 0), "{fds:?}");
    for fd in fds {
        // SAFETY: installed for us by the kernel.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

#[test]
fn passing_a_sealed_memfd() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let data = b"0123456789abcdef-memfd-payload";
    let mfd = sealed_memfd(data);
    a.send(&MsgBuilder::new(b.id).memfd(mfd.as_raw_fd(), 4, 10))
        .unwrap();
    let m = b.recv_msg();
    let it: kdbus_memfd = m.item(KDBUS_ITEM_PAYLOAD_MEMFD).unwrap().as_struct();
    assert_eq!((it.start, it.size), (4, 10));
    assert!(it.fd >= 0);
    // SAFETY: installed for us by the kernel.
    let got = unsafe { OwnedFd::from_raw_fd(it.fd) };
    let mut buf = [0u8; 10];
    rustix::io::pread(&got, &mut buf, 4).unwrap();
    assert_eq!(&buf, b"456789abcd");
    // no inline bytes were added for the memfd
    assert!(m.payload().is_empty());
    assert_eq!(m.slice.len() as u64, m.hdr.size);
}

#[test]
fn memfd_checks() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let unsealed =
        rustix::fs::memfd_create("u", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::io::write(&unsealed, b"data").unwrap();
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).memfd(unsealed.as_raw_fd(), 0, 4)),
        Err(Errno::TXTBSY)
    );
    rustix::fs::fcntl_add_seals(
        &unsealed,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .unwrap();
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).memfd(unsealed.as_raw_fd(), 0, 4)),
        Err(Errno::TXTBSY),
        "F_SEAL_SEAL is needed too"
    );
    let (r, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).memfd(r.as_raw_fd(), 0, 4)),
        Err(Errno::MEDIUMTYPE)
    );
    let sealed = sealed_memfd(b"12345678");
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).memfd(sealed.as_raw_fd(), 4, 5)),
        Err(Errno::FAULT),
        "range beyond the file"
    );
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).memfd(sealed.as_raw_fd(), u64::MAX, 2)),
        Err(Errno::MSGSIZE),
        "overflowing range"
    );
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).memfd(sealed.as_raw_fd(), 0, 0)),
        Err(Errno::INVAL)
    );
    assert_eq!(
        a.send(&MsgBuilder::new(b.id).memfd(-1, 0, 1)),
        Err(Errno::BADF)
    );
    let mut m = MsgBuilder::new(b.id);
    for _ in 0..17 {
        m = m.memfd(sealed.as_raw_fd(), 0, 8);
    }
    assert_eq!(a.send(&m), Err(Errno::TOOBIG));
    assert_eq!(errno(b.recv()), Errno::AGAIN);
    let _ = sealed.as_fd();
}

#[test]
fn memfds_are_allowed_on_broadcasts() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    b.match_all();
    let mfd = sealed_memfd(b"broadcast");
    a.send(
        &MsgBuilder::signal(KDBUS_DST_ID_BROADCAST, BLOOM_SIZE as usize).memfd(
            mfd.as_raw_fd(),
            0,
            9,
        ),
    )
    .unwrap();
    let m = b.recv_msg();
    let it: kdbus_memfd = m.item(KDBUS_ITEM_PAYLOAD_MEMFD).unwrap().as_struct();
    // SAFETY: installed for us by the kernel.
    drop(unsafe { OwnedFd::from_raw_fd(it.fd) });
}
