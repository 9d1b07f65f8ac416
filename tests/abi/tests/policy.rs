//! Policy (spec §12): owners, OWN and TALK without and with policy
//! holders and activator policies, and custom endpoints with SEE.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use kdbus::abi::*;
use kdbus_abi_tests::conn::open_node;
use kdbus_abi_tests::raw::{self, cmd, item_str, item_struct};
use kdbus_abi_tests::*;
use rustix::io::Errno;

const U1: u32 = 1000;
const U2: u32 = 1001;

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

fn holder(bus: &Bus, name: &str, rules: &[Vec<u8>]) -> Result<Conn, Errno> {
    let mut h = Hello::new().flags(KDBUS_HELLO_POLICY_HOLDER).name(name);
    for r in rules {
        h = h.item(r.clone());
    }
    h.connect(&bus.endpoint())
}

/// Connects as `uid` and runs `f` with the connection.
fn with_user<T: Send + 'static>(
    bus: &Bus,
    uid: u32,
    f: impl FnOnce(Conn) -> T + Send + 'static,
) -> T {
    let ep = bus.endpoint();
    as_user(uid, uid, move || f(Hello::new().connect(&ep).unwrap()))
}

#[test]
fn without_policy_only_owners_own_names() {
    let bus = Bus::new();
    let root = bus.conn();
    root.acquire("org.p.root", 0).unwrap();
    assert_eq!(
        with_user(&bus, U1, |c| c.acquire("org.p.mine", 0)),
        Err(Errno::PERM)
    );
    // the bus creator's euid is an owner even without CAP_IPC_OWNER
    let d = Arc::new(Domain::new());
    let d2 = d.clone();
    let r = as_user(U1, U1, move || {
        let bus = Bus::make_in(&d2, "mine", 0, &[]).unwrap();
        bus.conn().acquire("org.p.mine", 0)
    });
    assert!(r.is_ok());
}

#[test]
fn a_policy_holder_grants_own() {
    let bus = Bus::new();
    let _h = holder(
        &bus,
        "org.pub.*",
        &[access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_OWN, 0)],
    )
    .unwrap();
    let _h2 = holder(
        &bus,
        "org.only.u1",
        &[access(
            KDBUS_POLICY_ACCESS_USER,
            KDBUS_POLICY_OWN,
            U1 as u64,
        )],
    )
    .unwrap();
    let _h3 = holder(
        &bus,
        "org.only.group",
        &[access(
            KDBUS_POLICY_ACCESS_GROUP,
            KDBUS_POLICY_OWN,
            U2 as u64,
        )],
    )
    .unwrap();
    let r = with_user(&bus, U1, |c| {
        vec![
            c.acquire("org.pub.svc", 0).map(|_| ()),
            c.acquire("org.pub.a.b", 0).map(|_| ()),
            c.acquire("org.other.x", 0).map(|_| ()),
            c.acquire("org.only.u1", 0).map(|_| ()),
            c.acquire("org.only.group", 0).map(|_| ()),
        ]
    });
    assert_eq!(
        r,
        [
            Ok(()),
            Err(Errno::PERM),
            Err(Errno::PERM),
            Ok(()),
            Err(Errno::PERM)
        ],
        "wildcards match one more element"
    );
    let r = with_user(&bus, U2, |c| {
        (
            c.acquire("org.only.u1", 0).map(|_| ()),
            c.acquire("org.only.group", 0).map(|_| ()),
        )
    });
    assert_eq!(r, (Err(Errno::PERM), Ok(())), "group matches the egid");
}

#[test]
fn holder_policy_lives_with_the_holder() {
    let bus = Bus::new();
    let h = holder(
        &bus,
        "org.gone.x",
        &[access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_OWN, 0)],
    )
    .unwrap();
    assert!(with_user(&bus, U1, |c| c.acquire("org.gone.x", 0)).is_ok());
    // a second holder of the same name is refused
    assert_eq!(
        holder(
            &bus,
            "org.gone.x",
            &[access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_SEE, 0)]
        )
        .err(),
        Some(Errno::EXIST)
    );
    drop(h);
    assert_eq!(
        with_user(&bus, U1, |c| c.acquire("org.gone.x", 0)),
        Err(Errno::PERM)
    );
    // an exact name and a wildcard of the same prefix may coexist
    let _a = holder(&bus, "org.gone.x", &[]).unwrap();
    let _b = holder(&bus, "org.gone.*", &[]).unwrap();
}

