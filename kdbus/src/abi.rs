//! The kdbus userspace ABI, mirrored from `kmod/include/uapi/linux/kdbus.h`.
//!
//! Plain `#[repr(C)]` data: every layout, constant and ioctl number here is
//! fixed by the historic kdbus interface and checked against the C header by
//! `tests/abi_layout.rs`.

#![allow(non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// ioctl type ("magic") of every kdbus command.
pub const KDBUS_IOCTL_MAGIC: u8 = 0x95;
pub const KDBUS_SRC_ID_KERNEL: u64 = 0;
pub const KDBUS_DST_ID_NAME: u64 = 0;
pub const KDBUS_MATCH_ID_ANY: u64 = !0;
pub const KDBUS_DST_ID_BROADCAST: u64 = !0;
pub const KDBUS_FLAG_NEGOTIATE: u64 = 1 << 63;

pub const KDBUS_PAYLOAD_KERNEL: u64 = 0;
/// "DBusDBus"
pub const KDBUS_PAYLOAD_DBUS: u64 = 0x4442_7573_4442_7573;

/// Largest ioctl argument, items included.
pub const KDBUS_CMD_MAX_SIZE: u64 = 32 * 1024;

// Item types.
pub const _KDBUS_ITEM_NULL: u64 = 0;
pub const _KDBUS_ITEM_USER_BASE: u64 = 1;
pub const KDBUS_ITEM_NEGOTIATE: u64 = 1;
pub const KDBUS_ITEM_PAYLOAD_VEC: u64 = 2;
pub const KDBUS_ITEM_PAYLOAD_OFF: u64 = 3;
pub const KDBUS_ITEM_PAYLOAD_MEMFD: u64 = 4;
pub const KDBUS_ITEM_FDS: u64 = 5;
pub const KDBUS_ITEM_CANCEL_FD: u64 = 6;
pub const KDBUS_ITEM_BLOOM_PARAMETER: u64 = 7;
pub const KDBUS_ITEM_BLOOM_FILTER: u64 = 8;
pub const KDBUS_ITEM_BLOOM_MASK: u64 = 9;
pub const KDBUS_ITEM_DST_NAME: u64 = 10;
pub const KDBUS_ITEM_MAKE_NAME: u64 = 11;
pub const KDBUS_ITEM_ATTACH_FLAGS_SEND: u64 = 12;
pub const KDBUS_ITEM_ATTACH_FLAGS_RECV: u64 = 13;
pub const KDBUS_ITEM_ID: u64 = 14;
pub const KDBUS_ITEM_NAME: u64 = 15;
pub const KDBUS_ITEM_DST_ID: u64 = 16;

pub const _KDBUS_ITEM_ATTACH_BASE: u64 = 0x1000;
pub const KDBUS_ITEM_TIMESTAMP: u64 = 0x1000;
pub const KDBUS_ITEM_CREDS: u64 = 0x1001;
pub const KDBUS_ITEM_PIDS: u64 = 0x1002;
pub const KDBUS_ITEM_AUXGROUPS: u64 = 0x1003;
pub const KDBUS_ITEM_OWNED_NAME: u64 = 0x1004;
pub const KDBUS_ITEM_TID_COMM: u64 = 0x1005;
pub const KDBUS_ITEM_PID_COMM: u64 = 0x1006;
pub const KDBUS_ITEM_EXE: u64 = 0x1007;
pub const KDBUS_ITEM_CMDLINE: u64 = 0x1008;
pub const KDBUS_ITEM_CGROUP: u64 = 0x1009;
pub const KDBUS_ITEM_CAPS: u64 = 0x100a;
pub const KDBUS_ITEM_SECLABEL: u64 = 0x100b;
pub const KDBUS_ITEM_AUDIT: u64 = 0x100c;
pub const KDBUS_ITEM_CONN_DESCRIPTION: u64 = 0x100d;

pub const _KDBUS_ITEM_POLICY_BASE: u64 = 0x2000;
pub const KDBUS_ITEM_POLICY_ACCESS: u64 = 0x2000;

