//! Metadata on messages, CONN_INFO and notifications (spec §13), with the
//! module's attach rule: a receiver gets
//!   attach_flags_recv & (IMPLICIT | sender's attach_flags_send),
//! IMPLICIT being timestamp, creds, pids, auxgroups, names, description.

use kdbus::abi::*;
use kdbus::item::Item;
use kdbus::{
    AttachFlags, CapSet, Connection, Creds, HelloBuilder, MessageBuilder, MessageView, NameFlags,
    OwnedName, Peer, Pids,
};
use kdbus_abi_tests::as_user;
use kdbus_abi_tests::fixture::*;

/// The metadata item types of a message, in order.
fn types(m: &MessageView<'_>) -> Vec<u64> {
    item_types(m)
        .into_iter()
        .filter(|t| (_KDBUS_ITEM_ATTACH_BASE.._KDBUS_ITEM_POLICY_BASE).contains(t))
        .collect()
}

fn pair(bus: &TestBus, send: AttachFlags, recv: AttachFlags) -> (Connection, Connection) {
    let a = bus.connect(HelloBuilder::new().attach_send(send).description("sender"));
    let b = bus.connect(HelloBuilder::new().attach_recv(recv));
    (a, b)
}

fn send_to(a: &Connection, b: &Connection) {
    a.send(&MessageBuilder::to_id(b.id())).unwrap();
}

const ALL: AttachFlags = AttachFlags::all();
const NONE: AttachFlags = AttachFlags::empty();

#[test]
fn implicit_items_need_no_opt_in() {
    let bus = TestBus::new();
    let (a, b) = pair(&bus, NONE, ALL);
    a.acquire_name("org.meta.a", NameFlags::empty()).unwrap();
    send_to(&a, &b);
    let m = recv_msg(&b);
    assert_eq!(
        types(&m),
        [
            KDBUS_ITEM_CREDS,
            KDBUS_ITEM_PIDS,
            KDBUS_ITEM_AUXGROUPS,
            KDBUS_ITEM_OWNED_NAME,
            KDBUS_ITEM_CONN_DESCRIPTION,
            KDBUS_ITEM_TIMESTAMP
        ]
    );
}

#[test]
fn other_items_need_the_senders_opt_in() {
    let bus = TestBus::new();
    let (a, b) = pair(&bus, ALL, ALL);
    send_to(&a, &b);
    let t = types(&recv_msg(&b));
    for want in [
        KDBUS_ITEM_CREDS,
        KDBUS_ITEM_PIDS,
        KDBUS_ITEM_AUXGROUPS,
        KDBUS_ITEM_TID_COMM,
        KDBUS_ITEM_PID_COMM,
        KDBUS_ITEM_EXE,
        KDBUS_ITEM_CMDLINE,
        KDBUS_ITEM_CGROUP,
        KDBUS_ITEM_CAPS,
        KDBUS_ITEM_AUDIT,
        KDBUS_ITEM_CONN_DESCRIPTION,
        KDBUS_ITEM_TIMESTAMP,
    ] {
        assert!(t.contains(&want), "{want:#x} missing from {t:x?}");
    }
    // the documented order
    let order = [
        KDBUS_ITEM_CREDS,
        KDBUS_ITEM_PIDS,
        KDBUS_ITEM_AUXGROUPS,
        KDBUS_ITEM_TID_COMM,
        KDBUS_ITEM_PID_COMM,
        KDBUS_ITEM_EXE,
        KDBUS_ITEM_CMDLINE,
        KDBUS_ITEM_CGROUP,
        KDBUS_ITEM_CAPS,
        KDBUS_ITEM_SECLABEL,
        KDBUS_ITEM_AUDIT,
        KDBUS_ITEM_OWNED_NAME,
        KDBUS_ITEM_CONN_DESCRIPTION,
        KDBUS_ITEM_TIMESTAMP,
    ];
    let pos: Vec<usize> = t
        .iter()
        .map(|x| order.iter().position(|o| o == x).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] <= w[1]), "order {t:x?}");
}

