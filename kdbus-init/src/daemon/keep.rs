//! Keeping the bus alive without us: every handle that holds the bus or
//! queued messages goes to the fd store (systemd's, or our holder's; see
//! `crate::store`), under a name, as soon as it exists; a restarted
//! kdbus-init takes them back by name. The state goes to
//! [`STATE_FILE`] on every change.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::Daemon;
use crate::holder::{self, Holder};
use crate::state::{self, STATE_FILE};
use crate::store::{self, Keeper};

/// Where the handles are kept and what this boot's restarts were.
#[derive(Default)]
pub(super) struct Keeping {
    /// The store's socket, once everything was handed to it.
    socket: Option<PathBuf>,
    holder: Option<Holder>,
    /// A store failure was reported (once, until it works again).
    store_failed: bool,
    /// Writing the state file failed (reported once, until it works).
    state_failed: bool,
    /// The log counters at the last state write.
    saved_log: (u64, u64),
    pub restarts: u32,
    pub last_restart_us: Option<u64>,
}

impl Daemon {
    /// Every handle with its store name.
    fn named_handles(&self) -> Vec<(String, BorrowedFd<'_>)> {
        let mut out = Vec::new();
        if let Some(b) = &self.bus.owner {
            out.push((store::BUS_OWNER.to_owned(), b.as_fd()));
        }
        if let Some(d) = &self.bus.domain {
            out.push((store::BUS_DOMAIN.to_owned(), d.as_fd()));
        }
        for a in &self.activators {
            out.push((store::activator_name(a.conn.id()), a.conn.fd()));
        }
        for (n, fd) in self.bus.orphans.iter().enumerate() {
            out.push((store::kept_name(n), fd.as_fd()));
        }
        out
    }

    /// Picks where handles go from now on, before anything in this root
    /// adds or replaces one: systemd's store, or the holder that held them
    /// so far (replaced by [`Daemon::keep_all`]).
    pub(super) fn choose_keeper(&mut self) {
        let notify = std::env::var("NOTIFY_SOCKET").ok();
        self.keeping.socket = match store::keeper(self.root, notify.as_deref()) {
            Keeper::Systemd(socket) => Some(socket),
            Keeper::Holder => notify
                .map(PathBuf::from)
                .filter(|p| p.starts_with(store::HOLDER_DIR)),
        };
    }

    /// Hands every handle to the keeper of this root: systemd's fd store,
    /// or a new holder (which replaces the one of a previous root).
    pub(super) fn keep_all(&mut self) {
        if self.bus.status.is_none() {
            return;
        }
        let notify = std::env::var("NOTIFY_SOCKET").ok();
        match store::keeper(self.root, notify.as_deref()) {
            Keeper::Systemd(socket) => {
                let failed = self
                    .named_handles()
                    .into_iter()
                    .find_map(|(name, fd)| store::put(&socket, &name, fd).err());
                // Pid and root in the text: each record of the boot differs.
                match failed {
                    None => info!(
                        "the bus handles are in systemd's fd store (pid {}, {})",
                        std::process::id(),
                        self.root.as_str()
                    ),
                    Some(e) => self.store_problem(&e),
                }
                self.keeping.socket = Some(socket);
            }
            Keeper::Holder => self.start_holder(notify.map(PathBuf::from)),
        }
    }

    fn start_holder(&mut self, previous: Option<PathBuf>) {
        let spawned = holder::spawn(&self.named_handles());
        match spawned {
            Ok(h) => {
                info!(
                    "the bus handles are held by the holder process {} ({})",
                    h.child.id(),
                    self.root.as_str()
                );
                std::env::set_var("NOTIFY_SOCKET", &h.socket);
                self.keeping.socket = Some(h.socket.clone());
                self.keeping.holder = Some(h);
                self.keeping.store_failed = false;
            }
            Err(e) => {
                self.problem(format!(
                    "cannot start the holder process ({e}): if kdbus-init dies now, the bus \
                     goes with it"
                ));
                self.keeping.socket = None;
            }
        }
        // Its handles are held twice now: the old one may go.
        if let Some(old) = previous.filter(|p| Some(p) != self.keeping.socket.as_ref()) {
            holder::dismiss(&old);
        }
    }

    /// The holder died (killed): start another.
    pub(super) fn check_holder(&mut self) {
        let Some(h) = self.keeping.holder.as_mut() else {
            return;
        };
        if matches!(h.child.try_wait(), Ok(None)) {
            return;
        }
        warn!("the holder process is gone: starting another");
        let old = self.keeping.holder.take().map(|h| h.socket);
        self.start_holder(old);
    }

    /// Keeps a new handle under `name`.
    pub(super) fn keep(&mut self, name: &str, fd: BorrowedFd<'_>) {
        if let Some(socket) = &self.keeping.socket {
            if let Err(e) = store::put(socket, name, fd) {
                self.store_problem(&e);
            }
        }
    }

    pub(super) fn keep_activator(&mut self, i: usize) {
        let name = store::activator_name(self.activators[i].conn.id());
        let fd = self.activators[i].conn.fd().try_clone_to_owned();
        if let Ok(fd) = fd {
            self.keep(&name, fd.as_fd());
        }
    }

    pub(super) fn keep_orphan(&mut self, n: usize) {
        if let Ok(fd) = self.bus.orphans[n].try_clone() {
            self.keep(&store::kept_name(n), fd.as_fd());
        }
    }

    /// Drops a handle from the store (before closing it: a copy there would
    /// keep its connection alive).
    pub(super) fn unkeep(&mut self, name: &str) {
        if let Some(socket) = &self.keeping.socket {
            if let Err(e) = store::remove(socket, name) {
                self.store_problem(&e);
            }
        }
    }

    fn store_problem(&mut self, e: &std::io::Error) {
        if !self.keeping.store_failed {
            self.keeping.store_failed = true;
            self.problem(format!(
                "cannot hand the bus handles to the fd store ({e}): if kdbus-init dies now, \
                 what is not stored is lost"
            ));
        }
    }

    /// Writes the state for a restart.
    pub(super) fn save_state(&mut self) {
        let mut saved = self.saved();
        saved.log = self.log.save();
        self.keeping.saved_log = (saved.log.to_kmsg, saved.log.to_journal);
        match state::store(&saved, Path::new(STATE_FILE)) {
            Ok(()) if self.keeping.state_failed => {
                self.keeping.state_failed = false;
                info!("the state file {STATE_FILE} is written again");
            }
            Ok(()) => {}
            Err(e) if !self.keeping.state_failed => {
                self.keeping.state_failed = true;
                let msg = format!(
                    "cannot write the state file {STATE_FILE} ({e}): the bus is kept, but a \
                     kdbus-init restarted now would not know its activations; free space in \
                     /run"
                );
                crate::console(&msg);
                self.problem(msg);
            }
            Err(_) => {}
        }
    }

    /// Saves the state again if records were logged since the last save
    /// (a restart continues the counts).
    pub(super) fn save_state_if_logged(&mut self) {
        let (_, log) = self.log.snapshot();
        if (log.to_kmsg, log.to_journal) != self.keeping.saved_log {
            self.save_state();
        }
    }
}
