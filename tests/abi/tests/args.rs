//! The generic command rules every ioctl follows (spec §1, §4 and §7):
//! argument alignment and size, flags, item framing, negotiation,
//! return_flags, the handle state machine and unknown ioctls.

use std::os::fd::{AsFd, OwnedFd};

use kdbus::abi::*;
use kdbus_abi_tests::conn::{bus_make_cmd, open_node};
use kdbus_abi_tests::raw::{self, cmd, item, item_negotiate, item_str, item_u64, Buf};
use kdbus_abi_tests::*;
use rustix::io::Errno;

/// Every command, its fixed struct size, allowed flags and accepted items.
struct Command {
    name: &'static str,
    nr: u32,
    fixed: usize,
    flags: u64,
    items: &'static [u64],
}

const COMMANDS: &[Command] = &[
    Command {
        name: "BUS_MAKE",
        nr: KDBUS_CMD_BUS_MAKE,
        fixed: 24,
        flags: KDBUS_MAKE_ACCESS_GROUP | KDBUS_MAKE_ACCESS_WORLD,
        items: &[
            KDBUS_ITEM_NEGOTIATE,
            KDBUS_ITEM_MAKE_NAME,
            KDBUS_ITEM_BLOOM_PARAMETER,
            KDBUS_ITEM_ATTACH_FLAGS_SEND,
        ],
    },
    Command {
        name: "ENDPOINT_MAKE",
        nr: KDBUS_CMD_ENDPOINT_MAKE,
        fixed: 24,
        flags: KDBUS_MAKE_ACCESS_GROUP | KDBUS_MAKE_ACCESS_WORLD,
        items: &[KDBUS_ITEM_NEGOTIATE, KDBUS_ITEM_MAKE_NAME],
    },
    Command {
        name: "ENDPOINT_UPDATE",
        nr: KDBUS_CMD_ENDPOINT_UPDATE,
        fixed: 24,
        flags: 0,
        items: &[
            KDBUS_ITEM_NEGOTIATE,
            KDBUS_ITEM_NAME,
            KDBUS_ITEM_POLICY_ACCESS,
        ],
    },
    Command {
        name: "HELLO",
        nr: KDBUS_CMD_HELLO,
        fixed: 96,
        flags: KDBUS_HELLO_ACCEPT_FD
            | KDBUS_HELLO_ACTIVATOR
            | KDBUS_HELLO_POLICY_HOLDER
            | KDBUS_HELLO_MONITOR,
        items: &[
            KDBUS_ITEM_NEGOTIATE,
            KDBUS_ITEM_NAME,
            KDBUS_ITEM_CREDS,
            KDBUS_ITEM_PIDS,
            KDBUS_ITEM_SECLABEL,
            KDBUS_ITEM_CONN_DESCRIPTION,
            KDBUS_ITEM_POLICY_ACCESS,
        ],
    },
    Command {
        name: "UPDATE",
        nr: KDBUS_CMD_UPDATE,
        fixed: 24,
        flags: 0,
        items: &[
            KDBUS_ITEM_NEGOTIATE,
            KDBUS_ITEM_ATTACH_FLAGS_SEND,
            KDBUS_ITEM_ATTACH_FLAGS_RECV,
            KDBUS_ITEM_NAME,
            KDBUS_ITEM_POLICY_ACCESS,
        ],
    },
    Command {
        name: "BYEBYE",
        nr: KDBUS_CMD_BYEBYE,
        fixed: 24,
        flags: 0,
        items: &[KDBUS_ITEM_NEGOTIATE],
    },
    Command {
        name: "FREE",
        nr: KDBUS_CMD_FREE,
        fixed: 32,
        flags: 0,
        items: &[KDBUS_ITEM_NEGOTIATE],
    },
    Command {
        name: "CONN_INFO",
        nr: KDBUS_CMD_CONN_INFO,
        fixed: 56,
        flags: 0,
        items: &[KDBUS_ITEM_NEGOTIATE, KDBUS_ITEM_NAME],
    },
    Command {
        name: "BUS_CREATOR_INFO",
        nr: KDBUS_CMD_BUS_CREATOR_INFO,
        fixed: 56,
        flags: 0,
        items: &[KDBUS_ITEM_NEGOTIATE],
    },
    Command {
        name: "LIST",
        nr: KDBUS_CMD_LIST,
        fixed: 40,
        flags: KDBUS_LIST_UNIQUE | KDBUS_LIST_NAMES | KDBUS_LIST_ACTIVATORS | KDBUS_LIST_QUEUED,
        items: &[KDBUS_ITEM_NEGOTIATE],
    },
    Command {
        name: "SEND",
        nr: KDBUS_CMD_SEND,
        fixed: 56,
        flags: KDBUS_SEND_SYNC_REPLY,
        items: &[KDBUS_ITEM_NEGOTIATE, KDBUS_ITEM_CANCEL_FD],
    },
    Command {
        name: "RECV",
        nr: KDBUS_CMD_RECV,
        fixed: 64,
        flags: KDBUS_RECV_PEEK | KDBUS_RECV_DROP | KDBUS_RECV_USE_PRIORITY,
        items: &[KDBUS_ITEM_NEGOTIATE],
    },
    Command {
        name: "NAME_ACQUIRE",
        nr: KDBUS_CMD_NAME_ACQUIRE,
        fixed: 24,
        flags: KDBUS_NAME_REPLACE_EXISTING | KDBUS_NAME_ALLOW_REPLACEMENT | KDBUS_NAME_QUEUE,
        items: &[KDBUS_ITEM_NEGOTIATE, KDBUS_ITEM_NAME],
    },
    Command {
        name: "NAME_RELEASE",
        nr: KDBUS_CMD_NAME_RELEASE,
        fixed: 24,
        flags: 0,
        items: &[KDBUS_ITEM_NEGOTIATE, KDBUS_ITEM_NAME],
    },
    Command {
        name: "MATCH_ADD",
        nr: KDBUS_CMD_MATCH_ADD,
        fixed: 32,
        flags: KDBUS_MATCH_REPLACE,
        items: &[
            KDBUS_ITEM_NEGOTIATE,
            KDBUS_ITEM_BLOOM_MASK,
            KDBUS_ITEM_NAME,
            KDBUS_ITEM_ID,
            KDBUS_ITEM_DST_ID,
            KDBUS_ITEM_NAME_ADD,
            KDBUS_ITEM_NAME_REMOVE,
            KDBUS_ITEM_NAME_CHANGE,
            KDBUS_ITEM_ID_ADD,
            KDBUS_ITEM_ID_REMOVE,
        ],
    },
    Command {
        name: "MATCH_REMOVE",
        nr: KDBUS_CMD_MATCH_REMOVE,
        fixed: 32,
        flags: 0,
        items: &[KDBUS_ITEM_NEGOTIATE],
    },
];

