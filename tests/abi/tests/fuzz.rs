//! Randomized and malformed arguments for every command: sizes, flags,
//! item chains, offsets, pointers, fds, message layouts. Every call must
//! return 0 or a kdbus errno; the kernel log must stay clean (checked by
//! the VM harness) and nothing may leak.
//!
//! The seed is printed; KDBUS_FUZZ_SEED=<n> repeats a run.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use kdbus::abi::*;
use kdbus_abi_tests::conn::open_node;
use kdbus_abi_tests::raw::{self, item, Buf};
use kdbus_abi_tests::*;
use rustix::io::Errno;

const ITERATIONS: usize = 4000;

/// Every errno the kdbus ABI documents (spec §17), plus ENOMEM.
const KDBUS_ERRNOS: &[Errno] = &[
    Errno::BADFD,
    Errno::NOTTY,
    Errno::FAULT,
    Errno::INVAL,
    Errno::MSGSIZE,
    Errno::TOOBIG,
    Errno::NAMETOOLONG,
    Errno::EXIST,
    Errno::PERM,
    Errno::OPNOTSUPP,
    Errno::MFILE,
    Errno::NOBUFS,
    Errno::XFULL,
    Errno::COMM,
    Errno::REMOTEIO,
    Errno::NXIO,
    Errno::SRCH,
    Errno::ADDRINUSE,
    Errno::REMCHG,
    Errno::ADDRNOTAVAIL,
    Errno::DESTADDRREQ,
    Errno::NOTUNIQ,
    Errno::BADMSG,
    Errno::DOM,
    Errno::MEDIUMTYPE,
    Errno::TXTBSY,
    Errno::BADF,
    Errno::BADSLT,
    Errno::MLINK,
    Errno::TIMEDOUT,
    Errno::CANCELED,
    Errno::PIPE,
    Errno::CONNRESET,
    Errno::SHUTDOWN,
    Errno::BUSY,
    Errno::AGAIN,
    Errno::ALREADY,
    Errno::NOMEM,
];

struct Cmd {
    nr: u32,
    fixed: usize,
    items: &'static [u64],
}

const CMDS: &[Cmd] = &[
    Cmd {
        nr: KDBUS_CMD_BUS_MAKE,
        fixed: 24,
        items: &[1, 7, 11, 12],
    },
    Cmd {
        nr: KDBUS_CMD_ENDPOINT_MAKE,
        fixed: 24,
        items: &[1, 11],
    },
    Cmd {
        nr: KDBUS_CMD_ENDPOINT_UPDATE,
        fixed: 24,
        items: &[1, 15, 0x2000],
    },
    Cmd {
        nr: KDBUS_CMD_HELLO,
        fixed: 96,
        items: &[1, 15, 0x1001, 0x1002, 0x100b, 0x100d, 0x2000],
    },
    Cmd {
        nr: KDBUS_CMD_UPDATE,
        fixed: 24,
        items: &[1, 12, 13, 15, 0x2000],
    },
    Cmd {
        nr: KDBUS_CMD_BYEBYE,
        fixed: 24,
        items: &[1],
    },
    Cmd {
        nr: KDBUS_CMD_FREE,
        fixed: 32,
        items: &[1],
    },
    Cmd {
        nr: KDBUS_CMD_CONN_INFO,
        fixed: 56,
        items: &[1, 15],
    },
    Cmd {
        nr: KDBUS_CMD_BUS_CREATOR_INFO,
        fixed: 56,
        items: &[1],
    },
    Cmd {
        nr: KDBUS_CMD_LIST,
        fixed: 40,
        items: &[1],
    },
    Cmd {
        nr: KDBUS_CMD_SEND,
        fixed: 56,
        items: &[1, 6],
    },
    Cmd {
        nr: KDBUS_CMD_RECV,
        fixed: 64,
        items: &[1],
    },
    Cmd {
        nr: KDBUS_CMD_NAME_ACQUIRE,
        fixed: 24,
        items: &[1, 15],
    },
    Cmd {
        nr: KDBUS_CMD_NAME_RELEASE,
        fixed: 24,
        items: &[1, 15],
    },
    Cmd {
        nr: KDBUS_CMD_MATCH_ADD,
        fixed: 32,
        items: &[1, 9, 14, 15, 16, 0x8000, 0x8001, 0x8002, 0x8003, 0x8004],
    },
    Cmd {
        nr: KDBUS_CMD_MATCH_REMOVE,
        fixed: 32,
        items: &[1],
    },
];

