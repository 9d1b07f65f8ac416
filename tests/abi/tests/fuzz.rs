//! Randomized and malformed arguments for every command: sizes, flags,
//! item chains, offsets, pointers, fds, message layouts. Every call must
//! return 0 or a kdbus errno; the kernel log must stay clean (checked by
//! the VM harness) and nothing may leak.
//!
//! The seed is printed; KDBUS_FUZZ_SEED=<n> repeats a run.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use kdbus::abi::*;
use kdbus::raw::{self, Buf};
use kdbus::{
    own_name, AttachFlags, BloomFilter, BusBuilder, Destination, EndpointBuilder, Errno, ListFlags,
    MakeFlags, MatchRule, MessageBuilder, NameFlags,
};
use kdbus_abi_tests::fixture::items::{cmd, cmd_bytes, item, item_str, item_struct, item_u64};
use kdbus_abi_tests::fixture::*;
use kdbus_abi_tests::guard::GuardPage;
use kdbus_abi_tests::kdbus_objects;
use zerocopy::IntoBytes;

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
            m.as_bytes().to_vec()
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
            a.as_bytes().to_vec()
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
        hdr.timeout_ns_or_cookie_reply = deadline_ms(0) + rng.u64(..20_000_000);
    }
    let items: Vec<Vec<u8>> = (0..rng.usize(..6))
        .map(|_| random_item(rng, MSG_ITEMS, ctx))
        .collect();
    cmd(&hdr, &items)
}

