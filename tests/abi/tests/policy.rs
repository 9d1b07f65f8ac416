//! Policy (spec §12): owners, OWN and TALK without and with policy
//! holders and activator policies, and custom endpoints with SEE.

use std::sync::Arc;

use kdbus::abi::*;
use kdbus::{
    own_name, Access, AttachFlags, Connection, Endpoint, EndpointBuilder, Errno, HelloBuilder,
    ListFlags, MakeFlags, MatchRule, MessageBuilder, NameFlags, Notification, Peer, Policy,
    PolicyAccess,
};
use kdbus_abi_tests::fixture::*;
use kdbus_abi_tests::{as_user, Domain};
use zerocopy::IntoBytes;

const U1: u32 = 1000;
const U2: u32 = 1001;
const NONE: NameFlags = NameFlags::empty();

fn holder(bus: &TestBus, name: &str, rules: &[PolicyAccess]) -> kdbus::Result<Connection> {
    bus.try_connect(HelloBuilder::new().policy_holder(name, rules))
}

/// Connects as `uid` and runs `f` with the connection.
fn with_user<T: Send + 'static>(
    bus: &TestBus,
    uid: u32,
    f: impl FnOnce(Connection) -> T + Send + 'static,
) -> T {
    let ep = bus.endpoint();
    as_user(uid, uid, move || {
        f(HelloBuilder::new().connect(&ep).unwrap())
    })
}

/// The errno of a result, `None` for success.
fn err<T>(r: kdbus::Result<T>) -> Option<Errno> {
    r.err().map(|e| e.errno().expect("an errno"))
}

#[test]
fn without_policy_only_owners_own_names() {
    let bus = TestBus::new();
    let root = bus.conn();
    root.acquire_name("org.p.root", NONE).unwrap();
    assert_eq!(
        with_user(&bus, U1, |c| err(c.acquire_name("org.p.mine", NONE))),
        Some(Errno::PERM)
    );
    // the bus creator's euid is an owner even without CAP_IPC_OWNER
    let d = Arc::new(Domain::new());
    let d2 = d.clone();
    let r = as_user(U1, U1, move || {
        let bus = TestBus::make_in(&d2, TestBus::builder("mine")).unwrap();
        err(bus.conn().acquire_name("org.p.mine", NONE))
    });
    assert_eq!(r, None);
}

#[test]
fn a_policy_holder_grants_own() {
    let bus = TestBus::new();
    let _h = holder(&bus, "org.pub.*", &[PolicyAccess::world(Access::Own)]).unwrap();
    let _h2 = holder(&bus, "org.only.u1", &[PolicyAccess::user(U1, Access::Own)]).unwrap();
    let _h3 = holder(
        &bus,
        "org.only.group",
        &[PolicyAccess::group(U2, Access::Own)],
    )
    .unwrap();
    let r = with_user(&bus, U1, |c| {
        [
            "org.pub.svc",
            "org.pub.a.b",
            "org.other.x",
            "org.only.u1",
            "org.only.group",
        ]
        .map(|n| err(c.acquire_name(n, NONE)))
    });
    assert_eq!(
        r,
        [
            None,
            Some(Errno::PERM),
            Some(Errno::PERM),
            None,
            Some(Errno::PERM)
        ],
        "wildcards match one more element"
    );
    let r = with_user(&bus, U2, |c| {
        (
            err(c.acquire_name("org.only.u1", NONE)),
            err(c.acquire_name("org.only.group", NONE)),
        )
    });
    assert_eq!(r, (Some(Errno::PERM), None), "group matches the egid");
}

#[test]
fn holder_policy_lives_with_the_holder() {
    let bus = TestBus::new();
    let h = holder(&bus, "org.gone.x", &[PolicyAccess::world(Access::Own)]).unwrap();
    assert_eq!(
        with_user(&bus, U1, |c| err(c.acquire_name("org.gone.x", NONE))),
        None
    );
    // a second holder of the same name is refused
    assert_eq!(
        errno(holder(
            &bus,
            "org.gone.x",
            &[PolicyAccess::world(Access::See)]
        )),
        Errno::EXIST
    );
    drop(h);
    assert_eq!(
        with_user(&bus, U1, |c| err(c.acquire_name("org.gone.x", NONE))),
        Some(Errno::PERM)
    );
    // an exact name and a wildcard of the same prefix may coexist
    let _a = holder(&bus, "org.gone.x", &[]).unwrap();
    let _b = holder(&bus, "org.gone.*", &[]).unwrap();
}

