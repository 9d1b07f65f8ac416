//! What kdbus-init knows, as it is handed across exec and published for
//! `kdbusctl` / `kdbus-init status` in /run/kdbus/kdbus-init.json.

use serde::{Deserialize, Serialize};

use bootenv::log::{LogState, Sink};

use crate::services::Service;

pub const STATUS_FILE: &str = "/run/kdbus/kdbus-init.json";
pub const PID_FILE: &str = "/run/kdbus/kdbus-init.pid";
/// Bump when the format changes incompatibly.
pub const VERSION: u32 = 1;

/// Which root kdbus-init runs in.
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
    /// The binary we run from, as the root sees it.
    pub exe: String,
    pub bus_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusState {
    pub name: String,
    pub path: String,
    /// The bus UUID (32 hex digits), if a HELLO could read it.
    pub id: Option<String>,
    /// The handle that created the bus (None if we adopted a bus that
    /// someone else created).
    pub owner_fd: Option<i32>,
    pub created_us: u64,
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
    /// another attempt follows at `retry_us` (up to MAX_ATTEMPTS).
    Failed {
        error: String,
        attempts: u32,
        retry_us: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivatorState {
    pub name: String,
    pub fd: i32,
    pub conn_id: u64,
    pub service: Service,
    pub activation: Activation,
}

/// One activation that happened (for the timeline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRecord {
    pub name: String,
    pub root: RootKind,
    pub at_us: u64,
    pub event: String,
}

/// Everything handed to the next process image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub version: u32,
    pub exe_path: String,
    pub bus: Option<BusState>,
    /// O_PATH handle on the kdbusfs mount (the domain), to re-attach it
    /// where a new root lacks it.
    pub domain_fd: Option<i32>,
    pub activators: Vec<ActivatorState>,
    pub history: Vec<Phase>,
    pub activations: Vec<ActivationRecord>,
    pub log: LogState,
    pub problems: Vec<String>,
    pub foreground: bool,
    pub debug: bool,
}

/// The published status: the saved state plus live facts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub root: RootKind,
    pub exe: String,
    pub argv0: String,
    pub log_sink: Sink,
    pub kmsg_queued: usize,
    #[serde(flatten)]
    pub saved: Saved,
}

pub fn monotonic_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}

/// Writes `status` atomically (readers never see half a file).
pub fn publish(status: &Status) -> std::io::Result<()> {
    std::fs::create_dir_all("/run/kdbus")?;
    let tmp = format!("{STATUS_FILE}.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(status)?)?;
    std::fs::rename(tmp, STATUS_FILE)
}

pub fn read_status() -> std::io::Result<Status> {
    let text = std::fs::read(STATUS_FILE)?;
    serde_json::from_slice(&text).map_err(std::io::Error::other)
}