#[test]
fn holder_policy_rules() {
    let bus = Bus::new();
    assert_eq!(
        holder(&bus, "org.bad.x", &[access(0, KDBUS_POLICY_OWN, 0)]).err(),
        Some(Errno::INVAL),
        "access type"
    );
    assert_eq!(
        holder(
            &bus,
            "org.bad.x",
            &[access(KDBUS_POLICY_ACCESS_WORLD, 3, 0)]
        )
        .err(),
        Some(Errno::INVAL),
        "access level"
    );
    assert_eq!(
        holder(
            &bus,
            "org.bad.x",
            &[access(KDBUS_POLICY_ACCESS_USER, KDBUS_POLICY_OWN, u64::MAX)]
        )
        .err(),
        Some(Errno::INVAL),
        "unmappable id"
    );
}

#[test]
fn talk_between_users() {
    let bus = Bus::new();
    let root = bus.conn();
    let rid = root.id;
    // another user may not talk to root's connection
    assert_eq!(
        with_user(&bus, U1, move |c| c.send(&MsgBuilder::new(rid))),
        Err(Errno::PERM)
    );
    // the same user may; owners may talk to anyone
    let ep = bus.endpoint();
    let (same, uid_conn) = as_user(U1, U1, move || {
        let a = Hello::new().connect(&ep).unwrap();
        let b = Hello::new().connect(&ep).unwrap();
        (a.send(&MsgBuilder::new(b.id)), b)
    });
    assert_eq!(same, Ok(()));
    root.send(&MsgBuilder::new(uid_conn.id)).unwrap();

    // TALK on a name of root's connection opens it
    root.acquire("org.talk.svc", 0).unwrap();
    let _h = holder(
        &bus,
        "org.talk.svc",
        &[access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_TALK, 0)],
    )
    .unwrap();
    let r = with_user(&bus, U1, move |c| {
        (
            c.send(&MsgBuilder::to_name("org.talk.svc")),
            c.send(&MsgBuilder::new(rid)),
            c.acquire("org.talk.svc", KDBUS_NAME_QUEUE).map(|_| ()),
        )
    });
    assert_eq!(r, (Ok(()), Ok(()), Err(Errno::PERM)), "TALK is not OWN");
    assert_eq!(root.drain().len(), 2);
}

#[test]
fn broadcasts_need_talk_from_the_receiver_to_the_sender() {
    let bus = Bus::new();
    let root = bus.conn();
    root.match_all();
    let ep = bus.endpoint();
    let rid = root.id;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        as_user(U1, U1, move || {
            let c = Hello::new().connect(&ep).unwrap();
            c.match_add(1, 0, &[kdbus_abi_tests::raw::item_u64(KDBUS_ITEM_ID, rid)])
                .unwrap();
            c.send(&MsgBuilder::signal(
                KDBUS_DST_ID_BROADCAST,
                BLOOM_SIZE as usize,
            ))
            .unwrap();
            ready_tx.send(()).unwrap();
            sent_rx.recv().unwrap();
            c.drain().len()
        })
    });
    ready_rx.recv().unwrap();
    root.send(&MsgBuilder::signal(
        KDBUS_DST_ID_BROADCAST,
        BLOOM_SIZE as usize,
    ))
    .unwrap();
    sent_tx.send(()).unwrap();
    assert_eq!(t.join().unwrap(), 0, "the other user may not talk to root");
    // root, an owner, may talk to anyone: it gets the other user's signal
    // (and its own one, it matches everything)
    let from: Vec<u64> = root
        .drain()
        .iter()
        .map(|m| m.hdr.src_id)
        .filter(|&s| s != 0 && s != rid)
        .collect();
    assert_eq!(from.len(), 1);
}

