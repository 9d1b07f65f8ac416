//! The D-Bus socket protocol, independent of any socket or bus: the
//! authentication conversation and messages.

pub mod auth;
mod header;
pub mod message;

pub use message::{Header, Kind, Message};

/// A client broke the protocol: the connection to it is closed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("invalid message: {0}")]
    Message(String),
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}