#[test]
fn holder_policy_rules() {
    let bus = TestBus::new();
    // records the library cannot build: raw HELLO
    let bad = |type_: u64, access: u64, id: u64| {
        let name = c_str("org.bad.x");
        let rec = kdbus_policy_access { type_, access, id };
        raw_hello(
            &bus.endpoint(),
            KDBUS_HELLO_POLICY_HOLDER,
            &[
                (KDBUS_ITEM_NAME, &name),
                (KDBUS_ITEM_POLICY_ACCESS, rec.as_bytes()),
            ],
        )
        .err()
    };
    assert_eq!(
        bad(0, KDBUS_POLICY_OWN, 0),
        Some(Errno::INVAL),
        "access type"
    );
    assert_eq!(
        bad(KDBUS_POLICY_ACCESS_WORLD, 3, 0),
        Some(Errno::INVAL),
        "access level"
    );
    assert_eq!(
        bad(KDBUS_POLICY_ACCESS_USER, KDBUS_POLICY_OWN, u64::MAX),
        Some(Errno::INVAL),
        "unmappable id"
    );
    assert_eq!(bad(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_OWN, 0), None);
}

#[test]
fn talk_between_users() {
    let bus = TestBus::new();
    let root = bus.conn();
    let rid = root.id();
    // another user may not talk to root's connection
    assert_eq!(
        with_user(&bus, U1, move |c| err(c.send(&MessageBuilder::to_id(rid)))),
        Some(Errno::PERM)
    );
    // the same user may; owners may talk to anyone
    let ep = bus.endpoint();
    let (same, uid_conn) = as_user(U1, U1, move || {
        let a = HelloBuilder::new().connect(&ep).unwrap();
        let b = HelloBuilder::new().connect(&ep).unwrap();
        (err(a.send(&MessageBuilder::to_id(b.id()))), b)
    });
    assert_eq!(same, None);
    root.send(&MessageBuilder::to_id(uid_conn.id())).unwrap();

    // TALK on a name of root's connection opens it
    root.acquire_name("org.talk.svc", NONE).unwrap();
    let _h = holder(&bus, "org.talk.svc", &[PolicyAccess::world(Access::Talk)]).unwrap();
    let r = with_user(&bus, U1, move |c| {
        (
            err(c.send(&MessageBuilder::to_name("org.talk.svc"))),
            err(c.send(&MessageBuilder::to_id(rid))),
            err(c.acquire_name("org.talk.svc", NameFlags::QUEUE)),
        )
    });
    assert_eq!(r, (None, None, Some(Errno::PERM)), "TALK is not OWN");
    assert_eq!(drain(&root).len(), 2);
}

#[test]
fn broadcasts_need_talk_from_the_receiver_to_the_sender() {
    let bus = TestBus::new();
    let root = bus.conn();
    match_all(&root);
    let ep = bus.endpoint();
    let rid = root.id();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        as_user(U1, U1, move || {
            let c = HelloBuilder::new().connect(&ep).unwrap();
            c.add_match(&MatchRule::new(1).sender(rid)).unwrap();
            c.send(&MessageBuilder::broadcast().bloom(no_bloom()))
                .unwrap();
            ready_tx.send(()).unwrap();
            sent_rx.recv().unwrap();
            let received = drain(&c).len();
            received
        })
    });
    ready_rx.recv().unwrap();
    root.send(&MessageBuilder::broadcast().bloom(no_bloom()))
        .unwrap();
    sent_tx.send(()).unwrap();
    assert_eq!(t.join().unwrap(), 0, "the other user may not talk to root");
    // root, an owner, may talk to anyone: it gets the other user's signal
    // (and its own one, it matches everything)
    let from: Vec<u64> = drain(&root)
        .iter()
        .map(|m| m.src_id())
        .filter(|&s| s != 0 && s != rid)
        .collect();
    assert_eq!(from.len(), 1);
}

