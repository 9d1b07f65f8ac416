//! Many connections in several threads sending, receiving, calling,
//! acquiring and releasing names while others disconnect, say BYEBYE on
//! connections in use, or tear the whole bus down. Nothing may oops, hang
//! or leak: afterwards the module's object counters, its reference count
//! and the shmem usage are back where they were.
//!
//! This binary holds a single test, so nothing else runs while it
//! compares the counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kdbus::abi::*;
use kdbus_abi_tests::*;
use rustix::io::Errno;

const NAMES: &[&str] = &["org.c.a", "org.c.b", "org.c.c", "org.c.d"];

/// Errnos a racing operation may legitimately get.
fn expected(e: Errno) -> bool {
    [
        Errno::NXIO,
        Errno::SRCH,
        Errno::CONNRESET,
        Errno::SHUTDOWN,
        Errno::AGAIN,
        Errno::EXIST,
        Errno::ADDRINUSE,
        Errno::BADSLT,
        Errno::BUSY,
        Errno::NOBUFS,
        Errno::XFULL,
        Errno::TIMEDOUT,
        Errno::PIPE,
        Errno::MLINK,
        Errno::PERM,
    ]
    .contains(&e)
}

fn check<T>(what: &str, r: Result<T, Errno>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if expected(e) => None,
        Err(e) => panic!("{what}: unexpected {e}"),
    }
}

fn shmem_kib() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Shmem:"))
        .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap())
        .unwrap()
}

fn refcnt() -> i64 {
    std::fs::read_to_string("/sys/module/kdbus/refcnt")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits until the counters are back (teardown of files is deferred a
/// little: fput() of pools and dentries).
fn settle(base: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    let start = Instant::now();
    loop {
        let now = kdbus_objects();
        if &now == base || start.elapsed() > Duration::from_secs(10) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Shared {
    ids: Mutex<Vec<u64>>,
    stop: AtomicBool,
    ops: AtomicU64,
}

fn worker(bus: Arc<Bus>, sh: Arc<Shared>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let connect = || {
        let c = Hello::new()
            .pool_size(256 * 1024)
            .connect(&bus.endpoint())
            .unwrap();
        let mut ids = sh.ids.lock().unwrap();
        ids.push(c.id);
        // remember the recent ones; older ids are mostly gone anyway
        if ids.len() > 64 {
            ids.remove(0);
        }
        c
    };
    let mut conn = Some(connect());
    let payload = vec![0x5au8; 512];
    while !sh.stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_ref() else {
            conn = Some(connect());
            continue;
        };
        let peer = {
            let ids = sh.ids.lock().unwrap();
            ids[rng.usize(..ids.len())]
        };
        let name = NAMES[rng.usize(..NAMES.len())];
        sh.ops.fetch_add(1, Ordering::Relaxed);
        match rng.u8(..14) {
            0..=2 => {
                check(
                    "send",
                    c.send(&MsgBuilder::new(peer).vec(&payload[..rng.usize(1..512)])),
                );
            }
            3 => {
                check(
                    "send to name",
                    c.send(&MsgBuilder::to_name(name).vec(&payload[..8])),
                );
            }
            4 => {
                check(
                    "broadcast",
                    c.send(&MsgBuilder::signal(
                        KDBUS_DST_ID_BROADCAST,
                        BLOOM_SIZE as usize,
                    )),
                );
            }
            5 => {
                check(
                    "call",
                    c.send(&MsgBuilder::to_name(name).expect_reply(deadline_ms(rng.u64(1..50)))),
                );
            }
            6 => {
                check(
                    "sync call",
                    c.call(&MsgBuilder::to_name(name).expect_reply(deadline_ms(rng.u64(1..30)))),
                );
            }
            7 => {
                let flags = rng.u64(..8) & 7;
                check("acquire", c.acquire(name, flags));
            }
            8 => {
                check("release", c.release(name));
            }
            9 => {
                // answer calls, drop the rest
                while let Some(m) = check("recv", c.recv()) {
                    if m.hdr.flags & KDBUS_MSG_EXPECT_REPLY != 0 {
                        check(
                            "reply",
                            c.send(&MsgBuilder::new(m.hdr.src_id).reply_to(m.hdr.cookie)),
                        );
                    }
                }
            }
            10 => {
                if rng.bool() {
                    check("match add", c.match_add(0, 0, &[]));
                } else {
                    check("match remove", c.match_remove(0));
                }
            }
            11 => {
                check(
                    "list",
                    c.list(KDBUS_LIST_UNIQUE | KDBUS_LIST_NAMES | KDBUS_LIST_QUEUED),
                );
                check("conn info", c.conn_info(peer, None, _KDBUS_ATTACH_ALL));
            }
            12 => {
                // exit when idle, or just go away
                if rng.bool() {
                    c.drain();
                    if check("byebye", c.byebye()).is_some() {
                        conn = None;
                    }
                } else {
                    conn = None;
                }
            }
            _ => {
                check("peek", c.recv_with(KDBUS_RECV_PEEK, 0));
                check("drop", c.recv_with(KDBUS_RECV_DROP, 0));
            }
        }
    }
}

/// BYEBYE on a connection while other threads use it.
fn byebye_racer(bus: Arc<Bus>, sh: Arc<Shared>) {
    while !sh.stop.load(Ordering::Relaxed) {
        let Ok(c) = Hello::new().pool_size(64 * 1024).connect(&bus.endpoint()) else {
            return;
        };
        let c = Arc::new(c);
        let users: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        check("racing send", c.send(&MsgBuilder::new(c.id)));
                        check("racing recv", c.recv());
                        check("racing acquire", c.acquire("org.c.race", KDBUS_NAME_QUEUE));
                        check(
                            "racing call",
                            c.call(&MsgBuilder::new(c.id).expect_reply(deadline_ms(5))),
                        );
                    }
                })
            })
            .collect();
        for _ in 0..20 {
            c.drain();
            if check("byebye", c.byebye()).is_some() {
                break;
            }
        }
        for u in users {
            u.join().unwrap();
        }
    }
}

