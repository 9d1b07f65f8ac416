//! Well-known names (spec §10, master semantics): validity, ACQUIRE with
//! its flags and return flags, queueing and replacement, RELEASE, LIST,
//! sending to a name and the name notifications.

use kdbus::abi::*;
use kdbus_abi_tests::*;
use rustix::io::Errno;

const PRIMARY_ACQUIRED: u64 = KDBUS_NAME_PRIMARY | KDBUS_NAME_ACQUIRED;

fn name_changes(c: &Conn) -> Vec<(u64, u64, u64, String)> {
    c.drain()
        .iter()
        .filter(|m| m.hdr.src_id == 0)
        .filter(|m| {
            matches!(
                m.items[0].ty,
                KDBUS_ITEM_NAME_ADD | KDBUS_ITEM_NAME_CHANGE | KDBUS_ITEM_NAME_REMOVE
            )
        })
        .map(|m| {
            let (old, _, new, _, name) = m.items[0].name_change();
            (m.items[0].ty, old, new, name)
        })
        .collect()
}

#[test]
fn name_validity() {
    let bus = Bus::new();
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
        c.acquire(good, 0).unwrap_or_else(|e| panic!("{good}: {e}"));
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
        assert_eq!(c.acquire(bad, 0), Err(Errno::INVAL), "{bad}");
    }
    assert_eq!(
        c.release("a"),
        Err(Errno::SRCH),
        "release does not validate"
    );
}

#[test]
fn acquire_and_reacquire() {
    let bus = Bus::new();
    let a = bus.conn();
    assert_eq!(a.acquire("org.x.a", 0), Ok(PRIMARY_ACQUIRED));
    // already primary: flags are updated, nothing is acquired
    assert_eq!(
        a.acquire("org.x.a", KDBUS_NAME_ALLOW_REPLACEMENT),
        Ok(KDBUS_NAME_PRIMARY | KDBUS_NAME_ALLOW_REPLACEMENT)
    );
    let l = a.list(KDBUS_LIST_NAMES).unwrap();
    let (flags, name) = l[0].item(KDBUS_ITEM_OWNED_NAME).unwrap().name();
    assert_eq!(name, "org.x.a");
    assert_eq!(flags, KDBUS_NAME_PRIMARY | KDBUS_NAME_ALLOW_REPLACEMENT);
    assert_eq!(a.acquire("org.x.a", 0), Ok(KDBUS_NAME_PRIMARY));
}

#[test]
fn taken_names_and_queueing() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    a.acquire("org.q.n", 0).unwrap();
    assert_eq!(b.acquire("org.q.n", 0), Err(Errno::EXIST));
    assert_eq!(
        b.acquire("org.q.n", KDBUS_NAME_REPLACE_EXISTING),
        Err(Errno::EXIST),
        "the primary does not allow replacement"
    );
    assert_eq!(
        b.acquire("org.q.n", KDBUS_NAME_QUEUE),
        Ok(KDBUS_NAME_QUEUE | KDBUS_NAME_IN_QUEUE | KDBUS_NAME_ACQUIRED)
    );
    assert_eq!(
        b.acquire("org.q.n", KDBUS_NAME_QUEUE),
        Ok(KDBUS_NAME_QUEUE | KDBUS_NAME_IN_QUEUE),
        "already queued: not acquired again"
    );
    assert_eq!(
        c.acquire("org.q.n", KDBUS_NAME_QUEUE),
        Ok(KDBUS_NAME_QUEUE | KDBUS_NAME_IN_QUEUE | KDBUS_NAME_ACQUIRED)
    );
    // queued callers are listed with LIST_QUEUED only
    let queued: Vec<u64> = a
        .list(KDBUS_LIST_QUEUED)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(queued.len(), 2);
    assert!(queued.contains(&b.id) && queued.contains(&c.id));
    let named: Vec<u64> = a
        .list(KDBUS_LIST_NAMES)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(named, [a.id]);

    // queued without QUEUE: leave the queue
    assert_eq!(b.acquire("org.q.n", 0), Ok(0));
    let queued: Vec<u64> = a
        .list(KDBUS_LIST_QUEUED)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(queued, [c.id]);

    // the primary leaves: the next in the queue takes over
    a.release("org.q.n").unwrap();
    let l = c.list(KDBUS_LIST_NAMES).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id, c.id);
    assert_eq!(
        l[0].item(KDBUS_ITEM_OWNED_NAME).unwrap().name().0,
        KDBUS_NAME_QUEUE | KDBUS_NAME_PRIMARY
    );
}

