//! Userspace access to kdbus, the kernel IPC bus.
//!
//! Layers, from the bottom:
//! - [`abi`] mirrors the kernel interface exactly (structs, constants,
//!   ioctl numbers).
//! - [`raw`] issues any kdbus ioctl with any buffer — well formed or not —
//!   and returns the bare errno: for tests of the kernel's checks.
//! - [`item`] reads item chains without trusting a single size.
//! - The safe API: [`BusBuilder`]/[`Bus`] create and own buses,
//!   [`HelloBuilder`]/[`Connection`] connect, [`MessageBuilder`] and
//!   [`Message`] send and receive (received messages borrow their pool slice
//!   and free it on drop), [`MatchRule`] and [`BloomFilter`] select signals,
//!   [`Policy`] describes who may see, talk to and own names.
//!
//! Errors are [`Error`]s naming the command and the errno
//! (`KDBUS_CMD_NAME_ACQUIRE: File exists (EEXIST)`).
//!
//! ```no_run
//! use kdbus::{Connection, MessageBuilder, NameFlags, SYSTEM_BUS_PATH};
//!
//! # fn main() -> kdbus::Result<()> {
//! let service = Connection::connect(SYSTEM_BUS_PATH)?;
//! service.acquire_name("org.example.Echo", NameFlags::empty())?;
//! let client = Connection::connect(SYSTEM_BUS_PATH)?;
//! std::thread::scope(|s| {
//!     s.spawn(|| -> kdbus::Result<()> {
//!         service.wait(None)?;
//!         let call = service.recv()?.message.expect("a call");
//!         service.send(&MessageBuilder::reply_to(&call).payload(b"pong"))?;
//!         Ok(())
//!     });
//!     let reply = client.call(&MessageBuilder::to_name("org.example.Echo").payload(b"ping"))?;
//!     assert_eq!(reply.payload_to_vec(), b"pong");
//!     Ok(())
//! })
//! # }
//! ```

pub mod abi;
pub mod bloom;
pub mod bus;
pub mod conn;
#[cfg(feature = "dbus")]
pub mod dbus;
pub mod error;
pub mod flags;
pub mod info;
pub mod item;
pub mod matches;
pub mod memfd;
pub mod message;
pub mod meta;
pub mod policy;
mod pool;
pub mod raw;

pub use bloom::{BloomFilter, BloomParams};
pub use bus::{
    bus_path, id128_hex, own_name, prefixed_name, Bus, BusBuilder, Endpoint, EndpointBuilder,
    KDBUSFS_MOUNT, SYSTEM_BUS_NAME, SYSTEM_BUS_PATH,
};
pub use conn::{
    ByeBye, Connection, ConnectionParams, HelloBuilder, Peeked, Peer, Recv, Update,
    DEFAULT_POOL_SIZE,
};
pub use error::{Errno, Error, Result};
pub use flags::{AttachFlags, HelloFlags, ListFlags, MakeFlags, MsgFlags, NameFlags, RecvFlags};
pub use info::{BusCreatorInfo, ConnInfo, ListEntry};
pub use matches::{MatchRule, Rule};
pub use memfd::{sealed_memfd, sealed_memfd_with};
pub use message::{
    deadline_after, Destination, Message, MessageBuilder, MessageView, NameOwner, Notification,
    OwnedMessage, PayloadPart, ReceivedMemfd,
};
pub use meta::{Audit, CapSet, Caps, Creds, Metadata, OwnedName, Pids, Timestamp};
pub use policy::{Access, Policy, PolicyAccess, Subject};
