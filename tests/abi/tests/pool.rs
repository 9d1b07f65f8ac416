//! The receive pool: read-only mapping, slices, FREE, EXFULL (spec §2.3,
//! §4.6, §8.1).

use std::os::fd::AsFd;

use kdbus::abi::*;
use kdbus_abi_tests::raw::read_struct;
use kdbus_abi_tests::*;
use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

fn try_map(
    conn: &Conn,
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

#[test]
fn pool_cannot_be_mapped_writable() {
    let bus = Bus::new();
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
    let bus = Bus::new();
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
    let bus = Bus::new();
    let c = Hello::new()
        .pool_size(4 * 4096)
        .connect(&bus.endpoint())
        .unwrap();
    assert_eq!(
        try_map(&c, 5 * 4096, ProtFlags::READ, MapFlags::SHARED, 0),
        Err(Errno::FAULT)
    );
    try_map(&c, 4 * 4096, ProtFlags::READ, MapFlags::SHARED, 0).unwrap();
}

#[test]
fn mapping_at_an_offset_maps_that_part_of_the_pool() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    // fill the first page with a slice we keep
    let big = vec![7u8; 5000];
    a.send(&MsgBuilder::new(b.id).vec(&big)).unwrap();
    let first = b.recv_with(KDBUS_RECV_PEEK, 0).unwrap().cmd.msg;
    assert_eq!(first.offset, 0);
    b.recv_with(0, 0).unwrap();

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
    let whole = b.pool.read(4096, 16);
    // SAFETY: reads 16 bytes inside the page just mapped.
    let part = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), 16).to_vec() };
    assert_eq!(part, whole);
    // SAFETY: unmaps the mapping above.
    unsafe { rustix::mm::munmap(p, 4096).unwrap() };
}

#[test]
fn free_rules() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    // the empty marker
    b.free(POOL_SIZE).unwrap();
    // nothing published there
    assert_eq!(b.free(0), Err(Errno::NXIO));
    assert_eq!(b.free(8), Err(Errno::NXIO));
    assert_eq!(b.free(POOL_SIZE + 8), Err(Errno::NXIO));
    assert_eq!(b.free(u64::MAX), Err(Errno::NXIO));

    a.send(&MsgBuilder::new(b.id).vec(b"x")).unwrap();
    let r = b.recv_with(KDBUS_RECV_PEEK, 0).unwrap();
    let off = r.cmd.msg.offset;
    // not the start of the slice
    assert_eq!(b.free(off + 8), Err(Errno::NXIO));
    // a peeked slice can be freed; the message stays queued
    b.free(off).unwrap();
    assert_eq!(b.free(off), Err(Errno::NXIO), "double free");
    let again = b.recv_with(0, 0).unwrap();
    assert_eq!(again.cmd.msg.offset, off, "same slice");
    // recv_with() freed it already
    assert_eq!(b.free(off), Err(Errno::NXIO));
}

#[test]
fn freed_slices_are_reused() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let mut offsets = std::collections::BTreeSet::new();
    for _ in 0..100 {
        a.send(&MsgBuilder::new(b.id).vec(b"hello")).unwrap();
        offsets.insert(b.recv_with(0, 0).unwrap().cmd.msg.offset);
    }
    assert_eq!(offsets.len(), 1, "one slice, freed and reused: {offsets:?}");
}

#[test]
fn received_slices_stay_until_freed() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MsgBuilder::new(b.id).vec(b"first")).unwrap();
    let mut c = kdbus_abi_tests::raw::cmd(&kdbus_cmd_recv::default(), &[]);
    b.ioctl(KDBUS_CMD_RECV, &mut c).unwrap();
    let r: kdbus_cmd_recv = read_struct(c.bytes());
    for i in 0..50 {
        let data = format!("later {i}");
        a.send(&MsgBuilder::new(b.id).vec(data.as_bytes())).unwrap();
    }
    let m = Msg::parse(b.pool.read(r.msg.offset, r.msg.msg_size));
    assert_eq!(m.payload(), b"first");
    b.free(r.msg.offset).unwrap();
    assert_eq!(b.drain().len(), 50);
}

#[test]
fn a_full_pool_is_exfull() {
    let bus = Bus::new();
    let c = Hello::new()
        .pool_size(4096)
        .connect(&bus.endpoint())
        .unwrap();
    let mut offsets = Vec::new();
    // owner slices (LIST results) are not limited by the quota rules
    let err = loop {
        let mut l = kdbus_abi_tests::raw::cmd(
            &kdbus_cmd_list {
                flags: KDBUS_LIST_UNIQUE,
                ..Default::default()
            },
            &[],
        );
        match c.ioctl(KDBUS_CMD_LIST, &mut l) {
            Ok(()) => offsets.push(l.u64_at(24)),
            Err(e) => break e,
        }
        assert!(offsets.len() < 1000);
    };
    assert_eq!(err, Errno::XFULL);
    assert_eq!(offsets.len(), 4096 / 24, "24-byte records pack the pool");
    c.free(offsets.pop().unwrap()).unwrap();
    c.list(KDBUS_LIST_UNIQUE).unwrap();
    for o in offsets {
        c.free(o).unwrap();
    }
}

#[test]
fn the_pool_survives_its_connection() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    a.send(&MsgBuilder::new(b.id).vec(b"kept")).unwrap();
    let r = b.recv_with(KDBUS_RECV_PEEK, 0).unwrap();
    b.byebye().unwrap_err(); // still queued: EBUSY
    b.recv_with(KDBUS_RECV_DROP, 0).unwrap();
    b.byebye().unwrap();
    // the mapping stays readable after the disconnect
    let m = Msg::parse(b.pool.read(r.cmd.msg.offset, r.cmd.msg.msg_size));
    assert_eq!(m.payload(), b"kept");
    let _ = b.fd.as_fd();
}