#[test]
fn activator_policy() {
    let bus = Bus::new();
    let act = Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR)
        .name("org.act.svc")
        .access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_TALK, 0)
        .access(KDBUS_POLICY_ACCESS_USER, KDBUS_POLICY_OWN, U2 as u64)
        .connect(&bus.endpoint())
        .unwrap();
    assert_eq!(
        with_user(&bus, U1, |c| c
            .send(&MsgBuilder::to_name("org.act.svc").vec(b"wake"))),
        Ok(())
    );
    assert_eq!(act.recv_msg().payload(), b"wake");
    assert_eq!(
        with_user(&bus, U1, |c| c.acquire("org.act.svc", 0)),
        Err(Errno::PERM)
    );
    let r = with_user(&bus, U2, |c| c.acquire("org.act.svc", 0));
    assert!(r.is_ok());
    // at most one name per activator
    assert_eq!(
        Hello::new()
            .flags(KDBUS_HELLO_ACTIVATOR)
            .name("org.act.two")
            .item(item_str(KDBUS_ITEM_NAME, "org.act.three"))
            .connect(&bus.endpoint())
            .err(),
        Some(Errno::INVAL),
        "a second NAME item is a duplicate"
    );
}

fn make_endpoint(bus: &Bus, suffix: &str, flags: u64) -> Result<OwnedFd, Errno> {
    let fd = open_node(&bus.endpoint())?;
    let name = format!("{}-{suffix}", rustix::process::geteuid().as_raw());
    let mut c = cmd(
        &kdbus_cmd {
            flags,
            ..Default::default()
        },
        &[item_str(KDBUS_ITEM_MAKE_NAME, &name)],
    );
    raw::ioctl(fd.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut c)?;
    Ok(fd)
}

fn ep_update(ep: &OwnedFd, items: &[Vec<u8>]) -> Result<(), Errno> {
    let mut c = cmd(&kdbus_cmd::default(), items);
    raw::ioctl(ep.as_fd(), KDBUS_CMD_ENDPOINT_UPDATE, &mut c)
}

#[test]
fn custom_endpoints() {
    let bus = Bus::new();
    let ep = make_endpoint(&bus, "ep", KDBUS_MAKE_ACCESS_WORLD).unwrap();
    let path = bus
        .dir
        .join(format!("{}-ep", rustix::process::geteuid().as_raw()));
    let meta = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);

    // names need the uid prefix, and are unique per bus
    assert_eq!(make_endpoint(&bus, "ep", 0).err(), Some(Errno::EXIST));
    let fd = open_node(&bus.endpoint()).unwrap();
    let mut c = cmd(
        &kdbus_cmd::default(),
        &[item_str(KDBUS_ITEM_MAKE_NAME, "ep2")],
    );
    assert_eq!(
        raw::ioctl(fd.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut c),
        Err(Errno::INVAL)
    );

    // the bus' default endpoint is unchanged; a custom one starts with
    // an empty policy: nothing is visible, nothing can be owned
    let root = bus.conn();
    root.acquire("org.ep.visible", 0).unwrap();
    root.acquire("org.ep.hidden", 0).unwrap();
    let inside = Hello::new().connect(&path).unwrap();
    assert!(inside.list(KDBUS_LIST_NAMES).unwrap().is_empty());
    assert_eq!(
        errno(inside.conn_info(0, Some("org.ep.visible"), 0)),
        Errno::SRCH
    );
    assert_eq!(errno(inside.conn_info(root.id, None, 0)), Errno::NXIO);
    assert_eq!(inside.acquire("org.ep.mine", 0), Err(Errno::PERM));
    assert_eq!(inside.send(&MsgBuilder::new(root.id)), Err(Errno::PERM));

    ep_update(
        &ep,
        &[
            item_str(KDBUS_ITEM_NAME, "org.ep.visible"),
            access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_TALK, 0),
            item_str(KDBUS_ITEM_NAME, "org.ep.*"),
            access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_SEE, 0),
        ],
    )
    .unwrap();
    let listed: Vec<String> = inside
        .list(KDBUS_LIST_NAMES)
        .unwrap()
        .iter()
        .map(|i| i.item(KDBUS_ITEM_OWNED_NAME).unwrap().name().1)
        .collect();
    assert_eq!(listed.len(), 2, "wildcard SEE covers both: {listed:?}");
    inside.conn_info(root.id, None, 0).unwrap();
    inside.send(&MsgBuilder::to_name("org.ep.visible")).unwrap();

    // an update replaces the whole policy
    ep_update(
        &ep,
        &[
            item_str(KDBUS_ITEM_NAME, "org.ep.visible"),
            access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_SEE, 0),
        ],
    )
    .unwrap();
    let listed = inside.list(KDBUS_LIST_NAMES).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        inside.send(&MsgBuilder::to_name("org.ep.visible")),
        Err(Errno::PERM)
    );

    // connections on custom endpoints are never owners
    assert_eq!(
        Hello::new().flags(KDBUS_HELLO_MONITOR).connect(&path).err(),
        Some(Errno::OPNOTSUPP)
    );
    assert_eq!(
        Hello::new()
            .flags(KDBUS_HELLO_ACTIVATOR)
            .name("org.ep.act")
            .connect(&path)
            .err(),
        Some(Errno::PERM)
    );

    // closing the owner removes the endpoint and its connections
    drop(ep);
    assert!(!path.exists());
    assert_eq!(errno(inside.list(KDBUS_LIST_NAMES)), Errno::CONNRESET);
}

