//! The `kdbus` library against the real module: what travels besides
//! inline payload — fds, memfds, broadcasts with bloom filters — and the
//! special connections (activators, monitors).

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use kdbus::{
    own_name, AttachFlags, BloomFilter, Bus, BusBuilder, Connection, Errno, HelloBuilder,
    MatchRule, MessageBuilder, NameFlags, PolicyAccess,
};
use kdbus_abi_tests::Domain;

const WAIT: Duration = Duration::from_secs(10);

struct Fixture {
    bus: Bus,
    _domain: Domain,
}

impl Fixture {
    fn new() -> Fixture {
        let domain = Domain::new();
        let bus = BusBuilder::new(own_name("xfer"))
            .create_in(domain.path())
            .expect("BUS_MAKE");
        Fixture {
            bus,
            _domain: domain,
        }
    }

    fn hello(&self) -> HelloBuilder {
        HelloBuilder::new()
            .attach_recv(AttachFlags::ANY)
            .pool_size(4 << 20)
    }

    fn connect(&self, hello: HelloBuilder) -> Connection {
        hello.connect(self.bus.endpoint().unwrap()).expect("HELLO")
    }
}

fn next(conn: &Connection) -> kdbus::Message<'_> {
    assert!(conn.wait(Some(WAIT)).unwrap(), "no message within {WAIT:?}");
    conn.recv().unwrap().message.expect("a message")
}

#[test]
fn file_descriptors_travel_to_accepting_peers_only() {
    let f = Fixture::new();
    let a = f.connect(f.hello());
    let b = f.connect(f.hello().accept_fds());
    let c = f.connect(f.hello());
    let mut file = std::fs::File::from(
        rustix::fs::memfd_create("fd-passing", rustix::fs::MemfdFlags::CLOEXEC).unwrap(),
    );
    file.write_all(b"through kdbus").unwrap();

    a.send(
        &MessageBuilder::to_id(b.id())
            .payload(b"fd")
            .fds(&[file.as_fd()]),
    )
    .unwrap();
    let mut msg = next(&b);
    let mut fds = msg.take_fds();
    assert_eq!(fds.len(), 1);
    let mut got = std::fs::File::from(fds.remove(0).expect("installed fd"));
    got.rewind().unwrap();
    let mut text = String::new();
    got.read_to_string(&mut text).unwrap();
    assert_eq!(text, "through kdbus");

    let err = a
        .send(
            &MessageBuilder::to_id(c.id())
                .payload(b"fd")
                .fds(&[file.as_fd()]),
        )
        .unwrap_err();
    assert!(err.is(Errno::COMM), "{err}");
}

/// Sends a sealed memfd range to `receiver` and checks what arrives.
fn memfd_round_trip(f: &Fixture, receiver: HelloBuilder) {
    let a = f.connect(f.hello());
    let b = f.connect(receiver);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let memfd = kdbus::sealed_memfd("payload", &data).unwrap();
    a.send(
        &MessageBuilder::to_id(b.id())
            .payload(b"head")
            .memfd(memfd.as_fd(), 10, 50_000),
    )
    .unwrap();
    assert!(b.wait(Some(WAIT)).unwrap(), "no message within {WAIT:?}");
    let peeked = b.peek().unwrap().message.expect("a message to peek at");
    assert_eq!(peeked.memfds().len(), 1);
    assert!(peeked.memfds()[0].fd.is_none(), "PEEK installs no memfd");
    assert_eq!(peeked.view().memfd_items()[0].fd, -1);
    let msg = next(&b);
    assert_eq!(msg.payload_to_vec(), b"head");
    let memfds = msg.memfds();
    assert_eq!(memfds.len(), 1);
    assert_eq!((memfds[0].start, memfds[0].size), (10, 50_000));
    assert_eq!(memfds[0].read().unwrap(), &data[10..50_010]);

    let unsealed = rustix::fs::memfd_create("open", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&unsealed, 4096).unwrap();
    let err = a
        .send(&MessageBuilder::to_id(b.id()).memfd(unsealed.as_fd(), 0, 4096))
        .unwrap_err();
    assert!(err.is(Errno::TXTBSY), "{err}");
}