/// Every item type the ABI knows.
const ALL_ITEM_TYPES: &[u64] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x1000, 0x1001, 0x1002, 0x1003, 0x1004,
    0x1005, 0x1006, 0x1007, 0x1008, 0x1009, 0x100a, 0x100b, 0x100c, 0x100d, 0x2000, 0x8000, 0x8001,
    0x8002, 0x8003, 0x8004, 0x8005, 0x8006,
];

/// A bus with a connection, plus fresh handles of every kind.
struct Setup {
    bus: Bus,
    conn: Conn,
    ep_owner: OwnedFd,
}

impl Setup {
    fn new() -> Setup {
        let bus = Bus::new();
        let conn = bus.conn();
        let ep_owner = open_node(&bus.endpoint()).unwrap();
        let name = format!("{}-ep", rustix::process::geteuid().as_raw());
        let mut c = cmd(
            &kdbus_cmd::default(),
            &[item_str(KDBUS_ITEM_MAKE_NAME, &name)],
        );
        raw::ioctl(ep_owner.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut c).unwrap();
        Setup {
            bus,
            conn,
            ep_owner,
        }
    }

    /// A handle on which `nr` is a valid command.
    fn handle(&self, nr: u32) -> OwnedFd {
        match nr {
            KDBUS_CMD_BUS_MAKE => open_node(&self.bus.domain.control()).unwrap(),
            KDBUS_CMD_ENDPOINT_MAKE | KDBUS_CMD_HELLO => open_node(&self.bus.endpoint()).unwrap(),
            KDBUS_CMD_ENDPOINT_UPDATE => self.ep_owner.try_clone().unwrap(),
            _ => self.conn.fd.try_clone().unwrap(),
        }
    }
}

/// A command of `fixed` bytes (size set) followed by `items`.
fn command(fixed: usize, flags: u64, items: &[Vec<u8>]) -> Buf {
    let mut bytes = vec![0u8; fixed];
    bytes[8..16].copy_from_slice(&flags.to_ne_bytes());
    for i in items {
        bytes.extend_from_slice(i);
    }
    let mut b = Buf::from_bytes(&bytes);
    let n = b.len() as u64;
    b.set_u64(0, n);
    b
}

