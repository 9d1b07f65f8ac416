//! Well-known names (spec §10, master semantics): validity, ACQUIRE with
//! its flags and return flags, queueing and replacement, RELEASE, LIST,
//! sending to a name and the name notifications.

use kdbus::abi::*;
use kdbus::item::Item;
use kdbus::{
    Connection, Destination, Errno, HelloBuilder, HelloFlags, ListFlags, MessageBuilder, MsgFlags,
    NameFlags, Notification,
};
use kdbus_abi_tests::fixture::*;

const PRIMARY_ACQUIRED: NameFlags = NameFlags::PRIMARY.union(NameFlags::ACQUIRED);
const NONE: NameFlags = NameFlags::empty();

/// (notification item type, old owner id, new owner id, name) of every
/// name notification queued on `c`.
fn name_changes(c: &Connection) -> Vec<(u64, u64, u64, String)> {
    drain(c)
        .iter()
        .filter_map(|m| match m.notification()? {
            Notification::NameAdd { name, new_owner } => {
                Some((KDBUS_ITEM_NAME_ADD, 0, new_owner.id, name))
            }
            Notification::NameChange {
                name,
                old_owner,
                new_owner,
            } => Some((KDBUS_ITEM_NAME_CHANGE, old_owner.id, new_owner.id, name)),
            Notification::NameRemove { name, old_owner } => {
                Some((KDBUS_ITEM_NAME_REMOVE, old_owner.id, 0, name))
            }
            _ => None,
        })
        .collect()
}

fn ids(c: &Connection, flags: ListFlags) -> Vec<u64> {
    c.list(flags).unwrap().iter().map(|i| i.id).collect()
}

#[test]
fn name_validity() {
    let bus = TestBus::new();
    let c = bus.conn();
    let long_ok = format!("a.{}", "b".repeat(253));
    let long_bad = format!("a.{}", "b".repeat(254));
    for good in [
        "org.a",
        "a.b-c",
        "_a.b_",
        "a.b1.c2",
        "A.B",
        long_ok.as_str(),
    ] {
        c.acquire_name(good, NONE)
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in [
        "a",
        ".a",
        "a.",
        "a..b",
        "1a.b",
        "a.1b",
        "a.b/c",
        "a.b*",
        "a.*",
        "a.b c",
        "ä.b",
        long_bad.as_str(),
    ] {
        assert_eq!(errno(c.acquire_name(bad, NONE)), Errno::INVAL, "{bad}");
    }
    assert_eq!(
        errno(c.release_name("a")),
        Errno::SRCH,
        "release does not validate"
    );
}

#[test]
fn acquire_and_reacquire() {
    let bus = TestBus::new();
    let a = bus.conn();
    assert_eq!(a.acquire_name("org.x.a", NONE).unwrap(), PRIMARY_ACQUIRED);
    // already primary: flags are updated, nothing is acquired
    assert_eq!(
        a.acquire_name("org.x.a", NameFlags::ALLOW_REPLACEMENT)
            .unwrap(),
        NameFlags::PRIMARY | NameFlags::ALLOW_REPLACEMENT
    );
    let l = a.list(ListFlags::NAMES).unwrap();
    let name = l[0].name.as_ref().expect("OWNED_NAME");
    assert_eq!(name.name, "org.x.a");
    assert_eq!(
        name.flags,
        NameFlags::PRIMARY | NameFlags::ALLOW_REPLACEMENT
    );
    assert_eq!(a.acquire_name("org.x.a", NONE).unwrap(), NameFlags::PRIMARY);
}

#[test]
fn taken_names_and_queueing() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    a.acquire_name("org.q.n", NONE).unwrap();
    assert_eq!(errno(b.acquire_name("org.q.n", NONE)), Errno::EXIST);
    assert_eq!(
        errno(b.acquire_name("org.q.n", NameFlags::REPLACE_EXISTING)),
        Errno::EXIST,
        "the primary does not allow replacement"
    );
    let queued = NameFlags::QUEUE | NameFlags::IN_QUEUE;
    assert_eq!(
        b.acquire_name("org.q.n", NameFlags::QUEUE).unwrap(),
        queued | NameFlags::ACQUIRED
    );
    assert_eq!(
        b.acquire_name("org.q.n", NameFlags::QUEUE).unwrap(),
        queued,
        "already queued: not acquired again"
    );
    assert_eq!(
        c.acquire_name("org.q.n", NameFlags::QUEUE).unwrap(),
        queued | NameFlags::ACQUIRED
    );
    // queued callers are listed with LIST_QUEUED only
    let q = ids(&a, ListFlags::QUEUED);
    assert_eq!(q.len(), 2);
    assert!(q.contains(&b.id()) && q.contains(&c.id()));
    assert_eq!(ids(&a, ListFlags::NAMES), [a.id()]);

    // queued without QUEUE: leave the queue
    assert_eq!(b.acquire_name("org.q.n", NONE).unwrap(), NONE);
    assert_eq!(ids(&a, ListFlags::QUEUED), [c.id()]);

    // the primary leaves: the next in the queue takes over
    a.release_name("org.q.n").unwrap();
    let l = c.list(ListFlags::NAMES).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id, c.id());
    assert_eq!(
        l[0].name.as_ref().unwrap().flags,
        NameFlags::QUEUE | NameFlags::PRIMARY
    );
}

