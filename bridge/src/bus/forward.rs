//! Messages between the client and kdbus peers, both ways.

use std::os::fd::{AsFd, OwnedFd};

use kdbus::{Destination, MessageBuilder, PayloadPart};
use tracing::debug;

use crate::bus::bloom;
use crate::bus::errors::{send_failure, BusError};
use crate::bus::matchrule::{Candidate, MatchRule};
use crate::bus::peer::{parse_unique, unique_name, Peer, PeerError, INLINE_MAX, PAYLOAD_TYPE};
use crate::protocol::message::{Arg, NO_AUTO_START};
use crate::protocol::{Kind, Message};

impl Peer {
    /// Sends a client's message into the bus.
    pub(crate) fn forward(
        &mut self,
        msg: Message,
        out: &mut Vec<Message>,
    ) -> Result<(), PeerError> {
        let header = msg.header();
        // The client's SENDER is replaced by its unique name. The new header
        // goes out in a payload vec of its own, ahead of the body: rebuilding
        // the message would copy the whole body for every message. (Nothing
        // below reads the sender from `header`.)
        let restamped = if header.sender.as_deref() != Some(self.unique.as_str()) {
            Some(header.marshal_with_sender(&self.unique, msg.body().len())?)
        } else {
            None
        };
        if let Err(err) = self.check_send(header, &mut || self.destination_names(header)) {
            return self.refuse(header.clone(), err, out);
        }
        let dst = match self.destination(&msg) {
            Ok(Some(dst)) => dst,
            Ok(None) => return Ok(()), // nobody to deliver to
            Err(err) => {
                if header.expects_reply() {
                    out.push(self.error_reply(header, err)?);
                }
                return Ok(());
            }
        };
        let conn = self.conn.as_ref().expect("registered before forwarding");
        let memfd;
        let mut builder = MessageBuilder::new(dst)
            .payload_type(PAYLOAD_TYPE)
            .cookie(header.serial as u64);
        let head = match &restamped {
            Some(head) => head.as_slice(),
            None => &msg.bytes()[..msg.bytes().len() - msg.body().len()],
        };
        let len = head.len() + msg.body().len();
        if len > INLINE_MAX {
            memfd = kdbus::sealed_memfd("dbus-message", &[head, msg.body()].concat())?;
            builder = builder.memfd(memfd.as_fd(), 0, len as u64);
        } else {
            builder = builder.payload(head).payload(msg.body());
        }
        let fds: Vec<_> = msg.fds.iter().map(|fd| fd.as_fd()).collect();
        builder = builder.fds(&fds);
        match header.kind {
            Kind::MethodCall if header.expects_reply() => {
                builder = builder.expect_reply(self.config.reply_timeout);
            }
            Kind::MethodCall => {}
            Kind::MethodReturn | Kind::Error => {
                builder = builder.cookie_reply(header.reply_serial.unwrap_or(0) as u64);
            }
            Kind::Signal => {
                let args = msg.string_args();
                let candidate = candidate(&msg, &self.unique, &[], args.as_deref());
                builder = builder
                    .signal()
                    .bloom(bloom::message_filter(conn.bloom_params(), &candidate));
            }
        }
        if header.flags & NO_AUTO_START != 0 {
            builder = builder.no_auto_start();
        }
        if let Err(err) = conn.send(&builder) {
            let dest = header.destination.as_deref().unwrap_or("the bus");
            debug!(client = %self.unique, %dest, %err, "kdbus refused a message");
            if header.expects_reply() {
                out.push(self.error_reply(header, send_failure(err.errno(), dest))?);
            }
            return Ok(());
        }
        self.sent(header);
        Ok(())
    }