#[test]
fn ioctl_numbers_match_the_spec() {
    assert_eq!(KDBUS_CMD_BUS_MAKE, 0x4018_9500);
    assert_eq!(KDBUS_CMD_HELLO, 0xc060_9580);
    assert_eq!(KDBUS_CMD_CONN_INFO, 0x8038_9584);
    assert_eq!(KDBUS_CMD_RECV, 0x8040_9591);
    assert_eq!(KDBUS_CMD_MATCH_REMOVE, 0x4020_95b1);
}

#[test]
fn unaligned_argument_is_efault() {
    let s = Setup::new();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        let mut b = command(c.fixed, 0, &[]);
        // shift the command by 4 bytes inside its buffer
        let bytes = b.bytes().to_vec();
        let mut shifted = Buf::zeroed(bytes.len() + 8);
        shifted.bytes_mut()[4..4 + bytes.len()].copy_from_slice(&bytes);
        assert_eq!(
            raw::ioctl_at(fd.as_fd(), c.nr, &mut shifted, 4),
            Err(Errno::FAULT),
            "{}",
            c.name
        );
        let _ = b.ptr();
    }
}

#[test]
fn unmapped_argument_is_efault() {
    let s = Setup::new();
    let guard = GuardPage::new();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        assert_eq!(
            raw::ioctl_unmapped(fd.as_fd(), c.nr, &guard),
            Err(Errno::FAULT),
            "{}",
            c.name
        );
    }
}

#[test]
fn size_below_the_fixed_struct_is_einval() {
    let s = Setup::new();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        for size in [0, 8, c.fixed - 8] {
            let mut b = command(c.fixed, 0, &[]);
            b.set_u64(0, size as u64);
            assert_eq!(
                raw::ioctl(fd.as_fd(), c.nr, &mut b),
                Err(Errno::INVAL),
                "{} with size {size}",
                c.name
            );
        }
    }
}

#[test]
fn size_above_32k_is_emsgsize() {
    let s = Setup::new();
    let mut guard = GuardPage::new();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        for size in [32 * 1024 + 8, 1 << 20, u64::MAX] {
            let mut b = command(c.fixed, 0, &[]);
            b.set_u64(0, size);
            assert_eq!(
                guard.ioctl_at_end(fd.as_fd(), c.nr, b.bytes()),
                Err(Errno::MSGSIZE),
                "{} with size {size}",
                c.name
            );
        }
    }
}

#[test]
fn size_beyond_readable_memory_is_efault() {
    let s = Setup::new();
    let mut guard = GuardPage::new();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        let mut b = command(c.fixed, 0, &[]);
        b.set_u64(0, c.fixed as u64 + 64);
        assert_eq!(
            guard.ioctl_at_end(fd.as_fd(), c.nr, b.bytes()),
            Err(Errno::FAULT),
            "{}",
            c.name
        );
    }
}

#[test]
fn unknown_flags_are_einval() {
    let s = Setup::new();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        for bit in [1u64 << 62, 1 << 20, !c.flags & !KDBUS_FLAG_NEGOTIATE & 0xff] {
            if bit == 0 {
                continue;
            }
            let mut b = command(c.fixed, bit, &[]);
            assert_eq!(
                raw::ioctl(fd.as_fd(), c.nr, &mut b),
                Err(Errno::INVAL),
                "{} with flags {bit:#x}",
                c.name
            );
        }
    }
}

#[test]
fn unknown_item_types_are_einval() {
    let s = Setup::new();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        for ty in ALL_ITEM_TYPES.iter().chain(&[0, 17, 0xffff, u64::MAX]) {
            if c.items.contains(ty) {
                continue;
            }
            let mut b = command(c.fixed, 0, &[item(*ty, &[0u8; 8])]);
            assert_eq!(
                raw::ioctl(fd.as_fd(), c.nr, &mut b),
                Err(Errno::INVAL),
                "{} with item type {ty:#x}",
                c.name
            );
        }
    }
}

