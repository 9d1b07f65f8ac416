//! Owner policy: who, besides root, may own an activatable name. The
//! service file's `User=` is resolved in each root; when a root knows the
//! user (or another uid), the activator is replaced by one with the new
//! policy, without losing a queued message (see `crate::activator`).

use bootenv::status::Activation;
use kdbus::{AttachFlags, Peer};
use tracing::info;

use std::os::fd::AsFd;

use super::Daemon;
use crate::activator::{self, Handover, Replaced};
use crate::services;
use crate::store;

/// What keeps an activator's policy from being replaced right now:
/// `starting` (its service is being started: its NAME_ACQUIRE would race
/// with the handover), or the name's owner being another connection than
/// the activator.
pub fn blocked(starting: bool, name_owner: Option<u64>, activator: u64) -> Option<String> {
    if starting {
        return Some("its service is being started".into());
    }
    match name_owner {
        Some(id) if id != activator => Some(format!(
            "a service (connection {id}) owns the name; the policy changes when it is \
             back with the activator"
        )),
        _ => None,
    }
}

impl Daemon {
    /// The uid that this root says may own activator `i`'s name, if that
    /// differs from its policy. A user this root does not know (the
    /// initramfs, the shutdown root) leaves the policy as it is.
    fn wanted_owner(&self, i: usize) -> Option<u32> {
        let a = &self.activators[i];
        activator::owner_change(
            a.state.owner.uid,
            services::owner_uid(a.state.service.user.as_deref()),
        )
    }

    fn policy_change_blocked(&self, i: usize) -> Option<String> {
        let a = &self.activators[i];
        let starting =
            matches!(a.state.activation, Activation::Starting { .. }) || a.child.is_some();
        let owner = a
            .conn
            .conn_info(Peer::Name(&a.state.name), AttachFlags::empty())
            .ok()
            .map(|info| info.id);
        blocked(starting, owner, a.conn.id())
    }

    /// Notes (and logs, once per reason) why activator `i` keeps its owner
    /// policy for now; it is tried again every second.
    fn policy_change_waits(&mut self, i: usize, uid: u32, why: String) {
        let a = &mut self.activators[i].state;
        if a.owner.pending_change.as_ref() != Some(&why) {
            info!(
                name = a.name.as_str(),
                "owner policy change to uid {uid} waits: {why}"
            );
            a.owner.pending_change = Some(why);
        }
    }

    /// Gives activators the owner policy that `User=` asks for in this
    /// root, by replacing them without losing a queued message (see
    /// `activator.rs`). Names a service is using are done later
    /// (`pending_change`, retried every second).
    pub(super) fn update_owner_policies(&mut self) {
        let Some(bus_path) = self.bus.path() else {
            return;
        };
        let mut handover: Option<Handover> = None;
        let mut i = 0;
        while i < self.activators.len() {
            let Some(uid) = self.wanted_owner(i) else {
                self.activators[i].state.owner.pending_change = None;
                i += 1;
                continue;
            };
            if let Some(why) = self.policy_change_blocked(i) {
                self.policy_change_waits(i, uid, why);
                i += 1;
                continue;
            }
            if handover.is_none() {
                match Handover::begin(&bus_path) {
                    Ok(h) => handover = Some(h),
                    Err(e) => {
                        let why = format!("the handover connection failed: {e}");
                        self.policy_change_waits(i, uid, why);
                        break;
                    }
                }
            }
            let h = handover.as_mut().expect("set above");
            let mut a = self.activators.remove(i);
            let name = a.state.name.clone();
            let old_uid = a.state.owner.uid;
            // A stored copy would keep the old activator registered.
            self.unkeep(&store::activator_name(a.conn.id()));
            let replaced = h.replace(&bus_path, a.conn, &name, old_uid, Some(uid));
            if let Replaced::Done(c) | Replaced::NotNow(c, _) | Replaced::Refused(c, _) = &replaced
            {
                if let Ok(fd) = c.fd().try_clone_to_owned() {
                    self.keep(&store::activator_name(c.id()), fd.as_fd());
                }
            }
            match replaced {
                Replaced::Done(conn) => {
                    a.state.conn_id = conn.id();
                    a.conn = conn;
                    a.state.owner.uid = Some(uid);
                    a.state.owner.resolved_in = Some(self.root);
                    a.state.owner.pending_change = None;
                    let owner = a.state.owner.describe();
                    self.activators.insert(i, a);
                    self.record(
                        &name,
                        format!("owner policy now {owner}; queued messages kept"),
                    );
                }
                Replaced::NotNow(conn, why) => {
                    a.conn = conn;
                    self.activators.insert(i, a);
                    self.policy_change_waits(i, uid, why);
                }
                Replaced::Refused(conn, why) => {
                    a.state.conn_id = conn.id();
                    a.conn = conn;
                    a.state.owner.pending_change = None;
                    self.activators.insert(i, a);
                    self.problem(format!(
                        "the activator of {name} cannot let uid {uid} own the name ({why}); \
                         it keeps its previous policy and its queued messages"
                    ));
                }
                Replaced::Stuck(why) => {
                    self.problem(format!(
                        "the activator of {name} could not be registered again ({why}): \
                         kdbus-init's handover connection keeps the name and its queued \
                         messages; no service can take the name until kdbus-init restarts"
                    ));
                    continue;
                }
            }
            i += 1;
        }
        if let Some(h) = handover.filter(|h| h.is_stuck()) {
            // Its bridge holds messages that have nowhere else to go.
            for c in h.handles() {
                if let Ok(fd) = c.fd().try_clone_to_owned() {
                    self.bus.orphans.push(fd);
                    self.keep_orphan(self.bus.orphans.len() - 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::blocked;

    #[test]
    fn a_policy_waits_while_a_service_starts_or_holds_the_name() {
        assert_eq!(blocked(false, Some(7), 7), None);
        // Nobody can be asked (the bus is gone): nothing to wait for.
        assert_eq!(blocked(false, None, 7), None);
        assert!(blocked(true, Some(7), 7).unwrap().contains("being started"));
        let held = blocked(false, Some(9), 7).unwrap();
        assert!(held.contains("(connection 9) owns the name"), "{held}");
    }
}
