//! Metadata on messages, CONN_INFO and notifications (spec §13), with the
//! module's attach rule: a receiver gets
//!   attach_flags_recv & (IMPLICIT | sender's attach_flags_send),
//! IMPLICIT being timestamp, creds, pids, auxgroups, names, description.

use kdbus::abi::*;
use kdbus_abi_tests::raw::{item_str, item_struct};
use kdbus_abi_tests::*;

const IMPLICIT: u64 = KDBUS_ATTACH_TIMESTAMP
    | KDBUS_ATTACH_CREDS
    | KDBUS_ATTACH_PIDS
    | KDBUS_ATTACH_AUXGROUPS
    | KDBUS_ATTACH_NAMES
    | KDBUS_ATTACH_CONN_DESCRIPTION;

fn types(m: &Msg) -> Vec<u64> {
    m.items
        .iter()
        .map(|i| i.ty)
        .filter(|t| (_KDBUS_ITEM_ATTACH_BASE.._KDBUS_ITEM_POLICY_BASE).contains(t))
        .collect()
}

fn pair(bus: &Bus, send: u64, recv: u64) -> (Conn, Conn) {
    let a = Hello::new()
        .attach(send, 0)
        .description("sender")
        .connect(&bus.endpoint())
        .unwrap();
    let b = Hello::new()
        .attach(0, recv)
        .connect(&bus.endpoint())
        .unwrap();
    (a, b)
}

#[test]
fn implicit_items_need_no_opt_in() {
    let bus = Bus::new();
    let (a, b) = pair(&bus, 0, _KDBUS_ATTACH_ALL);
    a.acquire("org.meta.a", 0).unwrap();
    a.send(&MsgBuilder::new(b.id)).unwrap();
    let m = b.recv_msg();
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
    let bus = Bus::new();
    let (a, b) = pair(&bus, _KDBUS_ATTACH_ALL, _KDBUS_ATTACH_ALL);
    a.send(&MsgBuilder::new(b.id)).unwrap();
    let t = types(&b.recv_msg());
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
    let bus = Bus::new();
    let (a, b) = pair(
        &bus,
        _KDBUS_ATTACH_ALL,
        KDBUS_ATTACH_PIDS | KDBUS_ATTACH_EXE,
    );
    a.send(&MsgBuilder::new(b.id)).unwrap();
    assert_eq!(types(&b.recv_msg()), [KDBUS_ITEM_PIDS, KDBUS_ITEM_EXE]);
    let (a, b) = pair(&bus, _KDBUS_ATTACH_ALL, 0);
    a.send(&MsgBuilder::new(b.id)).unwrap();
    assert!(types(&b.recv_msg()).is_empty());
}

#[test]
fn creds_pids_and_comms_describe_the_sending_thread() {
    let bus = Bus::new();
    let (a, b) = pair(&bus, _KDBUS_ATTACH_ALL, _KDBUS_ATTACH_ALL);
    let bid = b.id;
    let tid = std::thread::Builder::new()
        .name("kdbus-sender".into())
        .spawn(move || {
            a.send(&MsgBuilder::new(bid)).unwrap();
            rustix::thread::gettid().as_raw_nonzero().get() as u64
        })
        .unwrap()
        .join()
        .unwrap();
    let m = b.recv_msg();
    let c: kdbus_creds = m.item(KDBUS_ITEM_CREDS).unwrap().as_struct();
    assert_eq!((c.uid, c.euid, c.suid, c.fsuid), (0, 0, 0, 0));
    assert_eq!((c.gid, c.egid, c.sgid, c.fsgid), (0, 0, 0, 0));
    let p: kdbus_pids = m.item(KDBUS_ITEM_PIDS).unwrap().as_struct();
    assert_eq!(p.pid, std::process::id() as u64);
    assert_eq!(p.tid, tid);
    assert_eq!(
        p.ppid,
        rustix::process::getppid().unwrap().as_raw_nonzero().get() as u64
    );
    assert_eq!(m.item(KDBUS_ITEM_TID_COMM).unwrap().str(), "kdbus-sender");
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(m.item(KDBUS_ITEM_PID_COMM).unwrap().str(), comm.trim());
}

