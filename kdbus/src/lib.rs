//! Userspace access to kdbus, the kernel IPC bus.
//!
//! [`abi`] mirrors the kernel interface exactly; the safe API on top of it
//! (buses, connections, pools, messages, names, matches, policy) builds on
//! those definitions.

pub mod abi;
