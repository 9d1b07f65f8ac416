//! The bus logic: what the bridge does with messages, independent of how
//! bytes reach it. [`Peer`] is one client's side of the bus.

pub(crate) mod access;
pub mod bloom;
pub(crate) mod driver;
pub mod errors;
mod forward;
pub mod matchrule;
pub mod monitors;
mod names;
pub mod peer;

pub use peer::{BusConfig, ClientCreds, Peer, PeerError};