#[test]
fn activator_policy() {
    let bus = TestBus::new();
    let act = bus.connect(HelloBuilder::new().activator(
        "org.act.svc",
        &[
            PolicyAccess::world(Access::Talk),
            PolicyAccess::user(U2, Access::Own),
        ],
    ));
    assert_eq!(
        with_user(&bus, U1, |c| err(
            c.send(&MessageBuilder::to_name("org.act.svc").payload(b"wake"))
        )),
        None
    );
    assert_eq!(recv_msg(&act).payload_to_vec(), b"wake");
    assert_eq!(
        with_user(&bus, U1, |c| err(c.acquire_name("org.act.svc", NONE))),
        Some(Errno::PERM)
    );
    assert_eq!(
        with_user(&bus, U2, |c| err(c.acquire_name("org.act.svc", NONE))),
        None
    );
    // at most one name per activator
    let (two, three) = (c_str("org.act.two"), c_str("org.act.three"));
    assert_eq!(
        raw_hello(
            &bus.endpoint(),
            KDBUS_HELLO_ACTIVATOR,
            &[(KDBUS_ITEM_NAME, &two), (KDBUS_ITEM_NAME, &three)]
        )
        .err(),
        Some(Errno::INVAL),
        "a second NAME item is a duplicate"
    );
}

fn make_endpoint(bus: &TestBus, suffix: &str, flags: MakeFlags) -> kdbus::Result<Endpoint> {
    EndpointBuilder::new(own_name(suffix))
        .flags(flags)
        .create(bus.endpoint())
}

/// ENDPOINT_UPDATE with hand-made items.
fn raw_ep_update(ep: &Endpoint, items: &[(u64, &[u8])]) -> Result<(), Errno> {
    let mut c = command(&kdbus_cmd::default(), items);
    kdbus::raw::ioctl(ep, KDBUS_CMD_ENDPOINT_UPDATE, &mut c)
}

/// ENDPOINT_MAKE with hand-made items on a fresh handle of the bus.
fn raw_ep_make(bus_endpoint: &std::path::Path, items: &[(u64, &[u8])]) -> Result<(), Errno> {
    let fd = kdbus::raw::open(bus_endpoint).unwrap();
    let mut c = command(&kdbus_cmd::default(), items);
    kdbus::raw::ioctl(&fd, KDBUS_CMD_ENDPOINT_MAKE, &mut c)
}