#[test]
fn replacement() {
    let bus = TestBus::new();
    let watcher = bus.conn();
    match_all(&watcher);
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    drop(drain(&watcher));

    a.acquire_name("org.r.n", NameFlags::ALLOW_REPLACEMENT)
        .unwrap();
    assert_eq!(
        b.acquire_name("org.r.n", NameFlags::REPLACE_EXISTING)
            .unwrap(),
        PRIMARY_ACQUIRED
    );
    assert_eq!(
        name_changes(&watcher),
        [
            (KDBUS_ITEM_NAME_ADD, 0, a.id(), "org.r.n".to_owned()),
            (KDBUS_ITEM_NAME_CHANGE, a.id(), b.id(), "org.r.n".to_owned()),
        ]
    );
    // a did not ask to be queued: it lost the name
    assert!(a.list(ListFlags::QUEUED).unwrap().is_empty());
    assert_eq!(errno(a.release_name("org.r.n")), Errno::ADDRINUSE);

    // an old primary that asked for QUEUE stays queued
    b.acquire_name("org.r.n", NameFlags::ALLOW_REPLACEMENT | NameFlags::QUEUE)
        .unwrap();
    assert_eq!(
        c.acquire_name("org.r.n", NameFlags::REPLACE_EXISTING)
            .unwrap(),
        PRIMARY_ACQUIRED
    );
    let q = c.list(ListFlags::QUEUED).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].id, b.id());
    assert_eq!(
        q[0].name.as_ref().unwrap().flags,
        NameFlags::ALLOW_REPLACEMENT | NameFlags::QUEUE | NameFlags::IN_QUEUE
    );
    // c leaves: b is next
    c.release_name("org.r.n").unwrap();
    assert_eq!(
        name_changes(&watcher),
        [
            (KDBUS_ITEM_NAME_CHANGE, b.id(), c.id(), "org.r.n".to_owned()),
            (KDBUS_ITEM_NAME_CHANGE, c.id(), b.id(), "org.r.n".to_owned()),
        ]
    );
}

#[test]
fn replacement_skips_the_queue() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    a.acquire_name("org.s.n", NameFlags::ALLOW_REPLACEMENT)
        .unwrap();
    b.acquire_name("org.s.n", NameFlags::QUEUE).unwrap();
    // c jumps ahead of the queued b
    assert_eq!(
        c.acquire_name("org.s.n", NameFlags::REPLACE_EXISTING | NameFlags::QUEUE)
            .unwrap(),
        NameFlags::QUEUE | PRIMARY_ACQUIRED
    );
    assert_eq!(
        b.acquire_name("org.s.n", NameFlags::QUEUE).unwrap(),
        NameFlags::QUEUE | NameFlags::IN_QUEUE
    );
}

