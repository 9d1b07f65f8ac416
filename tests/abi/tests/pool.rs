//! The receive pool: read-only mapping, slices, FREE, EXFULL (spec §2.3,
//! §4.6, §8.1).

use kdbus::abi::*;
use kdbus::raw::Buf;
use kdbus::{
    Connection, Errno, HelloBuilder, ListFlags, MessageBuilder, MessageView, DEFAULT_POOL_SIZE,
};
use kdbus_abi_tests::fixture::*;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

fn try_map(
    conn: &Connection,
    len: usize,
    prot: ProtFlags,
    flags: MapFlags,
    off: u64,
) -> Result<(), Errno> {
    // SAFETY: a throw-away mapping of the connection's pool, unmapped at
    // once if it succeeds.
    unsafe {
        let p = rustix::mm::mmap(std::ptr::null_mut(), len, prot, flags, conn.fd(), off)?;
        rustix::mm::munmap(p, len).unwrap();
    }
    Ok(())
}

/// The payload of the message at `off` in `conn`'s pool.
fn payload_at(conn: &Connection, offset: u64, size: u64) -> Vec<u8> {
    let bytes = conn.read_pool(offset, size).unwrap();
    MessageView::parse(&bytes).unwrap().payload_to_vec()
}

#[test]
fn pool_cannot_be_mapped_writable() {
    let bus = TestBus::new();
    let c = bus.conn();
    let rw = ProtFlags::READ | ProtFlags::WRITE;
    assert_eq!(try_map(&c, 4096, rw, MapFlags::SHARED, 0), Err(Errno::PERM));
    assert_eq!(
        try_map(&c, 4096, rw, MapFlags::PRIVATE, 0),
        Err(Errno::PERM)
    );
    try_map(&c, 4096, ProtFlags::READ, MapFlags::PRIVATE, 0).unwrap();
}

#[test]
fn pool_cannot_be_made_writable_later() {
    let bus = TestBus::new();
    let c = bus.conn();
    for flags in [MapFlags::SHARED, MapFlags::PRIVATE] {
        // SAFETY: a read-only mapping of the pool whose protection is
        // changed (which must fail) and which is then unmapped.
        unsafe {
            let p = rustix::mm::mmap(
                std::ptr::null_mut(),
                4096,
                ProtFlags::READ,
                flags,
                c.fd(),
                0,
            )
            .unwrap();
            assert_eq!(
                rustix::mm::mprotect(p, 4096, MprotectFlags::READ | MprotectFlags::WRITE),
                Err(Errno::ACCESS)
            );
            rustix::mm::munmap(p, 4096).unwrap();
        }
    }
}

#[test]
fn mapping_larger_than_the_pool_is_efault() {
    let bus = TestBus::new();
    let c = bus.connect(HelloBuilder::new().pool_size(4 * 4096));
    assert_eq!(
        try_map(&c, 5 * 4096, ProtFlags::READ, MapFlags::SHARED, 0),
        Err(Errno::FAULT)
    );
    try_map(&c, 4 * 4096, ProtFlags::READ, MapFlags::SHARED, 0).unwrap();
}

#[test]
fn mapping_at_an_offset_maps_that_part_of_the_pool() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    // fill the first page with a slice we keep
    let big = vec![7u8; 5000];
    a.send(&MessageBuilder::to_id(b.id()).payload(&big))
        .unwrap();
    let (r, peeked) = raw_recv(&b, KDBUS_RECV_PEEK, 0);
    r.unwrap();
    assert_eq!(peeked.msg.offset, 0);
    let first = recv_msg(&b);
    assert_eq!(first.offset(), 0);

    // SAFETY: read-only mapping of the second page of the pool.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            4096,
            ProtFlags::READ,
            MapFlags::SHARED,
            b.fd(),
            4096,
        )
        .unwrap()
    };
    // byte 4096 of the pool is inside the payload of the first message
    let whole = b.read_pool(4096, 16).unwrap();
    // SAFETY: reads 16 bytes inside the page just mapped.
    let part = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), 16).to_vec() };
    assert_eq!(part, whole);
    assert_eq!(whole, [7u8; 16]);
    // SAFETY: unmaps the mapping above.
    unsafe { rustix::mm::munmap(p, 4096).unwrap() };
}