#[test]
fn custom_endpoints() {
    let bus = TestBus::new();
    let ep = make_endpoint(&bus, "ep", MakeFlags::ACCESS_WORLD).unwrap();
    let path = ep.path().to_owned();
    assert_eq!(path, bus.dir().join(own_name("ep")));
    let meta = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);

    // names need the uid prefix, and are unique per bus
    assert_eq!(
        errno(make_endpoint(&bus, "ep", MakeFlags::empty())),
        Errno::EXIST
    );
    assert_eq!(
        errno(EndpointBuilder::new("ep2").create(bus.endpoint())),
        Errno::INVAL
    );

    // the bus' default endpoint is unchanged; a custom one starts with
    // an empty policy: nothing is visible, nothing can be owned
    let root = bus.conn();
    root.acquire_name("org.ep.visible", NONE).unwrap();
    root.acquire_name("org.ep.hidden", NONE).unwrap();
    let inside = HelloBuilder::new().connect(&path).unwrap();
    let none = AttachFlags::empty();
    assert!(inside.list(ListFlags::NAMES).unwrap().is_empty());
    assert_eq!(
        errno(inside.conn_info(Peer::Name("org.ep.visible"), none)),
        Errno::SRCH
    );
    assert_eq!(
        errno(inside.conn_info(Peer::Id(root.id()), none)),
        Errno::NXIO
    );
    assert_eq!(errno(inside.acquire_name("org.ep.mine", NONE)), Errno::PERM);
    assert_eq!(
        errno(inside.send(&MessageBuilder::to_id(root.id()))),
        Errno::PERM
    );

    ep.set_policy(&[
        Policy::new("org.ep.visible", [PolicyAccess::world(Access::Talk)]),
        Policy::new("org.ep.*", [PolicyAccess::world(Access::See)]),
    ])
    .unwrap();
    let listed: Vec<String> = inside
        .list(ListFlags::NAMES)
        .unwrap()
        .into_iter()
        .map(|i| i.name.unwrap().name)
        .collect();
    assert_eq!(listed.len(), 2, "wildcard SEE covers both: {listed:?}");
    inside.conn_info(Peer::Id(root.id()), none).unwrap();
    inside
        .send(&MessageBuilder::to_name("org.ep.visible"))
        .unwrap();

    // an update replaces the whole policy
    ep.set_policy(&[Policy::new(
        "org.ep.visible",
        [PolicyAccess::world(Access::See)],
    )])
    .unwrap();
    assert_eq!(inside.list(ListFlags::NAMES).unwrap().len(), 1);
    assert_eq!(
        errno(inside.send(&MessageBuilder::to_name("org.ep.visible"))),
        Errno::PERM
    );

    // connections on custom endpoints are never owners
    assert_eq!(
        errno(HelloBuilder::new().monitor().connect(&path)),
        Errno::OPNOTSUPP
    );
    assert_eq!(
        errno(
            HelloBuilder::new()
                .activator("org.ep.act", &[])
                .connect(&path)
        ),
        Errno::PERM
    );

    // closing the owner removes the endpoint and its connections
    drop(ep);
    assert!(!path.exists());
    assert_eq!(errno(inside.list(ListFlags::NAMES)), Errno::CONNRESET);
}

#[test]
fn endpoint_notifications_are_filtered_by_see() {
    let bus = TestBus::new();
    let ep = make_endpoint(&bus, "see", MakeFlags::empty()).unwrap();
    ep.set_policy(&[Policy::new(
        "org.see.yes",
        [PolicyAccess::world(Access::See)],
    )])
    .unwrap();
    let inside = HelloBuilder::new().connect(ep.path()).unwrap();
    match_all(&inside);
    let root = bus.conn();
    root.acquire_name("org.see.no", NONE).unwrap();
    root.acquire_name("org.see.yes", NONE).unwrap();
    let added: Vec<String> = drain(&inside)
        .iter()
        .filter_map(|m| match m.notification() {
            Some(Notification::NameAdd { name, .. }) => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(added, ["org.see.yes"]);
}

#[test]
fn endpoint_rules() {
    let bus = TestBus::new();
    // only owners make endpoints
    let e = bus.endpoint();
    assert_eq!(
        as_user(U1, U1, move || err(
            EndpointBuilder::new(format!("{U1}-x")).create(&e)
        )),
        Some(Errno::PERM)
    );
    let ep = make_endpoint(&bus, "rules", MakeFlags::empty()).unwrap();
    let see = PolicyAccess::world(Access::See).to_abi();
    assert_eq!(
        raw_ep_update(&ep, &[(KDBUS_ITEM_POLICY_ACCESS, see.as_bytes())]),
        Err(Errno::INVAL),
        "access before a name"
    );
    assert_eq!(
        errno(ep.set_policy(&[Policy::new("org.r.x", []), Policy::new("org.r.x", [])])),
        Errno::EXIST
    );
    assert_eq!(
        errno(ep.set_policy(&[Policy::new("bad", [])])),
        Errno::INVAL
    );
    ep.set_policy(&[]).unwrap();
    // ENDPOINT_MAKE does not take policy items
    let (name, policy_name) = (c_str(&own_name("p")), c_str("org.r.x"));
    assert_eq!(
        raw_ep_make(
            &bus.endpoint(),
            &[
                (KDBUS_ITEM_MAKE_NAME, &name),
                (KDBUS_ITEM_NAME, &policy_name)
            ]
        ),
        Err(Errno::INVAL)
    );
    raw_ep_make(&bus.endpoint(), &[(KDBUS_ITEM_MAKE_NAME, &name)]).unwrap();
}
