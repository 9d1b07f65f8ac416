//! Policy handling: the full value of every policy field is
//! validated, and SEE on custom endpoints also covers the names that ride
//! along as metadata.

use kdbus::abi::*;
use kdbus::{
    own_name, Access, AttachFlags, Connection, Endpoint, EndpointBuilder, Errno, MakeFlags,
    MessageBuilder, Metadata, NameFlags, Peer, Policy, PolicyAccess,
};
use kdbus_abi_tests::fixture::*;
use zerocopy::IntoBytes;

const NONE: NameFlags = NameFlags::empty();

/// A POLICY_ACCESS item's payload, with any type value.
fn access(type_: u64, access: u64, id: u64) -> Vec<u8> {
    kdbus_policy_access { type_, access, id }
        .as_bytes()
        .to_vec()
}

/// A world-accessible custom endpoint "<euid>-<suffix>".
fn make_endpoint(bus: &TestBus, suffix: &str) -> Endpoint {
    EndpointBuilder::new(own_name(suffix))
        .flags(MakeFlags::ACCESS_WORLD)
        .create(bus.endpoint())
        .expect("ENDPOINT_MAKE")
}

/// ENDPOINT_UPDATE with hand-made items.
fn raw_ep_update(ep: &Endpoint, items: &[(u64, &[u8])]) -> Result<(), Errno> {
    let mut c = command(&kdbus_cmd::default(), items);
    kdbus::raw::ioctl(ep, KDBUS_CMD_ENDPOINT_UPDATE, &mut c)
}

#[test]
fn policy_access_type_is_checked_in_all_its_bits() {
    let bus = TestBus::new();
    let ep = make_endpoint(&bus, "types");
    let name = c_str("org.test.types");

    // 0x101 is not a policy type, even if its low byte is USER
    for ty in [
        0x100 | KDBUS_POLICY_ACCESS_USER,
        0x1_0000_0000 | KDBUS_POLICY_ACCESS_WORLD,
        1 << 63 | KDBUS_POLICY_ACCESS_GROUP,
    ] {
        assert_eq!(
            raw_ep_update(
                &ep,
                &[
                    (KDBUS_ITEM_NAME, &name),
                    (KDBUS_ITEM_POLICY_ACCESS, &access(ty, KDBUS_POLICY_SEE, 0)),
                ]
            ),
            Err(Errno::INVAL),
            "ENDPOINT_UPDATE with policy type {ty:#x}"
        );
        assert_eq!(
            raw_hello(
                &bus.endpoint(),
                KDBUS_HELLO_POLICY_HOLDER,
                &[
                    (KDBUS_ITEM_NAME, &name),
                    (KDBUS_ITEM_POLICY_ACCESS, &access(ty, KDBUS_POLICY_OWN, 0)),
                ]
            )
            .err(),
            Some(Errno::INVAL),
            "policy holder HELLO with policy type {ty:#x}"
        );
    }

    // the valid types still work
    raw_ep_update(
        &ep,
        &[
            (KDBUS_ITEM_NAME, &name),
            (
                KDBUS_ITEM_POLICY_ACCESS,
                &access(KDBUS_POLICY_ACCESS_USER, KDBUS_POLICY_SEE, 0),
            ),
            (
                KDBUS_ITEM_POLICY_ACCESS,
                &access(KDBUS_POLICY_ACCESS_GROUP, KDBUS_POLICY_SEE, 0),
            ),
            (
                KDBUS_ITEM_POLICY_ACCESS,
                &access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_SEE, 0),
            ),
        ],
    )
    .unwrap();
}

/// A peer on the default endpoint owning a name the custom endpoint may see
/// and one it may not, and a connection on that endpoint.
fn see_setup(bus: &TestBus) -> (Endpoint, Connection, Connection) {
    let ep = make_endpoint(bus, "see");
    ep.set_policy(&[Policy::new(
        "org.test.shown",
        [PolicyAccess::world(Access::Talk)],
    )])
    .unwrap();
    let peer = bus.conn();
    peer.acquire_name("org.test.shown", NONE).unwrap();
    peer.acquire_name("org.test.hidden", NONE).unwrap();
    let inside = TestBus::hello().connect(ep.path()).unwrap();
    (ep, peer, inside)
}

fn names(meta: Metadata) -> Vec<String> {
    meta.names
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.name)
        .collect()
}

#[test]
fn owned_names_on_messages_respect_see() {
    let bus = TestBus::new();
    let (_ep, peer, inside) = see_setup(&bus);

    // the name is hidden from LIST and CONN_INFO ...
    assert_eq!(
        errno(inside.conn_info(Peer::Name("org.test.hidden"), AttachFlags::empty())),
        Errno::SRCH
    );

    // ... so it must not arrive as metadata of the peer's messages either
    peer.send(&MessageBuilder::to_id(inside.id())).unwrap();
    assert_eq!(
        names(recv_msg(&inside).metadata()),
        ["org.test.shown"],
        "OWNED_NAME items of a message received on a custom endpoint"
    );

    // a connection on the default endpoint still sees all of them
    let outside = bus.conn();
    peer.send(&MessageBuilder::to_id(outside.id())).unwrap();
    assert_eq!(
        names(recv_msg(&outside).metadata()),
        ["org.test.shown", "org.test.hidden"]
    );
}

#[test]
fn owned_names_in_conn_info_respect_see() {
    let bus = TestBus::new();
    let (_ep, peer, inside) = see_setup(&bus);

    for peer_ref in [Peer::Name("org.test.shown"), Peer::Id(peer.id())] {
        let info = inside.conn_info(peer_ref, AttachFlags::NAMES).unwrap();
        assert_eq!(
            names(info.metadata),
            ["org.test.shown"],
            "OWNED_NAME items of CONN_INFO on a custom endpoint"
        );
    }

    let outside = bus.conn();
    let info = outside
        .conn_info(Peer::Id(peer.id()), AttachFlags::NAMES)
        .unwrap();
    assert_eq!(names(info.metadata).len(), 2);
}
