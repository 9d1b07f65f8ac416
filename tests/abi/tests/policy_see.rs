//! Policy handling: the full value of every policy field is
//! validated, and SEE on custom endpoints also covers the names that ride
//! along as metadata.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use kdbus::abi::*;
use kdbus_abi_tests::conn::open_node;
use kdbus_abi_tests::raw::{self, cmd, item_str, item_struct};
use kdbus_abi_tests::*;
use rustix::io::Errno;

fn access(ty: u64, access: u64, id: u64) -> Vec<u8> {
    item_struct(
        KDBUS_ITEM_POLICY_ACCESS,
        &kdbus_policy_access {
            type_: ty,
            access,
            id,
        },
    )
}

/// A custom endpoint "<euid>-<suffix>": its owner handle and its path.
fn make_endpoint(bus: &Bus, suffix: &str) -> (OwnedFd, PathBuf) {
    let fd = open_node(&bus.endpoint()).unwrap();
    let name = format!("{}-{suffix}", rustix::process::geteuid().as_raw());
    let mut c = cmd(
        &kdbus_cmd {
            flags: KDBUS_MAKE_ACCESS_WORLD,
            ..Default::default()
        },
        &[item_str(KDBUS_ITEM_MAKE_NAME, &name)],
    );
    raw::ioctl(fd.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut c).expect("ENDPOINT_MAKE");
    (fd, bus.dir.join(name))
}

fn ep_update(ep: &OwnedFd, items: &[Vec<u8>]) -> Result<(), Errno> {
    let mut c = cmd(&kdbus_cmd::default(), items);
    raw::ioctl(ep.as_fd(), KDBUS_CMD_ENDPOINT_UPDATE, &mut c)
}

#[test]
fn policy_access_type_is_checked_in_all_its_bits() {
    let bus = Bus::new();
    let (ep, _) = make_endpoint(&bus, "types");

    // 0x101 is not a policy type, even if its low byte is USER
    for ty in [
        0x100 | KDBUS_POLICY_ACCESS_USER,
        0x1_0000_0000 | KDBUS_POLICY_ACCESS_WORLD,
        1 << 63 | KDBUS_POLICY_ACCESS_GROUP,
    ] {
        assert_eq!(
            ep_update(
                &ep,
                &[
                    item_str(KDBUS_ITEM_NAME, "org.test.types"),
                    access(ty, KDBUS_POLICY_SEE, 0),
                ]
            ),
            Err(Errno::INVAL),
            "ENDPOINT_UPDATE with policy type {ty:#x}"
        );
        assert_eq!(
            Hello::new()
                .flags(KDBUS_HELLO_POLICY_HOLDER)
                .name("org.test.types")
                .item(access(ty, KDBUS_POLICY_OWN, 0))
                .connect(&bus.endpoint())
                .err(),
            Some(Errno::INVAL),
            "policy holder HELLO with policy type {ty:#x}"
        );
    }

    // the valid types still work
    ep_update(
        &ep,
        &[
            item_str(KDBUS_ITEM_NAME, "org.test.types"),
            access(KDBUS_POLICY_ACCESS_USER, KDBUS_POLICY_SEE, 0),
            access(KDBUS_POLICY_ACCESS_GROUP, KDBUS_POLICY_SEE, 0),
            access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_SEE, 0),
        ],
    )
    .unwrap();
}

/// A peer on the default endpoint owning a name the custom endpoint may see
/// and one it may not.
fn see_setup(bus: &Bus) -> (OwnedFd, Conn, Conn) {
    let (ep, path) = make_endpoint(bus, "see");
    ep_update(
        &ep,
        &[
            item_str(KDBUS_ITEM_NAME, "org.test.shown"),
            access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_TALK, 0),
        ],
    )
    .unwrap();
    let peer = bus.conn();
    peer.acquire("org.test.shown", 0).unwrap();
    peer.acquire("org.test.hidden", 0).unwrap();
    let inside = Hello::new().connect(&path).unwrap();
    (ep, peer, inside)
}

fn names(items: Vec<&Item>) -> Vec<String> {
    items.iter().map(|i| i.name().1).collect()
}

#[test]
fn owned_names_on_messages_respect_see() {
    let bus = Bus::new();
    let (_ep, peer, inside) = see_setup(&bus);

    // the name is hidden from LIST and CONN_INFO ...
    assert_eq!(
        errno(inside.conn_info(0, Some("org.test.hidden"), 0)),
        Errno::SRCH
    );

    // ... so it must not arrive as metadata of the peer's messages either
    peer.send(&MsgBuilder::new(inside.id)).unwrap();
    let m = inside.recv_msg();
    assert_eq!(
        names(m.items_of(KDBUS_ITEM_OWNED_NAME)),
        ["org.test.shown"],
        "OWNED_NAME items of a message received on a custom endpoint"
    );

    // a connection on the default endpoint still sees all of them
    let outside = bus.conn();
    peer.send(&MsgBuilder::new(outside.id)).unwrap();
    let m = outside.recv_msg();
    assert_eq!(
        names(m.items_of(KDBUS_ITEM_OWNED_NAME)),
        ["org.test.shown", "org.test.hidden"]
    );
}

#[test]
fn owned_names_in_conn_info_respect_see() {
    let bus = Bus::new();
    let (_ep, peer, inside) = see_setup(&bus);

    for info in [
        inside
            .conn_info(0, Some("org.test.shown"), KDBUS_ATTACH_NAMES)
            .unwrap(),
        inside.conn_info(peer.id, None, KDBUS_ATTACH_NAMES).unwrap(),
    ] {
        assert_eq!(
            names(info.items_of(KDBUS_ITEM_OWNED_NAME)),
            ["org.test.shown"],
            "OWNED_NAME items of CONN_INFO on a custom endpoint"
        );
    }

    let outside = bus.conn();
    let info = outside
        .conn_info(peer.id, None, KDBUS_ATTACH_NAMES)
        .unwrap();
    assert_eq!(info.items_of(KDBUS_ITEM_OWNED_NAME).len(), 2);
}
