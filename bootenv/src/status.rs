//! kdbus-init's published status: the one schema that kdbus-init writes to
//! [`STATUS_FILE`] (atomically, on every change) and that `kdbus-init
//! status`, `kdbusctl status` and the boot tests read.
//!
//! It says where kdbus-init is (the phase: which root), who it is (pid,
//! binary, argv[0]), the bus it holds, its activators with their pending
//! activations and owner policy, what happened (phases, activations,
//! problems) and its recent log records.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::log::{LogLine, Sink};

pub const STATUS_FILE: &str = "/run/kdbus/kdbus-init.json";
pub const PID_FILE: &str = "/run/kdbus/kdbus-init.pid";
/// The schema's version: bumped when a change would mislead an older
/// reader. Readers refuse other versions with a clear message.
pub const SCHEMA: u32 = 2;

/// Which root kdbus-init runs in: the phase of the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootKind {
    Initramfs,
    RealRoot,
    ShutdownRoot,
}

impl RootKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RootKind::Initramfs => "initramfs",
            RootKind::RealRoot => "real-root",
            RootKind::ShutdownRoot => "shutdown-root",
        }
    }
}

/// One stay in one root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub root: RootKind,
    /// CLOCK_MONOTONIC, microseconds (comparable with systemd's
    /// `*TimestampMonotonic` properties).
    pub since_us: u64,
    pub pid: u32,
    /// The binary kdbus-init ran from, as that root saw it.
    pub exe: String,
    pub bus_id: Option<String>,
}

/// The bus kdbus-init holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusStatus {
    pub name: String,
    /// Its default endpoint.
    pub path: String,
    /// The bus id128 (32 hex digits), if a HELLO could read it.
    pub id: Option<String>,
    /// Whether kdbus-init holds the handle that created the bus (the bus
    /// lives as long as it). False for a bus it adopted without it.
    pub owner_held: bool,
    /// CLOCK_MONOTONIC, microseconds.
    pub created_us: u64,
}

/// A D-Bus system service file (`[D-BUS Service]`), as far as activation
/// needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub exec: Option<String>,
    pub user: Option<String>,
    pub systemd_service: Option<String>,
    pub file: std::path::PathBuf,
}

/// Where an activatable name stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Activation {
    /// Waiting for the first message.
    Idle,
    /// A message is queued but the service cannot be started in this root
    /// (its program or unit is not here): started after the next switch.
    Deferred { reason: String },
    /// Started; the queued messages move to the service when it takes the
    /// name.
    Starting {
        how: String,
        since_us: u64,
        attempts: u32,
    },
    /// The last start failed; messages stay queued on the activator and
    /// another attempt follows at `retry_us`.
    Failed {
        error: String,
        attempts: u32,
        retry_us: Option<u64>,
    },
}

impl Activation {
    /// A short description: the state and its reason.
    pub fn describe(&self) -> String {
        match self {
            Activation::Idle => "idle".into(),
            Activation::Deferred { reason } => format!("deferred: {reason}"),
            Activation::Starting { how, attempts, .. } => {
                format!("starting ({how}, attempt {attempts})")
            }
            Activation::Failed {
                error,
                attempts,
                retry_us,
            } => format!(
                "failed (attempt {attempts}{}): {error}",
                if retry_us.is_some() {
                    ", will retry"
                } else {
                    ", no more retries"
                }
            ),
        }
    }
}

/// Who, besides root, may own an activatable name: the uid of the
/// service's `User=`, as resolved in a root that knows that user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerPolicy {
    /// The `User=` of the service file (`None`: root, the system bus's
    /// default).
    pub user: Option<String>,
    /// The uid the activator's policy grants OWN to; `None` while no root
    /// so far knew the user (then only root may own the name).
    pub uid: Option<u32>,
    /// The root where `uid` was resolved.
    pub resolved_in: Option<RootKind>,
    /// Set while the policy must change but cannot yet (the name is held by
    /// a running service): why.
    #[serde(default)]
    pub pending_change: Option<String>,
}

