//! Kernel notifications become the driver's signals: `NameOwnerChanged`
//! for everyone whose rules match, `NameAcquired`/`NameLost` for the owner,
//! and `NoReply` errors for calls that timed out or lost their callee.

use kdbus::{NameFlags, NameOwner, Notification};

use crate::bus::errors::BusError;
use crate::bus::peer::{unique_name, Peer, PeerError, DRIVER_INTERFACE, DRIVER_NAME, DRIVER_PATH};
use crate::protocol::{Header, Kind, Message};

/// An owner as D-Bus shows it: activators own nothing.
fn owner_name(owner: &NameOwner) -> String {
    if owner.id == 0 || owner.flags.contains(NameFlags::ACTIVATOR) {
        String::new()
    } else {
        unique_name(owner.id)
    }
}

impl Peer {
    pub(crate) fn notification(
        &mut self,
        notification: Notification,
        out: &mut Vec<Message>,
    ) -> Result<(), PeerError> {
        let me = self.conn.as_ref().map_or(0, |c| c.id());
        let (name, old, new) = match notification {
            Notification::IdAdd { id, .. } => {
                let n = unique_name(id);
                (n.clone(), String::new(), n)
            }
            Notification::IdRemove { id, .. } => {
                let n = unique_name(id);
                (n.clone(), n, String::new())
            }
            Notification::NameAdd { name, new_owner } => {
                (name, String::new(), owner_name(&new_owner))
            }
            Notification::NameRemove { name, old_owner } => {
                (name, owner_name(&old_owner), String::new())
            }
            Notification::NameChange {
                name,
                old_owner,
                new_owner,
            } => (name, owner_name(&old_owner), owner_name(&new_owner)),
            Notification::ReplyTimeout { cookie } => {
                return self.call_failed(cookie, "the peer did not reply in time", out)
            }
            Notification::ReplyDead { cookie } => {
                return self.call_failed(
                    cookie,
                    "the peer disconnected or dropped the call without replying",
                    out,
                )
            }
        };
        if old == new {
            return Ok(()); // activator hand-overs are invisible in D-Bus
        }
        let changed = Message::signal(
            DRIVER_PATH,
            DRIVER_INTERFACE,
            "NameOwnerChanged",
            &(&name, &old, &new),
        )?;
        if let Some(rules) = self.monitor.as_ref().map(|m| m.rules()) {
            if crate::bus::forward::monitor_sees(rules, &changed, DRIVER_NAME, &[]) {
                out.push(self.driver_message(changed)?);
            }
            return Ok(());
        }
        let me = unique_name(me);
        if !name.starts_with(':') && old == me {
            let lost = Message::signal(DRIVER_PATH, DRIVER_INTERFACE, "NameLost", &(&name,))?;
            out.push(self.directed_signal(lost)?);
        }
        if self.wants(&changed, DRIVER_NAME, &[]) {
            out.push(self.driver_message(changed)?);
        }
        if !name.starts_with(':') && new == me {
            let acquired =
                Message::signal(DRIVER_PATH, DRIVER_INTERFACE, "NameAcquired", &(&name,))?;
            out.push(self.directed_signal(acquired)?);
        }
        Ok(())
    }

    /// A signal from the driver addressed to this client.
    pub(crate) fn directed_signal(&mut self, mut signal: Message) -> Result<Message, PeerError> {
        let unique = self.unique.clone();
        signal.edit_header(|h| h.destination = Some(unique))?;
        Ok(self.driver_message(signal)?)
    }

    fn call_failed(
        &mut self,
        cookie: u64,
        why: &str,
        out: &mut Vec<Message>,
    ) -> Result<(), PeerError> {
        let Ok(serial) = u32::try_from(cookie) else {
            return Ok(());
        };
        if self.monitor.is_some() {
            return Ok(());
        }
        if let Some(at) = self.starting.iter().position(|(s, _)| *s == serial) {
            let (_, call) = self.starting.remove(at);
            let err = BusError::service_unknown(format!("the service did not start: {why}"));
            out.push(self.error_reply(&call, err)?);
            return Ok(());
        }
        let mut call = Header::new(Kind::MethodCall);
        call.serial = serial;
        out.push(self.error_reply(&call, BusError::no_reply(why))?);
        Ok(())
    }
}