#[test]
fn malformed_item_streams_are_einval() {
    let s = Setup::new();
    let neg = item_negotiate(&[KDBUS_ITEM_NEGOTIATE]);
    let mut too_small = neg.clone();
    too_small[..8].copy_from_slice(&8u64.to_ne_bytes());
    let mut too_large = neg.clone();
    too_large[..8].copy_from_slice(&1000u64.to_ne_bytes());
    let mut huge = neg.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_ne_bytes());
    let truncated = neg[..12].to_vec();
    let trailing = [neg.clone(), vec![0u8; 8]].concat();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        for (what, items) in [
            ("item size < 16", &too_small),
            ("item beyond command", &too_large),
            ("item size u64::MAX", &huge),
            ("truncated header", &truncated),
            ("trailing garbage", &trailing),
        ] {
            let mut b = command(c.fixed, 0, std::slice::from_ref(items));
            assert_eq!(
                raw::ioctl(fd.as_fd(), c.nr, &mut b),
                Err(Errno::INVAL),
                "{}: {what}",
                c.name
            );
        }
    }
}

#[test]
fn negotiation_returns_allowed_flags_and_items() {
    let s = Setup::new();
    for c in COMMANDS {
        let fd = s.handle(c.nr);
        let mut b = command(
            c.fixed,
            KDBUS_FLAG_NEGOTIATE,
            &[item_negotiate(ALL_ITEM_TYPES)],
        );
        raw::ioctl(fd.as_fd(), c.nr, &mut b).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(b.u64_at(8), c.flags, "{}: negotiated flags", c.name);
        let neg = &b.bytes()[c.fixed + 16..c.fixed + 16 + ALL_ITEM_TYPES.len() * 8];
        let mut kept: Vec<u64> = neg
            .chunks_exact(8)
            .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
            .filter(|&t| t != 0)
            .collect();
        let mut expected = c.items.to_vec();
        kept.sort_unstable();
        expected.sort_unstable();
        assert_eq!(kept, expected, "{}: negotiated items", c.name);
    }
}

#[test]
fn negotiate_item_without_flag_still_runs_the_command() {
    let s = Setup::new();
    let mut b = command(
        40,
        KDBUS_LIST_UNIQUE,
        &[item_negotiate(&[
            KDBUS_ITEM_NEGOTIATE,
            KDBUS_ITEM_PAYLOAD_VEC,
        ])],
    );
    s.conn.ioctl(KDBUS_CMD_LIST, &mut b).unwrap();
    assert_eq!(b.u64_at(56), KDBUS_ITEM_NEGOTIATE);
    assert_eq!(b.u64_at(64), 0, "unsupported type cleared");
    // the command ran: a list slice was returned
    let list: kdbus_cmd_list = raw::read_struct(b.bytes());
    assert!(list.list_size > 0);
    s.conn.free(list.offset).unwrap();
}

#[test]
fn negotiation_does_not_consume_setup_handles() {
    let bus = Bus::new();
    let control = open_node(&bus.domain.control()).unwrap();
    let mut b = command(24, KDBUS_FLAG_NEGOTIATE, &[]);
    raw::ioctl(control.as_fd(), KDBUS_CMD_BUS_MAKE, &mut b).unwrap();
    let name = format!("{}-later", rustix::process::geteuid().as_raw());
    let mut make = bus_make_cmd(&name, 0, &[]);
    raw::ioctl(control.as_fd(), KDBUS_CMD_BUS_MAKE, &mut make).expect("BUS_MAKE after negotiation");

    let ep = open_node(&bus.endpoint()).unwrap();
    let mut b = command(96, KDBUS_FLAG_NEGOTIATE, &[]);
    raw::ioctl(ep.as_fd(), KDBUS_CMD_HELLO, &mut b).unwrap();
    Hello::new()
        .connect_fd(ep)
        .expect("HELLO after negotiation");
}

#[test]
fn negotiation_still_validates_items() {
    let s = Setup::new();
    let mut b = command(
        24,
        KDBUS_FLAG_NEGOTIATE,
        &[item_str(KDBUS_ITEM_MAKE_NAME, "bad name!")],
    );
    let control = s.handle(KDBUS_CMD_BUS_MAKE);
    assert_eq!(
        raw::ioctl(control.as_fd(), KDBUS_CMD_BUS_MAKE, &mut b),
        Err(Errno::INVAL)
    );
    let mut b = command(24, KDBUS_FLAG_NEGOTIATE, &[item_u64(KDBUS_ITEM_ID, 1)]);
    assert_eq!(
        raw::ioctl(control.as_fd(), KDBUS_CMD_BUS_MAKE, &mut b),
        Err(Errno::INVAL)
    );
}