const MSG_ITEMS: &[u64] = &[1, 2, 4, 5, 8, 10];

const ALL_TYPES: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    0x1000,
    0x1001,
    0x1002,
    0x1003,
    0x1004,
    0x1005,
    0x1006,
    0x1007,
    0x1008,
    0x1009,
    0x100a,
    0x100b,
    0x100c,
    0x100d,
    0x100e,
    0x2000,
    0x2001,
    0x8000,
    0x8001,
    0x8002,
    0x8003,
    0x8004,
    0x8005,
    0x8006,
    0x8007,
    u64::MAX,
];

/// Values that hit boundaries more often than uniform randomness.
fn interesting_u64(rng: &mut fastrand::Rng, known: &[u64]) -> u64 {
    match rng.u8(..10) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.u64(..4097),
        3 => 1 << rng.u32(..64),
        4 | 5 if !known.is_empty() => known[rng.usize(..known.len())],
        6 => (1 << rng.u32(..64)) - 1,
        7 => rng.u64(..) & 0xffff_ffff,
        _ => rng.u64(..),
    }
}

fn random_str(rng: &mut fastrand::Rng) -> Vec<u8> {
    let pool: &[&[u8]] = &[
        b"org.fuzz.name",
        b"0-fuzz",
        b"a.b",
        b"org.fuzz.*",
        b"bad",
        b"",
        b"..",
        b"org..x",
        b"0-\xff\xfe",
    ];
    let mut s = if rng.bool() {
        pool[rng.usize(..pool.len())].to_vec()
    } else {
        (0..rng.usize(..300)).map(|_| rng.u8(..)).collect()
    };
    match rng.u8(..4) {
        0 => {}
        1 => s.push(0),
        _ => {
            s.push(0);
            let pad = rng.usize(..3);
            s.resize(s.len() + pad, 0);
        }
    }
    s
}

/// A random item: a type (often one the command accepts), a payload
/// that may or may not fit it, and a size field that may lie.
fn random_item(rng: &mut fastrand::Rng, types: &[u64], ctx: &Ctx) -> Vec<u8> {
    let ty = if rng.u8(..4) > 0 {
        types[rng.usize(..types.len())]
    } else {
        ALL_TYPES[rng.usize(..ALL_TYPES.len())]
    };
    let payload: Vec<u8> = match (ty, rng.u8(..3)) {
        (10 | 11 | 15 | 0x100b | 0x100d, 0 | 1) => random_str(rng),
        (2, 0 | 1) => {
            // a vec pointing at something readable, unreadable or absurd
            let addr = match rng.u8(..5) {
                0 => 0,
                1 => ctx.data.as_ptr() as u64 + rng.u64(..64),
                2 => ctx.guard.none_page() as u64 - rng.u64(..32),
                3 => 0xffff_8000_0000_0000 | rng.u64(..),
                _ => rng.u64(..),
            };
            let size = if rng.bool() {
                rng.u64(..128)
            } else {
                interesting_u64(rng, &[])
            };
            [size.to_ne_bytes(), addr.to_ne_bytes()].concat()
        }
        (4, 0 | 1) => {
            let fd = ctx.fds[rng.usize(..ctx.fds.len())];
            let m = kdbus_memfd {
                start: interesting_u64(rng, &[0, 1, 8]),
                size: interesting_u64(rng, &[1, 8, 16]),
                fd,
                __pad: rng.u32(..),
            };
            raw::struct_bytes(&m).to_vec()
        }
        (5 | 6, 0 | 1) => (0..rng.usize(..20))
            .flat_map(|_| ctx.fds[rng.usize(..ctx.fds.len())].to_ne_bytes())
            .collect(),
        (8 | 9, 0 | 1) => {
            let n = [0usize, 1, 7, 8, 9, 16, 17][rng.usize(..7)];
            (0..n).flat_map(|_| rng.u64(..).to_ne_bytes()).collect()
        }
        (1, 0 | 1) => (0..rng.usize(..8))
            .flat_map(|_| ALL_TYPES[rng.usize(..ALL_TYPES.len())].to_ne_bytes())
            .collect(),
        (12 | 13 | 14 | 16, 0 | 1) => interesting_u64(rng, &ctx.ids).to_ne_bytes().to_vec(),
        (0x2000, 0 | 1) => {
            let a = kdbus_policy_access {
                type_: rng.u64(..5),
                access: rng.u64(..4),
                id: interesting_u64(rng, &[0, 1000]),
            };
            raw::struct_bytes(&a).to_vec()
        }
        (0x8000..=0x8004, 0 | 1) => {
            let mut p: Vec<u8> = (0..4)
                .flat_map(|_| interesting_u64(rng, &ctx.ids).to_ne_bytes())
                .collect();
            if ty <= 0x8002 && rng.bool() {
                p.extend(random_str(rng));
            } else if ty > 0x8002 {
                p.truncate(16);
            }
            p
        }
        _ => (0..rng.usize(..80)).map(|_| rng.u8(..)).collect(),
    };
    let mut it = item(ty, &payload);
    // lie about the size now and then
    match rng.u8(..12) {
        0 => it[..8].copy_from_slice(&rng.u64(..32).to_ne_bytes()),
        1 => {
            let lie = it.len() as u64 + rng.u64(1..64);
            it[..8].copy_from_slice(&lie.to_ne_bytes());
        }
        2 => it[..8].copy_from_slice(&u64::MAX.to_ne_bytes()),
        3 => it.truncate(rng.usize(..it.len() + 1)),
        _ => {}
    }
    it
}

