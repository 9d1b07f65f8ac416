//! D-Bus 1 messages, the payload of kdbus messages between D-Bus peers
//! (crate feature `dbus`).
//!
//! The convention: a message with `payload_type` `KDBUS_PAYLOAD_DBUS`
//! carries one D-Bus message marshalled as on a D-Bus socket (header and
//! body, either byte order) in its payload; the kdbus `cookie` is the
//! D-Bus serial and `cookie_reply` the reply serial; passed fds are the
//! message's `KDBUS_ITEM_FDS`. The sender is the kdbus source id, written
//! `:1.<id>`. [`MessageBuilder::dbus`](crate::MessageBuilder::dbus) sends
//! one, [`MessageView::dbus`](crate::MessageView::dbus) reads one.

mod header;
pub mod message;

pub use message::{
    message_len, Arg, Header, Kind, Message, ALLOW_INTERACTIVE_AUTHORIZATION, NO_AUTO_START,
    NO_REPLY_EXPECTED,
};

/// A D-Bus message that cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not a valid message (the reason in words).
    Invalid(String),
    /// Longer than the limit.
    TooLarge { len: usize, max: usize },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Invalid(why) => write!(f, "invalid D-Bus message: {why}"),
            Error::TooLarge { len, max } => write!(
                f,
                "D-Bus message of {len} bytes exceeds the limit of {max} bytes"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl<'a> crate::MessageBuilder<'a> {
    /// Carries `msg` as its payload: payload type `KDBUS_PAYLOAD_DBUS` and
    /// the D-Bus serial as cookie. Replies also need
    /// [`cookie_reply`](Self::cookie_reply) (or
    /// [`reply_to`](Self::reply_to)), calls
    /// [`expect_reply`](Self::expect_reply).
    pub fn dbus(self, msg: &'a Message) -> Self {
        self.payload_type(crate::abi::KDBUS_PAYLOAD_DBUS)
            .cookie(u64::from(msg.header().serial))
            .payload(msg.bytes())
    }
}

impl crate::MessageView<'_> {
    /// The D-Bus message in the (inline) payload.
    pub fn dbus(&self) -> Result<Message, Error> {
        if self.payload_type() != crate::abi::KDBUS_PAYLOAD_DBUS {
            return Err(Error::Invalid(format!(
                "payload type {:#x} is not KDBUS_PAYLOAD_DBUS",
                self.payload_type()
            )));
        }
        Message::parse(self.payload_to_vec())
    }
}
