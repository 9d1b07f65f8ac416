//! kdbus-bridge: serves the D-Bus socket protocol and gives each client
//! its own connection on the kdbus bus.
//!
//! - [`protocol`]: authentication and message framing, pure functions of
//!   bytes.
//! - `bus`: the bus logic: the `org.freedesktop.DBus` driver, match
//!   rules, and the translation between D-Bus messages and kdbus messages.
//! - `launcher`: sockets, one thread per client, and its event loop.

pub mod bus;
pub mod launcher;
pub mod policy;
pub mod protocol;