/// Resources the fuzzer points into.
struct Ctx {
    data: Vec<u8>,
    guard: GuardPage,
    fds: Vec<i32>,
    ids: Vec<u64>,
    offsets: Vec<u64>,
    _keep: Vec<OwnedFd>,
}

/// A random message for SEND, stored in `msg`.
fn random_msg(rng: &mut fastrand::Rng, ctx: &Ctx, sync: bool) -> Buf {
    let mut hdr = kdbus_msg {
        flags: if rng.bool() {
            rng.u64(..8)
        } else {
            interesting_u64(rng, &[])
        },
        priority: rng.i64(..),
        dst_id: interesting_u64(rng, &ctx.ids),
        src_id: if rng.u8(..4) == 0 {
            interesting_u64(rng, &ctx.ids)
        } else {
            0
        },
        payload_type: if rng.u8(..5) == 0 {
            0
        } else {
            KDBUS_PAYLOAD_DBUS
        },
        cookie: rng.u64(..),
        timeout_ns_or_cookie_reply: interesting_u64(rng, &[]),
        ..Default::default()
    };
    if sync {
        // a synchronous call must not block the fuzzer for long
        hdr.flags |= KDBUS_MSG_EXPECT_REPLY;
        hdr.flags &= !KDBUS_MSG_SIGNAL;
        hdr.timeout_ns_or_cookie_reply = now_ns() + rng.u64(..20_000_000);
    }
    let items: Vec<Vec<u8>> = (0..rng.usize(..6))
        .map(|_| random_item(rng, MSG_ITEMS, ctx))
        .collect();
    raw::cmd(&hdr, &items)
}