#[test]
fn memfds_are_passed_sealed() {
    let f = Fixture::new();
    memfd_round_trip(&f, f.hello().accept_fds());
}

/// Spec §8.2/§8.4: only FDS items need ACCEPT_FD; memfds are payload and
/// installed by every real RECV (never by PEEK).
#[test]
fn memfds_need_no_accept_fd() {
    let f = Fixture::new();
    memfd_round_trip(&f, f.hello());
}

#[test]
fn broadcasts_reach_matching_bloom_masks_only() {
    let f = Fixture::new();
    let sender = f.connect(f.hello());
    let interested = f.connect(f.hello());
    let other = f.connect(f.hello());
    let params = sender.bloom_params();
    let mut mask = BloomFilter::new(params);
    mask.add_pair("interface", "org.example.Signals")
        .add_pair("member", "Changed");
    interested
        .add_match(&MatchRule::new(1).bloom(&mask))
        .unwrap();
    let mut other_mask = BloomFilter::new(params);
    other_mask.add_pair("member", "Unrelated");
    other
        .add_match(&MatchRule::new(1).bloom(&other_mask))
        .unwrap();

    let mut filter = BloomFilter::new(params);
    filter
        .add_pair("message-type", "signal")
        .add_pair("interface", "org.example.Signals")
        .add_pair("member", "Changed");
    sender
        .send(
            &MessageBuilder::broadcast()
                .payload(b"changed")
                .bloom(filter.clone()),
        )
        .unwrap();
    let msg = next(&interested);
    assert!(msg.is_broadcast() && msg.is_signal());
    assert_eq!(msg.payload_to_vec(), b"changed");
    assert_eq!(msg.src_id(), sender.id());
    let (generation, words) = msg.bloom_filter().expect("bloom filter item");
    assert_eq!((generation, words.as_slice()), (0, filter.words()));
    assert!(
        !other.wait(Some(Duration::from_millis(200))).unwrap(),
        "a non-matching mask gets nothing"
    );

    let err = sender
        .send(&MessageBuilder::broadcast().payload(b"no bloom"))
        .unwrap_err();
    assert!(err.is(Errno::BADMSG), "{err}");
}

#[test]
fn an_activator_hands_queued_messages_to_the_implementer() {
    let f = Fixture::new();
    let name = "org.example.Activatable";
    let activator = f.connect(
        f.hello()
            .activator(name, &[PolicyAccess::world(kdbus::Access::Talk)]),
    );
    let client = f.connect(f.hello());
    for i in 0..3u8 {
        client
            .send(&MessageBuilder::to_name(name).payload(&[i]))
            .unwrap();
    }
    assert!(
        activator.wait(Some(WAIT)).unwrap(),
        "the activator is woken"
    );
    let peeked = activator
        .peek()
        .unwrap()
        .message
        .expect("queued on the activator");
    assert_eq!(peeked.view().dst_name(), Some(name));

    let err = client
        .send(&MessageBuilder::to_name(name).payload(b"x").no_auto_start())
        .unwrap_err();
    assert!(err.is(Errno::ADDRNOTAVAIL), "{err}");

    let service = f.connect(f.hello());
    let flags = service.acquire_name(name, NameFlags::empty()).unwrap();
    assert!(flags.contains(NameFlags::PRIMARY), "{flags:?}");
    for i in 0..3u8 {
        assert_eq!(next(&service).payload_to_vec(), [i], "in order");
    }
    assert!(
        activator.recv().unwrap().message.is_none(),
        "moved, not copied"
    );
}

#[test]
fn a_monitor_sees_unicast_traffic() {
    let f = Fixture::new();
    let monitor = f.connect(f.hello().monitor());
    let a = f.connect(f.hello());
    let b = f.connect(f.hello());
    a.send(&MessageBuilder::to_id(b.id()).payload(b"watched"))
        .unwrap();
    // Monitors also get every notification (the ID_ADDs of a and b).
    let seen = loop {
        let msg = next(&monitor);
        if !msg.is_kernel() {
            break msg;
        }
    };
    assert_eq!(seen.payload_to_vec(), b"watched");
    assert_eq!((seen.src_id(), seen.dst_id()), (a.id(), b.id()));
    assert_eq!(next(&b).payload_to_vec(), b"watched");
}
