//! Activator connections: one per bus-activatable name. Messages to the
//! name queue on its activator until the service takes the name; the
//! activator's policy says who may talk to the name (everyone) and who may
//! own it (the service's `User=`, besides root, who owns the bus).
//!
//! The kernel installs an activator's policy once, at HELLO, and only
//! policy holders may change theirs; a policy holder cannot hold the
//! activator's name next to it (one policy entry per name). So when a new
//! root resolves `User=` to another uid, the activator is *replaced*
//! without losing a message: a handover connection of kdbus-init takes
//! the name (the kernel moves the queued messages, reply slots included,
//! to it), the old activator leaves, the new one registers with the new
//! policy, and the handover connection releases the name (the kernel moves
//! the messages on to the new activator). Senders see the name owned all
//! the time; while its policy entry is briefly absent, a name of the
//! handover connection that everyone may talk to keeps sends working.

use std::path::Path;
use std::time::Duration;

use kdbus::{Access, Connection, Creds, Errno, HelloBuilder, NameFlags, Pids, PolicyAccess};

/// Pool of an activator (and of the handover connection): queued messages
/// live there until the service takes the name.
pub const POOL: u64 = 8 * 1024 * 1024;
const DESCRIPTION: &str = "kdbus-init";
/// Held by the handover connection while it stands in for activators.
pub const HANDOVER_NAME: &str = "org.kdbus.init.Handover";

/// Every connection of kdbus-init. Its own ids go in as faked metadata (it
/// owns the bus, so it may): otherwise kdbus records the executable and
/// root directory of the connecting process and keeps them referenced as
/// long as the connection lives — an activator registered from the real
/// root would keep the real root busy at shutdown, one from the initramfs
/// the initramfs binary's memory.
fn hello(description: &str) -> HelloBuilder {
    HelloBuilder::new()
        .description(description)
        .creds(Creds::current())
        .pids(Pids::current())
}

/// The policy of an activator: everyone may talk to the name; `owner`
/// (if known) may own it.
pub fn policy(owner: Option<u32>) -> Vec<PolicyAccess> {
    let mut p = vec![PolicyAccess::world(Access::Talk)];
    if let Some(uid) = owner {
        p.push(PolicyAccess::user(uid, Access::Own));
    }
    p
}

/// The uid an activator's policy must switch to, if any: `resolved` is
/// what the current root says about the service's `User=` (`None`: the
/// root does not know the user, which changes nothing — the shutdown root
/// keeps the real root's answer).
pub fn owner_change(installed: Option<u32>, resolved: Option<u32>) -> Option<u32> {
    let uid = resolved?;
    (installed != Some(uid)).then_some(uid)
}

/// Registers an activator for `name` that lets `owner` own it.
pub fn connect(bus: &Path, name: &str, owner: Option<u32>) -> kdbus::Result<Connection> {
    hello(DESCRIPTION)
        .activator(name, &policy(owner))
        .pool_size(POOL)
        .connect(bus)
}