pub const _KDBUS_ITEM_KERNEL_BASE: u64 = 0x8000;
pub const KDBUS_ITEM_NAME_ADD: u64 = 0x8000;
pub const KDBUS_ITEM_NAME_REMOVE: u64 = 0x8001;
pub const KDBUS_ITEM_NAME_CHANGE: u64 = 0x8002;
pub const KDBUS_ITEM_ID_ADD: u64 = 0x8003;
pub const KDBUS_ITEM_ID_REMOVE: u64 = 0x8004;
pub const KDBUS_ITEM_REPLY_TIMEOUT: u64 = 0x8005;
pub const KDBUS_ITEM_REPLY_DEAD: u64 = 0x8006;

// KDBUS_ATTACH_*: metadata attach flags; bit n corresponds to item 0x1000 + n.
pub const KDBUS_ATTACH_TIMESTAMP: u64 = 1 << 0;
pub const KDBUS_ATTACH_CREDS: u64 = 1 << 1;
pub const KDBUS_ATTACH_PIDS: u64 = 1 << 2;
pub const KDBUS_ATTACH_AUXGROUPS: u64 = 1 << 3;
pub const KDBUS_ATTACH_NAMES: u64 = 1 << 4;
pub const KDBUS_ATTACH_TID_COMM: u64 = 1 << 5;
pub const KDBUS_ATTACH_PID_COMM: u64 = 1 << 6;
pub const KDBUS_ATTACH_EXE: u64 = 1 << 7;
pub const KDBUS_ATTACH_CMDLINE: u64 = 1 << 8;
pub const KDBUS_ATTACH_CGROUP: u64 = 1 << 9;
pub const KDBUS_ATTACH_CAPS: u64 = 1 << 10;
pub const KDBUS_ATTACH_SECLABEL: u64 = 1 << 11;
pub const KDBUS_ATTACH_AUDIT: u64 = 1 << 12;
pub const KDBUS_ATTACH_CONN_DESCRIPTION: u64 = 1 << 13;
pub const _KDBUS_ATTACH_ALL: u64 = (1 << 14) - 1;
pub const _KDBUS_ATTACH_ANY: u64 = !0;

// KDBUS_HELLO_*
pub const KDBUS_HELLO_ACCEPT_FD: u64 = 1 << 0;
pub const KDBUS_HELLO_ACTIVATOR: u64 = 1 << 1;
pub const KDBUS_HELLO_POLICY_HOLDER: u64 = 1 << 2;
pub const KDBUS_HELLO_MONITOR: u64 = 1 << 3;

// KDBUS_MSG_*
pub const KDBUS_MSG_EXPECT_REPLY: u64 = 1 << 0;
pub const KDBUS_MSG_NO_AUTO_START: u64 = 1 << 1;
pub const KDBUS_MSG_SIGNAL: u64 = 1 << 2;

// KDBUS_SEND_*
pub const KDBUS_SEND_SYNC_REPLY: u64 = 1 << 0;

// KDBUS_RECV_*
pub const KDBUS_RECV_PEEK: u64 = 1 << 0;
pub const KDBUS_RECV_DROP: u64 = 1 << 1;
pub const KDBUS_RECV_USE_PRIORITY: u64 = 1 << 2;
pub const KDBUS_RECV_RETURN_INCOMPLETE_FDS: u64 = 1 << 0;
pub const KDBUS_RECV_RETURN_DROPPED_MSGS: u64 = 1 << 1;

// KDBUS_NAME_*
pub const KDBUS_NAME_REPLACE_EXISTING: u64 = 1 << 0;
pub const KDBUS_NAME_ALLOW_REPLACEMENT: u64 = 1 << 1;
pub const KDBUS_NAME_QUEUE: u64 = 1 << 2;
pub const KDBUS_NAME_IN_QUEUE: u64 = 1 << 3;
pub const KDBUS_NAME_ACTIVATOR: u64 = 1 << 4;
pub const KDBUS_NAME_PRIMARY: u64 = 1 << 5;
pub const KDBUS_NAME_ACQUIRED: u64 = 1 << 6;

// KDBUS_LIST_*
pub const KDBUS_LIST_UNIQUE: u64 = 1 << 0;
pub const KDBUS_LIST_NAMES: u64 = 1 << 1;
pub const KDBUS_LIST_ACTIVATORS: u64 = 1 << 2;
pub const KDBUS_LIST_QUEUED: u64 = 1 << 3;

