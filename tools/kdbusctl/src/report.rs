//! What kdbusctl shows: plain data (serialized as is for `--json`) built
//! from library results, and its text rendering.

use std::collections::BTreeMap;
use std::fmt::Write;

use kdbus::flags::names as flag_names;
use kdbus::{HelloFlags, ListEntry, Metadata, NameFlags};
use serde::Serialize;

/// 32 hex digits, as systemd prints 128-bit ids.
pub use kdbus::id128_hex as hex_id128;

/// A connection's kind, from its HELLO flags.
pub fn kind(flags: HelloFlags) -> &'static str {
    if flags.contains(HelloFlags::ACTIVATOR) {
        "activator"
    } else if flags.contains(HelloFlags::POLICY_HOLDER) {
        "policy-holder"
    } else if flags.contains(HelloFlags::MONITOR) {
        "monitor"
    } else {
        "ordinary"
    }
}

/// Process facts about a peer, as far as its metadata tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Process {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl From<&Metadata> for Process {
    fn from(m: &Metadata) -> Process {
        Process {
            uid: m.creds.map(|c| c.uid),
            gid: m.creds.map(|c| c.gid),
            pid: m.pids.map(|p| p.pid),
            comm: m.pid_comm.clone().or_else(|| m.tid_comm.clone()),
            exe: m.exe.clone(),
            cmdline: m.cmdline.clone(),
            cgroup: m.cgroup.clone(),
            description: m.description.clone(),
        }
    }
}

impl Process {
    pub fn is_empty(&self) -> bool {
        *self == Process::default()
    }

    /// `pid 42 (comm), uid 0` — whatever is known.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(pid) = self.pid {
            match &self.comm {
                Some(comm) => parts.push(format!("pid {pid} ({comm})")),
                None => parts.push(format!("pid {pid}")),
            }
        } else if let Some(comm) = &self.comm {
            parts.push(comm.clone());
        }
        if let Some(uid) = self.uid {
            parts.push(format!("uid {uid}"));
        }
        if let Some(exe) = &self.exe {
            parts.push(exe.clone());
        }
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bloom {
    pub size: u64,
    pub n_hash: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusSummary {
    pub name: String,
    pub path: String,
    pub id128: String,
    pub id: u64,
    pub access: Vec<String>,
    pub bloom: Bloom,
    /// The creator's metadata, as far as it allowed (BUS_CREATOR_INFO).
    pub creator: Process,
}

/// `kdbusctl status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub bus: BusSummary,
    /// Connections other than kdbusctl's own (monitors are invisible).
    pub connections: usize,
    pub activators: usize,
    pub policy_holders: usize,
    /// Names with a primary owner (not counting activator-only names).
    pub names: usize,
    /// Activatable names waiting for their service.
    pub activatable: usize,
    /// Connections queued for a name behind its primary owner.
    pub queued_owners: usize,
    /// kdbus-init's published state, where it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kdbus_init: Option<crate::init_state::InitState>,
}

/// A name a connection holds, queues for, or activates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldName {
    pub name: String,
    pub flags: Vec<String>,
}

/// One connection of `kdbusctl list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnRow {
    pub id: u64,
    pub kind: &'static str,
    pub flags: Vec<String>,
    pub names: Vec<HeldName>,
    #[serde(flatten)]
    pub process: Process,
}

/// One name of `kdbusctl names`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameRow {
    pub name: String,
    /// The primary owner (an activator while no service owns the name).
    pub owner: Option<u64>,
    pub owner_flags: Vec<String>,
    /// The activator holding the name for its service, if any.
    pub activator: Option<u64>,
    /// Connections queued behind the owner, in LIST order.
    pub queued: Vec<u64>,
}

/// Groups LIST records by connection, leaving out `self_id`.
pub fn connections(entries: &[ListEntry], self_id: u64) -> Vec<ConnRow> {
    let mut by_id: BTreeMap<u64, ConnRow> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.id != self_id) {
        let row = by_id.entry(e.id).or_insert_with(|| ConnRow {
            id: e.id,
            kind: kind(e.flags),
            flags: flag_names(e.flags),
            names: Vec::new(),
            process: Process::default(),
        });
        if let Some(name) = &e.name {
            row.names.push(HeldName {
                name: name.name.clone(),
                flags: flag_names(name.flags),
            });
        }
    }
    by_id.into_values().collect()
}

