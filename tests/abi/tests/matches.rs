//! Match rules and broadcasts (spec §11): notification rules, bloom masks,
//! sender rules, MATCH_REPLACE, MATCH_REMOVE and the limit.

use kdbus::abi::*;
use kdbus_abi_tests::raw::{item, item_str, item_struct, item_u64};
use kdbus_abi_tests::*;
use rustix::io::Errno;

fn id_rule(ty: u64, id: u64) -> Vec<u8> {
    item_struct(ty, &kdbus_notify_id_change { id, flags: 0 })
}

fn name_rule(ty: u64, old: u64, new: u64, name: Option<&str>) -> Vec<u8> {
    let mut p = kdbus_abi_tests::raw::struct_bytes(&kdbus_notify_name_change {
        old_id: kdbus_notify_id_change { id: old, flags: 0 },
        new_id: kdbus_notify_id_change { id: new, flags: 0 },
    })
    .to_vec();
    if let Some(n) = name {
        p.extend_from_slice(n.as_bytes());
        p.push(0);
    }
    item(ty, &p)
}

fn bloom_mask(words: &[u64]) -> Vec<u8> {
    let p: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    item(KDBUS_ITEM_BLOOM_MASK, &p)
}

fn kinds(c: &Conn) -> Vec<u64> {
    c.drain().iter().map(|m| m.items[0].ty).collect()
}

#[test]
fn no_match_no_notifications() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    b.acquire("org.m.n", 0).unwrap();
    drop(b);
    assert_eq!(errno(a.recv()), Errno::AGAIN);
}

#[test]
fn id_rules() {
    let bus = Bus::new();
    let w = bus.conn();
    let x = bus.conn();
    w.match_add(1, 0, &[id_rule(KDBUS_ITEM_ID_REMOVE, x.id)])
        .unwrap();
    let y = bus.conn();
    drop(y);
    assert!(kinds(&w).is_empty(), "only x's removal is wanted");
    let xid = x.id;
    drop(x);
    let m = w.recv_msg();
    assert_eq!(m.items[0].ty, KDBUS_ITEM_ID_REMOVE);
    assert_eq!(m.items[0].as_struct::<kdbus_notify_id_change>().id, xid);

    w.match_add(2, 0, &[id_rule(KDBUS_ITEM_ID_ADD, KDBUS_MATCH_ID_ANY)])
        .unwrap();
    let _z = bus.conn();
    assert_eq!(kinds(&w), [KDBUS_ITEM_ID_ADD]);
}

#[test]
fn name_rules() {
    let bus = Bus::new();
    let w = bus.conn();
    let a = bus.conn();
    let b = bus.conn();
    w.match_add(
        1,
        0,
        &[name_rule(
            KDBUS_ITEM_NAME_ADD,
            KDBUS_MATCH_ID_ANY,
            KDBUS_MATCH_ID_ANY,
            Some("org.m.want"),
        )],
    )
    .unwrap();
    w.match_add(
        2,
        0,
        &[name_rule(
            KDBUS_ITEM_NAME_REMOVE,
            a.id,
            KDBUS_MATCH_ID_ANY,
            None,
        )],
    )
    .unwrap();
    a.acquire("org.m.other", 0).unwrap();
    a.acquire("org.m.want", 0).unwrap();
    b.acquire("org.m.bname", 0).unwrap();
    b.release("org.m.bname").unwrap();
    a.release("org.m.other").unwrap();
    let got: Vec<(u64, String)> = w
        .drain()
        .iter()
        .map(|m| (m.items[0].ty, m.items[0].name_change().4))
        .collect();
    assert_eq!(
        got,
        [
            (KDBUS_ITEM_NAME_ADD, "org.m.want".to_owned()),
            (KDBUS_ITEM_NAME_REMOVE, "org.m.other".to_owned())
        ]
    );
    // NAME_CHANGE rules see only changes
    w.match_add(
        3,
        0,
        &[name_rule(
            KDBUS_ITEM_NAME_CHANGE,
            KDBUS_MATCH_ID_ANY,
            b.id,
            None,
        )],
    )
    .unwrap();
    a.acquire("org.m.x", KDBUS_NAME_ALLOW_REPLACEMENT).unwrap();
    b.acquire("org.m.x", KDBUS_NAME_REPLACE_EXISTING).unwrap();
    assert_eq!(kinds(&w), [KDBUS_ITEM_NAME_CHANGE]);
}

#[test]
fn rules_of_an_entry_must_all_match() {
    let bus = Bus::new();
    let w = bus.conn();
    let a = bus.conn();
    // NAME_ADD and ID_ADD in one entry: no notification is both
    w.match_add(
        1,
        0,
        &[
            name_rule(
                KDBUS_ITEM_NAME_ADD,
                KDBUS_MATCH_ID_ANY,
                KDBUS_MATCH_ID_ANY,
                None,
            ),
            id_rule(KDBUS_ITEM_ID_ADD, KDBUS_MATCH_ID_ANY),
        ],
    )
    .unwrap();
    a.acquire("org.m.n", 0).unwrap();
    let _b = bus.conn();
    assert!(kinds(&w).is_empty());
    // sender rules never match notifications
    w.match_add(2, 0, &[item_u64(KDBUS_ITEM_ID, KDBUS_MATCH_ID_ANY)])
        .unwrap();
    let _c = bus.conn();
    assert!(kinds(&w).is_empty());
}