#[test]
fn release_rules() {
    let bus = TestBus::new();
    let watcher = bus.conn();
    match_all(&watcher);
    let a = bus.conn();
    let b = bus.conn();
    drop(drain(&watcher));
    assert_eq!(errno(a.release_name("org.none.n")), Errno::SRCH);
    a.acquire_name("org.t.n", NONE).unwrap();
    assert_eq!(errno(b.release_name("org.t.n")), Errno::ADDRINUSE);
    b.acquire_name("org.t.n", NameFlags::QUEUE).unwrap();
    // a queued owner leaves silently
    b.release_name("org.t.n").unwrap();
    a.release_name("org.t.n").unwrap();
    assert_eq!(errno(a.release_name("org.t.n")), Errno::SRCH);
    assert_eq!(
        name_changes(&watcher),
        [
            (KDBUS_ITEM_NAME_ADD, 0, a.id(), "org.t.n".to_owned()),
            (KDBUS_ITEM_NAME_REMOVE, a.id(), 0, "org.t.n".to_owned()),
        ]
    );
}

#[test]
fn disconnect_releases_all_names() {
    let bus = TestBus::new();
    let watcher = bus.conn();
    match_all(&watcher);
    let a = bus.conn();
    let b = bus.conn();
    a.acquire_name("org.u.one", NONE).unwrap();
    a.acquire_name("org.u.two", NONE).unwrap();
    b.acquire_name("org.u.two", NameFlags::QUEUE).unwrap();
    let (aid, bid) = (a.id(), b.id());
    drop(drain(&watcher));
    drop(a);
    let mut changes = name_changes(&watcher);
    changes.sort();
    assert_eq!(
        changes,
        [
            (KDBUS_ITEM_NAME_REMOVE, aid, 0, "org.u.one".to_owned()),
            (KDBUS_ITEM_NAME_CHANGE, aid, bid, "org.u.two".to_owned()),
        ]
    );
    assert_eq!(b.list(ListFlags::NAMES).unwrap()[0].id, bid);
}

#[test]
fn name_notification_payloads() {
    let bus = TestBus::new();
    let watcher = bus.conn();
    match_all(&watcher);
    let a = bus.conn();
    drop(drain(&watcher));
    a.acquire_name("org.v.n", NameFlags::ALLOW_REPLACEMENT)
        .unwrap();
    let m = recv_msg(&watcher);
    assert_eq!(m.flags(), MsgFlags::SIGNAL);
    assert_eq!(m.dst_id(), KDBUS_DST_ID_BROADCAST);
    assert_eq!(item_types(&m), [KDBUS_ITEM_NAME_ADD, KDBUS_ITEM_TIMESTAMP]);
    let Item::NameAdd(n) = &m.items()[0] else {
        panic!("not NAME_ADD: {:?}", m.items()[0])
    };
    assert_eq!((n.old_id.id, n.old_id.flags), (0, 0));
    assert_eq!(
        (n.new_id.id, n.new_id.flags),
        (a.id(), KDBUS_NAME_ALLOW_REPLACEMENT)
    );
    assert_eq!(n.name, Some("org.v.n"));
}

#[test]
fn sending_to_a_name() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    assert_eq!(
        errno(a.send(&MessageBuilder::to_name("org.w.n"))),
        Errno::SRCH
    );
    b.acquire_name("org.w.n", NONE).unwrap();
    a.send(&MessageBuilder::to_name("org.w.n").payload(b"hi"))
        .unwrap();
    let m = recv_msg(&b);
    assert_eq!(m.payload_to_vec(), b"hi");
    assert_eq!(m.dst_name(), Some("org.w.n"));
    assert_eq!(m.dst_id(), KDBUS_DST_ID_NAME);
    drop(m);
    // a destination id must be the current owner
    let owned_by = |id| {
        MessageBuilder::new(Destination::NameOwnedBy {
            name: "org.w.n".into(),
            id,
        })
    };
    assert_eq!(errno(a.send(&owned_by(c.id()))), Errno::REMCHG);
    a.send(&owned_by(b.id())).unwrap();
    assert_eq!(recv_msg(&b).dst_id(), b.id());
    // queued owners get nothing
    c.acquire_name("org.w.n", NameFlags::QUEUE).unwrap();
    a.send(&MessageBuilder::to_name("org.w.n")).unwrap();
    drop(recv_msg(&b));
    assert!(c.recv().unwrap().message.is_none(), "EAGAIN");
}