/// A valid command of its kind, to be mutated a little.
fn valid_cmd(rng: &mut fastrand::Rng, c: &Cmd, ctx: &Ctx, msg: &mut Option<Buf>) -> Buf {
    let n = rng.u32(..8);
    match c.nr {
        KDBUS_CMD_BUS_MAKE => BusBuilder::new(own_name(&format!("fz{n}")))
            .bloom(BLOOM)
            .flags(MakeFlags::from_bits_retain(rng.u64(..4)))
            .creator_attach_flags(AttachFlags::from_bits_retain(rng.u64(..0x4000)))
            .encode()
            .unwrap(),
        KDBUS_CMD_ENDPOINT_MAKE => EndpointBuilder::new(own_name(&format!("fzep{n}")))
            .encode()
            .unwrap(),
        KDBUS_CMD_ENDPOINT_UPDATE | KDBUS_CMD_UPDATE => cmd(
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
        KDBUS_CMD_HELLO => cmd(
            &kdbus_cmd_hello {
                flags: rng.u64(..16),
                attach_flags_send: _KDBUS_ATTACH_ALL,
                attach_flags_recv: _KDBUS_ATTACH_ALL,
                pool_size: 4096 * rng.u64(1..16),
                ..Default::default()
            },
            &[
                item_str(KDBUS_ITEM_NAME, &format!("org.fuzz.h{n}")),
                item_str(KDBUS_ITEM_CONN_DESCRIPTION, &format!("fuzz{n}")),
            ],
        ),
        KDBUS_CMD_FREE => cmd(
            &kdbus_cmd_free {
                offset: ctx.offsets.last().copied().unwrap_or(0),
                ..Default::default()
            },
            &[],
        ),
        KDBUS_CMD_CONN_INFO | KDBUS_CMD_BUS_CREATOR_INFO => cmd(
            &kdbus_cmd_info {
                id: ctx.ids[rng.usize(..ctx.ids.len())],
                attach_flags: rng.u64(..0x4000),
                ..Default::default()
            },
            &[item_str(KDBUS_ITEM_NAME, "org.fuzz.name")],
        ),
        KDBUS_CMD_LIST => cmd(
            &kdbus_cmd_list {
                flags: rng.u64(..16),
                ..Default::default()
            },
            &[],
        ),
        KDBUS_CMD_SEND => {
            let dst = ctx.ids[rng.usize(..ctx.ids.len())];
            let b = MessageBuilder::to_id(dst).payload(&ctx.data[..rng.usize(1..256)]);
            let b = match rng.u8(..4) {
                0 => b.signal().bloom(
                    BloomFilter::from_words(BLOOM, rng.u64(..3), vec![rng.u64(..); 8])
                        .expect("bus bloom size"),
                ),
                1 => MessageBuilder::new(Destination::NameOwnedBy {
                    name: "org.fuzz.name".into(),
                    id: dst,
                })
                .payload(&ctx.data[..rng.usize(1..256)]),
                2 => b.expect_reply_by(deadline_ms(0) + rng.u64(..10_000_000)),
                _ => b.padding(rng.u64(1..16)),
            };
            let m = encode(&b);
            let c = cmd(
                &kdbus_cmd_send {
                    flags: if rng.u8(..4) == 0 {
                        KDBUS_SEND_SYNC_REPLY
                    } else {
                        0
                    },
                    msg_address: address(&m),
                    ..Default::default()
                },
                &[],
            );
            *msg = Some(m);
            c
        }
        KDBUS_CMD_RECV => cmd(
            &kdbus_cmd_recv {
                flags: rng.u64(..8),
                priority: rng.i64(..),
                ..Default::default()
            },
            &[],
        ),
        KDBUS_CMD_NAME_ACQUIRE | KDBUS_CMD_NAME_RELEASE => cmd(
            &kdbus_cmd {
                flags: rng.u64(..8),
                ..Default::default()
            },
            &[item_str(KDBUS_ITEM_NAME, &format!("org.fuzz.n{n}"))],
        ),
        KDBUS_CMD_MATCH_ADD => {
            let mut b = MatchRule::new(n as u64)
                .sender(ctx.ids[rng.usize(..ctx.ids.len())])
                .bloom(&BloomFilter::new(BLOOM))
                .encode()
                .unwrap();
            b.set_u64(8, rng.u64(..2));
            b
        }
        _ => cmd(
            &kdbus_cmd_match {
                cookie: n as u64,
                ..Default::default()
            },
            &[],
        ),
    }
}

/// Where a message blob lives (its `msg_address`). The blob must stay
/// where it is until the SEND that points to it returned.
fn address(m: &Buf) -> u64 {
    m.as_bytes().as_ptr() as u64
}

/// Issues `nr` with the argument `offset` bytes into `b`. A SEND command
/// carries whatever message address the fuzzer chose (null, the guard
/// page, unaligned, the message), which `kdbus::raw::ioctl` refuses to
/// vouch for; everything else goes through it.
fn fuzz_ioctl(fd: BorrowedFd<'_>, nr: u32, b: &mut Buf, offset: usize) -> Result<(), Errno> {
    if nr != KDBUS_CMD_SEND {
        return raw::ioctl_at(fd, nr, b, offset);
    }
    // room for all the kernel may touch: the declared size, capped at the
    // largest it accepts
    let declared = b
        .as_bytes()
        .get(offset..offset + 8)
        .map_or(0, |w| u64::from_ne_bytes(w.try_into().unwrap()))
        .min(KDBUS_CMD_MAX_SIZE) as usize;
    let len = b.len();
    b.resize(len.max(offset + declared.max(64)));
    // SAFETY: the argument lies in `b`, which has storage for its declared
    // size; its msg_address is null, the guard page, or points into the
    // message blob the caller keeps alive for the call (`msg`), which has
    // storage for the message's declared size.
    let r = unsafe { raw::ioctl_ptr(fd, nr, b.as_bytes_mut()[offset..].as_mut_ptr().cast()) };
    b.resize(len);
    r
}

/// A few random changes to the bytes of a command (or its message).
fn mutate(rng: &mut fastrand::Rng, b: &mut Buf) {
    let len = b.len();
    for _ in 0..rng.usize(..4) {
        match rng.u8(..4) {
            // flip a bit (not in the size field: that is tested elsewhere)
            0 if len > 8 => {
                let i = rng.usize(8..len);
                b.as_bytes_mut()[i] ^= 1 << rng.u32(..8);
            }
            // an interesting word
            1 if len >= 16 => {
                let w = rng.usize(1..len / 8);
                b.set_u64(w * 8, interesting_u64(rng, &[]));
            }
            // a random byte
            2 if len > 8 => {
                let i = rng.usize(8..len);
                b.as_bytes_mut()[i] = rng.u8(..);
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
                m.set_u64(56, deadline_ms(10));
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
                2 => address(&m) + 1 + rng.u64(..7),
                _ => address(&m),
            };
            fixed[24..32].copy_from_slice(&addr.to_ne_bytes());
            *msg = Some(m);
        }
        _ => {}
    }
    let items: Vec<Vec<u8>> = (0..rng.usize(..5))
        .map(|_| random_item(rng, c.items, ctx))
        .collect();
    let mut b = cmd_bytes(&fixed, &items);
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

fn setup(bus: &TestBus, nr: u32) -> Option<OwnedFd> {
    Some(match nr {
        KDBUS_CMD_BUS_MAKE => raw::open(bus.domain.control()).unwrap(),
        KDBUS_CMD_ENDPOINT_MAKE | KDBUS_CMD_HELLO => raw::open(bus.endpoint()).unwrap(),
        KDBUS_CMD_ENDPOINT_UPDATE => {
            let name = own_name(&format!("fuzz{}", fastrand::u32(..)));
            EndpointBuilder::new(name)
                .create(bus.endpoint())
                .ok()?
                .as_fd()
                .try_clone_to_owned()
                .unwrap()
        }
        _ => return None,
    })
}

/// Offsets of received messages kept for FREE.
const KEPT_OFFSETS: usize = 64;

/// Counts the outcome of command `nr` (its argument was `b`), which must be
/// 0 or a kdbus errno; a received message's offset is kept to FREE later.
fn record(
    r: &Result<(), Errno>,
    nr: u32,
    b: &Buf,
    ctx: &mut Ctx,
    outcomes: &mut std::collections::BTreeMap<String, usize>,
    seed: u64,
) {
    let key = match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            assert!(
                KDBUS_ERRNOS.contains(e),
                "command {nr:#x} returned {e} (seed {seed})"
            );
            format!("{e}")
        }
    };
    *outcomes.entry(key).or_default() += 1;
    if nr == KDBUS_CMD_RECV && r.is_ok() {
        if ctx.offsets.len() == KEPT_OFFSETS {
            ctx.offsets.remove(0);
        }
        ctx.offsets.push(b.u64_at(40));
    }
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
        let bus = TestBus::new();
        let peer = bus.conn();
        peer.acquire_name("org.fuzz.name", NameFlags::empty())
            .unwrap();
        match_all(&peer);
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
                peer.as_fd().as_raw_fd(),
                conn.as_fd().as_raw_fd(),
            ],
            ids: vec![
                0,
                peer.id(),
                conn.id(),
                KDBUS_DST_ID_BROADCAST,
                bus.conn().id(),
            ],
            offsets: Vec::new(),
            _keep: vec![pr, pw, memfd],
        };

        for c in CMDS {
            for _ in 0..ITERATIONS {
                // keep something around to work on
                if rng.u8(..8) == 0 {
                    let _ = peer.send(
                        &MessageBuilder::to_id(conn.id()).payload(&ctx.data[..rng.usize(1..100)]),
                    );
                }
                let fresh = setup(&bus, c.nr);
                let fd = fresh.as_ref().map(|f| f.as_fd()).unwrap_or(conn.as_fd());
                let mut msg = None;
                let mut b = random_cmd(&mut rng, c, &ctx, &mut msg);
                let r = match rng.u8(..12) {
                    // unaligned
                    0 => {
                        let mut shifted = Buf::zeroed(b.len() + 8);
                        shifted.write_bytes(4, b.as_bytes());
                        fuzz_ioctl(fd, c.nr, &mut shifted, 4)
                    }
                    // running into an inaccessible page
                    1 => ctx
                        .guard
                        .ioctl_at_end(fd, c.nr, &b.as_bytes()[..b.len() & !7]),
                    // a size beyond the blob: the kernel runs into it
                    _ if b.u64_at(0) as usize > b.len() => {
                        ctx.guard
                            .ioctl_at_end(fd, c.nr, &b.as_bytes()[..b.len() & !7])
                    }
                    _ => fuzz_ioctl(fd, c.nr, &mut b, 0),
                };
                drop(msg);
                calls += 1;
                record(&r, c.nr, &b, &mut ctx, &mut outcomes, seed);
                // a fuzzed BYEBYE or teardown may kill the connection
                if conn.list(ListFlags::empty()).is_err() {
                    conn = bus.conn();
                    ctx.ids.push(conn.id());
                }
            }
        }

        // the bus still works
        let a = bus.conn();
        let z = bus.conn();
        a.send(&MessageBuilder::to_id(z.id()).payload(b"after fuzzing"))
            .unwrap();
        assert_eq!(recv_msg(&z).payload_to_vec(), b"after fuzzing");
    }
    eprintln!("fuzz: {calls} calls in {:?}: {outcomes:?}", start.elapsed());
    assert!(outcomes.get("ok").copied().unwrap_or(0) > 0);

    let deadline = Instant::now() + Duration::from_secs(10);
    while kdbus_objects() != base && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(kdbus_objects(), base, "objects leaked (seed {seed})");
}