/// Groups LIST records by name.
pub fn names(entries: &[ListEntry]) -> Vec<NameRow> {
    let mut by_name: BTreeMap<&str, NameRow> = BTreeMap::new();
    for e in entries {
        let Some(owned) = &e.name else { continue };
        let row = by_name.entry(&owned.name).or_insert_with(|| NameRow {
            name: owned.name.clone(),
            owner: None,
            owner_flags: Vec::new(),
            activator: None,
            queued: Vec::new(),
        });
        let activator = owned.flags.contains(NameFlags::ACTIVATOR);
        let in_queue = owned.flags.contains(NameFlags::IN_QUEUE);
        if activator {
            row.activator = Some(e.id);
        }
        if in_queue && !activator {
            row.queued.push(e.id);
        } else if !in_queue && (row.owner.is_none() || !activator) {
            // A real owner wins over the activator's hold on the name.
            row.owner = Some(e.id);
            row.owner_flags = flag_names(owned.flags);
        }
    }
    by_name.into_values().collect()
}

/// The counts of `kdbusctl status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub activators: usize,
    pub policy_holders: usize,
    /// Names with a real (non-activator) primary owner.
    pub owned: usize,
    /// Names only an activator holds.
    pub activatable: usize,
    pub queued_owners: usize,
}

pub fn counts(rows: &[ConnRow], names: &[NameRow]) -> Counts {
    Counts {
        activators: rows.iter().filter(|r| r.kind == "activator").count(),
        policy_holders: rows.iter().filter(|r| r.kind == "policy-holder").count(),
        owned: names
            .iter()
            .filter(|n| n.owner.is_some() && n.owner != n.activator)
            .count(),
        activatable: names
            .iter()
            .filter(|n| n.activator.is_some() && n.owner == n.activator)
            .count(),
        queued_owners: names.iter().map(|n| n.queued.len()).sum(),
    }
}

pub fn render_status(s: &Status) -> String {
    let mut out = String::new();
    let b = &s.bus;
    let access = if b.access.is_empty() {
        "owner only".to_owned()
    } else {
        format!("owner, {}", b.access.join(", "))
    };
    let _ = writeln!(out, "bus:           {} ({})", b.name, b.path);
    let _ = writeln!(out, "id128:         {}", b.id128);
    let _ = writeln!(out, "bus id:        {}", b.id);
    let _ = writeln!(out, "access:        {access}");
    let _ = writeln!(
        out,
        "bloom:         {} bytes, {} hash functions",
        b.bloom.size, b.bloom.n_hash
    );
    let _ = writeln!(out, "creator:       {}", b.creator.summary());
    let _ = writeln!(
        out,
        "connections:   {} ({} activators, {} policy holders; not counting kdbusctl)",
        s.connections, s.activators, s.policy_holders
    );
    let _ = writeln!(
        out,
        "names:         {} owned, {} waiting for activation, {} queued owners",
        s.names, s.activatable, s.queued_owners
    );
    if let Some(init) = &s.kdbus_init {
        out.push_str(&crate::init_state::render(init, &b.id128));
    }
    out
}

/// A text table: columns padded to their widest cell, last one free.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                let _ = write!(s, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn or_dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".to_owned())
}