#[test]
fn replace_and_remove_by_cookie() {
    let bus = Bus::new();
    let w = bus.conn();
    w.match_add(7, 0, &[id_rule(KDBUS_ITEM_ID_ADD, KDBUS_MATCH_ID_ANY)])
        .unwrap();
    w.match_add(7, 0, &[id_rule(KDBUS_ITEM_ID_REMOVE, KDBUS_MATCH_ID_ANY)])
        .unwrap();
    let c = bus.conn();
    drop(c);
    assert_eq!(kinds(&w), [KDBUS_ITEM_ID_ADD, KDBUS_ITEM_ID_REMOVE]);

    // REPLACE removes both entries of cookie 7 first
    w.match_add(
        7,
        KDBUS_MATCH_REPLACE,
        &[id_rule(KDBUS_ITEM_ID_REMOVE, KDBUS_MATCH_ID_ANY)],
    )
    .unwrap();
    let c = bus.conn();
    drop(c);
    assert_eq!(kinds(&w), [KDBUS_ITEM_ID_REMOVE]);

    w.match_remove(7).unwrap();
    assert_eq!(w.match_remove(7), Err(Errno::BADSLT));
    assert_eq!(w.match_remove(8), Err(Errno::BADSLT));
    let c = bus.conn();
    drop(c);
    assert!(kinds(&w).is_empty());
}

#[test]
fn at_most_256_match_entries() {
    let bus = Bus::new();
    let w = bus.conn();
    for i in 0..256 {
        w.match_add(i, 0, &[]).unwrap();
    }
    assert_eq!(w.match_add(1000, 0, &[]), Err(Errno::MFILE));
    // replacing an entry at the limit works
    w.match_add(5, KDBUS_MATCH_REPLACE, &[]).unwrap();
    w.match_remove(5).unwrap();
    w.match_add(1000, 0, &[]).unwrap();
}

#[test]
fn rule_validation() {
    let bus = Bus::new();
    let w = bus.conn();
    assert_eq!(
        w.match_add(1, 0, &[item_str(KDBUS_ITEM_NAME, "bad")]),
        Err(Errno::INVAL)
    );
    assert_eq!(
        w.match_add(1, 0, &[name_rule(KDBUS_ITEM_NAME_ADD, 0, 0, Some("bad"))]),
        Err(Errno::INVAL)
    );
    assert_eq!(
        w.match_add(1, 0, &[item(KDBUS_ITEM_ID, &[0u8; 16])]),
        Err(Errno::INVAL)
    );
    assert_eq!(
        w.match_add(1, 0, &[item(KDBUS_ITEM_ID_ADD, &[0u8; 8])]),
        Err(Errno::INVAL)
    );
    assert_eq!(
        w.match_add(1, 0, &[item(KDBUS_ITEM_NAME_ADD, &[0u8; 24])]),
        Err(Errno::INVAL)
    );
    assert_eq!(w.match_add(1, 0, &[bloom_mask(&[0; 7])]), Err(Errno::DOM));
    assert_eq!(w.match_add(1, 0, &[bloom_mask(&[])]), Err(Errno::DOM));
    assert_eq!(w.match_add(1, 0, &[bloom_mask(&[0; 12])]), Err(Errno::DOM));
    assert_eq!(
        w.match_add(1, 0, &[item(KDBUS_ITEM_BLOOM_MASK, &[0u8; 65])]),
        Err(Errno::DOM)
    );
    assert_eq!(
        w.match_add(1, 0, &[item_u64(KDBUS_ITEM_PAYLOAD_VEC, 1)]),
        Err(Errno::INVAL)
    );
    assert_eq!(w.match_remove(1), Err(Errno::BADSLT), "nothing was added");
}

#[test]
fn special_connections_have_no_matches() {
    let bus = Bus::new();
    let act = Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR)
        .name("org.m.act")
        .connect(&bus.endpoint())
        .unwrap();
    let mon = Hello::new()
        .flags(KDBUS_HELLO_MONITOR)
        .connect(&bus.endpoint())
        .unwrap();
    for c in [&act, &mon] {
        assert_eq!(c.match_add(1, 0, &[]), Err(Errno::OPNOTSUPP));
        assert_eq!(c.match_remove(1), Err(Errno::OPNOTSUPP));
    }
}

/// A filter with bit `n` set (8 words = the 64-byte bus bloom).
fn bits(ns: &[usize]) -> Vec<u64> {
    let mut w = vec![0u64; 8];
    for &n in ns {
        w[n / 64] |= 1 << (n % 64);
    }
    w
}