/// Calls `make fuzz` makes (KDBUS_FUZZ_CALLS overrides).
const RACING_CALLS: usize = 1_000_000;
/// Threads issuing commands at once.
const RACING_THREADS: usize = 4;
/// Commands one thread issues before its bus is gone and a new round starts.
const CALLS_PER_ROUND: usize = 5000;

/// One command against `fd` (or a fresh handle of the kind `nr` needs),
/// counted in `outcomes`.
fn racing_call(
    rng: &mut fastrand::Rng,
    ctx: &mut Ctx,
    endpoint: &std::path::Path,
    control: &std::path::Path,
    fd: BorrowedFd<'_>,
    outcomes: &mut std::collections::BTreeMap<String, usize>,
    seed: u64,
) {
    let c = &CMDS[rng.usize(..CMDS.len())];
    let fresh = match c.nr {
        KDBUS_CMD_BUS_MAKE => raw::open(control).ok(),
        KDBUS_CMD_ENDPOINT_MAKE | KDBUS_CMD_HELLO => raw::open(endpoint).ok(),
        _ => None,
    };
    let fd = fresh.as_ref().map(|f| f.as_fd()).unwrap_or(fd);
    let mut msg = None;
    let mut b = random_cmd(rng, c, ctx, &mut msg);
    // now and then, and whenever the size lies, the blob ends at an
    // inaccessible page
    let r = if rng.u8(..16) == 0 || b.u64_at(0) as usize > b.len() {
        ctx.guard
            .ioctl_at_end(fd, c.nr, &b.as_bytes()[..b.len() & !7])
    } else {
        fuzz_ioctl(fd, c.nr, &mut b, 0)
    };
    drop(msg);
    record(&r, c.nr, &b, ctx, outcomes, seed);
}

