//! The running kdbus-init: sets the bus up (or takes it over from the
//! previous process image), serves activations, and follows root changes.
//!
//! One file per job: `setup` (the bus and the handles taken over),
//! `follow` (root changes), `activation` (starting services for queued
//! messages), `owner_policy` (who may own an activatable name), `report`
//! (status, problems, the state handed on). This file holds the pieces
//! together and runs the event loop.

mod activation;
mod follow;
mod owner_policy;
mod report;
mod setup;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use bootenv::log::BootLog;
use bootenv::status::{Activation, ActivationRecord, ActivatorStatus, BusStatus, Phase, RootKind};
use kdbus::{Bus, Connection};
use rustix::event::{PollFd, PollFlags};
use tracing::{info, warn};

use crate::signals::{self, Signals};

pub use follow::root_kind;

pub const DOMAIN: &str = kdbus::KDBUSFS_MOUNT;
pub const BUS_NAME: &str = kdbus::SYSTEM_BUS_NAME;

pub struct Options {
    pub foreground: bool,
    pub debug: bool,
    pub services_dir: PathBuf,
}

/// One activatable name: its connection, where its activation stands, and
/// the process started for it.
struct Activator {
    conn: Connection,
    state: ActivatorStatus,
    child: Option<Child>,
}

/// The bus and every kdbus handle that keeps it, or messages on it, alive.
#[derive(Default)]
struct BusHandles {
    status: Option<BusStatus>,
    /// The handle that created the bus: the bus lives as long as it.
    owner: Option<Bus>,
    /// O_PATH handle on the kdbusfs mount, to re-attach it in a new root.
    domain: Option<OwnedFd>,
    /// Handles whose state we lost or could not take over: kept open so
    /// that the bus and the messages queued on them survive.
    orphans: Vec<OwnedFd>,
}

impl BusHandles {
    fn path(&self) -> Option<PathBuf> {
        self.status.as_ref().map(|b| PathBuf::from(&b.path))
    }
}

/// What happened so far, across every process image.
#[derive(Default)]
struct History {
    phases: Vec<Phase>,
    activations: Vec<ActivationRecord>,
    problems: Vec<String>,
}

/// How kdbus-init notices that the root moved away from it.
struct RootWatch {
    proc_dir: OwnedFd,
    /// Polled for mount changes.
    mountinfo: File,
    /// Check for a root change every 50 ms until then (after a mount event).
    follow_until: Option<Instant>,
}

impl RootWatch {
    fn open() -> std::io::Result<RootWatch> {
        Ok(RootWatch {
            proc_dir: bootenv::mounts::open_path(std::path::Path::new("/proc"))?,
            mountinfo: File::open("/proc/self/mountinfo")?,
            follow_until: None,
        })
    }
}

pub struct Daemon {
    opts: Options,
    log: BootLog,
    root: RootKind,
    exe_path: String,
    bus: BusHandles,
    activators: Vec<Activator>,
    history: History,
    watch: RootWatch,
    signals: Signals,
}

fn pid() -> u32 {
    std::process::id()
}

/// What one wait of the event loop brought.
struct Woken {
    signals: bool,
    mounts_changed: bool,
    /// Activators with something to read.
    ready: Vec<usize>,
}

impl Daemon {
    fn new(opts: Options, log: BootLog, exe_path: String) -> crate::error::Result<Daemon> {
        Ok(Daemon {
            opts,
            log,
            root: RootKind::Initramfs,
            exe_path,
            bus: BusHandles::default(),
            activators: Vec::new(),
            history: History::default(),
            watch: RootWatch::open()?,
            signals: Signals::install()?,
        })
    }

    /// The main loop. Returns when told to stop.
    pub fn run(mut self) {
        notify_ready();
        let mut next_check = Instant::now();
        loop {
            let woken = self.wait(next_check);
            let mut check_root = false;
            if woken.signals {
                for sig in self.signals.take() {
                    match sig {
                        signals::SIGUSR1 => check_root = true,
                        signals::SIGHUP => {
                            info!("SIGHUP: re-reading service files");
                            self.load_services();
                            self.publish();
                        }
                        signals::SIGTERM | signals::SIGINT => {
                            warn!("stopping on request: the bus {BUS_NAME} goes away with us");
                            self.publish_stopped();
                            return;
                        }
                        _ => {} // SIGCHLD: children are looked at below
                    }
                }
            }
            if woken.mounts_changed {
                self.watch.follow_until = Some(Instant::now() + Duration::from_secs(3));
            }
            if check_root || self.watch.follow_until.is_some() || Instant::now() >= next_check {
                if let Some(root) = self.root_change() {
                    self.follow(root);
                }
            }
            for i in woken.ready {
                if self.activators[i].conn.has_message().unwrap_or(false) {
                    self.activate(i);
                }
            }
            if Instant::now() >= next_check {
                self.check_activations();
                next_check = Instant::now() + Duration::from_secs(1);
            }
        }
    }

    /// Sleeps until a signal, a mount change, a message on an idle
    /// activator, the kmsg budget or `next_check`.
    fn wait(&mut self, next_check: Instant) -> Woken {
        let now = Instant::now();
        let mut deadline = next_check.max(now);
        if let Some(t) = self.log.flush() {
            deadline = deadline.min(t);
        }
        if let Some(until) = self.watch.follow_until {
            if now < until {
                deadline = deadline.min(now + Duration::from_millis(50));
            } else {
                self.watch.follow_until = None;
            }
        }
        let timeout = deadline.saturating_duration_since(now);
        let mut fds = vec![
            PollFd::new(&self.signals, PollFlags::IN),
            PollFd::new(&self.watch.mountinfo, PollFlags::PRI),
        ];
        let watched: Vec<usize> = (0..self.activators.len())
            .filter(|&i| matches!(self.activators[i].state.activation, Activation::Idle))
            .collect();
        for &i in &watched {
            fds.push(PollFd::new(&self.activators[i].conn, PollFlags::IN));
        }
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        Woken {
            signals: !fds[0].revents().is_empty(),
            mounts_changed: fds[1].revents().intersects(PollFlags::PRI | PollFlags::ERR),
            ready: watched
                .iter()
                .enumerate()
                .filter(|(k, _)| {
                    fds[k + 2]
                        .revents()
                        .intersects(PollFlags::IN | PollFlags::ERR)
                })
                .map(|(_, &i)| i)
                .collect(),
        }
    }
}

/// Tells systemd (Type=notify) that the bus is ready.
fn notify_ready() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}