    /// Where on kdbus a message goes (`None`: nowhere).
    fn destination(&self, msg: &Message) -> Result<Option<Destination>, BusError> {
        let header = msg.header();
        let Some(dest) = header.destination.as_deref() else {
            // Broadcast signals; anything else without a destination has
            // no receiver on a bus.
            return Ok((header.kind == Kind::Signal).then_some(Destination::Broadcast));
        };
        if let Some(id) = parse_unique(dest) {
            return Ok(Some(Destination::Id(id)));
        }
        if dest.starts_with(':') {
            return Err(BusError::service_unknown(format!(
                "The name {dest} is not owned by anyone"
            )));
        }
        match header.kind {
            // Replies must go to the caller by id; signals to a name go to
            // its current owner's id, where the unicast-signal match of
            // every bridge connection accepts them.
            Kind::MethodCall => Ok(Some(Destination::Name(dest.to_owned()))),
            _ => match self.name_owner(dest) {
                Ok(id) => Ok(Some(Destination::NameOwnedBy {
                    name: dest.to_owned(),
                    id,
                })),
                Err(_) => Ok(None),
            },
        }
    }

    pub(crate) fn error_reply(
        &mut self,
        call: &crate::protocol::Header,
        err: BusError,
    ) -> Result<Message, PeerError> {
        let reply = Message::error(call, err.name, &err.text)?;
        Ok(self.driver_message(reply)?)
    }

    /// Receives one message from kdbus and turns it into what the client
    /// gets (possibly nothing). Returns false when nothing was queued.
    pub fn on_bus_message(&mut self, out: &mut Vec<Message>) -> Result<bool, PeerError> {
        self.refresh_policy();
        match self.receive()? {
            Received::Nothing => Ok(false),
            Received::Skipped => Ok(true),
            Received::Notification(n) => {
                self.notification(n, out)?;
                Ok(true)
            }
            Received::Denied { msg, why } => {
                self.refuse_received(&msg, why)?;
                Ok(true)
            }
            Received::Message(msg) => {
                if let Some(id) = msg.header().sender.as_deref().and_then(parse_unique) {
                    self.received(msg.header(), id);
                }
                let started = msg
                    .header()
                    .reply_serial
                    .and_then(|r| self.starting.iter().position(|(s, _)| *s == r));
                match started {
                    Some(at) => {
                        let (_, call) = self.starting.remove(at);
                        out.push(
                            self.driver_message(crate::bus::driver::start_reply(&call, &msg)?)?,
                        );
                    }
                    None => out.push(msg),
                }
                Ok(true)
            }
        }
    }

    fn receive(&self) -> Result<Received, PeerError> {
        let conn = self.conn.as_ref().expect("polled only once registered");
        let recv = conn.recv()?;
        if recv.dropped_msgs > 0 {
            debug!(client = %self.unique, lost = recv.dropped_msgs, "kdbus dropped messages for this client");
        }
        let Some(mut kmsg) = recv.message else {
            return Ok(Received::Nothing);
        };
        if let Some(notification) = kmsg.notification() {
            return Ok(Received::Notification(notification));
        }
        if kmsg.payload_type() != PAYLOAD_TYPE {
            debug!(client = %self.unique, src = kmsg.src_id(), "dropped a message that is not D-Bus");
            return Ok(Received::Skipped);
        }
        let bytes = match payload_bytes(&kmsg) {
            Ok(bytes) => bytes,
            Err(err) => {
                debug!(client = %self.unique, src = kmsg.src_id(), %err, "unreadable payload");
                return Ok(Received::Skipped);
            }
        };
        let mut msg = match Message::parse(bytes) {
            Ok(msg) => msg,
            Err(err) => {
                debug!(client = %self.unique, src = kmsg.src_id(), %err, "dropped a malformed D-Bus payload");
                return Ok(Received::Skipped);
            }
        };
        let Some(serial) = u32::try_from(kmsg.cookie()).ok().filter(|s| *s != 0) else {
            debug!(client = %self.unique, "dropped a message whose cookie is no D-Bus serial");
            return Ok(Received::Skipped);
        };
        let fds: Vec<OwnedFd> = kmsg.take_fds().into_iter().flatten().collect();
        let sender = unique_name(kmsg.src_id());
        let header = msg.header();
        if header.sender.as_deref() != Some(sender.as_str())
            || header.serial != serial
            || header.unix_fds as usize != fds.len()
        {
            let n_fds = fds.len() as u32;
            msg.edit_header(|h| {
                h.sender = Some(sender.clone());
                h.serial = serial;
                h.unix_fds = n_fds;
            })?;
        }
        msg.fds = fds;
        let sender_names = |needed: bool| -> Vec<String> {
            if !needed {
                return Vec::new();
            }
            kmsg.metadata()
                .names
                .unwrap_or_default()
                .into_iter()
                .map(|n| n.name)
                .collect()
        };
        if let Some(rules) = self.monitor.as_ref().map(|m| m.rules()) {
            let names = sender_names(rules.iter().any(|r| r.sender.is_some()));
            if !monitor_sees(rules, &msg, &sender, &names) {
                return Ok(Received::Skipped);
            }
            return Ok(Received::Message(msg));
        }
        let directed = kmsg.dst_id() == conn.id();
        if msg.header().kind == Kind::Signal && !directed {
            let names = sender_names(self.rules.iter().any(|r| r.rule.sender.is_some()));
            if !self.wants(&msg, &sender, &names) {
                return Ok(Received::Skipped);
            }
        }
        // Only native senders' messages carry credentials: the bridge's
        // clients have theirs faked, and were checked when they sent.
        let native = kmsg.creds().map(|c| (c.euid as u32, c.egid as u32));
        let denied = match native {
            Some(ids) => self.check_native_send(msg.header(), &sender, ids),
            None => Ok(()),
        }
        .and_then(|()| self.check_receive(msg.header(), &sender, &mut || sender_names(true)));
        if let Err(why) = denied {
            return Ok(Received::Denied { msg, why });
        }
        Ok(Received::Message(msg))
    }

