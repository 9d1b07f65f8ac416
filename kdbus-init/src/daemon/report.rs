//! What kdbus-init tells: problems and activation events (logged and kept),
//! the published status, the pid file, and the state handed to the next
//! process image.

use std::os::fd::{AsFd, AsRawFd};

use bootenv::status::{ActivationRecord, LogStatus, Status, PID_FILE, SCHEMA, STATUS_FILE};
use tracing::{debug, error, info};

use super::{pid, Daemon};
use crate::state::{monotonic_us, Saved, SavedActivator, VERSION};

impl Daemon {
    pub(super) fn problem(&mut self, msg: String) {
        error!("{msg}");
        self.history.problems.push(msg);
    }

    /// Logs an activation event and keeps it for the timeline.
    pub(super) fn record(&mut self, name: &str, event: String) {
        // Name and root in the text: the same event in another root or for
        // another name is another record, also to readers of MESSAGE only.
        info!(name, "{name}: {event} (in the {})", self.root.as_str());
        self.remember(name, event);
    }

    /// Keeps an activation event for the timeline (logged elsewhere).
    pub(super) fn remember(&mut self, name: &str, event: String) {
        self.history.activations.push(ActivationRecord {
            name: name.to_owned(),
            root: self.root,
            at_us: monotonic_us(),
            event,
        });
    }

    pub(super) fn saved(&self) -> Saved {
        let (_, log) = self.log.snapshot();
        Saved {
            version: VERSION,
            exe_path: self.exe_path.clone(),
            bus: self.bus.status.clone(),
            owner_fd: self.bus.owner.as_ref().map(|b| b.as_fd().as_raw_fd()),
            domain_fd: self.bus.domain.as_ref().map(|f| f.as_raw_fd()),
            activators: self
                .activators
                .iter()
                .map(|a| SavedActivator {
                    fd: a.conn.fd().as_raw_fd(),
                    conn: a.conn.params(),
                    status: a.state.clone(),
                })
                .collect(),
            orphan_fds: self.bus.orphans.iter().map(|f| f.as_raw_fd()).collect(),
            history: self.history.phases.clone(),
            activations: self.history.activations.clone(),
            log,
            problems: self.history.problems.clone(),
            foreground: self.opts.foreground,
            debug: self.opts.debug,
            restarts: self.keeping.restarts,
            last_restart_us: self.keeping.last_restart_us,
        }
    }

    fn status(&self) -> Status {
        let (sink, log) = self.log.snapshot();
        Status {
            schema: SCHEMA,
            pid: pid(),
            root: self.root,
            exe: std::fs::read_link("/proc/self/exe")
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            argv0: std::env::args().next().unwrap_or_default(),
            bus: self.bus.status.clone(),
            activators: self.activators.iter().map(|a| a.state.clone()).collect(),
            activations: self.history.activations.clone(),
            history: self.history.phases.clone(),
            log: LogStatus {
                sink,
                to_kmsg: log.to_kmsg,
                to_journal: log.to_journal,
                waiting: log.pending_kmsg.len(),
                dropped: log.dropped,
                switches: log.switches,
                recent: log.recent,
            },
            problems: self.history.problems.clone(),
            restarts: self.keeping.restarts,
            last_restart_us: self.keeping.last_restart_us,
        }
    }

    /// Publishes the status, and saves the state for a restart.
    pub(super) fn publish(&mut self) {
        if let Err(e) = self.status().publish() {
            debug!("cannot publish the status in {STATUS_FILE}: {e}");
        }
        self.save_state();
    }

    pub(super) fn write_pid_file(&self) {
        let _ = std::fs::create_dir_all("/run/kdbus");
        let _ = std::fs::write(PID_FILE, format!("{}\n", pid()));
    }

    pub(super) fn publish_stopped(&self) {
        let _ = std::fs::remove_file(PID_FILE);
        let _ = std::fs::remove_file(STATUS_FILE);
    }
}