#[test]
fn broadcasts_go_to_matching_bloom_masks() {
    let bus = Bus::new();
    let s = bus.conn();
    let r1 = bus.conn();
    let r2 = bus.conn();
    let r3 = bus.conn();
    r1.match_add(1, 0, &[bloom_mask(&bits(&[1, 100]))]).unwrap();
    r2.match_add(1, 0, &[bloom_mask(&bits(&[1, 200]))]).unwrap();
    // no rule at r3
    s.send(
        &MsgBuilder::new(KDBUS_DST_ID_BROADCAST)
            .flags(KDBUS_MSG_SIGNAL)
            .bloom(0, &bits(&[1, 100, 300]))
            .vec(b"sig"),
    )
    .unwrap();
    let m = r1.recv_msg();
    assert_eq!(m.payload(), b"sig");
    assert_eq!(m.hdr.dst_id, KDBUS_DST_ID_BROADCAST);
    assert_eq!(m.hdr.flags, KDBUS_MSG_SIGNAL);
    // the filter is passed through to receivers
    let f = m.item(KDBUS_ITEM_BLOOM_FILTER).unwrap().u64s();
    assert_eq!(&f[1..], bits(&[1, 100, 300]).as_slice());
    assert_eq!(
        errno(r2.recv()),
        Errno::AGAIN,
        "mask bit 200 missing in the filter"
    );
    assert_eq!(errno(r3.recv()), Errno::AGAIN);
    assert_eq!(errno(s.recv()), Errno::AGAIN, "the sender has no rule");
}

#[test]
fn bloom_generations() {
    let bus = Bus::new();
    let s = bus.conn();
    let r = bus.conn();
    // generation 0 wants bit 1, generation 1 wants bit 2
    let mut words = bits(&[1]);
    words.extend(bits(&[2]));
    r.match_add(1, 0, &[bloom_mask(&words)]).unwrap();
    let send = |generation: u64, set: &[usize]| {
        s.send(
            &MsgBuilder::new(KDBUS_DST_ID_BROADCAST)
                .flags(KDBUS_MSG_SIGNAL)
                .bloom(generation, &bits(set)),
        )
        .unwrap();
        r.drain().len()
    };
    assert_eq!(send(0, &[1]), 1);
    assert_eq!(send(0, &[2]), 0);
    assert_eq!(send(1, &[2]), 1);
    assert_eq!(send(1, &[1]), 0);
    // later generations use the last mask
    assert_eq!(send(9, &[2]), 1);
}

#[test]
fn sender_rules() {
    let bus = Bus::new();
    let s = bus.conn();
    let t = bus.conn();
    let r = bus.conn();
    s.acquire("org.m.sender", 0).unwrap();
    t.acquire("org.m.queued", 0).unwrap();
    s.acquire("org.m.queued", KDBUS_NAME_QUEUE).unwrap();
    r.match_add(1, 0, &[item_str(KDBUS_ITEM_NAME, "org.m.sender")])
        .unwrap();
    r.match_add(2, 0, &[item_u64(KDBUS_ITEM_ID, t.id)]).unwrap();
    r.match_add(
        3,
        0,
        &[
            item_str(KDBUS_ITEM_NAME, "org.m.queued"),
            item_u64(KDBUS_ITEM_ID, s.id),
        ],
    )
    .unwrap();
    let sig = || MsgBuilder::signal(KDBUS_DST_ID_BROADCAST, BLOOM_SIZE as usize);
    s.send(&sig()).unwrap();
    t.send(&sig()).unwrap();
    let from: Vec<u64> = r.drain().iter().map(|m| m.hdr.src_id).collect();
    assert_eq!(from, [s.id, t.id]);

    // DST_ID: the destination of the message
    let r2 = bus.conn();
    r2.match_add(1, 0, &[item_u64(KDBUS_ITEM_DST_ID, r2.id)])
        .unwrap();
    s.send(&sig()).unwrap();
    assert_eq!(errno(r2.recv()), Errno::AGAIN, "broadcast dst is ~0");
    s.send(&MsgBuilder::signal(r2.id, BLOOM_SIZE as usize))
        .unwrap();
    assert_eq!(r2.recv_msg().hdr.dst_id, r2.id);
}

#[test]
fn the_sender_gets_its_own_broadcast_if_it_matches() {
    let bus = Bus::new();
    let s = bus.conn();
    s.match_all();
    s.send(&MsgBuilder::signal(KDBUS_DST_ID_BROADCAST, BLOOM_SIZE as usize).vec(b"me"))
        .unwrap();
    let m = s.recv_msg();
    assert_eq!((m.hdr.src_id, m.payload()), (s.id, b"me".to_vec()));
}

#[test]
fn broadcasts_are_not_sent_to_special_connections() {
    let bus = Bus::new();
    let s = bus.conn();
    let act = Hello::new()
        .flags(KDBUS_HELLO_ACTIVATOR)
        .name("org.m.act")
        .connect(&bus.endpoint())
        .unwrap();
    s.send(&MsgBuilder::signal(
        KDBUS_DST_ID_BROADCAST,
        BLOOM_SIZE as usize,
    ))
    .unwrap();
    assert_eq!(errno(act.recv()), Errno::AGAIN);
}