impl OwnerPolicy {
    pub fn describe(&self) -> String {
        let user = self.user.as_deref().unwrap_or("root");
        let mut s = match (self.uid, self.resolved_in) {
            (Some(uid), Some(root)) => format!("{user} (uid {uid}, from the {})", root.as_str()),
            (Some(uid), None) => format!("{user} (uid {uid})"),
            (None, _) => format!("root only ({user} is unknown so far)"),
        };
        if let Some(why) = &self.pending_change {
            let _ = write!(s, "; change pending: {why}");
        }
        s
    }
}

/// One activator connection and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivatorStatus {
    pub name: String,
    /// The activator's connection id on the bus.
    pub conn_id: u64,
    pub service: Service,
    pub activation: Activation,
    pub owner: OwnerPolicy,
}

/// One activation event (for the timeline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRecord {
    pub name: String,
    pub root: RootKind,
    pub at_us: u64,
    pub event: String,
}

/// The log: where records go and what went where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStatus {
    pub sink: Sink,
    /// Records written to /dev/kmsg.
    pub to_kmsg: u64,
    /// Records handed to journald directly.
    pub to_journal: u64,
    /// Records waiting for the kmsg rate limit.
    pub waiting: usize,
    /// Records lost for good.
    pub dropped: u64,
    /// Switches between kmsg and journald, in order.
    pub switches: Vec<String>,
    /// The last records, oldest first.
    pub recent: Vec<LogLine>,
}

/// The published status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub schema: u32,
    pub pid: u32,
    /// The phase: the root kdbus-init runs in now.
    pub root: RootKind,
    /// The binary it runs from.
    pub exe: String,
    pub argv0: String,
    pub bus: Option<BusStatus>,
    pub activators: Vec<ActivatorStatus>,
    pub activations: Vec<ActivationRecord>,
    /// Every root it ran in, in order.
    pub history: Vec<Phase>,
    pub log: LogStatus,
    pub problems: Vec<String>,
    /// Restarts after kdbus-init died (or was restarted), this boot; each
    /// took over the same bus from the fd store.
    #[serde(default)]
    pub restarts: u32,
    /// When the last restart was (CLOCK_MONOTONIC, microseconds).
    #[serde(default)]
    pub last_restart_us: Option<u64>,
}

/// Why a status could not be read.
#[derive(Debug)]
pub enum StatusError {
    /// No status file: kdbus-init is not running (or not in this root).
    Missing,
    Unreadable(std::io::Error),
    /// Not JSON of this schema, or another schema version.
    Invalid(String),
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusError::Missing => write!(f, "no status file: kdbus-init is not running"),
            StatusError::Unreadable(e) => write!(f, "cannot read it: {e}"),
            StatusError::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for StatusError {}

impl Status {
    /// A complete status as kdbus-init publishes it in the shutdown root
    /// (one idle activator, one deferred for a user not known so far):
    /// for the tests of its readers.
    pub fn example() -> Status {
        Status {
            schema: SCHEMA,
            pid: 125,
            root: RootKind::ShutdownRoot,
            exe: "/usr/sbin/kdbus-init".into(),
            argv0: "@kdbus-init".into(),
            bus: Some(BusStatus {
                name: "0-system".into(),
                path: "/sys/fs/kdbus/0-system/bus".into(),
                id: Some("1f491e3d2f4b421996b29524298904cd".into()),
                owner_held: true,
                created_us: 6_847_025,
            }),
            activators: vec![
                ActivatorStatus {
                    name: "org.example.Idle".into(),
                    conn_id: 3,
                    service: Service {
                        name: "org.example.Idle".into(),
                        exec: Some("/usr/libexec/idle".into()),
                        user: None,
                        systemd_service: None,
                        file: "/usr/share/dbus-1/system-services/idle.service".into(),
                    },
                    activation: Activation::Idle,
                    owner: OwnerPolicy {
                        user: None,
                        uid: Some(0),
                        resolved_in: Some(RootKind::Initramfs),
                        pending_change: None,
                    },
                },
                ActivatorStatus {
                    name: "org.example.Late".into(),
                    conn_id: 4,
                    service: Service {
                        name: "org.example.Late".into(),
                        exec: Some("/usr/libexec/late".into()),
                        user: Some("late".into()),
                        systemd_service: None,
                        file: "/usr/share/dbus-1/system-services/late.service".into(),
                    },
                    activation: Activation::Deferred {
                        reason: "/usr/libexec/late is not in this root".into(),
                    },
                    owner: OwnerPolicy {
                        user: Some("late".into()),
                        uid: None,
                        resolved_in: None,
                        pending_change: None,
                    },
                },
            ],
            activations: vec![ActivationRecord {
                name: "org.example.Late".into(),
                root: RootKind::Initramfs,
                at_us: 7_000_000,
                event: "deferred: /usr/libexec/late is not in this root".into(),
            }],
            history: vec![
                Phase {
                    root: RootKind::Initramfs,
                    since_us: 6_859_177,
                    pid: 125,
                    exe: "/usr/sbin/kdbus-init".into(),
                    bus_id: None,
                },
                Phase {
                    root: RootKind::ShutdownRoot,
                    since_us: 35_500_000,
                    pid: 125,
                    exe: "/usr/sbin/kdbus-init".into(),
                    bus_id: None,
                },
            ],
            log: LogStatus {
                sink: Sink::Kmsg,
                to_kmsg: 21,
                to_journal: 4,
                waiting: 0,
                dropped: 0,
                switches: vec!["kmsg->journal".into(), "journal->kmsg".into()],
                recent: (0..5)
                    .map(|i| LogLine {
                        at_us: 35_000_000 + i * 1000,
                        level: "info".into(),
                        text: format!("record {i}"),
                    })
                    .collect(),
            },
            problems: vec!["service file broken.service skipped: no Name=".into()],
            restarts: 1,
            last_restart_us: Some(30_250_000),
        }
    }