/// A valid command of its kind, to be mutated a little.
fn valid_cmd(rng: &mut fastrand::Rng, c: &Cmd, ctx: &Ctx, msg: &mut Option<Buf>) -> Buf {
    use kdbus_abi_tests::raw::{item_str, item_struct, item_u64};
    let n = rng.u32(..8);
    match c.nr {
        KDBUS_CMD_BUS_MAKE => kdbus_abi_tests::conn::bus_make_cmd(
            &format!("{}-fz{n}", rustix::process::geteuid().as_raw()),
            rng.u64(..4),
            &[item_u64(KDBUS_ITEM_ATTACH_FLAGS_SEND, rng.u64(..0x4000))],
        ),
        KDBUS_CMD_ENDPOINT_MAKE => raw::cmd(
            &kdbus_cmd::default(),
            &[item_str(
                KDBUS_ITEM_MAKE_NAME,
                &format!("{}-fzep{n}", rustix::process::geteuid().as_raw()),
            )],
        ),
        KDBUS_CMD_ENDPOINT_UPDATE | KDBUS_CMD_UPDATE => raw::cmd(
            &kdbus_cmd::default(),
            &[
                item_u64(KDBUS_ITEM_ATTACH_FLAGS_SEND, rng.u64(..0x4000)),
                item_str(KDBUS_ITEM_NAME, &format!("org.fuzz.p{n}")),
                item_struct(
                    KDBUS_ITEM_POLICY_ACCESS,
                    &kdbus_policy_access {
                        type_: rng.u64(1..4),
                        access: rng.u64(..3),
                        id: rng.u64(..2000),
                    },
                ),
            ],
        ),
        KDBUS_CMD_HELLO => Hello::new()
            .flags(rng.u64(..16))
            .pool_size(4096 * rng.u64(1..16))
            .name(&format!("org.fuzz.h{n}"))
            .description(&format!("fuzz{n}"))
            .buf(),
        KDBUS_CMD_FREE => raw::cmd(
            &kdbus_cmd_free {
                offset: ctx.offsets.last().copied().unwrap_or(0),
                ..Default::default()
            },
            &[],
        ),
        KDBUS_CMD_CONN_INFO | KDBUS_CMD_BUS_CREATOR_INFO => raw::cmd(
            &kdbus_cmd_info {
                id: ctx.ids[rng.usize(..ctx.ids.len())],
                attach_flags: rng.u64(..0x4000),
                ..Default::default()
            },
            &[item_str(KDBUS_ITEM_NAME, "org.fuzz.name")],
        ),
        KDBUS_CMD_LIST => raw::cmd(
            &kdbus_cmd_list {
                flags: rng.u64(..16),
                ..Default::default()
            },
            &[],
        ),
        KDBUS_CMD_SEND => {
            let b = MsgBuilder::new(ctx.ids[rng.usize(..ctx.ids.len())])
                .vec(&ctx.data[..rng.usize(1..256)]);
            let b = match rng.u8(..4) {
                0 => b
                    .flags(KDBUS_MSG_SIGNAL)
                    .bloom(rng.u64(..3), &[rng.u64(..); 8]),
                1 => b.dst_name("org.fuzz.name"),
                2 => b.expect_reply(now_ns() + rng.u64(..10_000_000)),
                _ => b.vec_padding(rng.u64(1..16)),
            };
            let m = b.build();
            let c = raw::cmd(
                &kdbus_cmd_send {
                    flags: if rng.u8(..4) == 0 {
                        KDBUS_SEND_SYNC_REPLY
                    } else {
                        0
                    },
                    msg_address: m.addr(),
                    ..Default::default()
                },
                &[],
            );
            *msg = Some(m);
            c
        }
        KDBUS_CMD_RECV => raw::cmd(
            &kdbus_cmd_recv {
                flags: rng.u64(..8),
                priority: rng.i64(..),
                ..Default::default()
            },
            &[],
        ),
        KDBUS_CMD_NAME_ACQUIRE | KDBUS_CMD_NAME_RELEASE => raw::cmd(
            &kdbus_cmd {
                flags: rng.u64(..8),
                ..Default::default()
            },
            &[item_str(KDBUS_ITEM_NAME, &format!("org.fuzz.n{n}"))],
        ),
        KDBUS_CMD_MATCH_ADD => raw::cmd(
            &kdbus_cmd_match {
                flags: rng.u64(..2),
                cookie: n as u64,
                ..Default::default()
            },
            &[
                item_u64(KDBUS_ITEM_ID, ctx.ids[rng.usize(..ctx.ids.len())]),
                item(KDBUS_ITEM_BLOOM_MASK, &[0u8; 64]),
            ],
        ),
        _ => raw::cmd(
            &kdbus_cmd_match {
                cookie: n as u64,
                ..Default::default()
            },
            &[],
        ),
    }
}

/// A few random changes to the bytes of a command (or its message).
fn mutate(rng: &mut fastrand::Rng, b: &mut Buf) {
    let len = b.len();
    for _ in 0..rng.usize(..4) {
        match rng.u8(..4) {
            // flip a bit (not in the size field: that is tested elsewhere)
            0 if len > 8 => {
                let i = rng.usize(8..len);
                b.bytes_mut()[i] ^= 1 << rng.u32(..8);
            }
            // an interesting word
            1 if len >= 16 => {
                let w = rng.usize(1..len / 8);
                b.set_u64(w * 8, interesting_u64(rng, &[]));
            }
            // a random byte
            2 if len > 8 => {
                let i = rng.usize(8..len);
                b.bytes_mut()[i] = rng.u8(..);
            }
            _ => {}
        }
    }
}

