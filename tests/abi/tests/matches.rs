//! Match rules and broadcasts (spec §11): notification rules, bloom masks,
//! sender rules, MATCH_REPLACE, MATCH_REMOVE and the limit.

use kdbus::abi::*;
use kdbus::{
    Connection, Errno, HelloBuilder, MatchRule, MessageBuilder, MsgFlags, NameFlags, Notification,
    Rule,
};
use kdbus_abi_tests::fixture::*;
use zerocopy::IntoBytes;

const ANY: Option<u64> = None;

/// The item type of every notification queued on `c`.
fn kinds(c: &Connection) -> Vec<u64> {
    drain(c).iter().map(|m| item_types(m)[0]).collect()
}

fn signal<'a>() -> MessageBuilder<'a> {
    MessageBuilder::broadcast().bloom(no_bloom())
}

#[test]
fn no_match_no_notifications() {
    let bus = TestBus::new();
    let a = bus.conn();
    let b = bus.conn();
    b.acquire_name("org.m.n", NameFlags::empty()).unwrap();
    drop(b);
    assert!(a.recv().unwrap().message.is_none(), "EAGAIN");
}

#[test]
fn id_rules() {
    let bus = TestBus::new();
    let w = bus.conn();
    let x = bus.conn();
    w.add_match(&MatchRule::new(1).id_removed(Some(x.id())))
        .unwrap();
    let y = bus.conn();
    drop(y);
    assert!(kinds(&w).is_empty(), "only x's removal is wanted");
    let xid = x.id();
    drop(x);
    assert!(matches!(
        recv_msg(&w).notification(),
        Some(Notification::IdRemove { id, .. }) if id == xid
    ));

    w.add_match(&MatchRule::new(2).id_added(ANY)).unwrap();
    let _z = bus.conn();
    assert_eq!(kinds(&w), [KDBUS_ITEM_ID_ADD]);
}

#[test]
fn name_rules() {
    let bus = TestBus::new();
    let w = bus.conn();
    let a = bus.conn();
    let b = bus.conn();
    w.add_match(&MatchRule::new(1).name_added(Some("org.m.want")))
        .unwrap();
    w.add_match(&MatchRule::new(2).rule(Rule::NameRemove {
        name: None,
        old_id: Some(a.id()),
        new_id: ANY,
    }))
    .unwrap();
    a.acquire_name("org.m.other", NameFlags::empty()).unwrap();
    a.acquire_name("org.m.want", NameFlags::empty()).unwrap();
    b.acquire_name("org.m.bname", NameFlags::empty()).unwrap();
    b.release_name("org.m.bname").unwrap();
    a.release_name("org.m.other").unwrap();
    let got: Vec<(u64, String)> = drain(&w)
        .iter()
        .map(|m| match m.notification() {
            Some(Notification::NameAdd { name, .. }) => (KDBUS_ITEM_NAME_ADD, name),
            Some(Notification::NameRemove { name, .. }) => (KDBUS_ITEM_NAME_REMOVE, name),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (KDBUS_ITEM_NAME_ADD, "org.m.want".to_owned()),
            (KDBUS_ITEM_NAME_REMOVE, "org.m.other".to_owned())
        ]
    );
    // NAME_CHANGE rules see only changes
    w.add_match(&MatchRule::new(3).rule(Rule::NameChange {
        name: None,
        old_id: ANY,
        new_id: Some(b.id()),
    }))
    .unwrap();
    a.acquire_name("org.m.x", NameFlags::ALLOW_REPLACEMENT)
        .unwrap();
    b.acquire_name("org.m.x", NameFlags::REPLACE_EXISTING)
        .unwrap();
    assert_eq!(kinds(&w), [KDBUS_ITEM_NAME_CHANGE]);
}

#[test]
fn rules_of_an_entry_must_all_match() {
    let bus = TestBus::new();
    let w = bus.conn();
    let a = bus.conn();
    // NAME_ADD and ID_ADD in one entry: no notification is both
    w.add_match(&MatchRule::new(1).name_added(None).id_added(ANY))
        .unwrap();
    a.acquire_name("org.m.n", NameFlags::empty()).unwrap();
    let _b = bus.conn();
    assert!(kinds(&w).is_empty());
    // sender rules never match notifications
    w.add_match(&MatchRule::new(2).sender(KDBUS_MATCH_ID_ANY))
        .unwrap();
    let _c = bus.conn();
    assert!(kinds(&w).is_empty());
}