/// One fuzzing thread of a round: random commands on its own connection,
/// which it now and then closes and replaces, while other threads send to
/// it and the bus may go away underneath.
fn racing_worker(
    seed: u64,
    endpoint: std::path::PathBuf,
    control: std::path::PathBuf,
    peers: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
) -> std::collections::BTreeMap<String, usize> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut outcomes = std::collections::BTreeMap::new();
    let memfd = rustix::fs::memfd_create("fuzz", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::io::write(&memfd, &[0u8; 64]).unwrap();
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    let mut conn = TestBus::hello().connect(&endpoint).ok();
    let mut ctx = Ctx {
        data: vec![0x42; 4096],
        guard: GuardPage::new(),
        fds: vec![-1, 9999, pr.as_raw_fd(), pw.as_raw_fd(), memfd.as_raw_fd()],
        ids: vec![0, KDBUS_DST_ID_BROADCAST],
        offsets: Vec::new(),
        _keep: vec![pr, pw, memfd],
    };
    for _ in 0..CALLS_PER_ROUND {
        if rng.u16(..500) == 0 || conn.is_none() {
            // close underneath whoever is sending to it, then replace it;
            // once the bus is gone, the dead handle is kept and hit again
            if let Ok(c) = TestBus::hello().connect(&endpoint) {
                peers.lock().unwrap().push(c.id());
                conn = Some(c);
            }
        }
        ctx.ids.truncate(2);
        ctx.ids.extend(peers.lock().unwrap().iter().rev().take(8));
        let Some(c) = conn.as_ref() else {
            // the bus is gone: keep hitting a dead handle
            if let Ok(fd) = raw::open(&endpoint) {
                racing_call(
                    &mut rng,
                    &mut ctx,
                    &endpoint,
                    &control,
                    fd.as_fd(),
                    &mut outcomes,
                    seed,
                );
            } else {
                *outcomes.entry("open failed".to_owned()).or_default() += 1;
            }
            continue;
        };
        racing_call(
            &mut rng,
            &mut ctx,
            &endpoint,
            &control,
            c.as_fd(),
            &mut outcomes,
            seed,
        );
    }
    outcomes
}

