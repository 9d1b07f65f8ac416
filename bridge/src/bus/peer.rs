//! One client as the bus sees it: its kdbus connection (made at `Hello`
//! with the client's credentials), its match rules, and the translation of
//! its messages to kdbus and back.
//!
//! The payload of a kdbus message between D-Bus peers is the D-Bus
//! message itself, marshalled as in the socket protocol (either byte
//! order), with `payload_type` `KDBUS_PAYLOAD_DBUS`; the kdbus `cookie` is
//! the D-Bus serial and `cookie_reply` the reply serial. Nothing is
//! re-marshalled on the way: the bridge only sets the `SENDER` header
//! field when it is missing or wrong.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kdbus::abi::KDBUS_PAYLOAD_DBUS;
use kdbus::{AttachFlags, Connection, Creds, HelloBuilder, Pids};

use crate::bus::access::Access;
use crate::bus::errors::BusError;
use crate::bus::matchrule::MatchRule;
use crate::bus::monitors::Subscription;
pub use crate::protocol::DRIVER_NAME;
use crate::protocol::{Kind, Message, ProtocolError};

/// The driver's object and interface.
pub const DRIVER_PATH: &str = "/org/freedesktop/DBus";
pub const DRIVER_INTERFACE: &str = "org.freedesktop.DBus";

/// Messages above this size travel in a sealed memfd instead of being
/// copied into the receiver's pool (whose per-sender quota is a sixth of
/// it).
pub const INLINE_MAX: usize = 512 * 1024;

/// Match cookies of the bridge's own kernel matches; a client's rules get
/// cookies above these.
pub(crate) const COOKIE_UNICAST_SIGNALS: u64 = 1;
pub(crate) const COOKIE_OWN_NAMES: u64 = 2;
const FIRST_RULE_COOKIE: u64 = 16;

/// What the bus needs to know, shared by all clients.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// The kdbus endpoint (`/sys/fs/kdbus/0-system/bus`).
    pub bus_path: PathBuf,
    /// How long the kernel waits for a reply before telling the caller
    /// `NoReply`.
    pub reply_timeout: Duration,
    /// Pool size of each client's kdbus connection.
    pub pool_size: u64,
    /// The bus id (hex), the GUID of the authentication `OK`.
    pub bus_id: String,
    /// The bus policy in force.
    pub policy: Arc<crate::policy::PolicyStore>,
    /// The monitors, for the driver's own traffic.
    pub monitors: Arc<crate::bus::monitors::Monitors>,
}

/// The client's identity, from its socket (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCreds {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

/// Why a client must be disconnected.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    Refused(String),
    #[error("the kdbus connection failed: {0}")]
    Bus(#[from] kdbus::Error),
}

impl From<kdbus::dbus::Error> for PeerError {
    fn from(e: kdbus::dbus::Error) -> PeerError {
        PeerError::Protocol(e.into())
    }
}

/// A match rule the client added, with the cookie of its kernel entries.
#[derive(Debug)]
pub(crate) struct InstalledRule {
    pub rule: MatchRule,
    pub cookie: u64,
}

/// One client's side of the bus.
pub struct Peer {
    pub(crate) config: Arc<BusConfig>,
    pub(crate) creds: ClientCreds,
    pub(crate) fds: bool,
    pub(crate) conn: Option<Connection>,
    pub(crate) unique: String,
    pub(crate) rules: Vec<InstalledRule>,
    pub(crate) next_rule_cookie: u64,
    driver_serial: u32,
    /// StartServiceByName calls waiting for their service: the serial of
    /// the bridge's ping to the activatable name, and the caller's call.
    pub(crate) starting: Vec<(u32, crate::protocol::Header)>,
    /// Serials of the bridge's own calls, counting down from the top so
    /// that they do not meet the client's (which count up from 1).
    pub(crate) own_serial: u32,
    /// After `BecomeMonitor`: the monitor's rules and where the driver's
    /// traffic arrives.
    pub(crate) monitor: Option<Subscription>,
    pub(crate) access: Access,
}

impl Peer {
    /// A client that authenticated with `creds`; `fds`: it negotiated fd
    /// passing.
    pub fn new(config: Arc<BusConfig>, creds: ClientCreds, fds: bool) -> Peer {
        let access = Access::new(&config, creds.uid, creds.gid);
        Peer {
            access,
            config,
            creds,
            fds,
            conn: None,
            unique: String::new(),
            rules: Vec::new(),
            next_rule_cookie: FIRST_RULE_COOKIE,
            driver_serial: 0,
            starting: Vec::new(),
            own_serial: u32::MAX,
            monitor: None,
        }
    }

