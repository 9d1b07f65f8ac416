//! Activation: one activator per name of the service files, and starting
//! the service when a message waits on it (the decisions are
//! `crate::activation`'s; this file observes and carries them out).

use std::io::Read;

use bootenv::status::{Activation, ActivatorStatus, OwnerPolicy, Service};
use tracing::info;

use super::{Activator, Daemon};
use crate::activation::{self, Check, Observed, Step};
use crate::activator;
use crate::error::Error;
use crate::launch;
use crate::services;
use crate::state::monotonic_us;

impl Daemon {
    /// Reads the service files: a new name gets an activator, a known one
    /// learns how to start it in this root.
    pub(super) fn load_services(&mut self) {
        let (found, broken) = services::load(&self.opts.services_dir);
        for b in broken {
            self.problem(format!(
                "service file {} skipped: {}",
                b.file.display(),
                b.why
            ));
        }
        let Some(bus_path) = self.bus.path() else {
            return;
        };
        // What this root's files still name is tried again below.
        self.blocked.clear();
        for svc in found {
            if let Some(a) = self
                .activators
                .iter_mut()
                .find(|a| a.state.name == svc.name)
            {
                // The same name in a new root: its files describe how to
                // start it here (and who runs it: see the owner policy).
                a.state.owner.user = svc.user.clone();
                a.state.service = svc;
                continue;
            }
            if let Err(source) = self.register(&bus_path, svc.clone()) {
                let taken = source.is(kdbus::Errno::EXIST);
                let e = Error::Activator {
                    name: svc.name.clone(),
                    file: svc.file.display().to_string(),
                    source,
                };
                if taken {
                    self.problem(format!(
                        "{e}: another connection holds the kernel's policy for the name \
                         (kdbus-bridge's, until it reads this root's service files); \
                         tried again every second"
                    ));
                    self.blocked.push(svc);
                } else {
                    self.problem(e.to_string())
                }
            }
        }
        self.update_owner_policies();
    }

    /// Registers an activator for `svc`.
    fn register(&mut self, bus_path: &std::path::Path, svc: Service) -> kdbus::Result<()> {
        let uid = services::owner_uid(svc.user.as_deref());
        let conn = activator::connect(bus_path, &svc.name, uid)?;
        let owner = OwnerPolicy {
            user: svc.user.clone(),
            uid,
            resolved_in: uid.map(|_| self.root),
            pending_change: None,
        };
        info!(
            name = svc.name.as_str(),
            owner = owner.describe().as_str(),
            "activator registered"
        );
        self.activators.push(Activator {
            state: ActivatorStatus {
                name: svc.name.clone(),
                conn_id: conn.id(),
                service: svc,
                activation: Activation::Idle,
                owner,
            },
            conn,
            child: None,
        });
        self.keep_activator(self.activators.len() - 1);
        Ok(())
    }

    /// Tries again the activators whose name's policy entry was taken.
    pub(super) fn retry_blocked(&mut self) {
        let Some(bus_path) = self.bus.path() else {
            return;
        };
        for svc in std::mem::take(&mut self.blocked) {
            let name = svc.name.clone();
            match self.register(&bus_path, svc.clone()) {
                Ok(()) => self.publish(),
                Err(e) if e.is(kdbus::Errno::EXIST) => self.blocked.push(svc),
                Err(e) => self.problem(format!("cannot register an activator for {name}: {e}")),
            }
        }
    }

    /// A message waits on activator `i`: start its service if we can.
    pub(super) fn activate(&mut self, i: usize) {
        let (launch, child) = launch::start(&self.activators[i].state.service);
        if child.is_some() {
            self.activators[i].child = child;
        }
        let step =
            activation::launched(&self.activators[i].state.activation, launch, monotonic_us());
        self.apply(i, step);
        self.publish();
    }

    /// Moves activator `i` to the step's state and reports it.
    fn apply(&mut self, i: usize, step: Step) {
        let name = self.activators[i].state.name.clone();
        if let Some(f) = &step.failure {
            let what = if f.retrying {
                "its messages stay queued; retrying"
            } else {
                "its messages stay queued until the service is started by other means"
            };
            self.problem(format!(
                "activation of {name} failed (attempt {}/{}): {}; {what}",
                f.attempts,
                activation::MAX_ATTEMPTS,
                f.error
            ));
        }
        if let Some(event) = step.record {
            if step.failure.is_some() {
                // Its problem was logged already.
                self.remember(&name, event);
            } else {
                self.record(&name, event);
            }
        }
        self.activators[i].state.activation = step.next;
    }

    /// Progress of started services and retries.
    pub(super) fn check_activations(&mut self) {
        for i in 0..self.activators.len() {
            // Reap what we started, whatever the activation's state.
            let exited = self.reap_child(i);
            let seen = Observed {
                queued: self.activators[i].conn.has_message().unwrap_or(false),
                exited,
                now_us: monotonic_us(),
            };
            match activation::check(&self.activators[i].state.activation, seen) {
                Check::Wait => {}
                Check::Start => self.activate(i),
                Check::Step(step) => {
                    self.apply(i, step);
                    self.publish();
                }
            }
        }
        reap_orphans();
        if self
            .activators
            .iter()
            .any(|a| a.state.owner.pending_change.is_some())
        {
            self.update_owner_policies();
            self.publish();
        }
    }

    /// Collects the exit of the process started for activator `i`, if it
    /// has exited: (success, description).
    fn reap_child(&mut self, i: usize) -> Option<(bool, String)> {
        let child = self.activators[i].child.as_mut()?;
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return None,
            // Reaped by reap_orphans in a race: gone, status unknown.
            Err(_) => {
                self.activators[i].child = None;
                return Some((true, "an unknown status".into()));
            }
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        self.activators[i].child = None;
        let detail = match err.trim() {
            "" => format!("{status}"),
            e => format!("{status}: {e}"),
        };
        Some((status.success(), detail))
    }
}

/// Children of a previous process image (inherited across exec) have no
/// handle here: reap them so that they do not stay zombies (which would
/// hold up systemd-shutdown).
fn reap_orphans() {
    while let Ok(Some(_)) = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG) {}
}
