//! The early-boot environment shared by `kdbus-init` and `switch-root`.
//!
//! Everything here works before `/usr`, journald or a bus exist: the kernel
//! command line ([`cmdline`]), logging that starts on `/dev/kmsg` and moves to
//! journald when it answers ([`log`]), mount helpers ([`mounts`]) and state
//! handed to a re-executed binary in a sealed memfd ([`state`]), and the
//! status kdbus-init publishes for its readers, kdbusctl among them
//! ([`status`]).

pub mod cmdline;
pub mod kmsg;
pub mod log;
pub mod mounts;
pub mod state;
pub mod status;
