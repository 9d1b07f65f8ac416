//! The running kdbus-init: sets the bus up (or takes it over from the
//! previous process image), serves activations, and follows root changes.
//!
//! One file per job: `setup` (the bus and the handles taken over),
//! `follow` (root changes), `activation` (starting services for queued
//! messages), `owner_policy` (who may own an activatable name), `keep`
//! (the fd store and the state that let a restart take over), `report`
//! (status, problems, the state handed on). This file holds the pieces
//! together and runs the event loop.

mod activation;
mod follow;
mod keep;
mod owner_policy;
mod report;
mod setup;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bootenv::log::BootLog;
use bootenv::status::{Activation, ActivationRecord, ActivatorStatus, BusStatus, Phase, RootKind};
use kdbus::{Bus, Connection};
use rustix::event::{PollFd, PollFlags};
use tracing::{info, warn};

use crate::signals::{self, Signals};
use crate::store::{self, Keeper};

pub use follow::{root_kind, BINARY_COPY};

pub const DOMAIN: &str = kdbus::KDBUSFS_MOUNT;
pub const BUS_NAME: &str = kdbus::SYSTEM_BUS_NAME;
/// Our systemd unit.
const UNIT: &str = "kdbus-init.service";

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
    /// SIGHUPs taken by this process (numbered in their records).
    sighups: u32,
}

/// How kdbus-init notices that the root moved away from it.
struct RootWatch {
    proc_dir: OwnedFd,
    /// Polled for mount changes.
    mountinfo: File,
    /// Check for a root change every 50 ms until then (after a mount event).
    follow_until: Option<Instant>,
    /// The last binary whose hand-over marker was read, and why it cannot
    /// take our state over (None: it can).
    checked: Option<(follow::FileId, Option<String>)>,
}

impl RootWatch {
    fn open() -> std::io::Result<RootWatch> {
        Ok(RootWatch {
            proc_dir: bootenv::mounts::open_path(std::path::Path::new("/proc"))?,
            mountinfo: File::open("/proc/self/mountinfo")?,
            follow_until: None,
            checked: None,
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
    /// Service files whose activator the kernel refused because another
    /// connection holds the policy for the name: tried again every second.
    blocked: Vec<bootenv::status::Service>,
    history: History,
    watch: RootWatch,
    signals: Signals,
    keeping: keep::Keeping,
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
            blocked: Vec::new(),
            history: History::default(),
            watch: RootWatch::open()?,
            signals: Signals::install()?,
            keeping: keep::Keeping::default(),
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
                            self.history.sighups += 1;
                            info!(
                                "SIGHUP: re-reading service files (pid {}, request {})",
                                pid(),
                                self.history.sighups
                            );
                            self.load_services();
                            self.publish();
                        }
                        signals::SIGTERM | signals::SIGINT => {
                            self.stop();
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
                self.retry_blocked();
                self.check_holder();
                next_check = Instant::now() + Duration::from_secs(1);
            }
            self.save_state_if_logged();
        }
    }

    /// Asked to stop. The handles stay in the store, so what follows is a
    /// restart on the same bus (systemd's `Restart=`, or the holder) —
    /// except after `systemctl stop`, which closes the unit's store: then
    /// kdbus-init queues its own start first (a queued job keeps the
    /// store), which cancels the stop, and says so.
    fn stop(&mut self) {
        let notify = std::env::var("NOTIFY_SOCKET").ok();
        match store::keeper(self.root, notify.as_deref()) {
            Keeper::Systemd(_) if stop_job_queued() => {
                let kept = Command::new("systemctl")
                    .args(["start", "--no-block", UNIT])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                let msg = if kept {
                    format!(
                        "`systemctl stop {UNIT}` would take the bus {BUS_NAME} down with every \
                         connection and queued message on it: kept, kdbus-init starts again at \
                         once (the bus ends at poweroff)"
                    )
                } else {
                    format!(
                        "`systemctl stop {UNIT}`: the bus {BUS_NAME} goes away with every \
                         connection on it (starting kdbus-init again failed)"
                    )
                };
                warn!("{msg}");
                crate::console(&msg);
            }
            Keeper::Systemd(_) => warn!(
                "stopping on request: the bus {BUS_NAME} stays in systemd's fd store for the \
                 next kdbus-init"
            ),
            Keeper::Holder => warn!(
                "stopping on request: the holder keeps the bus {BUS_NAME} and starts kdbus-init \
                 again"
            ),
        }
        self.save_state();
        self.publish_stopped();
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

/// Is a `systemctl stop` of our unit under way (not a restart)?
fn stop_job_queued() -> bool {
    let Ok(out) = Command::new("systemctl")
        .args(["list-jobs", "--no-legend", "--plain", UNIT])
        .stdin(Stdio::null())
        .output()
    else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("stop"))
}

/// Tells systemd (Type=notify) that the bus is ready.
fn notify_ready() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}