#[test]
fn the_receiver_gets_only_what_it_asks_for() {
    let bus = TestBus::new();
    let (a, b) = pair(&bus, ALL, AttachFlags::PIDS | AttachFlags::EXE);
    send_to(&a, &b);
    assert_eq!(types(&recv_msg(&b)), [KDBUS_ITEM_PIDS, KDBUS_ITEM_EXE]);
    let (a, b) = pair(&bus, ALL, NONE);
    send_to(&a, &b);
    assert!(types(&recv_msg(&b)).is_empty());
}

#[test]
fn creds_pids_and_comms_describe_the_sending_thread() {
    let bus = TestBus::new();
    let (a, b) = pair(&bus, ALL, ALL);
    let bid = b.id();
    let tid = std::thread::Builder::new()
        .name("kdbus-sender".into())
        .spawn(move || {
            a.send(&MessageBuilder::to_id(bid)).unwrap();
            rustix::thread::gettid().as_raw_nonzero().get() as u64
        })
        .unwrap()
        .join()
        .unwrap();
    let meta = recv_msg(&b).metadata();
    let c = meta.creds.expect("CREDS");
    assert_eq!((c.uid, c.euid, c.suid, c.fsuid), (0, 0, 0, 0));
    assert_eq!((c.gid, c.egid, c.sgid, c.fsgid), (0, 0, 0, 0));
    let p = meta.pids.expect("PIDS");
    assert_eq!(p.pid, std::process::id() as u64);
    assert_eq!(p.tid, tid);
    assert_eq!(
        p.ppid,
        rustix::process::getppid().unwrap().as_raw_nonzero().get() as u64
    );
    assert_eq!(meta.tid_comm.as_deref(), Some("kdbus-sender"));
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(meta.pid_comm.as_deref(), Some(comm.trim()));
}

#[test]
fn creds_of_another_user() {
    let bus = TestBus::new();
    let ep = bus.endpoint();
    // another user talks to root only with a policy: use a receiver of
    // the same user
    let c = as_user(1234, 4321, move || {
        let a = HelloBuilder::new().connect(&ep).unwrap();
        let r = HelloBuilder::new().attach_recv(ALL).connect(&ep).unwrap();
        send_to(&a, &r);
        let creds = recv_msg(&r).metadata().creds.expect("CREDS");
        creds
    });
    assert_eq!((c.uid, c.euid, c.gid, c.egid), (1234, 1234, 4321, 4321));
}