#[test]
fn replacement() {
    let bus = Bus::new();
    let watcher = bus.conn();
    watcher.match_all();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    watcher.drain();

    a.acquire("org.r.n", KDBUS_NAME_ALLOW_REPLACEMENT).unwrap();
    assert_eq!(
        b.acquire("org.r.n", KDBUS_NAME_REPLACE_EXISTING),
        Ok(PRIMARY_ACQUIRED)
    );
    assert_eq!(
        name_changes(&watcher),
        [
            (KDBUS_ITEM_NAME_ADD, 0, a.id, "org.r.n".to_owned()),
            (KDBUS_ITEM_NAME_CHANGE, a.id, b.id, "org.r.n".to_owned()),
        ]
    );
    // a did not ask to be queued: it lost the name
    assert!(a.list(KDBUS_LIST_QUEUED).unwrap().is_empty());
    assert_eq!(a.release("org.r.n"), Err(Errno::ADDRINUSE));

    // an old primary that asked for QUEUE stays queued
    b.acquire("org.r.n", KDBUS_NAME_ALLOW_REPLACEMENT | KDBUS_NAME_QUEUE)
        .unwrap();
    assert_eq!(
        c.acquire("org.r.n", KDBUS_NAME_REPLACE_EXISTING),
        Ok(PRIMARY_ACQUIRED)
    );
    let q = c.list(KDBUS_LIST_QUEUED).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].id, b.id);
    let (flags, _) = q[0].item(KDBUS_ITEM_OWNED_NAME).unwrap().name();
    assert_eq!(
        flags,
        KDBUS_NAME_ALLOW_REPLACEMENT | KDBUS_NAME_QUEUE | KDBUS_NAME_IN_QUEUE
    );
    // c leaves: b is next
    c.release("org.r.n").unwrap();
    assert_eq!(
        name_changes(&watcher),
        [
            (KDBUS_ITEM_NAME_CHANGE, b.id, c.id, "org.r.n".to_owned()),
            (KDBUS_ITEM_NAME_CHANGE, c.id, b.id, "org.r.n".to_owned()),
        ]
    );
}

#[test]
fn replacement_skips_the_queue() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    a.acquire("org.s.n", KDBUS_NAME_ALLOW_REPLACEMENT).unwrap();
    b.acquire("org.s.n", KDBUS_NAME_QUEUE).unwrap();
    // c jumps ahead of the queued b
    assert_eq!(
        c.acquire("org.s.n", KDBUS_NAME_REPLACE_EXISTING | KDBUS_NAME_QUEUE),
        Ok(KDBUS_NAME_QUEUE | PRIMARY_ACQUIRED)
    );
    assert_eq!(
        b.acquire("org.s.n", KDBUS_NAME_QUEUE),
        Ok(KDBUS_NAME_QUEUE | KDBUS_NAME_IN_QUEUE)
    );
}

#[test]
fn release_rules() {
    let bus = Bus::new();
    let watcher = bus.conn();
    watcher.match_all();
    let a = bus.conn();
    let b = bus.conn();
    watcher.drain();
    assert_eq!(a.release("org.none.n"), Err(Errno::SRCH));
    a.acquire("org.t.n", 0).unwrap();
    assert_eq!(b.release("org.t.n"), Err(Errno::ADDRINUSE));
    b.acquire("org.t.n", KDBUS_NAME_QUEUE).unwrap();
    // a queued owner leaves silently
    b.release("org.t.n").unwrap();
    a.release("org.t.n").unwrap();
    assert_eq!(a.release("org.t.n"), Err(Errno::SRCH));
    assert_eq!(
        name_changes(&watcher),
        [
            (KDBUS_ITEM_NAME_ADD, 0, a.id, "org.t.n".to_owned()),
            (KDBUS_ITEM_NAME_REMOVE, a.id, 0, "org.t.n".to_owned()),
        ]
    );
}

#[test]
fn disconnect_releases_all_names() {
    let bus = Bus::new();
    let watcher = bus.conn();
    watcher.match_all();
    let a = bus.conn();
    let b = bus.conn();
    a.acquire("org.u.one", 0).unwrap();
    a.acquire("org.u.two", 0).unwrap();
    b.acquire("org.u.two", KDBUS_NAME_QUEUE).unwrap();
    let (aid, bid) = (a.id, b.id);
    watcher.drain();
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
    assert_eq!(b.list(KDBUS_LIST_NAMES).unwrap()[0].id, bid);
}

#[test]
fn name_notification_payloads() {
    let bus = Bus::new();
    let watcher = bus.conn();
    watcher.match_all();
    let a = bus.conn();
    watcher.drain();
    a.acquire("org.v.n", KDBUS_NAME_ALLOW_REPLACEMENT).unwrap();
    let m = watcher.recv_msg();
    assert_eq!(m.hdr.flags, KDBUS_MSG_SIGNAL);
    assert_eq!(m.hdr.dst_id, KDBUS_DST_ID_BROADCAST);
    assert_eq!(m.items[0].ty, KDBUS_ITEM_NAME_ADD);
    let (old, old_flags, new, new_flags, name) = m.items[0].name_change();
    assert_eq!((old, old_flags), (0, 0));
    assert_eq!((new, new_flags), (a.id, KDBUS_NAME_ALLOW_REPLACEMENT));
    assert_eq!(name, "org.v.n");
    assert_eq!(m.items[1].ty, KDBUS_ITEM_TIMESTAMP);
}