#[test]
fn at_most_256_names_per_connection() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    b.acquire_name("org.z.queued", NONE).unwrap();
    a.acquire_name("org.z.queued", NameFlags::QUEUE).unwrap();
    for i in 0..255 {
        a.acquire_name(&format!("org.z.n{i}"), NONE).unwrap();
    }
    assert_eq!(
        errno(a.acquire_name("org.z.more", NONE)),
        Errno::TOOBIG,
        "queued names count"
    );
    // re-acquiring an owned name needs no new record
    a.acquire_name("org.z.n0", NameFlags::ALLOW_REPLACEMENT)
        .unwrap();
    a.release_name("org.z.n0").unwrap();
    a.acquire_name("org.z.more", NONE).unwrap();
}

#[test]
fn list_flags_select_records() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    let act = bus.connect(HelloBuilder::new().activator("org.l.act", &[]));
    a.acquire_name("org.l.one", NONE).unwrap();
    a.acquire_name("org.l.two", NONE).unwrap();
    b.acquire_name("org.l.one", NameFlags::QUEUE).unwrap();

    let names = |flags| {
        let mut v: Vec<(u64, String)> = c
            .list(flags)
            .unwrap()
            .into_iter()
            .map(|i| (i.id, i.name.map(|n| n.name).unwrap_or_default()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(ListFlags::NAMES),
        [
            (a.id(), "org.l.one".to_owned()),
            (a.id(), "org.l.two".to_owned())
        ]
    );
    assert_eq!(names(ListFlags::QUEUED), [(b.id(), "org.l.one".to_owned())]);
    assert_eq!(
        names(ListFlags::ACTIVATORS),
        [(act.id(), "org.l.act".to_owned())]
    );
    // UNIQUE adds a record for every connection without a listed name
    let mut all = names(ListFlags::UNIQUE | ListFlags::NAMES);
    all.retain(|(_, n)| n.is_empty());
    let mut no_name: Vec<u64> = all.iter().map(|(i, _)| *i).collect();
    no_name.sort_unstable();
    assert_eq!(no_name, [b.id(), c.id(), act.id()]);

    let rec = c.list(ListFlags::ACTIVATORS).unwrap();
    assert_eq!(rec[0].flags, HelloFlags::ACTIVATOR);
    assert_eq!(
        rec[0].name.as_ref().unwrap().flags,
        NameFlags::ACTIVATOR | NameFlags::PRIMARY
    );
}

#[test]
fn only_ordinary_connections_own_names() {
    let bus = TestBus::new();
    let act = bus.connect(HelloBuilder::new().activator("org.o.act", &[]));
    let mon = bus.connect(HelloBuilder::new().monitor());
    for c in [&act, &mon] {
        assert_eq!(errno(c.acquire_name("org.o.x", NONE)), Errno::OPNOTSUPP);
        assert_eq!(errno(c.release_name("org.o.act")), Errno::OPNOTSUPP);
    }
}

#[test]
fn acquire_flags_are_checked() {
    let bus = TestBus::new();
    let a = bus.conn();
    for bad in [
        KDBUS_NAME_IN_QUEUE,
        KDBUS_NAME_ACTIVATOR,
        KDBUS_NAME_PRIMARY,
        KDBUS_NAME_ACQUIRED,
    ] {
        assert_eq!(
            errno(a.acquire_name("org.f.n", NameFlags::from_bits_retain(bad))),
            Errno::INVAL,
            "flag {bad:#x}"
        );
    }
}