/// `make fuzz`: at least a million random commands from several threads at
/// once, with connections closed and whole buses destroyed underneath
/// them. Every call returns 0 or a kdbus errno, nothing leaks, and the VM
/// harness fails the run on any kernel warning or a failed rmmod.
#[test]
#[ignore = "minutes long: make fuzz runs it"]
fn racing_commands_with_teardown() {
    use std::sync::{Arc, Mutex};
    let target = std::env::var("KDBUS_FUZZ_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RACING_CALLS);
    let seed = std::env::var("KDBUS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("fuzz: seed {seed}, {target} calls, {RACING_THREADS} threads");
    let base = kdbus_objects();
    let start = Instant::now();
    let mut total = std::collections::BTreeMap::<String, usize>::new();
    let mut calls = 0usize;
    let mut round = 0u64;
    while calls < target {
        round += 1;
        let domain = Arc::new(kdbus_abi_tests::Domain::new());
        let bus = TestBus::make_in(&domain, TestBus::builder("race").world_accessible())
            .expect("BUS_MAKE");
        let endpoint = bus.endpoint();
        let control = domain.control();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..RACING_THREADS as u64)
            .map(|t| {
                let (endpoint, control, peers) = (endpoint.clone(), control.clone(), peers.clone());
                let s = seed ^ (round << 8) ^ t;
                std::thread::spawn(move || racing_worker(s, endpoint, control, peers))
            })
            .collect();
        // the bus goes away at a random moment of the round
        let mut rng = fastrand::Rng::with_seed(seed ^ round);
        std::thread::sleep(Duration::from_millis(rng.u64(..2000)));
        drop(bus);
        for w in workers {
            for (k, v) in w.join().expect("fuzz worker panicked") {
                if k != "open failed" {
                    calls += v;
                }
                *total.entry(k).or_default() += v;
            }
        }
        drop(domain);
    }
    eprintln!(
        "fuzz: {calls} calls in {round} rounds, {:?}",
        start.elapsed()
    );
    for (errno, n) in &total {
        eprintln!("fuzz:   {errno:>16} {n}");
    }
    assert!(total.get("ok").copied().unwrap_or(0) > 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while kdbus_objects() != base && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(kdbus_objects(), base, "objects leaked (seed {seed})");
}