#[test]
fn replace_and_remove_by_cookie() {
    let bus = TestBus::new();
    let w = bus.conn();
    w.add_match(&MatchRule::new(7).id_added(ANY)).unwrap();
    w.add_match(&MatchRule::new(7).id_removed(ANY)).unwrap();
    let c = bus.conn();
    drop(c);
    assert_eq!(kinds(&w), [KDBUS_ITEM_ID_ADD, KDBUS_ITEM_ID_REMOVE]);

    // REPLACE removes both entries of cookie 7 first
    w.add_match(&MatchRule::new(7).replace().id_removed(ANY))
        .unwrap();
    let c = bus.conn();
    drop(c);
    assert_eq!(kinds(&w), [KDBUS_ITEM_ID_REMOVE]);

    w.remove_match(7).unwrap();
    assert_eq!(errno(w.remove_match(7)), Errno::BADSLT);
    assert_eq!(errno(w.remove_match(8)), Errno::BADSLT);
    let c = bus.conn();
    drop(c);
    assert!(kinds(&w).is_empty());
}

#[test]
fn at_most_256_match_entries() {
    let bus = TestBus::new();
    let w = bus.conn();
    for i in 0..256 {
        w.add_match(&MatchRule::new(i)).unwrap();
    }
    assert_eq!(errno(w.add_match(&MatchRule::new(1000))), Errno::MFILE);
    // replacing an entry at the limit works
    w.add_match(&MatchRule::new(5).replace()).unwrap();
    w.remove_match(5).unwrap();
    w.add_match(&MatchRule::new(1000)).unwrap();
}

#[test]
fn rule_validation() {
    let bus = TestBus::new();
    let w = bus.conn();
    let add = |ty: u64, payload: &[u8]| raw_match_add(&w, 1, 0, &[(ty, payload)]);
    assert_eq!(
        errno(w.add_match(&MatchRule::new(1).sender_name("bad"))),
        Errno::INVAL
    );
    let bad_name = [
        kdbus_notify_name_change::default().as_bytes(),
        b"bad\0".as_slice(),
    ]
    .concat();
    assert_eq!(add(KDBUS_ITEM_NAME_ADD, &bad_name), Err(Errno::INVAL));
    assert_eq!(
        errno(w.add_match(&MatchRule::new(1).name_added(Some("bad")))),
        Errno::INVAL,
        "also through the library"
    );
    assert_eq!(add(KDBUS_ITEM_ID, &[0u8; 16]), Err(Errno::INVAL));
    assert_eq!(add(KDBUS_ITEM_ID_ADD, &[0u8; 8]), Err(Errno::INVAL));
    assert_eq!(add(KDBUS_ITEM_NAME_ADD, &[0u8; 24]), Err(Errno::INVAL));
    for words in [7, 0, 12] {
        assert_eq!(
            add(KDBUS_ITEM_BLOOM_MASK, &vec![0u8; words * 8]),
            Err(Errno::DOM),
            "{words} words"
        );
    }
    assert_eq!(add(KDBUS_ITEM_BLOOM_MASK, &[0u8; 65]), Err(Errno::DOM));
    assert_eq!(
        add(KDBUS_ITEM_PAYLOAD_VEC, &1u64.to_ne_bytes()),
        Err(Errno::INVAL)
    );
    assert_eq!(errno(w.remove_match(1)), Errno::BADSLT, "nothing was added");
}

#[test]
fn special_connections_have_no_matches() {
    let bus = TestBus::new();
    let act = bus.connect(HelloBuilder::new().activator("org.m.act", &[]));
    let mon = bus.connect(HelloBuilder::new().monitor());
    for c in [&act, &mon] {
        assert_eq!(errno(c.add_match(&MatchRule::new(1))), Errno::OPNOTSUPP);
        assert_eq!(errno(c.remove_match(1)), Errno::OPNOTSUPP);
    }
}

