//! Metadata the kernel attaches to messages and info records (spec §13),
//! decoded into owned values.

use crate::abi::*;
use crate::flags::NameFlags;
use crate::item::{CapsItem, Item};

/// An id the kernel could not determine (`kdbus_creds` fields).
pub const UNKNOWN_ID: u64 = 0xFFFF_FFFF;

/// `KDBUS_ITEM_CREDS`. Each id is a 32-bit value in a 64-bit field;
/// [`UNKNOWN_ID`] when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Creds {
    pub uid: u64,
    pub euid: u64,
    pub suid: u64,
    pub fsuid: u64,
    pub gid: u64,
    pub egid: u64,
    pub sgid: u64,
    pub fsgid: u64,
}

impl Creds {
    /// The calling process's ids (saved and filesystem ids taken to be
    /// the effective ones). With [`Pids::current`], what a bus owner passes
    /// to [`crate::HelloBuilder::creds`] to connect as itself without the
    /// kernel recording its executable and root directory: kdbus keeps
    /// those referenced for the connection's lifetime, which keeps the
    /// file system they are on busy (it cannot be unmounted).
    pub fn current() -> Creds {
        let (uid, euid) = (
            rustix::process::getuid().as_raw() as u64,
            rustix::process::geteuid().as_raw() as u64,
        );
        let (gid, egid) = (
            rustix::process::getgid().as_raw() as u64,
            rustix::process::getegid().as_raw() as u64,
        );
        Creds {
            uid,
            euid,
            suid: euid,
            fsuid: euid,
            gid,
            egid,
            sgid: egid,
            fsgid: egid,
        }
    }
}

impl From<kdbus_creds> for Creds {
    fn from(c: kdbus_creds) -> Creds {
        Creds {
            uid: c.uid,
            euid: c.euid,
            suid: c.suid,
            fsuid: c.fsuid,
            gid: c.gid,
            egid: c.egid,
            sgid: c.sgid,
            fsgid: c.fsgid,
        }
    }
}

impl From<Creds> for kdbus_creds {
    fn from(c: Creds) -> kdbus_creds {
        kdbus_creds {
            uid: c.uid,
            euid: c.euid,
            suid: c.suid,
            fsuid: c.fsuid,
            gid: c.gid,
            egid: c.egid,
            sgid: c.sgid,
            fsgid: c.fsgid,
        }
    }
}

/// `KDBUS_ITEM_PIDS`, as seen from the receiver's pid namespace (0 =
/// not visible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pids {
    /// Process (thread group) id.
    pub pid: u64,
    pub tid: u64,
    pub ppid: u64,
}

impl Pids {
    /// The calling thread's pid, tid and parent pid (see
    /// [`Creds::current`]).
    pub fn current() -> Pids {
        Pids {
            pid: rustix::process::getpid().as_raw_nonzero().get() as u64,
            tid: rustix::thread::gettid().as_raw_nonzero().get() as u64,
            ppid: rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u64),
        }
    }
}

impl From<kdbus_pids> for Pids {
    fn from(p: kdbus_pids) -> Pids {
        Pids {
            pid: p.pid,
            tid: p.tid,
            ppid: p.ppid,
        }
    }
}

impl From<Pids> for kdbus_pids {
    fn from(p: Pids) -> kdbus_pids {
        kdbus_pids {
            pid: p.pid,
            tid: p.tid,
            ppid: p.ppid,
        }
    }
}

/// `KDBUS_ITEM_TIMESTAMP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// Per-bus message sequence number.
    pub seqnum: u64,
    pub monotonic_ns: u64,
    pub realtime_ns: u64,
}

/// `KDBUS_ITEM_AUDIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Audit {
    pub sessionid: u32,
    pub loginuid: u32,
}

/// A capability set of `KDBUS_ITEM_CAPS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapSet {
    Inheritable = 0,
    Permitted = 1,
    Effective = 2,
    Bounding = 3,
}

/// `KDBUS_ITEM_CAPS`: the four capability sets of the process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caps {
    /// The kernel's `CAP_LAST_CAP`.
    pub last_cap: u32,
    sets: CapsItem,
}

impl Caps {
    /// Whether capability number `cap` is in `set`.
    pub fn has(&self, set: CapSet, cap: u32) -> bool {
        let word = cap as usize / 32;
        if cap > self.last_cap || word >= self.sets.words_per_set {
            return false;
        }
        let w = self.sets.words[set as usize * self.sets.words_per_set + word];
        w & (1 << (cap % 32)) != 0
    }

