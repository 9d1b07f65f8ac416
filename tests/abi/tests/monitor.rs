//! Monitors (spec §14): a copy of all traffic, invisible on the bus.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use kdbus::abi::*;
use kdbus_abi_tests::*;
use rustix::io::Errno;

fn monitor(bus: &Bus, flags: u64) -> Conn {
    Hello::new()
        .flags(KDBUS_HELLO_MONITOR | flags)
        .attach(0, 0)
        .connect(&bus.endpoint())
        .unwrap()
}

#[test]
fn monitors_see_all_traffic() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let w = bus.conn();
    w.match_all();
    let mon = monitor(&bus, KDBUS_HELLO_ACCEPT_FD);
    assert!(w.drain().is_empty(), "no ID_ADD for a monitor");

    a.send(&MsgBuilder::new(b.id).vec(b"unicast")).unwrap();
    // a unicast signal b does not want: dropped for b, seen by the monitor
    a.send(&MsgBuilder::signal(b.id, BLOOM_SIZE as usize).vec(b"signal"))
        .unwrap();
    a.send(&MsgBuilder::signal(KDBUS_DST_ID_BROADCAST, BLOOM_SIZE as usize).vec(b"bcast"))
        .unwrap();
    a.send(
        &MsgBuilder::new(b.id)
            .cookie(5)
            .expect_reply(deadline_ms(5000))
            .vec(b"call"),
    )
    .unwrap();
    b.drain();
    b.send(&MsgBuilder::new(a.id).reply_to(5).vec(b"reply"))
        .unwrap();
    b.acquire("org.mon.n", 0).unwrap();

    let seen: Vec<(u64, Vec<u8>)> = mon
        .drain()
        .iter()
        .map(|m| {
            if m.hdr.src_id == 0 {
                (m.items[0].ty, Vec::new())
            } else {
                (m.hdr.src_id, m.payload())
            }
        })
        .collect();
    assert_eq!(
        seen,
        [
            (a.id, b"unicast".to_vec()),
            (a.id, b"signal".to_vec()),
            (a.id, b"bcast".to_vec()),
            (a.id, b"call".to_vec()),
            (b.id, b"reply".to_vec()),
            (KDBUS_ITEM_NAME_ADD, Vec::new()),
        ]
    );
    assert_eq!(errno(b.recv()), Errno::AGAIN);
}

#[test]
fn monitors_are_invisible() {
    let bus = Bus::new();
    let w = bus.conn();
    w.match_all();
    let mon = monitor(&bus, 0);
    let ids: Vec<u64> = w
        .list(KDBUS_LIST_UNIQUE)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, [w.id]);
    drop(mon);
    assert!(w.drain().is_empty(), "no ID_REMOVE either");
}

#[test]
fn monitors_get_messages_with_fds_without_installing_them() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let mon = monitor(&bus, 0);
    let (r, _w) = rustix::pipe::pipe().unwrap();
    a.send(&MsgBuilder::new(b.id).fds(&[r.as_raw_fd()]))
        .unwrap();
    let m = mon.recv_msg();
    let fds = m.item(KDBUS_ITEM_FDS).unwrap();
    assert_eq!(fds.data, (-1i32).to_ne_bytes());
    let got = b.recv_msg();
    let fd = i32::from_ne_bytes(
        got.item(KDBUS_ITEM_FDS).unwrap().data[..4]
            .try_into()
            .unwrap(),
    );
    // SAFETY: installed for us by the kernel.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

#[test]
fn monitors_count_what_they_miss() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let mon = Hello::new()
        .flags(KDBUS_HELLO_MONITOR)
        .attach(0, 0)
        .pool_size(4096)
        .connect(&bus.endpoint())
        .unwrap();
    let data = [0u8; 1500];
    for _ in 0..4 {
        a.send(&MsgBuilder::new(b.id).vec(&data)).unwrap();
    }
    // nothing fits a third of half a page: all four are lost, and the
    // count comes with EAGAIN
    let mut c = kdbus_abi_tests::raw::cmd(&kdbus_cmd_recv::default(), &[]);
    assert_eq!(mon.ioctl(KDBUS_CMD_RECV, &mut c), Err(Errno::AGAIN));
    let r: kdbus_cmd_recv = kdbus_abi_tests::raw::read_struct(c.bytes());
    assert_eq!(r.dropped_msgs, 4);
    assert_eq!(b.drain().len(), 4, "the receiver is not affected");
}