#[test]
fn broadcasts_go_to_matching_bloom_masks() {
    let bus = TestBus::new();
    let s = bus.conn();
    let r1 = bus.conn();
    let r2 = bus.conn();
    let r3 = bus.conn();
    r1.add_match(&MatchRule::new(1).bloom(&bloom_bits(0, &[1, 100])))
        .unwrap();
    r2.add_match(&MatchRule::new(1).bloom(&bloom_bits(0, &[1, 200])))
        .unwrap();
    // no rule at r3
    s.send(
        &MessageBuilder::broadcast()
            .bloom(bloom_bits(0, &[1, 100, 300]))
            .payload(b"sig"),
    )
    .unwrap();
    let m = recv_msg(&r1);
    assert_eq!(m.payload_to_vec(), b"sig");
    assert_eq!(m.dst_id(), KDBUS_DST_ID_BROADCAST);
    assert_eq!(m.flags(), MsgFlags::SIGNAL);
    // the filter is passed through to receivers
    let (generation, words) = m.bloom_filter().expect("BLOOM_FILTER");
    assert_eq!(generation, 0);
    assert_eq!(words, bloom_bits(0, &[1, 100, 300]).words());
    assert!(
        r2.recv().unwrap().message.is_none(),
        "mask bit 200 missing in the filter"
    );
    assert!(r3.recv().unwrap().message.is_none());
    assert!(
        s.recv().unwrap().message.is_none(),
        "the sender has no rule"
    );
}

#[test]
fn bloom_generations() {
    let bus = TestBus::new();
    let s = bus.conn();
    let r = bus.conn();
    // generation 0 wants bit 1, generation 1 wants bit 2
    r.add_match(&MatchRule::new(1).rule(Rule::BloomMask(vec![
        bloom_bits(0, &[1]),
        bloom_bits(1, &[2]),
    ])))
    .unwrap();
    let send = |generation: u64, set: &[usize]| {
        s.send(&MessageBuilder::broadcast().bloom(bloom_bits(generation, set)))
            .unwrap();
        drain(&r).len()
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
    let bus = TestBus::new();
    let s = bus.conn();
    let t = bus.conn();
    let r = bus.conn();
    s.acquire_name("org.m.sender", NameFlags::empty()).unwrap();
    t.acquire_name("org.m.queued", NameFlags::empty()).unwrap();
    s.acquire_name("org.m.queued", NameFlags::QUEUE).unwrap();
    r.add_match(&MatchRule::new(1).sender_name("org.m.sender"))
        .unwrap();
    r.add_match(&MatchRule::new(2).sender(t.id())).unwrap();
    r.add_match(&MatchRule::new(3).sender_name("org.m.queued").sender(s.id()))
        .unwrap();
    s.send(&signal()).unwrap();
    t.send(&signal()).unwrap();
    let from: Vec<u64> = drain(&r).iter().map(|m| m.src_id()).collect();
    assert_eq!(from, [s.id(), t.id()]);

    // DST_ID: the destination of the message
    let r2 = bus.conn();
    r2.add_match(&MatchRule::new(1).destination(r2.id()))
        .unwrap();
    s.send(&signal()).unwrap();
    assert!(r2.recv().unwrap().message.is_none(), "broadcast dst is ~0");
    s.send(&MessageBuilder::to_id(r2.id()).signal().bloom(no_bloom()))
        .unwrap();
    assert_eq!(recv_msg(&r2).dst_id(), r2.id());
}

#[test]
fn the_sender_gets_its_own_broadcast_if_it_matches() {
    let bus = TestBus::new();
    let s = bus.conn();
    match_all(&s);
    s.send(&signal().payload(b"me")).unwrap();
    let m = recv_msg(&s);
    assert_eq!((m.src_id(), m.payload_to_vec()), (s.id(), b"me".to_vec()));
}

#[test]
fn broadcasts_are_not_sent_to_special_connections() {
    let bus = TestBus::new();
    let s = bus.conn();
    let act = bus.connect(HelloBuilder::new().activator("org.m.act", &[]));
    s.send(&signal()).unwrap();
    assert!(act.recv().unwrap().message.is_none(), "EAGAIN");
}
