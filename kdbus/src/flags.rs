//! Typed flag sets (spec §6). Every set keeps unknown bits
//! (`from_bits_retain`), so values from a newer kernel survive a round trip.

use bitflags::bitflags;

use crate::abi::*;

bitflags! {
    /// `KDBUS_HELLO_*`: the kind of a connection.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct HelloFlags: u64 {
        const ACCEPT_FD = KDBUS_HELLO_ACCEPT_FD;
        const ACTIVATOR = KDBUS_HELLO_ACTIVATOR;
        const POLICY_HOLDER = KDBUS_HELLO_POLICY_HOLDER;
        const MONITOR = KDBUS_HELLO_MONITOR;
    }

    /// `KDBUS_ATTACH_*`: metadata items.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct AttachFlags: u64 {
        const TIMESTAMP = KDBUS_ATTACH_TIMESTAMP;
        const CREDS = KDBUS_ATTACH_CREDS;
        const PIDS = KDBUS_ATTACH_PIDS;
        const AUXGROUPS = KDBUS_ATTACH_AUXGROUPS;
        const NAMES = KDBUS_ATTACH_NAMES;
        const TID_COMM = KDBUS_ATTACH_TID_COMM;
        const PID_COMM = KDBUS_ATTACH_PID_COMM;
        const EXE = KDBUS_ATTACH_EXE;
        const CMDLINE = KDBUS_ATTACH_CMDLINE;
        const CGROUP = KDBUS_ATTACH_CGROUP;
        const CAPS = KDBUS_ATTACH_CAPS;
        const SECLABEL = KDBUS_ATTACH_SECLABEL;
        const AUDIT = KDBUS_ATTACH_AUDIT;
        const CONN_DESCRIPTION = KDBUS_ATTACH_CONN_DESCRIPTION;
    }

    /// `KDBUS_MSG_*`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MsgFlags: u64 {
        const EXPECT_REPLY = KDBUS_MSG_EXPECT_REPLY;
        const NO_AUTO_START = KDBUS_MSG_NO_AUTO_START;
        const SIGNAL = KDBUS_MSG_SIGNAL;
    }

    /// `KDBUS_RECV_*` (input).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RecvFlags: u64 {
        const PEEK = KDBUS_RECV_PEEK;
        const DROP = KDBUS_RECV_DROP;
        const USE_PRIORITY = KDBUS_RECV_USE_PRIORITY;
    }

    /// `KDBUS_NAME_*`: acquire flags in, owner state out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct NameFlags: u64 {
        const REPLACE_EXISTING = KDBUS_NAME_REPLACE_EXISTING;
        const ALLOW_REPLACEMENT = KDBUS_NAME_ALLOW_REPLACEMENT;
        const QUEUE = KDBUS_NAME_QUEUE;
        const IN_QUEUE = KDBUS_NAME_IN_QUEUE;
        const ACTIVATOR = KDBUS_NAME_ACTIVATOR;
        const PRIMARY = KDBUS_NAME_PRIMARY;
        const ACQUIRED = KDBUS_NAME_ACQUIRED;
    }

    /// `KDBUS_LIST_*`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ListFlags: u64 {
        const UNIQUE = KDBUS_LIST_UNIQUE;
        const NAMES = KDBUS_LIST_NAMES;
        const ACTIVATORS = KDBUS_LIST_ACTIVATORS;
        const QUEUED = KDBUS_LIST_QUEUED;
    }

    /// `KDBUS_MAKE_*`: access to a bus or endpoint node.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MakeFlags: u64 {
        const ACCESS_GROUP = KDBUS_MAKE_ACCESS_GROUP;
        const ACCESS_WORLD = KDBUS_MAKE_ACCESS_WORLD;
    }
}

impl AttachFlags {
    /// `_KDBUS_ATTACH_ANY` (`~0`): "everything the kernel knows", accepted
    /// by HELLO, UPDATE and BUS_MAKE.
    pub const ANY: AttachFlags = AttachFlags::from_bits_retain(_KDBUS_ATTACH_ANY);

    /// Metadata a receiver gets from any sender that it asks for (spec §13.2).
    pub const IMPLICIT: AttachFlags = AttachFlags::TIMESTAMP
        .union(AttachFlags::CREDS)
        .union(AttachFlags::PIDS)
        .union(AttachFlags::AUXGROUPS)
        .union(AttachFlags::NAMES)
        .union(AttachFlags::CONN_DESCRIPTION);
}

/// Lower-case names of the set bits (`"accept-fd"`, `"primary"`...), with
/// unknown bits as hex — for tools that print flags.
pub fn names<F: bitflags::Flags<Bits = u64>>(flags: F) -> Vec<String> {
    let mut out: Vec<String> = flags
        .iter_names()
        .map(|(name, _)| name.to_ascii_lowercase().replace('_', "-"))
        .collect();
    let unknown = flags.bits() & !F::all().bits();
    if unknown != 0 {
        out.push(format!("{unknown:#x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_attach_flags_is_the_abi_mask() {
        assert_eq!(AttachFlags::all().bits(), _KDBUS_ATTACH_ALL);
        assert_eq!(AttachFlags::ANY.bits(), !0);
    }

    #[test]
    fn names_are_readable_and_keep_unknown_bits() {
        let flags = NameFlags::PRIMARY | NameFlags::ACQUIRED;
        assert_eq!(names(flags), ["primary", "acquired"]);
        let odd = HelloFlags::from_bits_retain(KDBUS_HELLO_ACCEPT_FD | 1 << 40);
        assert_eq!(names(odd), ["accept-fd", "0x10000000000"]);
    }
}