/// [`connect`] right after the name's previous activator was closed. Its
/// disconnect runs when the last reference to its handle goes, normally
/// before close() returns; but a process forked meanwhile may hold the
/// handle until it execs, and the fd store (systemd, or the holder) drops
/// its copy only when it has read our request. So `EEXIST` is retried for
/// up to 5 s.
fn reconnect(bus: &Path, name: &str, owner: Option<u32>) -> kdbus::Result<Connection> {
    let mut tries = 0;
    loop {
        match connect(bus, name, owner) {
            Err(e) if e.is(Errno::EXIST) && tries < 1000 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// A short-lived ordinary connection, to learn the bus id.
pub fn peer(bus: &Path) -> kdbus::Result<Connection> {
    hello(DESCRIPTION).pool_size(64 * 1024).connect(bus)
}

/// The outcome of [`Handover::replace`].
pub enum Replaced {
    /// The new activator holds the name with the new policy and the
    /// queued messages.
    Done(Connection),
    /// Nothing changed (the old activator is given back): the name is
    /// owned by a service now, or the handover connection cannot take it.
    NotNow(Connection, String),
    /// The new policy was refused; an activator with the old policy holds
    /// the name and the messages again.
    Refused(Connection, String),
    /// Neither activator could be registered: the handover connection
    /// keeps the name and its messages, so the [`Handover`] must stay
    /// open (see [`Handover::is_stuck`]); no service can take the name.
    Stuck(String),
}

/// The connections that replace activators (see the module comment).
pub struct Handover {
    /// Grants everyone TALK to [`HANDOVER_NAME`].
    policy: Connection,
    bridge: Connection,
    stuck: bool,
}

impl Handover {
    pub fn begin(bus: &Path) -> kdbus::Result<Handover> {
        let policy = hello(DESCRIPTION)
            .policy_holder(HANDOVER_NAME, &[PolicyAccess::world(Access::Talk)])
            .pool_size(64 * 1024)
            .connect(bus)?;
        let bridge = hello("kdbus-init-handover")
            .accept_fds()
            .pool_size(POOL)
            .connect(bus)?;
        bridge.acquire_name(HANDOVER_NAME, NameFlags::empty())?;
        Ok(Handover {
            policy,
            bridge,
            stuck: false,
        })
    }

    /// Replaces activator `old` of `name` (made for `old_owner`) by one
    /// that lets `new_owner` own the name.
    pub fn replace(
        &mut self,
        bus: &Path,
        old: Connection,
        name: &str,
        old_owner: Option<u32>,
        new_owner: Option<u32>,
    ) -> Replaced {
        // Without QUEUE, EEXIST: a service owns the name (then the
        // messages are the service's and the activator holds none).
        if let Err(e) = self.bridge.acquire_name(name, NameFlags::empty()) {
            let why = if e.is(Errno::EXIST) {
                "a service owns the name now".to_owned()
            } else {
                format!("the handover connection cannot take the name: {e}")
            };
            return Replaced::NotNow(old, why);
        }
        // The messages are with the bridge now. An activator cannot say
        // BYEBYE: closing its last handle disconnects it.
        drop(old);
        let outcome = match reconnect(bus, name, new_owner) {
            Ok(new) => Replaced::Done(new),
            Err(e) => match connect(bus, name, old_owner) {
                Ok(back) => Replaced::Refused(back, e.to_string()),
                Err(e2) => {
                    // Releasing now would lose the messages (no activator
                    // to move them to): the bridge keeps them.
                    self.stuck = true;
                    return Replaced::Stuck(format!("{e}; with the old policy: {e2}"));
                }
            },
        };
        // The kernel moves the queued messages to the activator.
        if let Err(e) = self.bridge.release_name(name) {
            tracing::warn!(
                name,
                "the handover connection cannot release the name: {e}; \
                 its messages move to the activator when it closes"
            );
        }
        outcome
    }

    /// Does the bridge hold a name whose messages have nowhere else to go?
    pub fn is_stuck(&self) -> bool {
        self.stuck
    }

    /// The handles to keep open when a stuck handover must survive a
    /// re-exec.
    pub fn handles(&self) -> [&Connection; 2] {
        [&self.policy, &self.bridge]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdbus::Subject;

    #[test]
    fn everyone_talks_and_the_user_owns() {
        assert_eq!(
            policy(Some(998)),
            [
                PolicyAccess::new(Subject::World, Access::Talk),
                PolicyAccess::new(Subject::User(998), Access::Own),
            ]
        );
        // Unknown user: talk only (root owns the bus and needs no entry).
        assert_eq!(policy(None), [PolicyAccess::world(Access::Talk)]);
    }

    #[test]
    fn the_policy_follows_what_a_root_knows() {
        // The initramfs does not know the user: nothing to change.
        assert_eq!(owner_change(None, None), None);
        // The real root does.
        assert_eq!(owner_change(None, Some(998)), Some(998));
        // Known already, or unknown again (the shutdown root): kept.
        assert_eq!(owner_change(Some(998), Some(998)), None);
        assert_eq!(owner_change(Some(998), None), None);
        // Another root, another uid.
        assert_eq!(owner_change(Some(998), Some(1001)), Some(1001));
    }

    #[test]
    fn a_missing_bus_is_an_error_not_a_retry_loop() {
        let err = connect(Path::new("/nonexistent/kdbus/0-system/bus"), "a.b", None).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::NOENT));
        assert!(Handover::begin(Path::new("/nonexistent/kdbus/0-system/bus")).is_err());
    }
}