#[test]
fn free_rules() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    // the empty marker
    raw_free(&b, DEFAULT_POOL_SIZE).unwrap();
    // nothing published there
    for off in [0, 8, DEFAULT_POOL_SIZE + 8, u64::MAX] {
        assert_eq!(raw_free(&b, off), Err(Errno::NXIO), "offset {off}");
    }

    a.send(&MessageBuilder::to_id(b.id()).payload(b"x"))
        .unwrap();
    let (r, peeked) = raw_recv(&b, KDBUS_RECV_PEEK, 0);
    r.unwrap();
    let off = peeked.msg.offset;
    // not the start of the slice
    assert_eq!(raw_free(&b, off + 8), Err(Errno::NXIO));
    // a peeked slice can be freed; the message stays queued
    raw_free(&b, off).unwrap();
    assert_eq!(raw_free(&b, off), Err(Errno::NXIO), "double free");
    let again = recv_msg(&b);
    assert_eq!(again.offset(), off, "same slice");
    drop(again);
    // dropping the message freed it
    assert_eq!(raw_free(&b, off), Err(Errno::NXIO));
}

#[test]
fn freed_slices_are_reused() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let mut offsets = std::collections::BTreeSet::new();
    for _ in 0..100 {
        a.send(&MessageBuilder::to_id(b.id()).payload(b"hello"))
            .unwrap();
        offsets.insert(recv_msg(&b).offset());
    }
    assert_eq!(offsets.len(), 1, "one slice, freed and reused: {offsets:?}");
}

#[test]
fn received_slices_stay_until_freed() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MessageBuilder::to_id(b.id()).payload(b"first"))
        .unwrap();
    let (res, r) = raw_recv(&b, 0, 0);
    res.unwrap();
    for i in 0..50 {
        let data = format!("later {i}");
        a.send(&MessageBuilder::to_id(b.id()).payload(data.as_bytes()))
            .unwrap();
    }
    assert_eq!(payload_at(&b, r.msg.offset, r.msg.msg_size), b"first");
    raw_free(&b, r.msg.offset).unwrap();
    assert_eq!(drain(&b).len(), 50);
}

#[test]
fn a_full_pool_is_exfull() {
    let bus = TestBus::new();
    let c = bus.connect(HelloBuilder::new().pool_size(4096));
    let mut offsets = Vec::new();
    // owner slices (LIST results) are not limited by the quota rules
    let err = loop {
        let mut l = Buf::with_header(&kdbus_cmd_list {
            flags: KDBUS_LIST_UNIQUE,
            ..Default::default()
        });
        l.finish();
        match kdbus::raw::ioctl(&c, KDBUS_CMD_LIST, &mut l) {
            Ok(()) => offsets.push(l.read::<kdbus_cmd_list>(0).offset),
            Err(e) => break e,
        }
        assert!(offsets.len() < 1000);
    };
    assert_eq!(err, Errno::XFULL);
    assert_eq!(offsets.len(), 4096 / 24, "24-byte records pack the pool");
    assert_eq!(errno(c.list(ListFlags::UNIQUE)), Errno::XFULL);
    raw_free(&c, offsets.pop().unwrap()).unwrap();
    c.list(ListFlags::UNIQUE).unwrap();
    for o in offsets {
        raw_free(&c, o).unwrap();
    }
}

#[test]
fn the_pool_survives_its_connection() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MessageBuilder::to_id(b.id()).payload(b"kept"))
        .unwrap();
    let (r, peeked) = raw_recv(&b, KDBUS_RECV_PEEK, 0);
    r.unwrap();
    assert_eq!(b.byebye().unwrap(), kdbus::ByeBye::Busy, "still queued");
    assert!(b.drop_next().unwrap().message.is_none());
    assert_eq!(b.byebye().unwrap(), kdbus::ByeBye::Disconnected);
    // the mapping stays readable after the disconnect
    assert_eq!(
        payload_at(&b, peeked.msg.offset, peeked.msg.msg_size),
        b"kept"
    );
}

/// Any multiple of the page size is a valid pool size (spec §4.3), and a
/// pool costs only the pages its messages touch: a terabyte pool is made,
/// mapped and used without the kernel trying to back it up front (which
/// would run the VM out of memory).
#[test]
fn a_huge_pool_costs_only_what_it_uses() {
    let bus = TestBus::new();
    let big = TestBus::hello().pool_size(1 << 40).connect(bus.endpoint());
    let big = big.expect("HELLO with a 1 TiB pool");
    assert_eq!(big.pool_size(), 1 << 40);
    let peer = bus.conn();
    peer.send(&MessageBuilder::to_id(big.id()).payload(b"into a big pool"))
        .unwrap();
    assert_eq!(recv_msg(&big).payload_to_vec(), b"into a big pool");
}