fn random_cmd(rng: &mut fastrand::Rng, c: &Cmd, ctx: &Ctx, msg: &mut Option<Buf>) -> Buf {
    if rng.bool() {
        let mut b = valid_cmd(rng, c, ctx, msg);
        if rng.u8(..4) > 0 {
            match msg.as_mut() {
                Some(m) if rng.bool() => mutate(rng, m),
                _ => mutate(rng, &mut b),
            }
        }
        // a synchronous call must not block the fuzzer for long
        if let Some(m) = msg.as_mut() {
            if b.u64_at(8) & KDBUS_SEND_SYNC_REPLY != 0 && m.len() >= 64 {
                m.set_u64(8, m.u64_at(8) | KDBUS_MSG_EXPECT_REPLY);
                m.set_u64(56, now_ns() + 10_000_000);
            }
        }
        return b;
    }

    let mut fixed = vec![0u8; c.fixed];
    for w in fixed.chunks_exact_mut(8).skip(1) {
        let v = if rng.bool() {
            0
        } else {
            interesting_u64(rng, &ctx.ids)
        };
        w.copy_from_slice(&v.to_ne_bytes());
    }
    // flags: mostly plausible, sometimes anything
    let flags = match rng.u8(..6) {
        0 => interesting_u64(rng, &[]),
        1 => KDBUS_FLAG_NEGOTIATE | rng.u64(..16),
        _ => rng.u64(..16),
    };
    fixed[8..16].copy_from_slice(&flags.to_ne_bytes());
    match c.nr {
        KDBUS_CMD_FREE if !ctx.offsets.is_empty() && rng.bool() => {
            let off = ctx.offsets[rng.usize(..ctx.offsets.len())];
            fixed[24..32].copy_from_slice(&off.to_ne_bytes());
        }
        KDBUS_CMD_HELLO => {
            // mostly a usable pool size
            let ps = match rng.u8(..4) {
                0 => interesting_u64(rng, &[]),
                _ => 4096 * rng.u64(1..64),
            };
            fixed[56..64].copy_from_slice(&ps.to_ne_bytes());
        }
        KDBUS_CMD_SEND => {
            let sync = flags & KDBUS_SEND_SYNC_REPLY != 0;
            let m = random_msg(rng, ctx, sync);
            let addr = match rng.u8(..8) {
                0 => 0,
                1 => ctx.guard.none_page() as u64,
                2 => m.addr() + 1 + rng.u64(..7),
                _ => m.addr(),
            };
            fixed[24..32].copy_from_slice(&addr.to_ne_bytes());
            *msg = Some(m);
        }
        _ => {}
    }
    let items: Vec<Vec<u8>> = (0..rng.usize(..5))
        .map(|_| random_item(rng, c.items, ctx))
        .collect();
    let mut b = raw::cmd_bytes(&fixed, &items);
    // sometimes the size field lies too
    match rng.u8(..10) {
        0 => b.set_u64(0, rng.u64(..c.fixed as u64 + 8)),
        1 => {
            let len = b.len() as u64;
            b.set_u64(0, len.saturating_sub(rng.u64(..16)));
        }
        _ => {}
    }
    b
}

fn setup(bus: &Bus, nr: u32) -> Option<OwnedFd> {
    Some(match nr {
        KDBUS_CMD_BUS_MAKE => open_node(&bus.domain.control()).unwrap(),
        KDBUS_CMD_ENDPOINT_MAKE | KDBUS_CMD_HELLO => open_node(&bus.endpoint()).unwrap(),
        KDBUS_CMD_ENDPOINT_UPDATE => {
            let fd = open_node(&bus.endpoint()).unwrap();
            let name = format!(
                "{}-fuzz{}",
                rustix::process::geteuid().as_raw(),
                fastrand::u32(..)
            );
            let mut c = raw::cmd(
                &kdbus_cmd::default(),
                &[raw::item_str(KDBUS_ITEM_MAKE_NAME, &name)],
            );
            raw::ioctl(fd.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut c).ok()?;
            fd
        }
        _ => return None,
    })
}