#[test]
fn endpoint_notifications_are_filtered_by_see() {
    let bus = Bus::new();
    let ep = make_endpoint(&bus, "see", 0).unwrap();
    ep_update(
        &ep,
        &[
            item_str(KDBUS_ITEM_NAME, "org.see.yes"),
            access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_SEE, 0),
        ],
    )
    .unwrap();
    let path = bus
        .dir
        .join(format!("{}-see", rustix::process::geteuid().as_raw()));
    let inside = Hello::new().connect(&path).unwrap();
    inside.match_all();
    let root = bus.conn();
    root.acquire("org.see.no", 0).unwrap();
    root.acquire("org.see.yes", 0).unwrap();
    let kinds: Vec<(u64, String)> = inside
        .drain()
        .iter()
        .filter(|m| m.items[0].ty == KDBUS_ITEM_NAME_ADD)
        .map(|m| (m.items[0].ty, m.items[0].name_change().4))
        .collect();
    assert_eq!(kinds, [(KDBUS_ITEM_NAME_ADD, "org.see.yes".to_owned())]);
}

#[test]
fn endpoint_rules() {
    let bus = Bus::new();
    // only owners make endpoints
    let e = bus.endpoint();
    assert_eq!(
        as_user(U1, U1, move || {
            let fd = open_node(&e).unwrap();
            let name = format!("{U1}-x");
            let mut c = cmd(
                &kdbus_cmd::default(),
                &[item_str(KDBUS_ITEM_MAKE_NAME, &name)],
            );
            raw::ioctl(fd.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut c)
        }),
        Err(Errno::PERM)
    );
    let ep = make_endpoint(&bus, "rules", 0).unwrap();
    assert_eq!(
        ep_update(
            &ep,
            &[access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_SEE, 0)]
        ),
        Err(Errno::INVAL),
        "access before a name"
    );
    assert_eq!(
        ep_update(
            &ep,
            &[
                item_str(KDBUS_ITEM_NAME, "org.r.x"),
                item_str(KDBUS_ITEM_NAME, "org.r.x")
            ]
        ),
        Err(Errno::EXIST)
    );
    assert_eq!(
        ep_update(&ep, &[item_str(KDBUS_ITEM_NAME, "bad")]),
        Err(Errno::INVAL)
    );
    ep_update(&ep, &[]).unwrap();
    // ENDPOINT_MAKE does not take policy items
    let fd = open_node(&bus.endpoint()).unwrap();
    let name = format!("{}-p", rustix::process::geteuid().as_raw());
    let mut c = cmd(
        &kdbus_cmd::default(),
        &[
            item_str(KDBUS_ITEM_MAKE_NAME, &name),
            item_str(KDBUS_ITEM_NAME, "org.r.x"),
        ],
    );
    assert_eq!(
        raw::ioctl(fd.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut c),
        Err(Errno::INVAL)
    );
}