#[test]
fn exe_cmdline_cgroup_caps_audit() {
    let bus = TestBus::new();
    let (a, b) = pair(&bus, ALL, ALL);
    send_to(&a, &b);
    let m = recv_msg(&b);
    let meta = m.metadata();

    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(meta.exe.as_deref(), exe.to_str());

    // the whole argument vector, NUL-separated (not only argv[0]), with
    // its terminating NUL
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
    let raw = m
        .items()
        .iter()
        .find_map(|i| match i {
            Item::Cmdline(c) => Some([*c, b"\0"].concat()),
            _ => None,
        })
        .expect("CMDLINE");
    assert_eq!(raw, cmdline);
    assert!(cmdline.iter().filter(|&&c| c == 0).count() >= 1);
    assert_eq!(
        meta.cmdline.unwrap().len(),
        std::env::args().count(),
        "one string per argument"
    );

    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = cg.lines().next().unwrap().splitn(3, ':').nth(2).unwrap();
    assert_eq!(meta.cgroup.as_deref(), Some(path));

    let caps = m
        .items()
        .iter()
        .find_map(|i| match i {
            Item::Caps(c) => Some(c.clone()),
            _ => None,
        })
        .expect("CAPS");
    assert_eq!(
        (caps.words_per_set, caps.words.len()),
        (2, 4 * 2),
        "last_cap + 4 sets of 2 words"
    );
    assert!(caps.last_cap >= 40);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(
        meta.caps.expect("CAPS").mask(CapSet::Effective),
        eff,
        "effective set"
    );

    let loginuid: u32 = std::fs::read_to_string("/proc/self/loginuid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(meta.audit.expect("AUDIT").loginuid, loginuid);

    // the LSM label, where an LSM provides one
    let attr = std::fs::read_to_string("/proc/self/attr/current").unwrap_or_default();
    if !attr.trim().is_empty() {
        let label = meta.seclabel.expect("seclabel with an LSM");
        assert_eq!(label.trim_end(), attr.trim_end_matches('\0').trim_end());
    }
}

#[test]
fn timestamps_and_sequence_numbers() {
    let bus = TestBus::new();
    let (a, b) = pair(&bus, NONE, AttachFlags::TIMESTAMP);
    let before = deadline_ms(0);
    send_to(&a, &b);
    send_to(&a, &b);
    let after = deadline_ms(0);
    let t1 = recv_msg(&b).metadata().timestamp.expect("TIMESTAMP");
    let t2 = recv_msg(&b).metadata().timestamp.expect("TIMESTAMP");
    assert!(before <= t1.monotonic_ns && t2.monotonic_ns <= after);
    assert!(t2.seqnum > t1.seqnum);
    assert!(t1.realtime_ns > 1_600_000_000_000_000_000);
}

#[test]
fn names_are_those_owned_at_send_time() {
    let bus = TestBus::new();
    let (a, b) = pair(&bus, NONE, AttachFlags::NAMES);
    let c = bus.conn();
    c.acquire_name("org.meta.q", NameFlags::empty()).unwrap();
    a.acquire_name("org.meta.one", NameFlags::ALLOW_REPLACEMENT)
        .unwrap();
    a.acquire_name("org.meta.q", NameFlags::QUEUE).unwrap();
    send_to(&a, &b);
    assert_eq!(
        recv_msg(&b).metadata().names,
        Some(vec![OwnedName {
            name: "org.meta.one".to_owned(),
            flags: NameFlags::ALLOW_REPLACEMENT | NameFlags::PRIMARY,
        }]),
        "queued names are not listed"
    );
}

#[test]
fn conn_info_metadata_is_that_of_hello() {
    let bus = TestBus::new();
    let ep = bus.endpoint();
    let conn = as_user(1000, 1000, move || TestBus::hello().connect(&ep).unwrap());
    // the connection outlives the thread of another user: its data stays
    let q = bus.conn();
    let info = q.conn_info(Peer::Id(conn.id()), ALL).unwrap();
    assert_eq!(info.metadata.creds.expect("CREDS").uid, 1000);
    assert!(info.metadata.pid_comm.is_some());
    assert!(info.metadata.timestamp.is_none());
}

#[test]
fn faked_metadata_of_an_owner() {
    let bus = TestBus::new();
    let creds = Creds {
        uid: 500,
        euid: 501,
        suid: 502,
        fsuid: 503,
        gid: 600,
        egid: 601,
        sgid: 602,
        fsgid: 603,
    };
    let me = std::process::id() as u64;
    let pids = Pids {
        pid: me,
        tid: me,
        ppid: 1,
    };
    let f = bus.connect(
        TestBus::hello()
            .creds(creds)
            .pids(pids)
            .seclabel("faked_t")
            .description("faker"),
    );
    let q = bus.conn();
    let info = q.conn_info(Peer::Id(f.id()), ALL).unwrap();
    assert_eq!(info.metadata.creds, Some(creds));
    assert_eq!(info.metadata.pids, Some(pids));
    assert_eq!(info.metadata.seclabel.as_deref(), Some("faked_t"));
    assert!(info.metadata.pid_comm.is_none(), "no real process data");

    // messages of a faking connection carry no process metadata
    send_to(&f, &q);
    assert_eq!(
        types(&recv_msg(&q)),
        [KDBUS_ITEM_CONN_DESCRIPTION, KDBUS_ITEM_TIMESTAMP]
    );

    // unknown ids (-1) are passed as such
    let unknown = Creds {
        uid: u32::MAX as u64,
        ..creds
    };
    let g = bus.connect(TestBus::hello().creds(unknown));
    let info = q.conn_info(Peer::Id(g.id()), AttachFlags::CREDS).unwrap();
    assert_eq!(info.metadata.creds.expect("CREDS").uid, u32::MAX as u64);
}

#[test]
fn implicit_set_is_what_the_module_documents() {
    assert_eq!(AttachFlags::IMPLICIT.bits(), 0x201f);
}
