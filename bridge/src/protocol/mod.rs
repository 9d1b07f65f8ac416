//! The D-Bus socket protocol, independent of any socket or bus: the
//! authentication conversation and messages.

pub mod auth;

/// Messages are the `kdbus` library's D-Bus messages: the same bytes travel
/// on the socket and in kdbus payloads.
pub use kdbus::dbus as message;
pub use kdbus::dbus::{Header, Kind, Message};

/// The bus's own name: messages to it are for the bus driver, and no
/// connection owns it.
pub const DRIVER_NAME: &str = "org.freedesktop.DBus";

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

impl From<kdbus::dbus::Error> for ProtocolError {
    fn from(e: kdbus::dbus::Error) -> ProtocolError {
        match e {
            kdbus::dbus::Error::Invalid(why) => ProtocolError::Message(why),
            kdbus::dbus::Error::TooLarge { len, max } => ProtocolError::TooLarge { len, max },
        }
    }
}