#[test]
fn creds_of_another_user() {
    let bus = Bus::new();
    let ep = bus.endpoint();
    // another user talks to root only with a policy: use a receiver of
    // the same user
    let c = as_user(1234, 4321, move || {
        let a = Hello::new().connect(&ep).unwrap();
        let r = Hello::new()
            .attach(0, _KDBUS_ATTACH_ALL)
            .connect(&ep)
            .unwrap();
        a.send(&MsgBuilder::new(r.id)).unwrap();
        r.recv_msg()
            .item(KDBUS_ITEM_CREDS)
            .unwrap()
            .as_struct::<kdbus_creds>()
    });
    assert_eq!((c.uid, c.euid, c.gid, c.egid), (1234, 1234, 4321, 4321));
}

#[test]
fn exe_cmdline_cgroup_caps_audit() {
    let bus = Bus::new();
    let (a, b) = pair(&bus, _KDBUS_ATTACH_ALL, _KDBUS_ATTACH_ALL);
    a.send(&MsgBuilder::new(b.id)).unwrap();
    let m = b.recv_msg();

    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(m.item(KDBUS_ITEM_EXE).unwrap().str(), exe.to_str().unwrap());

    // the whole argument vector, NUL-separated (not only argv[0])
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
    assert_eq!(m.item(KDBUS_ITEM_CMDLINE).unwrap().data, cmdline);
    assert!(cmdline.iter().filter(|&&c| c == 0).count() >= 1);

    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = cg.lines().next().unwrap().splitn(3, ':').nth(2).unwrap();
    assert_eq!(m.item(KDBUS_ITEM_CGROUP).unwrap().str(), path);

    let caps = m.item(KDBUS_ITEM_CAPS).unwrap();
    assert_eq!(
        caps.data.len(),
        4 + 4 * 2 * 4,
        "last_cap + 4 sets of 2 words"
    );
    let w: Vec<u32> = caps
        .data
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    let last_cap = w[0];
    assert!(last_cap >= 40);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(w[5] as u64 | (w[6] as u64) << 32, eff, "effective set");

    let audit: kdbus_audit = m.item(KDBUS_ITEM_AUDIT).unwrap().as_struct();
    let loginuid: u32 = std::fs::read_to_string("/proc/self/loginuid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(audit.loginuid, loginuid);

    // the LSM label, where an LSM provides one
    let attr = std::fs::read_to_string("/proc/self/attr/current").unwrap_or_default();
    if !attr.trim().is_empty() {
        let label = m.item(KDBUS_ITEM_SECLABEL).expect("seclabel with an LSM");
        assert_eq!(
            label.str().trim_end(),
            attr.trim_end_matches('\0').trim_end()
        );
    }
}

#[test]
fn timestamps_and_sequence_numbers() {
    let bus = Bus::new();
    let (a, b) = pair(&bus, 0, KDBUS_ATTACH_TIMESTAMP);
    let before = now_ns();
    a.send(&MsgBuilder::new(b.id)).unwrap();
    a.send(&MsgBuilder::new(b.id)).unwrap();
    let after = now_ns();
    let t1: kdbus_timestamp = b.recv_msg().item(KDBUS_ITEM_TIMESTAMP).unwrap().as_struct();
    let t2: kdbus_timestamp = b.recv_msg().item(KDBUS_ITEM_TIMESTAMP).unwrap().as_struct();
    assert!(before <= t1.monotonic_ns && t2.monotonic_ns <= after);
    assert!(t2.seqnum > t1.seqnum);
    assert!(t1.realtime_ns > 1_600_000_000_000_000_000);
}

#[test]
fn names_are_those_owned_at_send_time() {
    let bus = Bus::new();
    let (a, b) = pair(&bus, 0, KDBUS_ATTACH_NAMES);
    let c = bus.conn();
    c.acquire("org.meta.q", 0).unwrap();
    a.acquire("org.meta.one", KDBUS_NAME_ALLOW_REPLACEMENT)
        .unwrap();
    a.acquire("org.meta.q", KDBUS_NAME_QUEUE).unwrap();
    a.send(&MsgBuilder::new(b.id)).unwrap();
    let m = b.recv_msg();
    let names: Vec<(u64, String)> = m
        .items_of(KDBUS_ITEM_OWNED_NAME)
        .iter()
        .map(|i| i.name())
        .collect();
    assert_eq!(
        names,
        [(
            KDBUS_NAME_ALLOW_REPLACEMENT | KDBUS_NAME_PRIMARY,
            "org.meta.one".to_owned()
        )],
        "queued names are not listed"
    );
}

#[test]
fn conn_info_metadata_is_that_of_hello() {
    let bus = Bus::new();
    let ep = bus.endpoint();
    let conn = as_user(1000, 1000, move || Hello::new().connect(&ep).unwrap());
    // the connection outlives the thread of another user: its data stays
    let q = bus.conn();
    let info = q.conn_info(conn.id, None, _KDBUS_ATTACH_ALL).unwrap();
    let c: kdbus_creds = info.item(KDBUS_ITEM_CREDS).unwrap().as_struct();
    assert_eq!(c.uid, 1000);
    assert!(info.item(KDBUS_ITEM_PID_COMM).is_some());
    assert!(info.item(KDBUS_ITEM_TIMESTAMP).is_none());
}

#[test]
fn faked_metadata_of_an_owner() {
    let bus = Bus::new();
    let creds = kdbus_creds {
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
    let pids = kdbus_pids {
        pid: me,
        tid: me,
        ppid: 1,
    };
    let f = Hello::new()
        .item(item_struct(KDBUS_ITEM_CREDS, &creds))
        .item(item_struct(KDBUS_ITEM_PIDS, &pids))
        .item(item_str(KDBUS_ITEM_SECLABEL, "faked_t"))
        .description("faker")
        .connect(&bus.endpoint())
        .unwrap();
    let q = bus.conn();
    let info = q.conn_info(f.id, None, _KDBUS_ATTACH_ALL).unwrap();
    assert_eq!(
        info.item(KDBUS_ITEM_CREDS)
            .unwrap()
            .as_struct::<kdbus_creds>(),
        creds
    );
    assert_eq!(
        info.item(KDBUS_ITEM_PIDS)
            .unwrap()
            .as_struct::<kdbus_pids>(),
        pids
    );
    assert_eq!(info.item(KDBUS_ITEM_SECLABEL).unwrap().str(), "faked_t");
    assert!(
        info.item(KDBUS_ITEM_PID_COMM).is_none(),
        "no real process data"
    );

    // messages of a faking connection carry no process metadata
    f.send(&MsgBuilder::new(q.id)).unwrap();
    let m = q.recv_msg();
    assert_eq!(
        types(&m),
        [KDBUS_ITEM_CONN_DESCRIPTION, KDBUS_ITEM_TIMESTAMP]
    );

    // unknown ids (-1) are passed as such
    let unknown = kdbus_creds {
        uid: u32::MAX as u64,
        ..creds
    };
    let g = Hello::new()
        .item(item_struct(KDBUS_ITEM_CREDS, &unknown))
        .connect(&bus.endpoint())
        .unwrap();
    let info = q.conn_info(g.id, None, KDBUS_ATTACH_CREDS).unwrap();
    assert_eq!(
        info.item(KDBUS_ITEM_CREDS)
            .unwrap()
            .as_struct::<kdbus_creds>()
            .uid,
        u32::MAX as u64
    );
}

#[test]
fn implicit_set_is_what_the_module_documents() {
    assert_eq!(IMPLICIT, 0x201f);
}