#[test]
fn mandatory_items_are_not_required_when_negotiating() {
    let s = Setup::new();
    // NAME_ACQUIRE needs a name, except in negotiation mode
    let mut b = command(24, 0, &[]);
    assert_eq!(
        s.conn.ioctl(KDBUS_CMD_NAME_ACQUIRE, &mut b),
        Err(Errno::INVAL)
    );
    let mut b = command(24, KDBUS_FLAG_NEGOTIATE, &[]);
    s.conn.ioctl(KDBUS_CMD_NAME_ACQUIRE, &mut b).unwrap();
}

#[test]
fn send_negotiation_rules() {
    let s = Setup::new();
    // the command alone, without a message
    let mut c = command(56, KDBUS_FLAG_NEGOTIATE, &[]);
    s.conn.ioctl(KDBUS_CMD_SEND, &mut c).unwrap();
    assert_eq!(c.u64_at(8), KDBUS_SEND_SYNC_REPLY);

    // command and message
    let mut m = MsgBuilder::new(s.conn.id)
        .flags(KDBUS_FLAG_NEGOTIATE)
        .raw_item(&item_negotiate(&[
            KDBUS_ITEM_PAYLOAD_VEC,
            KDBUS_ITEM_CANCEL_FD,
        ]))
        .build();
    let mut c = command(56, KDBUS_FLAG_NEGOTIATE, &[]);
    c.set_u64(24, m.addr());
    s.conn.ioctl(KDBUS_CMD_SEND, &mut c).unwrap();
    assert_eq!(
        m.u64_at(8),
        KDBUS_MSG_EXPECT_REPLY | KDBUS_MSG_NO_AUTO_START | KDBUS_MSG_SIGNAL,
        "message flags negotiated"
    );
    assert_eq!(m.u64_at(64 + 16), KDBUS_ITEM_PAYLOAD_VEC);
    assert_eq!(
        m.u64_at(64 + 24),
        0,
        "CANCEL_FD is a command item, not a message item"
    );

    // the message negotiates, the command does not
    let mut c = command(56, 0, &[]);
    c.set_u64(24, m.addr());
    m.set_u64(8, KDBUS_FLAG_NEGOTIATE);
    assert_eq!(s.conn.ioctl(KDBUS_CMD_SEND, &mut c), Err(Errno::INVAL));
    let _ = m.ptr();
    assert_eq!(
        errno(s.conn.recv()),
        Errno::AGAIN,
        "negotiation sent nothing"
    );
}

#[test]
fn send_message_argument_follows_the_same_rules() {
    let s = Setup::new();
    let guard = GuardPage::new();
    let good = MsgBuilder::new(s.conn.id).vec(b"x").build();

    let send = |addr: u64| {
        let mut c = command(56, 0, &[]);
        c.set_u64(24, addr);
        s.conn.ioctl(KDBUS_CMD_SEND, &mut c)
    };
    assert_eq!(send(0), Err(Errno::FAULT), "NULL message");
    assert_eq!(
        send(good.addr() + 4),
        Err(Errno::FAULT),
        "unaligned message"
    );
    assert_eq!(
        send(guard.none_page() as u64),
        Err(Errno::FAULT),
        "unmapped message"
    );

    let mut small = good.clone();
    small.set_u64(0, 56);
    assert_eq!(
        send(small.addr()),
        Err(Errno::INVAL),
        "message smaller than kdbus_msg"
    );
    let mut unknown = good.clone();
    unknown.set_u64(8, 1 << 40);
    assert_eq!(
        send(unknown.addr()),
        Err(Errno::INVAL),
        "unknown message flags"
    );
    assert_eq!(errno(s.conn.recv()), Errno::AGAIN);
}

#[test]
fn return_flags_are_zeroed_and_written_back() {
    let s = Setup::new();
    // a command that fails after parsing: FREE of an unknown offset
    let mut b = command(32, 0, &[]);
    b.set_u64(16, 0xdead_beef);
    b.set_u64(24, 12345);
    assert_eq!(s.conn.ioctl(KDBUS_CMD_FREE, &mut b), Err(Errno::NXIO));
    assert_eq!(b.u64_at(16), 0);
    // and one that succeeds
    let mut b = command(40, KDBUS_LIST_UNIQUE, &[]);
    b.set_u64(16, u64::MAX);
    s.conn.ioctl(KDBUS_CMD_LIST, &mut b).unwrap();
    assert_eq!(b.u64_at(16), 0);
    s.conn.free(b.u64_at(24)).unwrap();
}