    /// The 32-bit words of one set, least significant first.
    pub fn words(&self, set: CapSet) -> &[u32] {
        let n = self.sets.words_per_set;
        &self.sets.words[set as usize * n..(set as usize + 1) * n]
    }

    /// The set as one 64-bit mask (capabilities 0..63).
    pub fn mask(&self, set: CapSet) -> u64 {
        let words = self.words(set);
        let lo = words.first().copied().unwrap_or(0) as u64;
        let hi = words.get(1).copied().unwrap_or(0) as u64;
        lo | hi << 32
    }
}

/// A name with its owner flags (`KDBUS_ITEM_OWNED_NAME`, LIST records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedName {
    pub name: String,
    pub flags: NameFlags,
}

/// All metadata items of a message or info record.
///
/// Strings the sender controls (comms, exe, cmdline) are for display, never
/// for security decisions (spec §13.5). Non-UTF-8 bytes are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub timestamp: Option<Timestamp>,
    pub creds: Option<Creds>,
    pub pids: Option<Pids>,
    pub auxgroups: Option<Vec<u64>>,
    /// Names the sender owns (as primary owner); present but empty when
    /// NAMES was attached and the sender owns none.
    pub names: Option<Vec<OwnedName>>,
    pub tid_comm: Option<String>,
    pub pid_comm: Option<String>,
    pub exe: Option<String>,
    /// The argument vector (the historic kernel delivered `argv[0]` only).
    pub cmdline: Option<Vec<String>>,
    pub cgroup: Option<String>,
    pub caps: Option<Caps>,
    pub seclabel: Option<String>,
    pub audit: Option<Audit>,
    pub description: Option<String>,
}