    /// The kdbus connection to poll, once the client said `Hello`.
    pub fn bus_fd(&self) -> Option<BorrowedFd<'_>> {
        self.conn.as_ref().map(|c| c.as_fd())
    }

    /// A monitor's mailbox of driver traffic, to poll.
    pub fn monitor_fd(&self) -> Option<BorrowedFd<'_>> {
        self.monitor.as_ref().map(|m| m.fd())
    }

    /// A monitor's mailbox was readable: the driver traffic it holds.
    pub fn on_driver_traffic(&mut self, out: &mut Vec<Message>) {
        if let Some(m) = &self.monitor {
            let (messages, dropped) = m.take();
            if dropped > 0 {
                tracing::info!(client = %self.unique, "the monitor fell behind: {dropped} driver message(s) dropped");
            }
            out.extend(messages);
        }
    }

    /// `:1.<id>` once registered.
    pub fn unique_name(&self) -> &str {
        &self.unique
    }

    /// Connects to kdbus as the client: its uid, gid and pid are the
    /// connection's metadata.
    pub(crate) fn connect(&mut self) -> Result<&Connection, kdbus::Error> {
        let ClientCreds { uid, gid, pid } = self.creds;
        let (uid, gid, pid) = (uid as u64, gid as u64, pid as u64);
        let mut hello = HelloBuilder::new()
            .pool_size(self.config.pool_size)
            // NAMES for match rules and the policy; CREDS tell native
            // senders (see `Peer::check_native_send`).
            .attach_recv(AttachFlags::NAMES | AttachFlags::CREDS)
            // CONN_INFO shows others only what a connection offers.
            .attach_send(AttachFlags::ANY)
            .creds(Creds {
                uid,
                euid: uid,
                suid: uid,
                fsuid: uid,
                gid,
                egid: gid,
                sgid: gid,
                fsgid: gid,
            })
            .pids(Pids {
                pid,
                tid: pid,
                ppid: 0,
            })
            .description(format!("bridge-{pid}"));
        if self.fds {
            hello = hello.accept_fds();
        }
        let conn = hello.connect(&self.config.bus_path)?;
        let id = conn.id();
        // Unicast signals are delivered only where a match accepts them;
        // in D-Bus they always reach their destination.
        conn.add_match(&kdbus::MatchRule::new(COOKIE_UNICAST_SIGNALS).destination(id))?;
        // The client's own names, for NameAcquired and NameLost.
        for rule in [
            kdbus::matches::Rule::NameAdd {
                name: None,
                old_id: None,
                new_id: Some(id),
            },
            kdbus::matches::Rule::NameRemove {
                name: None,
                old_id: Some(id),
                new_id: None,
            },
            kdbus::matches::Rule::NameChange {
                name: None,
                old_id: Some(id),
                new_id: None,
            },
            kdbus::matches::Rule::NameChange {
                name: None,
                old_id: None,
                new_id: Some(id),
            },
        ] {
            conn.add_match(&kdbus::MatchRule::new(COOKIE_OWN_NAMES).rule(rule))?;
        }
        self.unique = unique_name(id);
        Ok(self.conn.insert(conn))
    }

    /// Stamps a message from the driver to this client.
    pub(crate) fn driver_message(&mut self, mut msg: Message) -> Result<Message, ProtocolError> {
        self.driver_serial = self.driver_serial.wrapping_add(1).max(1);
        let serial = self.driver_serial;
        let unique = self.unique.clone();
        msg.edit_header(|h| {
            h.serial = serial;
            h.sender = Some(DRIVER_NAME.into());
            if h.kind != Kind::Signal || h.destination.is_some() {
                h.destination = Some(unique);
            }
        })?;
        Ok(msg)
    }

    /// A message the client sent. Replies and signals for the client are
    /// appended to `out`.
    pub fn on_client_message(
        &mut self,
        msg: Message,
        out: &mut Vec<Message>,
    ) -> Result<(), PeerError> {
        if self.monitor.is_some() {
            return Err(PeerError::Refused("a monitor sent a message".into()));
        }
        let to_driver = msg.header().destination.as_deref() == Some(DRIVER_NAME);
        if self.conn.is_none() {
            let is_hello = to_driver
                && msg.header().kind == Kind::MethodCall
                && msg.header().member.as_deref() == Some("Hello");
            if !is_hello {
                return Err(PeerError::Refused(
                    "the client sent a message before Hello".into(),
                ));
            }
        }
        self.refresh_policy();
        if to_driver {
            if msg.header().kind == Kind::MethodCall {
                // The driver is checked like any destination (system.conf
                // forbids some of its methods to some users).
                let h = msg.header();
                if let Err(err) = self.check_send(h, &mut || vec![DRIVER_NAME.to_owned()]) {
                    return self.refuse(h.clone(), err, out);
                }
                if self.config.monitors.any() {
                    return self.driver_call_monitored(msg, out);
                }
                self.driver_call(msg, out)?;
            }
            return Ok(());
        }
        self.forward(msg, out)
    }

    /// A driver call while monitors watch: they see it, with the client's
    /// unique name as its sender (after Hello, the one it got), and what
    /// the driver sends back.
    fn driver_call_monitored(
        &mut self,
        msg: Message,
        out: &mut Vec<Message>,
    ) -> Result<(), PeerError> {
        let mut call = Message::parse(msg.bytes().to_vec())?;
        let first = out.len();
        self.driver_call(msg, out)?;
        let unique = self.unique.clone();
        call.edit_header(|h| h.sender = Some(unique))?;
        let monitors = &self.config.monitors;
        monitors.publish(&call, &self.unique);
        for answer in &out[first..] {
            monitors.publish(answer, DRIVER_NAME);
        }
        Ok(())
    }

    /// Answers a message the policy refused (if it wants an answer).
    pub(crate) fn refuse(
        &mut self,
        h: crate::protocol::Header,
        err: BusError,
        out: &mut Vec<Message>,
    ) -> Result<(), PeerError> {
        tracing::debug!(client = %self.unique, "{}", err.text);
        if h.expects_reply() {
            out.push(self.error_reply(&h, err)?);
        }
        Ok(())
    }
}

pub(crate) fn unique_name(id: u64) -> String {
    format!(":1.{id}")
}

/// The kdbus id of a unique name `:1.<id>`.
pub(crate) fn parse_unique(name: &str) -> Option<u64> {
    name.strip_prefix(":1.")?.parse().ok()
}

/// What kdbus payload type D-Bus messages travel as.
pub(crate) const PAYLOAD_TYPE: u64 = KDBUS_PAYLOAD_DBUS;