#[test]
fn sending_to_a_name() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    assert_eq!(a.send(&MsgBuilder::to_name("org.w.n")), Err(Errno::SRCH));
    b.acquire("org.w.n", 0).unwrap();
    a.send(&MsgBuilder::to_name("org.w.n").vec(b"hi")).unwrap();
    let m = b.recv_msg();
    assert_eq!(m.payload(), b"hi");
    assert_eq!(m.item(KDBUS_ITEM_DST_NAME).unwrap().str(), "org.w.n");
    assert_eq!(m.hdr.dst_id, KDBUS_DST_ID_NAME);
    // a destination id must be the current owner
    assert_eq!(
        a.send(&MsgBuilder::new(c.id).dst_name("org.w.n")),
        Err(Errno::REMCHG)
    );
    a.send(&MsgBuilder::new(b.id).dst_name("org.w.n")).unwrap();
    assert_eq!(b.recv_msg().hdr.dst_id, b.id);
    // queued owners get nothing
    c.acquire("org.w.n", KDBUS_NAME_QUEUE).unwrap();
    a.send(&MsgBuilder::to_name("org.w.n")).unwrap();
    b.recv_msg();
    assert_eq!(errno(c.recv()), Errno::AGAIN);
}

#[test]
fn at_most_256_names_per_connection() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    b.acquire("org.z.queued", 0).unwrap();
    a.acquire("org.z.queued", KDBUS_NAME_QUEUE).unwrap();
    for i in 0..255 {
        a.acquire(&format!("org.z.n{i}"), 0).unwrap();
    }
    assert_eq!(
        a.acquire("org.z.more", 0),
        Err(Errno::TOOBIG),
        "queued names count"
    );
    // re-acquiring an owned name needs no new record
    a.acquire("org.z.n0", KDBUS_NAME_ALLOW_REPLACEMENT).unwrap();
    a.release("org.z.n0").unwrap();
    a.acquire("org.z.more", 0).unwrap();
}

#[test]
fn list_flags_select_records() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let c = bus.conn();
    let act = Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR)
        .name("org.l.act")
        .connect(&bus.endpoint())
        .unwrap();
    a.acquire("org.l.one", 0).unwrap();
    a.acquire("org.l.two", 0).unwrap();
    b.acquire("org.l.one", KDBUS_NAME_QUEUE).unwrap();

    let names = |flags| {
        let mut v: Vec<(u64, String)> = c
            .list(flags)
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i.id,
                    i.item(KDBUS_ITEM_OWNED_NAME)
                        .map(|n| n.name().1)
                        .unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(KDBUS_LIST_NAMES),
        [
            (a.id, "org.l.one".to_owned()),
            (a.id, "org.l.two".to_owned())
        ]
    );
    assert_eq!(names(KDBUS_LIST_QUEUED), [(b.id, "org.l.one".to_owned())]);
    assert_eq!(
        names(KDBUS_LIST_ACTIVATORS),
        [(act.id, "org.l.act".to_owned())]
    );
    // UNIQUE adds a record for every connection without a listed name
    let mut all = names(KDBUS_LIST_UNIQUE | KDBUS_LIST_NAMES);
    all.retain(|(_, n)| n.is_empty());
    let mut ids: Vec<u64> = all.iter().map(|(i, _)| *i).collect();
    ids.sort_unstable();
    assert_eq!(ids, [b.id, c.id, act.id]);

    let rec = c.list(KDBUS_LIST_ACTIVATORS).unwrap();
    assert_eq!(rec[0].flags, KDBUS_HELLO_ACTIVATOR);
    let (flags, _) = rec[0].item(KDBUS_ITEM_OWNED_NAME).unwrap().name();
    assert_eq!(flags, KDBUS_NAME_ACTIVATOR | KDBUS_NAME_PRIMARY);
}

#[test]
fn only_ordinary_connections_own_names() {
    let bus = Bus::new();
    let act = Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR)
        .name("org.o.act")
        .connect(&bus.endpoint())
        .unwrap();
    let mon = Hello::new()
        .flags(KDBUS_HELLO_MONITOR)
        .connect(&bus.endpoint())
        .unwrap();
    for c in [&act, &mon] {
        assert_eq!(c.acquire("org.o.x", 0), Err(Errno::OPNOTSUPP));
        assert_eq!(c.release("org.o.act"), Err(Errno::OPNOTSUPP));
    }
}

#[test]
fn acquire_flags_are_checked() {
    let bus = Bus::new();
    let a = bus.conn();
    for bad in [
        KDBUS_NAME_IN_QUEUE,
        KDBUS_NAME_ACTIVATOR,
        KDBUS_NAME_PRIMARY,
        KDBUS_NAME_ACQUIRED,
    ] {
        assert_eq!(
            a.acquire("org.f.n", bad),
            Err(Errno::INVAL),
            "flag {bad:#x}"
        );
    }
}
