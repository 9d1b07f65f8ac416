//! The bus policy applied to one client: its rules (taken up again after
//! a reload), the replies it owes and awaits (for `requested_reply`), and
//! the AccessDenied texts.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use kdbus::AttachFlags;

use crate::bus::errors::BusError;
use crate::bus::peer::{parse_unique, Peer};
use crate::policy::{Candidate, ClientRules, Decision};
use crate::protocol::{Header, Kind};

/// Calls remembered for requested_reply. The kernel limits the calls one
/// connection may have pending; beyond this the oldest are forgotten.
const MAX_TRACKED: usize = 4096;

/// Native senders' rules kept per client (uid and gid pairs); beyond this
/// they are worked out again.
const MAX_NATIVE_SENDERS: usize = 16;

/// A sender's uid and gid.
type Ids = (u32, u32);

/// The policy state of one client.
#[derive(Debug)]
pub(crate) struct Access {
    pub rules: Arc<ClientRules>,
    generation: u64,
    /// Calls the client received and may answer: (caller id, serial).
    owed: VecDeque<(u64, u32)>,
    /// The client's own calls that wait for a reply: their serials.
    awaited: VecDeque<u32>,
    /// The rules of native kdbus senders, by uid and gid (see
    /// [`Peer::check_native_send`]); emptied when the policy is reloaded.
    native: RefCell<Vec<(Ids, Arc<ClientRules>)>>,
}

fn remember<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() >= MAX_TRACKED {
        queue.pop_front();
    }
    queue.push_back(item);
}

fn take<T: PartialEq>(queue: &mut VecDeque<T>, item: &T) -> bool {
    match queue.iter().position(|i| i == item) {
        Some(at) => {
            queue.remove(at);
            true
        }
        None => false,
    }
}

impl Access {
    pub fn new(peer_config: &crate::bus::BusConfig, uid: u32, gid: u32) -> Access {
        let (generation, policy) = peer_config.policy.current();
        Access {
            rules: Arc::new(policy.for_client(uid, gid)),
            generation,
            owed: VecDeque::new(),
            awaited: VecDeque::new(),
            native: RefCell::default(),
        }
    }
}

/// The candidate for a message header; `peer` is the destination
/// (sending) or the sender (receiving).
pub(crate) fn candidate<'a>(
    h: &'a Header,
    peer: Option<&'a str>,
    requested_reply: bool,
) -> Candidate<'a> {
    Candidate {
        kind: h.kind,
        path: h.path.as_deref(),
        interface: h.interface.as_deref(),
        member: h.member.as_deref(),
        error: h.error_name.as_deref(),
        peer,
        requested_reply,
        fds: h.unix_fds,
    }
}

fn describe(h: &Header, verb: &str, peer_label: &str, peer: Option<&str>) -> String {
    let kind = match h.kind {
        Kind::MethodCall => "method_call",
        Kind::MethodReturn => "method_return",
        Kind::Error => "error",
        Kind::Signal => "signal",
    };
    let field = |v: &Option<String>| v.as_deref().unwrap_or("(unset)").to_owned();
    format!(
        "Rejected {verb} message: type=\"{kind}\" path=\"{}\" interface=\"{}\" member=\"{}\" \
         error name=\"{}\" {peer_label}=\"{}\"",
        field(&h.path),
        field(&h.interface),
        field(&h.member),
        field(&h.error_name),
        peer.unwrap_or("(unset)")
    )
}

impl Peer {
    /// Takes up a reloaded policy.
    pub(crate) fn refresh_policy(&mut self) {
        if self.access.generation != self.config.policy.generation() {
            let (generation, policy) = self.config.policy.current();
            self.access.rules = Arc::new(policy.for_client(self.creds.uid, self.creds.gid));
            self.access.generation = generation;
            self.access.native.get_mut().clear();
        }
    }

    /// May the client connect at all (checked at Hello)?
    pub(crate) fn check_connect(&self) -> Result<(), BusError> {
        let (_, policy) = self.config.policy.current();
        match policy.can_connect(self.creds.uid, self.creds.gid) {
            Decision::Allow => Ok(()),
            d => Err(BusError::access_denied(format!(
                "uid {} may not connect to this bus: {}",
                self.creds.uid,
                d.reason()
            ))),
        }
    }

    /// May the client own `name`?
    pub(crate) fn check_own(&self, name: &str) -> Result<(), BusError> {
        match self.access.rules.can_own(name) {
            Decision::Allow => Ok(()),
            d => Err(BusError::access_denied(format!(
                "Connection {} (uid {}) is not allowed to own the name {name}: {}",
                self.unique,
                self.creds.uid,
                d.reason()
            ))),
        }
    }

    /// May the client send this message to `dest` (`names`: the names of
    /// the destination's owner, asked for only if a rule needs them)?
    pub(crate) fn check_send(
        &self,
        h: &Header,
        names: &mut dyn FnMut() -> Vec<String>,
    ) -> Result<(), BusError> {
        let dest = h.destination.as_deref();
        let requested = self.reply_is_owed(h);
        match self
            .access
            .rules
            .can_send(&candidate(h, dest, requested), names)
        {
            Decision::Allow => Ok(()),
            d => Err(BusError::access_denied(format!(
                "{}; {} (uid {}): {}",
                describe(h, "send", "destination", dest),
                self.unique,
                self.creds.uid,
                d.reason()
            ))),
        }
    }