#[test]
fn unknown_ioctl_is_enotty() {
    let s = Setup::new();
    let mut b = command(24, 0, &[]);
    for nr in [
        0x4018_95ff_u32,
        0x4018_9501,
        0xc060_9581,
        0x4018_9400,
        0x5401,
    ] {
        assert_eq!(s.conn.ioctl(nr, &mut b), Err(Errno::NOTTY), "{nr:#x}");
        let control = s.handle(KDBUS_CMD_BUS_MAKE);
        assert_eq!(raw::ioctl(control.as_fd(), nr, &mut b), Err(Errno::NOTTY));
    }
}

#[test]
fn wrong_handle_type_is_ebadfd() {
    let s = Setup::new();
    let control = s.handle(KDBUS_CMD_BUS_MAKE);
    let fresh_ep = s.handle(KDBUS_CMD_HELLO);

    for c in COMMANDS {
        let mut b = command(c.fixed.max(96), 0, &[]);
        b.set_u64(0, c.fixed as u64);
        // connection commands on a fresh control or endpoint handle
        if !matches!(
            c.nr,
            KDBUS_CMD_BUS_MAKE | KDBUS_CMD_ENDPOINT_MAKE | KDBUS_CMD_HELLO
        ) {
            assert_eq!(
                raw::ioctl(control.as_fd(), c.nr, &mut b),
                Err(Errno::BADFD),
                "{} on control",
                c.name
            );
            assert_eq!(
                raw::ioctl(fresh_ep.as_fd(), c.nr, &mut b),
                Err(Errno::BADFD),
                "{} on a fresh endpoint handle",
                c.name
            );
        }
        // nothing but ENDPOINT_UPDATE on an endpoint owner, nothing at all
        // on a bus owner
        if c.nr != KDBUS_CMD_ENDPOINT_UPDATE {
            assert_eq!(
                raw::ioctl(s.ep_owner.as_fd(), c.nr, &mut b),
                Err(Errno::BADFD),
                "{} on an endpoint owner",
                c.name
            );
        }
        assert_eq!(
            raw::ioctl(s.bus.owner.as_fd(), c.nr, &mut b),
            Err(Errno::BADFD),
            "{} on a bus owner",
            c.name
        );
    }

    // setup commands on the wrong node or a connected handle
    let mut hello = Hello::new().buf();
    assert_eq!(
        raw::ioctl(control.as_fd(), KDBUS_CMD_HELLO, &mut hello),
        Err(Errno::BADFD)
    );
    let mut make = bus_make_cmd("0-x", 0, &[]);
    assert_eq!(
        raw::ioctl(fresh_ep.as_fd(), KDBUS_CMD_BUS_MAKE, &mut make),
        Err(Errno::BADFD)
    );
    assert_eq!(
        s.conn.ioctl(KDBUS_CMD_HELLO, &mut Hello::new().buf()),
        Err(Errno::BADFD)
    );
    assert_eq!(
        s.conn
            .ioctl(KDBUS_CMD_BUS_MAKE, &mut bus_make_cmd("0-y", 0, &[])),
        Err(Errno::BADFD)
    );
    // a second HELLO on the same handle
    let second = s.handle(KDBUS_CMD_HELLO);
    let c = Hello::new()
        .connect_fd(second.try_clone().unwrap())
        .unwrap();
    assert_eq!(
        raw::ioctl(second.as_fd(), KDBUS_CMD_HELLO, &mut Hello::new().buf()),
        Err(Errno::BADFD)
    );
    drop(c);
}

#[test]
fn string_items_must_be_terminated_once() {
    let s = Setup::new();
    for payload in [&b"org.a.b"[..], b"org.a\0b\0", b"\0", b""] {
        let mut b = command(24, 0, &[item(KDBUS_ITEM_NAME, payload)]);
        assert_eq!(
            s.conn.ioctl(KDBUS_CMD_NAME_ACQUIRE, &mut b),
            Err(Errno::INVAL),
            "{payload:?}"
        );
    }
}

#[test]
fn trailing_padding_of_the_last_item_is_optional() {
    let s = Setup::new();
    // "org.a.bc" + NUL = 9 payload bytes: item size 25, padded 32
    let it = item_str(KDBUS_ITEM_NAME, "org.a.bc");
    let mut padded = command(24, 0, std::slice::from_ref(&it));
    s.conn.ioctl(KDBUS_CMD_NAME_ACQUIRE, &mut padded).unwrap();
    s.conn.release("org.a.bc").unwrap();

    let mut unpadded = command(24, 0, std::slice::from_ref(&it));
    let size = 24 + 25;
    unpadded.set_u64(0, size);
    s.conn.ioctl(KDBUS_CMD_NAME_ACQUIRE, &mut unpadded).unwrap();
}