impl Metadata {
    /// Collects the metadata items of a decoded item list; other items are
    /// ignored.
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a Item<'a>>) -> Metadata {
        let mut meta = Metadata::default();
        for item in items {
            meta.absorb(item);
        }
        meta
    }

    /// Takes one item into account. Returns false if it is not metadata.
    pub fn absorb(&mut self, item: &Item<'_>) -> bool {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match item {
            Item::Timestamp(t) => {
                self.timestamp = Some(Timestamp {
                    seqnum: t.seqnum,
                    monotonic_ns: t.monotonic_ns,
                    realtime_ns: t.realtime_ns,
                })
            }
            Item::Creds(c) => self.creds = Some((*c).into()),
            Item::Pids(p) => self.pids = Some((*p).into()),
            Item::Auxgroups(g) => self.auxgroups = Some(g.clone()),
            Item::OwnedName { flags, name } => {
                self.names.get_or_insert_with(Vec::new).push(OwnedName {
                    name: (*name).to_owned(),
                    flags: NameFlags::from_bits_retain(*flags),
                })
            }
            Item::TidComm(s) => self.tid_comm = Some(text(s)),
            Item::PidComm(s) => self.pid_comm = Some(text(s)),
            Item::Exe(s) => self.exe = Some(text(s)),
            Item::Cmdline(s) => self.cmdline = Some(s.split(|&b| b == 0).map(text).collect()),
            Item::Cgroup(s) => self.cgroup = Some(text(s)),
            Item::Caps(c) => {
                self.caps = Some(Caps {
                    last_cap: c.last_cap,
                    sets: c.clone(),
                })
            }
            Item::Seclabel(s) => self.seclabel = Some(text(s)),
            Item::Audit(a) => {
                self.audit = Some(Audit {
                    sessionid: a.sessionid,
                    loginuid: a.loginuid,
                })
            }
            Item::ConnDescription(s) => self.description = Some((*s).to_owned()),
            _ => return false,
        }
        true
    }

    /// True if no metadata item was present.
    pub fn is_empty(&self) -> bool {
        *self == Metadata::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn current_ids_are_this_process() {
        let c = super::Creds::current();
        assert_eq!(c.euid, rustix::process::geteuid().as_raw() as u64);
        assert_eq!(c.fsgid, rustix::process::getegid().as_raw() as u64);
        let p = super::Pids::current();
        assert_eq!(p.pid, std::process::id() as u64);
        assert_ne!(p.tid, 0);
        assert_ne!(p.ppid, 0);
    }

    use super::*;
    use crate::item::Items;
    use crate::raw::Buf;

    #[test]
    fn collects_every_metadata_item() {
        let mut buf = Buf::new();
        buf.push_struct_item(
            KDBUS_ITEM_CREDS,
            &kdbus_creds {
                uid: 1000,
                euid: 1000,
                gid: 100,
                ..Default::default()
            },
        );
        buf.push_struct_item(
            KDBUS_ITEM_PIDS,
            &kdbus_pids {
                pid: 42,
                tid: 43,
                ppid: 1,
            },
        );
        buf.push_item(
            KDBUS_ITEM_AUXGROUPS,
            &[10u64.to_ne_bytes(), 20u64.to_ne_bytes()].concat(),
        );
        buf.push_str_item(KDBUS_ITEM_TID_COMM, "worker");
        buf.push_str_item(KDBUS_ITEM_PID_COMM, "daemon");
        buf.push_str_item(KDBUS_ITEM_EXE, "/usr/bin/daemon");
        buf.push_item(KDBUS_ITEM_CMDLINE, b"daemon\0--foo\0");
        buf.push_str_item(KDBUS_ITEM_CGROUP, "/system.slice/x.service");
        let mut caps = 40u32.to_ne_bytes().to_vec();
        for w in [0u32, 0, 1 << 21, 0, 1 << 21, 0, !0, 0x1ff] {
            caps.extend(w.to_ne_bytes());
        }
        buf.push_item(KDBUS_ITEM_CAPS, &caps);
        buf.push_str_item(KDBUS_ITEM_SECLABEL, "unconfined");
        buf.push_struct_item(
            KDBUS_ITEM_AUDIT,
            &kdbus_audit {
                sessionid: 3,
                loginuid: 1000,
            },
        );
        buf.push_item_parts(
            KDBUS_ITEM_OWNED_NAME,
            &[&KDBUS_NAME_PRIMARY.to_ne_bytes(), b"org.example.A\0"],
        );
        buf.push_str_item(KDBUS_ITEM_CONN_DESCRIPTION, "main");
        buf.push_struct_item(
            KDBUS_ITEM_TIMESTAMP,
            &kdbus_timestamp {
                seqnum: 9,
                monotonic_ns: 10,
                realtime_ns: 11,
            },
        );
        buf.push_u64_item(KDBUS_ITEM_ID, 5); // not metadata

        let items = Items::new(buf.as_bytes()).decode_all().unwrap();
        let meta = Metadata::from_items(&items);
        assert_eq!(meta.creds.unwrap().uid, 1000);
        assert_eq!(meta.creds.unwrap().gid, 100);
        assert_eq!(meta.pids.unwrap().pid, 42);
        assert_eq!(meta.auxgroups.as_deref(), Some(&[10, 20][..]));
        assert_eq!(meta.tid_comm.as_deref(), Some("worker"));
        assert_eq!(meta.pid_comm.as_deref(), Some("daemon"));
        assert_eq!(meta.exe.as_deref(), Some("/usr/bin/daemon"));
        assert_eq!(meta.cmdline.clone().unwrap(), ["daemon", "--foo"]);
        assert_eq!(meta.cgroup.as_deref(), Some("/system.slice/x.service"));
        let caps = meta.caps.as_ref().unwrap();
        assert!(caps.has(CapSet::Effective, 21)); // CAP_SYS_ADMIN
        assert!(caps.has(CapSet::Permitted, 21));
        assert!(!caps.has(CapSet::Inheritable, 21));
        assert!(caps.has(CapSet::Bounding, 40));
        assert!(!caps.has(CapSet::Bounding, 41), "beyond last_cap");
        assert_eq!(caps.mask(CapSet::Bounding), 0x1ff_ffff_ffff);
        assert_eq!(meta.seclabel.as_deref(), Some("unconfined"));
        assert_eq!(meta.audit.unwrap().loginuid, 1000);
        assert_eq!(
            meta.names.clone().unwrap(),
            [OwnedName {
                name: "org.example.A".into(),
                flags: NameFlags::PRIMARY
            }]
        );
        assert_eq!(meta.description.as_deref(), Some("main"));
        assert_eq!(meta.timestamp.unwrap().seqnum, 9);
        assert!(!meta.is_empty());
        assert!(Metadata::default().is_empty());
    }
}