#[test]
fn random_and_malformed_arguments() {
    let seed = std::env::var("KDBUS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("fuzz: seed {seed} (KDBUS_FUZZ_SEED={seed} repeats this run)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let base = kdbus_objects();
    let start = Instant::now();
    let mut calls = 0usize;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    {
        let bus = Bus::new();
        let peer = bus.conn();
        peer.acquire("org.fuzz.name", 0).unwrap();
        peer.match_all();
        let (pr, pw) = rustix::pipe::pipe().unwrap();
        let memfd =
            rustix::fs::memfd_create("fuzz", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::io::write(&memfd, &[0u8; 64]).unwrap();
        rustix::fs::fcntl_add_seals(
            &memfd,
            rustix::fs::SealFlags::SHRINK
                | rustix::fs::SealFlags::GROW
                | rustix::fs::SealFlags::WRITE
                | rustix::fs::SealFlags::SEAL,
        )
        .unwrap();
        let mut conn = bus.conn();
        let mut ctx = Ctx {
            data: vec![0x42; 4096],
            guard: GuardPage::new(),
            fds: vec![
                -1,
                0,
                9999,
                pr.as_raw_fd(),
                pw.as_raw_fd(),
                memfd.as_raw_fd(),
                peer.raw_fd(),
                conn.raw_fd(),
            ],
            ids: vec![0, peer.id, conn.id, KDBUS_DST_ID_BROADCAST, bus.conn().id],
            offsets: Vec::new(),
            _keep: vec![pr, pw, memfd],
        };

        for c in CMDS {
            for _ in 0..ITERATIONS {
                // keep something around to work on
                if rng.u8(..8) == 0 {
                    let _ =
                        peer.send(&MsgBuilder::new(conn.id).vec(&ctx.data[..rng.usize(1..100)]));
                }
                let fresh = setup(&bus, c.nr);
                let fd = fresh.as_ref().map(|f| f.as_fd()).unwrap_or(conn.fd());
                let mut msg = None;
                let mut b = random_cmd(&mut rng, c, &ctx, &mut msg);
                let r = match rng.u8(..12) {
                    // unaligned
                    0 => {
                        let bytes = b.bytes().to_vec();
                        let mut shifted = Buf::zeroed(bytes.len() + 8);
                        shifted.bytes_mut()[4..4 + bytes.len()].copy_from_slice(&bytes);
                        raw::ioctl_at(fd, c.nr, &mut shifted, 4)
                    }
                    // running into an inaccessible page
                    1 => ctx.guard.ioctl_at_end(fd, c.nr, &b.bytes()[..b.len() & !7]),
                    _ if b.u64_at(0) as usize > b.storage() => {
                        ctx.guard.ioctl_at_end(fd, c.nr, &b.bytes()[..b.len() & !7])
                    }
                    _ => raw::ioctl(fd, c.nr, &mut b),
                };
                drop(msg);
                calls += 1;
                let key = match &r {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => {
                        assert!(
                            KDBUS_ERRNOS.contains(e),
                            "command {:#x} returned {e} (seed {seed})",
                            c.nr
                        );
                        format!("{e}")
                    }
                };
                *outcomes.entry(key).or_default() += 1;
                // RECV results give offsets to FREE later
                if c.nr == KDBUS_CMD_RECV && r.is_ok() {
                    ctx.offsets.push(b.u64_at(40));
                }
                // a fuzzed BYEBYE or teardown may kill the connection
                if conn.list(0).is_err() {
                    conn = bus.conn();
                    ctx.ids.push(conn.id);
                }
            }
        }

        // the bus still works
        let a = bus.conn();
        let z = bus.conn();
        a.send(&MsgBuilder::new(z.id).vec(b"after fuzzing"))
            .unwrap();
        assert_eq!(z.recv_msg().payload(), b"after fuzzing");
    }
    eprintln!("fuzz: {calls} calls in {:?}: {outcomes:?}", start.elapsed());
    assert!(outcomes.get("ok").copied().unwrap_or(0) > 0);

    let deadline = Instant::now() + Duration::from_secs(10);
    while kdbus_objects() != base && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(kdbus_objects(), base, "objects leaked (seed {seed})");
}