/// A second bus whose owner goes away while its connections are busy.
fn bus_teardown(domain: Arc<Domain>, sh: Arc<Shared>) {
    let mut round = 0;
    while !sh.stop.load(Ordering::Relaxed) {
        round += 1;
        let bus = Arc::new(Bus::make_in(&domain, &format!("short{round}"), 0, &[]).unwrap());
        let busy: Vec<_> = (0..3)
            .map(|i| {
                let (bus, sh) = (bus.clone(), sh.clone());
                std::thread::spawn(move || {
                    let Ok(c) = Hello::new().pool_size(64 * 1024).connect(&bus.endpoint()) else {
                        return;
                    };
                    drop(bus);
                    check("acquire", c.acquire(NAMES[i], 0));
                    for _ in 0..200 {
                        if sh.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        check("send", c.send(&MsgBuilder::to_name(NAMES[(i + 1) % 3])));
                        check("recv", c.recv());
                        check(
                            "call",
                            c.call(
                                &MsgBuilder::to_name(NAMES[(i + 2) % 3])
                                    .expect_reply(deadline_ms(5)),
                            ),
                        );
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        // the owner handle goes: bus, endpoint and connections with it
        drop(bus);
        for b in busy {
            b.join().unwrap();
        }
    }
}

#[test]
fn concurrent_use_races_and_teardown_leave_nothing_behind() {
    let base_refcnt = refcnt();
    let base_objects = kdbus_objects();
    assert!(
        base_objects.values().all(|&v| v == 0),
        "objects alive before the test: {base_objects:?}"
    );
    let base_shmem = shmem_kib();
    let seed = fastrand::u64(..);
    eprintln!("concurrency: seed {seed}");

    let bus = Arc::new(Bus::new());
    let domain = bus.domain.clone();
    let sh = Arc::new(Shared {
        ids: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
    });
    // someone answering calls on every name
    let mut threads: Vec<_> = (0..6)
        .map(|i| {
            let (bus, sh) = (bus.clone(), sh.clone());
            std::thread::spawn(move || worker(bus, sh, seed.wrapping_add(i)))
        })
        .collect();
    {
        let (bus, sh) = (bus.clone(), sh.clone());
        threads.push(std::thread::spawn(move || byebye_racer(bus, sh)));
    }
    {
        let sh = sh.clone();
        threads.push(std::thread::spawn(move || bus_teardown(domain, sh)));
    }

    std::thread::sleep(Duration::from_secs(15));
    sh.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a worker panicked");
    }
    let ops = sh.ops.load(Ordering::Relaxed);
    eprintln!("concurrency: {ops} operations");
    assert!(ops > 1000, "the workers made progress");

    // the bus still works
    {
        let a = bus.conn();
        let b = bus.conn();
        a.send(&MsgBuilder::new(b.id).vec(b"still alive")).unwrap();
        assert_eq!(b.recv_msg().payload(), b"still alive");
    }

    drop(sh);
    drop(bus);
    let after = settle(&base_objects);
    assert_eq!(after, base_objects, "kdbus objects leaked");
    let start = Instant::now();
    while refcnt() != base_refcnt && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(refcnt(), base_refcnt, "module reference count");
    let shmem = shmem_kib();
    assert!(
        shmem <= base_shmem + 1024,
        "shmem grew from {base_shmem} KiB to {shmem} KiB"
    );
}