// KDBUS_MATCH_*
pub const KDBUS_MATCH_REPLACE: u64 = 1 << 0;

// KDBUS_MAKE_*
pub const KDBUS_MAKE_ACCESS_GROUP: u64 = 1 << 0;
pub const KDBUS_MAKE_ACCESS_WORLD: u64 = 1 << 1;

// kdbus_policy_access.type
pub const _KDBUS_POLICY_ACCESS_NULL: u64 = 0;
pub const KDBUS_POLICY_ACCESS_USER: u64 = 1;
pub const KDBUS_POLICY_ACCESS_GROUP: u64 = 2;
pub const KDBUS_POLICY_ACCESS_WORLD: u64 = 3;

// kdbus_policy_access.access (ordered: OWN ⊃ TALK ⊃ SEE)
pub const KDBUS_POLICY_SEE: u64 = 0;
pub const KDBUS_POLICY_TALK: u64 = 1;
pub const KDBUS_POLICY_OWN: u64 = 2;

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_notify_id_change {
    pub id: u64,
    pub flags: u64,
}

/// Followed by a NUL-terminated name.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_notify_name_change {
    pub old_id: kdbus_notify_id_change,
    pub new_id: kdbus_notify_id_change,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_creds {
    pub uid: u64,
    pub euid: u64,
    pub suid: u64,
    pub fsuid: u64,
    pub gid: u64,
    pub egid: u64,
    pub sgid: u64,
    pub fsgid: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_pids {
    pub pid: u64,
    pub tid: u64,
    pub ppid: u64,
}

/// Followed by 4 sets (inheritable, permitted, effective, bounding) of
/// 32-bit capability words.
#[repr(C, align(8))]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, Immutable, KnownLayout)]
pub struct kdbus_caps {
    pub last_cap: u32,
}

#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_audit {
    pub sessionid: u32,
    pub loginuid: u32,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_timestamp {
    pub seqnum: u64,
    pub monotonic_ns: u64,
    pub realtime_ns: u64,
}

/// `address` for PAYLOAD_VEC (sender), `offset` for PAYLOAD_OFF (receiver).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_vec {
    pub size: u64,
    pub address_or_offset: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_bloom_parameter {
    pub size: u64,
    pub n_hash: u64,
}

/// Followed by the bloom bit field (`u64` words).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_bloom_filter {
    pub generation: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_memfd {
    pub start: u64,
    pub size: u64,
    pub fd: i32,
    pub __pad: u32,
}

/// Followed by a NUL-terminated name.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_name {
    pub flags: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_policy_access {
    pub type_: u64,
    pub access: u64,
    pub id: u64,
}

/// The payload union of `struct kdbus_item`; it only exists so that
/// `size_of::<kdbus_item>()` equals the C `sizeof` (80). Items are built and
/// parsed as header + payload bytes, never through this union.
#[repr(C)]
#[derive(Clone, Copy)]
pub union kdbus_item_payload {
    pub id: u64,
    pub vec: kdbus_vec,
    pub creds: kdbus_creds,
    pub pids: kdbus_pids,
    pub audit: kdbus_audit,
    pub caps: kdbus_caps,
    pub timestamp: kdbus_timestamp,
    pub name: kdbus_name,
    pub bloom_parameter: kdbus_bloom_parameter,
    pub bloom_filter: kdbus_bloom_filter,
    pub memfd: kdbus_memfd,
    pub name_change: kdbus_notify_name_change,
    pub id_change: kdbus_notify_id_change,
    pub policy_access: kdbus_policy_access,
}

/// `size` counts the 16-byte header plus the payload without padding; the
/// next item starts at the next 8-byte boundary.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct kdbus_item {
    pub size: u64,
    pub type_: u64,
    pub payload: kdbus_item_payload,
}

/// Size of the item header (`size` and `type`).
pub const KDBUS_ITEM_HEADER_SIZE: u64 = 16;

