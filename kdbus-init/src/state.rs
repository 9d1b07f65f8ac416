//! What kdbus-init hands to its next process image across exec: the
//! published status's parts plus the inherited fd numbers and the
//! connection parameters the library needs to adopt them. (The published
//! status itself is `bootenv::status`, shared with its readers.)

use serde::{Deserialize, Serialize};

use bootenv::log::LogState;
use bootenv::status::{ActivationRecord, ActivatorStatus, BusStatus, Phase};
use kdbus::ConnectionParams;

/// Bump when the format changes incompatibly.
pub const VERSION: u32 = 2;

/// An activator connection handed over: its fd, what `Connection::adopt`
/// needs, and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedActivator {
    pub fd: i32,
    pub conn: ConnectionParams,
    #[serde(flatten)]
    pub status: ActivatorStatus,
}

/// Everything handed to the next process image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub version: u32,
    pub exe_path: String,
    pub bus: Option<BusStatus>,
    /// The handle that created the bus.
    pub owner_fd: Option<i32>,
    /// O_PATH handle on the kdbusfs mount (the domain), to re-attach it
    /// where a new root lacks it.
    pub domain_fd: Option<i32>,
    pub activators: Vec<SavedActivator>,
    /// kdbus handles kept open only so that the bus and the messages
    /// queued on them survive (their state was lost).
    #[serde(default)]
    pub orphan_fds: Vec<i32>,
    pub history: Vec<Phase>,
    pub activations: Vec<ActivationRecord>,
    pub log: LogState,
    pub problems: Vec<String>,
    pub foreground: bool,
    pub debug: bool,
}

pub fn monotonic_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}