    /// Does any of the client's rules match this signal exactly?
    pub(crate) fn wants(&self, msg: &Message, sender: &str, names: &[String]) -> bool {
        let args = if self.rules.iter().any(|r| !r.rule.args.is_empty()) {
            msg.string_args()
        } else {
            None
        };
        let candidate = candidate(msg, sender, names, args.as_deref());
        self.rules.iter().any(|r| r.rule.matches(&candidate))
    }
}

enum Received {
    Nothing,
    Skipped,
    Notification(kdbus::Notification),
    Message(Message),
    /// The policy does not let the client receive it.
    Denied {
        msg: Message,
        why: String,
    },
}

/// Does a monitor with these rules (none: everything) see the message?
pub(crate) fn monitor_sees(
    rules: &[MatchRule],
    msg: &Message,
    sender: &str,
    names: &[String],
) -> bool {
    if rules.is_empty() {
        return true;
    }
    let args = msg.string_args();
    let c = candidate(msg, sender, names, args.as_deref());
    rules.iter().any(|r| r.matches(&c))
}

pub(crate) fn candidate<'a>(
    msg: &'a Message,
    sender: &'a str,
    names: &'a [String],
    args: Option<&'a [Arg]>,
) -> Candidate<'a> {
    let h = msg.header();
    Candidate {
        kind: h.kind,
        sender,
        sender_names: names,
        interface: h.interface.as_deref(),
        member: h.member.as_deref(),
        path: h.path.as_deref(),
        destination: h.destination.as_deref(),
        args,
    }
}

/// The D-Bus message a kdbus message carries: its inline parts and memfds
/// in order.
fn payload_bytes(kmsg: &kdbus::Message<'_>) -> Result<Vec<u8>, kdbus::Error> {
    let mut bytes = Vec::with_capacity(kmsg.payload_len());
    let mut memfds = kmsg.memfds().iter();
    for part in kmsg.payload_parts() {
        match part {
            PayloadPart::Inline(data) => bytes.extend_from_slice(data),
            PayloadPart::Memfd { .. } => {
                if let Some(memfd) = memfds.next() {
                    bytes.extend_from_slice(&memfd.read()?);
                }
            }
            PayloadPart::Padding(_) => {}
        }
    }
    Ok(bytes)
}