    /// Parses a status document, refusing other schema versions.
    pub fn parse(text: &[u8]) -> Result<Status, StatusError> {
        #[derive(Deserialize)]
        struct Version {
            schema: Option<u32>,
        }
        let version: Version = serde_json::from_slice(text)
            .map_err(|e| StatusError::Invalid(format!("not a JSON object: {e}")))?;
        if version.schema != Some(SCHEMA) {
            return Err(StatusError::Invalid(format!(
                "schema {}, this program reads schema {SCHEMA} (kdbus-init and its readers \
                 come from different builds)",
                version
                    .schema
                    .map_or_else(|| "unknown".into(), |v| v.to_string())
            )));
        }
        serde_json::from_slice(text).map_err(|e| StatusError::Invalid(e.to_string()))
    }

    /// Reads the status file at `path`.
    pub fn read(path: &Path) -> Result<Status, StatusError> {
        match std::fs::read(path) {
            Ok(text) => Status::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StatusError::Missing),
            Err(e) => Err(StatusError::Unreadable(e)),
        }
    }

    /// Writes the status to [`STATUS_FILE`] atomically (readers never see
    /// half a file).
    pub fn publish(&self) -> std::io::Result<()> {
        self.publish_to(Path::new(STATUS_FILE))
    }

    pub fn publish_to(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, path)
    }

    /// Activators with an activation under way (deferred, starting or
    /// failed): messages are waiting for their services.
    pub fn pending(&self) -> impl Iterator<Item = &ActivatorStatus> {
        self.activators
            .iter()
            .filter(|a| a.activation != Activation::Idle)
    }

    /// The text of `kdbus-init status` and of the kdbus-init part of
    /// `kdbusctl status`; at most `recent_lines` log records.
    pub fn render(&self, recent_lines: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kdbus-init:    pid {} ({}), phase {}, binary {}",
            self.pid,
            self.argv0,
            self.root.as_str(),
            self.exe
        );
        match &self.bus {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "  bus          {} id {} ({})",
                    b.name,
                    b.id.as_deref().unwrap_or("unknown"),
                    if b.owner_held {
                        "owner handle held"
                    } else {
                        "adopted without its owner handle"
                    }
                );
            }
            None => out.push_str("  bus          none\n"),
        }
        match self.last_restart_us {
            Some(at) if self.restarts > 0 => {
                let _ = writeln!(
                    out,
                    "  restarts     {} (last at {:.2}s), the bus kept",
                    self.restarts,
                    at as f64 / 1e6
                );
            }
            _ => out.push_str("  restarts     0\n"),
        }
        let l = &self.log;
        let _ = writeln!(
            out,
            "  log          now to {}; {} record(s) to kmsg, {} to journald, {} waiting, {} lost",
            l.sink.as_str(),
            l.to_kmsg,
            l.to_journal,
            l.waiting,
            l.dropped
        );
        let pending: Vec<&ActivatorStatus> = self.pending().collect();
        let _ = writeln!(
            out,
            "  activators   {} ({} with an activation pending)",
            self.activators.len(),
            pending.len()
        );
        let width = self
            .activators
            .iter()
            .map(|a| a.name.len())
            .max()
            .unwrap_or(0);
        for a in &self.activators {
            let _ = writeln!(
                out,
                "    {:<width$}  {}; owner {}",
                a.name,
                a.activation.describe(),
                a.owner.describe()
            );
        }
        let phases: Vec<String> = self
            .history
            .iter()
            .map(|p| format!("{} {:.2}s", p.root.as_str(), p.since_us as f64 / 1e6))
            .collect();
        let _ = writeln!(out, "  phases       {}", phases.join(" -> "));
        for a in &self.activations {
            let _ = writeln!(
                out,
                "  activation   {:>8.2}s {} ({}): {}",
                a.at_us as f64 / 1e6,
                a.name,
                a.root.as_str(),
                a.event
            );
        }
        for p in &self.problems {
            let _ = writeln!(out, "  problem      {p}");
        }
        let skip = l.recent.len().saturating_sub(recent_lines);
        if recent_lines > 0 && !l.recent.is_empty() {
            let _ = writeln!(
                out,
                "  recent log   (last {} of {} kept)",
                l.recent.len() - skip,
                l.recent.len()
            );
            for line in &l.recent[skip..] {
                let _ = writeln!(
                    out,
                    "    [{:>10.3}] {:<5} {}",
                    line.at_us as f64 / 1e6,
                    line.level,
                    line.text
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_schemas() {
        let s = Status::example();
        let json = serde_json::to_vec(&s).unwrap();
        assert_eq!(Status::parse(&json).unwrap(), s);
        let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        v["schema"] = 1.into();
        let err = Status::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
        v.as_object_mut().unwrap().remove("schema");
        let err = Status::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("schema unknown"), "{err}");
        let err = Status::parse(b"{ not json").unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }

    #[test]
    fn publish_and_read_a_file() {
        let dir = std::env::temp_dir().join(format!("bootenv-status-{}", std::process::id()));
        let path = dir.join("kdbus-init.json");
        assert!(matches!(Status::read(&path), Err(StatusError::Missing)));
        Status::example().publish_to(&path).unwrap();
        assert_eq!(Status::read(&path).unwrap(), Status::example());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renders_phase_bus_activators_and_recent_log() {
        let text = Status::example().render(3);
        for want in [
            "pid 125 (@kdbus-init), phase shutdown-root, binary /usr/sbin/kdbus-init",
            "bus          0-system id 1f491e3d2f4b421996b29524298904cd (owner handle held)",
            "now to kmsg; 21 record(s) to kmsg, 4 to journald",
            "restarts     1 (last at 30.25s), the bus kept",
            "activators   2 (1 with an activation pending)",
            "org.example.Late  deferred: /usr/libexec/late is not in this root; owner root only (late is unknown so far)",
            "org.example.Idle  idle; owner root (uid 0, from the initramfs)",
            "phases       initramfs 6.86s -> shutdown-root 35.50s",
            "org.example.Late (initramfs): deferred",
            "problem      service file broken.service skipped",
            "recent log   (last 3 of 5 kept)",
            "info  record 4",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("record 1"), "{text}");
        assert!(!Status::example().render(0).contains("recent log"));
    }

    #[test]
    fn pending_lists_the_activations_under_way() {
        let s = Status::example();
        let names: Vec<&str> = s.pending().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["org.example.Late"]);
    }
}