    /// The names the owner of the message's destination has, from the
    /// kernel (empty if it tells none).
    pub(crate) fn destination_names(&self, h: &Header) -> Vec<String> {
        let Some(dest) = h.destination.as_deref() else {
            return Vec::new();
        };
        let Some(conn) = self.conn.as_ref() else {
            return Vec::new();
        };
        let target = match parse_unique(dest) {
            Some(id) => kdbus::Peer::Id(id),
            None => kdbus::Peer::Name(dest),
        };
        conn.conn_info(target, AttachFlags::NAMES)
            .ok()
            .and_then(|info| info.metadata.names)
            .map(|names| names.into_iter().map(|n| n.name).collect())
            .unwrap_or_default()
    }

    /// Is `h` a reply to a call this client received and has not yet
    /// answered?
    fn reply_is_owed(&self, h: &Header) -> bool {
        let (Some(serial), Some(id)) = (
            h.reply_serial,
            h.destination.as_deref().and_then(parse_unique),
        ) else {
            return false;
        };
        self.access.owed.contains(&(id, serial))
    }

    /// Bookkeeping once a message of the client went out.
    pub(crate) fn sent(&mut self, h: &Header) {
        match h.kind {
            Kind::MethodCall if h.expects_reply() => remember(&mut self.access.awaited, h.serial),
            Kind::MethodReturn | Kind::Error => {
                if let (Some(serial), Some(id)) = (
                    h.reply_serial,
                    h.destination.as_deref().and_then(parse_unique),
                ) {
                    take(&mut self.access.owed, &(id, serial));
                }
            }
            _ => {}
        }
    }

    /// Is `h` a reply the client waits for (its own call's, or the ping
    /// that starts a service for it)?
    fn awaits(&self, h: &Header) -> bool {
        h.reply_serial.is_some_and(|r| {
            self.access.awaited.contains(&r) || self.starting.iter().any(|(s, _)| *s == r)
        })
    }

    /// May the client receive this message from `sender` (`names`: the
    /// sender's names)?
    pub(crate) fn check_receive(
        &self,
        h: &Header,
        sender: &str,
        names: &mut dyn FnMut() -> Vec<String>,
    ) -> Result<(), String> {
        match self
            .access
            .rules
            .can_receive(&candidate(h, Some(sender), self.awaits(h)), names)
        {
            Decision::Allow => Ok(()),
            d => Err(format!(
                "{}; to {} (uid {}): {}",
                describe(h, "receive", "sender", Some(sender)),
                self.unique,
                self.creds.uid,
                d.reason()
            )),
        }
    }

    /// May a native kdbus client of `uid` and `gid` send this message to
    /// the client? The kernel let it through on a grant that may say less
    /// than the configuration (an activator's, see `crate::policy::kernel`),
    /// so its send rules are applied here, as they are to the bridge's own
    /// clients when they send.
    pub(crate) fn check_native_send(
        &self,
        h: &Header,
        sender: &str,
        (uid, gid): Ids,
    ) -> Result<(), String> {
        let rules = self.native_rules(uid, gid);
        let dest = h.destination.as_deref();
        match rules.can_send(&candidate(h, dest, self.awaits(h)), &mut || {
            self.destination_names(h)
        }) {
            Decision::Allow => Ok(()),
            d => Err(format!(
                "{}; {sender} (uid {uid}): {}",
                describe(h, "send", "destination", dest),
                d.reason()
            )),
        }
    }

    fn native_rules(&self, uid: u32, gid: u32) -> Arc<ClientRules> {
        let mut known = self.access.native.borrow_mut();
        if let Some((_, rules)) = known.iter().find(|(ids, _)| *ids == (uid, gid)) {
            return rules.clone();
        }
        if known.len() >= MAX_NATIVE_SENDERS {
            known.clear();
        }
        let (_, policy) = self.config.policy.current();
        let rules = Arc::new(policy.for_client(uid, gid));
        known.push(((uid, gid), rules.clone()));
        rules
    }

    /// Bookkeeping once a message reached the client.
    pub(crate) fn received(&mut self, h: &Header, sender_id: u64) {
        match h.kind {
            Kind::MethodCall if h.expects_reply() => {
                remember(&mut self.access.owed, (sender_id, h.serial))
            }
            Kind::MethodReturn | Kind::Error => {
                if let Some(r) = h.reply_serial {
                    take(&mut self.access.awaited, &r);
                }
            }
            _ => {}
        }
    }
}

impl Peer {
    /// A message the client may not receive: dropped; a call that waits
    /// for an answer gets AccessDenied back from the bus, as the caller
    /// would get it from dbus-daemon.
    pub(crate) fn refuse_received(
        &mut self,
        msg: &crate::protocol::Message,
        why: String,
    ) -> Result<(), crate::bus::PeerError> {
        tracing::debug!(client = %self.unique, "{why}");
        let h = msg.header();
        let Some(caller) = h.sender.as_deref().and_then(parse_unique) else {
            return Ok(());
        };
        if !h.expects_reply() {
            return Ok(());
        }
        let err = BusError::access_denied(why);
        let mut reply = crate::protocol::Message::error(h, err.name, &err.text)?;
        let serial = self.own_serial;
        self.own_serial -= 1;
        reply.stamp(serial, Some(&self.unique))?;
        let sent = self.conn().send(
            &kdbus::MessageBuilder::new(kdbus::Destination::Id(caller))
                .payload_type(crate::bus::peer::PAYLOAD_TYPE)
                .cookie(serial as u64)
                .cookie_reply(h.serial as u64)
                .payload(reply.bytes()),
        );
        if let Err(e) = sent {
            tracing::debug!(client = %self.unique, "the AccessDenied reply to :1.{caller} was not delivered: {e}");
        }
        Ok(())
    }
}