/// `timeout_ns` (absolute CLOCK_MONOTONIC deadline) for calls,
/// `cookie_reply` for replies: they share storage.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_msg {
    pub size: u64,
    pub flags: u64,
    pub priority: i64,
    pub dst_id: u64,
    pub src_id: u64,
    pub payload_type: u64,
    pub cookie: u64,
    pub timeout_ns_or_cookie_reply: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_msg_info {
    pub offset: u64,
    pub msg_size: u64,
    pub return_flags: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_cmd_send {
    pub size: u64,
    pub flags: u64,
    pub return_flags: u64,
    pub msg_address: u64,
    pub reply: kdbus_msg_info,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_cmd_recv {
    pub size: u64,
    pub flags: u64,
    pub return_flags: u64,
    pub priority: i64,
    pub dropped_msgs: u64,
    pub msg: kdbus_msg_info,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_cmd_free {
    pub size: u64,
    pub flags: u64,
    pub return_flags: u64,
    pub offset: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_cmd_hello {
    pub size: u64,
    pub flags: u64,
    pub return_flags: u64,
    pub attach_flags_send: u64,
    pub attach_flags_recv: u64,
    pub bus_flags: u64,
    pub id: u64,
    pub pool_size: u64,
    pub offset: u64,
    pub items_size: u64,
    pub id128: [u8; 16],
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_info {
    pub size: u64,
    pub id: u64,
    pub flags: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_cmd_list {
    pub size: u64,
    pub flags: u64,
    pub return_flags: u64,
    pub offset: u64,
    pub list_size: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_cmd_info {
    pub size: u64,
    pub flags: u64,
    pub return_flags: u64,
    pub id: u64,
    pub attach_flags: u64,
    pub offset: u64,
    pub info_size: u64,
}

#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_cmd_match {
    pub size: u64,
    pub flags: u64,
    pub return_flags: u64,
    pub cookie: u64,
}

/// Generic payload of the commands that take only flags and items.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct kdbus_cmd {
    pub size: u64,
    pub flags: u64,
    pub return_flags: u64,
}

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, KDBUS_IOCTL_MAGIC, nr, size)` of the generic Linux ioctl encoding.
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((KDBUS_IOCTL_MAGIC as u32) << 8) | nr
}

const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, nr, core::mem::size_of::<T>())
}

const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, nr, core::mem::size_of::<T>())
}

const fn iowr<T>(nr: u32) -> u32 {
    ioc(IOC_READ | IOC_WRITE, nr, core::mem::size_of::<T>())
}

pub const KDBUS_CMD_BUS_MAKE: u32 = iow::<kdbus_cmd>(0x00);
pub const KDBUS_CMD_ENDPOINT_MAKE: u32 = iow::<kdbus_cmd>(0x10);
pub const KDBUS_CMD_ENDPOINT_UPDATE: u32 = iow::<kdbus_cmd>(0x11);
pub const KDBUS_CMD_HELLO: u32 = iowr::<kdbus_cmd_hello>(0x80);
pub const KDBUS_CMD_UPDATE: u32 = iow::<kdbus_cmd>(0x81);
pub const KDBUS_CMD_BYEBYE: u32 = iow::<kdbus_cmd>(0x82);
pub const KDBUS_CMD_FREE: u32 = iow::<kdbus_cmd_free>(0x83);
pub const KDBUS_CMD_CONN_INFO: u32 = ior::<kdbus_cmd_info>(0x84);
pub const KDBUS_CMD_BUS_CREATOR_INFO: u32 = ior::<kdbus_cmd_info>(0x85);
pub const KDBUS_CMD_LIST: u32 = ior::<kdbus_cmd_list>(0x86);
pub const KDBUS_CMD_SEND: u32 = iow::<kdbus_cmd_send>(0x90);
pub const KDBUS_CMD_RECV: u32 = ior::<kdbus_cmd_recv>(0x91);
pub const KDBUS_CMD_NAME_ACQUIRE: u32 = iow::<kdbus_cmd>(0xa0);
pub const KDBUS_CMD_NAME_RELEASE: u32 = iow::<kdbus_cmd>(0xa1);
pub const KDBUS_CMD_MATCH_ADD: u32 = iow::<kdbus_cmd_match>(0xb0);
pub const KDBUS_CMD_MATCH_REMOVE: u32 = iow::<kdbus_cmd_match>(0xb1);