pub fn render_connections(rows: &[ConnRow]) -> String {
    if rows.is_empty() {
        return "no connections (besides kdbusctl)\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let names = r
                .names
                .iter()
                .map(|n| {
                    if n.flags.is_empty() {
                        n.name.clone()
                    } else {
                        format!("{} ({})", n.name, n.flags.join(","))
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                r.id.to_string(),
                r.kind.to_owned(),
                or_dash(r.process.pid.map(|p| p.to_string())),
                or_dash(r.process.uid.map(|u| u.to_string())),
                or_dash(r.process.comm.clone()),
                or_dash(r.process.description.clone()),
                if names.is_empty() { "-".into() } else { names },
            ]
        })
        .collect();
    table(
        &["ID", "KIND", "PID", "UID", "COMM", "DESCRIPTION", "NAMES"],
        &cells,
    )
}

pub fn render_names(rows: &[NameRow]) -> String {
    if rows.is_empty() {
        return "no names\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let state = match (r.owner, r.activator) {
                (Some(o), Some(a)) if o == a => "waiting for activation".to_owned(),
                (Some(_), _) => r.owner_flags.join(","),
                (None, _) => "-".to_owned(),
            };
            let queued = if r.queued.is_empty() {
                "-".to_owned()
            } else {
                r.queued
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            vec![
                r.name.clone(),
                or_dash(r.owner.map(|o| o.to_string())),
                or_dash(r.activator.map(|a| a.to_string())),
                queued,
                if state.is_empty() { "-".into() } else { state },
            ]
        })
        .collect();
    table(&["NAME", "OWNER", "ACTIVATOR", "QUEUED", "STATE"], &cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdbus::OwnedName;

    fn entry(id: u64, flags: HelloFlags, name: Option<(&str, NameFlags)>) -> ListEntry {
        ListEntry {
            id,
            flags,
            name: name.map(|(n, f)| OwnedName {
                name: n.to_owned(),
                flags: f,
            }),
        }
    }

    fn sample() -> Vec<ListEntry> {
        vec![
            entry(1, HelloFlags::empty(), None), // kdbusctl itself
            entry(
                2,
                HelloFlags::ACTIVATOR,
                Some(("org.example.Idle", NameFlags::ACTIVATOR)),
            ),
            entry(
                3,
                HelloFlags::ACTIVATOR,
                Some((
                    "org.example.Busy",
                    NameFlags::ACTIVATOR | NameFlags::IN_QUEUE,
                )),
            ),
            entry(
                4,
                HelloFlags::ACCEPT_FD,
                Some(("org.example.Busy", NameFlags::ALLOW_REPLACEMENT)),
            ),
            entry(
                4,
                HelloFlags::ACCEPT_FD,
                Some(("org.example.Other", NameFlags::empty())),
            ),
            entry(
                5,
                HelloFlags::empty(),
                Some(("org.example.Busy", NameFlags::QUEUE | NameFlags::IN_QUEUE)),
            ),
            entry(6, HelloFlags::POLICY_HOLDER, None),
        ]
    }

    #[test]
    fn groups_connections_without_self() {
        let rows = connections(&sample(), 1);
        assert_eq!(
            rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            [2, 3, 4, 5, 6]
        );
        let four = &rows[2];
        assert_eq!(four.kind, "ordinary");
        assert_eq!(four.flags, ["accept-fd"]);
        assert_eq!(four.names.len(), 2);
        assert_eq!(four.names[0].flags, ["allow-replacement"]);
        assert_eq!(rows[0].kind, "activator");
        assert_eq!(rows[4].kind, "policy-holder");
    }

    #[test]
    fn groups_names_with_owner_activator_and_queue() {
        let rows = names(&sample());
        let busy = rows.iter().find(|r| r.name == "org.example.Busy").unwrap();
        assert_eq!(busy.owner, Some(4));
        assert_eq!(busy.activator, Some(3));
        assert_eq!(busy.queued, [5]);
        let idle = rows.iter().find(|r| r.name == "org.example.Idle").unwrap();
        assert_eq!(idle.owner, Some(2));
        assert_eq!(idle.activator, Some(2));
        let other = rows.iter().find(|r| r.name == "org.example.Other").unwrap();
        assert_eq!((other.owner, other.activator), (Some(4), None));

        assert_eq!(
            counts(&connections(&sample(), 1), &rows),
            Counts {
                activators: 2,
                policy_holders: 1,
                owned: 2,
                activatable: 1,
                queued_owners: 1
            }
        );
    }

    #[test]
    fn renders_tables() {
        let rows = connections(&sample(), 1);
        let text = render_connections(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID  KIND"), "{text}");
        assert!(
            text.contains("org.example.Busy (allow-replacement), org.example.Other"),
            "{text}"
        );
        let names = render_names(&names(&sample()));
        assert!(names.contains("waiting for activation"), "{names}");
        assert!(
            names.lines().any(|l| l.starts_with("org.example.Busy")
                && l.contains(" 4 ")
                && l.contains(" 3 ")
                && l.contains(" 5 ")),
            "{names}"
        );
        assert_eq!(render_names(&[]), "no names\n");
    }

    #[test]
    fn table_pads_all_but_the_last_column() {
        let t = table(
            &["A", "B", "C"],
            &[vec!["long-cell".into(), "x".into(), "tail".into()]],
        );
        assert_eq!(t, "A          B  C\nlong-cell  x  tail\n");
    }

    #[test]
    fn process_summary_uses_what_is_known() {
        let p = Process {
            pid: Some(42),
            comm: Some("kdbus-init".into()),
            uid: Some(0),
            ..Default::default()
        };
        assert_eq!(p.summary(), "pid 42 (kdbus-init), uid 0");
        assert_eq!(Process::default().summary(), "-");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"pid": 42, "comm": "kdbus-init", "uid": 0})
        );
    }

    #[test]
    fn status_json_has_stable_keys() {
        let s = Status {
            bus: BusSummary {
                name: "0-system".into(),
                path: "/sys/fs/kdbus/0-system/bus".into(),
                id128: hex_id128([0xab; 16]),
                id: 3,
                access: vec!["world".into()],
                bloom: Bloom {
                    size: 64,
                    n_hash: 8,
                },
                creator: Process::default(),
            },
            connections: 2,
            activators: 1,
            policy_holders: 0,
            names: 1,
            activatable: 1,
            queued_owners: 0,
            kdbus_init: None,
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["bus"]["id128"], "abababababababababababababababab");
        assert_eq!(json["bus"]["bloom"]["size"], 64);
        assert_eq!(json["connections"], 2);
        assert!(json.get("kdbus_init").is_none());
        let text = render_status(&s);
        assert!(text.contains("id128:         abab"), "{text}");
        assert!(text.contains("2 (1 activators"), "{text}");
    }
}
