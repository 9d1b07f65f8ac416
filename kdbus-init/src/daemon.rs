//! The running kdbus-init: sets the bus up (or takes it over from the
//! previous process image), serves activations, and follows root changes.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bootenv::log::BootLog;
use bootenv::mounts;
use bootenv::status::*;
use kdbus::{AttachFlags, Bus, BusBuilder, Connection, Peer};
use rustix::event::{PollFd, PollFlags};
use rustix::io::FdFlags;
use tracing::{debug, error, info, warn};

use crate::activator::{self, Handover, Replaced};
use crate::services::{self, Service};
use crate::state::*;

pub const DOMAIN: &str = kdbus::KDBUSFS_MOUNT;
pub const BUS_NAME: &str = kdbus::SYSTEM_BUS_NAME;
/// Start attempts per name before giving up (until the next message
/// after a switch, or SIGHUP).
const MAX_ATTEMPTS: u32 = 3;
/// A started service must take its name within this time.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Where kdbus-init may be installed in a root.
const BINARY_PATHS: [&str; 3] = [
    "/usr/sbin/kdbus-init",
    "/usr/bin/kdbus-init",
    "/sbin/kdbus-init",
];

pub struct Options {
    pub foreground: bool,
    pub debug: bool,
    pub services_dir: PathBuf,
}

struct Activator {
    conn: Connection,
    state: ActivatorStatus,
    child: Option<Child>,
}

pub struct Daemon {
    opts: Options,
    log: BootLog,
    root: RootKind,
    exe_path: String,
    bus: Option<BusStatus>,
    owner: Option<Bus>,
    domain: Option<OwnedFd>,
    activators: Vec<Activator>,
    history: Vec<Phase>,
    activations: Vec<ActivationRecord>,
    problems: Vec<String>,
    /// kdbus handles whose state we lost or could not take over: kept open
    /// so that the bus and the messages queued on them survive.
    orphans: Vec<OwnedFd>,
    proc_dir: OwnedFd,
    mountinfo: File,
    signals: UnixStream,
    signal_flags: Vec<(i32, Arc<AtomicBool>)>,
    /// Check for a root change every 50 ms until then (after a mount event).
    follow_until: Option<Instant>,
}

fn pid() -> u32 {
    std::process::id()
}

/// Which root are we in, given where we were before? An initramfs-like
/// root after the real root, or one with the real root kept at /oldroot
/// (systemd-shutdown's layout; our history may be lost), is the shutdown
/// root.
pub fn root_kind(previous: Option<RootKind>) -> RootKind {
    let initrd_like = mounts::in_initramfs()
        || (Path::new("/etc/initrd-release").exists() && Path::new("/shutdown").exists());
    let oldroot = mounts::is_mount_point(Path::new("/oldroot")).unwrap_or(false);
    match (initrd_like, previous) {
        (true, Some(RootKind::RealRoot | RootKind::ShutdownRoot)) => RootKind::ShutdownRoot,
        (true, _) if oldroot => RootKind::ShutdownRoot,
        (true, _) => RootKind::Initramfs,
        (false, _) => RootKind::RealRoot,
    }
}

/// The bus's id128 as hex, read with a short-lived HELLO.
fn bus_id(path: &Path) -> Option<String> {
    match activator::peer(path) {
        Ok(c) => Some(kdbus::id128_hex(c.bus_id128())),
        Err(e) => {
            warn!("cannot read the bus id ({e})");
            None
        }
    }
}

fn clear_cloexec(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    rustix::io::fcntl_setfd(fd, FdFlags::empty())?;
    Ok(())
}

fn set_cloexec(fd: BorrowedFd<'_>) {
    let _ = rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC);
}

/// Takes ownership of an inherited fd number, checking it is open.
fn adopt_fd(raw: RawFd) -> Option<OwnedFd> {
    if raw < 0 {
        return None;
    }
    // SAFETY: F_GETFD on an arbitrary number has no side effects; we take
    // the fd only if it is open, and the state that named it was handed to
    // us together with it, so nobody else owns it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    rustix::io::fcntl_getfd(borrowed).ok()?;
    set_cloexec(borrowed);
    // SAFETY: see above; the fd is open and now owned by us alone.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The open fds of this process that lead into a kdbusfs mount (to keep a
/// bus alive when the state describing them is lost).
fn kdbus_fds(except: &[RawFd]) -> Vec<OwnedFd> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    let nums: Vec<RawFd> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for n in nums {
        if n <= 2 || except.contains(&n) {
            continue;
        }
        // SAFETY: borrowed only for fstatfs; see adopt_fd for taking it.
        let b = unsafe { BorrowedFd::borrow_raw(n) };
        if mounts::fs_type_fd(b).ok() == Some(mounts::KDBUS_SUPER_MAGIC) {
            if let Some(fd) = adopt_fd(n) {
                out.push(fd);
            }
        }
    }
    out
}

impl Daemon {
    fn common(opts: Options, log: BootLog, exe_path: String) -> std::io::Result<Daemon> {
        let proc_dir = mounts::open_path(Path::new("/proc"))?;
        let mountinfo = File::open("/proc/self/mountinfo")?;
        // Each signal sets its flag and wakes the loop through the pipe.
        let (signals, sender) = UnixStream::pair()?;
        signals.set_nonblocking(true)?;
        let mut flags = Vec::new();
        for sig in [
            signal_hook::consts::SIGUSR1,
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGCHLD,
        ] {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(sig, flag.clone())?;
            signal_hook::low_level::pipe::register_raw(sig, sender.as_raw_fd())?;
            flags.push((sig, flag));
        }
        // The registered write end must stay open for the process' life.
        std::mem::forget(sender);
        Ok(Daemon {
            opts,
            log,
            root: RootKind::Initramfs,
            exe_path,
            bus: None,
            owner: None,
            domain: None,
            activators: Vec::new(),
            history: Vec::new(),
            activations: Vec::new(),
            problems: Vec::new(),
            orphans: Vec::new(),
            proc_dir,
            mountinfo,
            signals,
            signal_flags: flags,
            follow_until: None,
        })
    }

    /// First start: load the module, mount kdbusfs, create the bus.
    /// Errors are reported by the caller; the boot goes on without the bus.
    pub fn start(opts: Options, log: BootLog, exe_path: String) -> Result<Daemon, String> {
        let mut d =
            Daemon::common(opts, log, exe_path).map_err(|e| format!("set-up failed: {e}"))?;
        d.root = root_kind(None);
        info!(root = d.root.as_str(), "kdbus-init starting: kdbus=1");
        load_module()?;
        let domain = Path::new(DOMAIN);
        if mounts::fs_type(domain).ok() != Some(mounts::KDBUS_SUPER_MAGIC) {
            mounts::mount_kdbusfs(domain).map_err(|e| {
                format!(
                    "mounting kdbusfs on {DOMAIN} failed: {e} (is kdbus.ko the project's module?)"
                )
            })?;
            info!("mounted kdbusfs on {DOMAIN}");
        }
        d.domain = Some(mounts::open_path(domain).map_err(|e| format!("open {DOMAIN}: {e}"))?);
        let path = kdbus::bus_path(DOMAIN, BUS_NAME);
        // The system bus: everyone may connect; the creator's metadata is
        // there for `kdbusctl status` (BUS_CREATOR_INFO).
        let made = BusBuilder::new(BUS_NAME)
            .world_accessible()
            .creator_attach_flags(AttachFlags::all())
            .create_in(domain);
        let owner = match made {
            Ok(bus) => Some(bus),
            Err(e) if e.is(kdbus::Errno::EXIST) => {
                warn!("bus {BUS_NAME} already exists: adopting it without its owner handle");
                None
            }
            Err(e) if e.is(kdbus::Errno::NOTTY) => {
                return Err(format!(
                    "creating the bus {BUS_NAME} failed: this kdbus.ko does not implement \
                     BUS_MAKE (ENOTTY); install a complete kdbus.ko"
                ))
            }
            Err(e) => return Err(format!("creating the bus {BUS_NAME} failed: {e}")),
        };
        let id = bus_id(&path);
        d.bus = Some(BusStatus {
            name: BUS_NAME.into(),
            path: path.display().to_string(),
            id: id.clone(),
            owner_held: owner.is_some(),
            created_us: monotonic_us(),
        });
        d.owner = owner;
        info!(
            bus_id = id.as_deref().unwrap_or("unknown"),
            "bus {BUS_NAME} ready"
        );
        d.enter_root();
        if d.root == RootKind::Initramfs {
            need_shutdown();
        }
        Ok(d)
    }

    /// After a re-exec: take over the bus from the state blob.
    pub fn resume(
        opts: Options,
        log: BootLog,
        saved: Result<Saved, String>,
        state_fd: RawFd,
    ) -> std::io::Result<Daemon> {
        let exe_fallback = BINARY_PATHS[0].to_owned();
        match saved {
            Ok(saved) => {
                let mut d = Daemon::common(opts, log, saved.exe_path.clone())?;
                d.history = saved.history;
                d.activations = saved.activations;
                d.problems = saved.problems;
                d.orphans = saved.orphan_fds.into_iter().filter_map(adopt_fd).collect();
                // The domain first: adopting the bus needs its node.
                d.domain = saved.domain_fd.and_then(adopt_fd);
                d.ensure_domain_visible();
                d.bus = saved.bus;
                if let Some(fd) = saved.owner_fd.and_then(adopt_fd) {
                    d.owner = d.take_over(fd, "the bus owner handle", |fd| {
                        Bus::adopt(fd, DOMAIN, BUS_NAME)
                    });
                } else if saved.owner_fd.is_some() {
                    d.problem("the bus owner handle did not survive the re-exec".into());
                }
                if let Some(b) = d.bus.as_mut() {
                    b.owner_held = d.owner.is_some();
                }
                for a in saved.activators {
                    let Some(fd) = adopt_fd(a.fd) else {
                        d.problem(format!(
                            "the activator of {} (fd {}) did not survive the re-exec; recreating it",
                            a.status.name, a.fd
                        ));
                        continue;
                    };
                    let what = format!("the activator of {}", a.status.name);
                    if let Some(conn) = d.take_over(fd, &what, |fd| Connection::adopt(fd, a.conn)) {
                        d.activators.push(Activator {
                            conn,
                            state: a.status,
                            child: None,
                        });
                    }
                }
                let previous = d.history.last().map(|p| p.root);
                d.root = root_kind(previous);
                d.enter_root();
                Ok(d)
            }
            Err(why) => {
                // Whatever the blob said, the bus lives as long as one of
                // its handles: keep every kdbusfs fd we inherited.
                let mut d = Daemon::common(opts, log, exe_fallback)?;
                d.orphans = kdbus_fds(&[state_fd]);
                d.problem(format!(
                    "{why}; keeping {} inherited kdbus handle(s) open so the bus survives, \
                     activators are recreated where possible",
                    d.orphans.len()
                ));
                d.root = root_kind(None);
                let path = kdbus::bus_path(DOMAIN, BUS_NAME);
                if path.exists() {
                    d.bus = Some(BusStatus {
                        name: BUS_NAME.into(),
                        path: path.display().to_string(),
                        id: bus_id(&path),
                        owner_held: false,
                        created_us: monotonic_us(),
                    });
                }
                d.domain = mounts::open_path(Path::new(DOMAIN)).ok();
                d.enter_root();
                Ok(d)
            }
        }
    }

    fn problem(&mut self, msg: String) {
        error!("{msg}");
        self.problems.push(msg);
    }

    /// Takes over an inherited kdbus handle with `adopt`. If that fails the
    /// handle is kept open anyway — the bus, or the messages queued on an
    /// activator, live as long as it — and the failure is reported.
    fn take_over<T>(
        &mut self,
        fd: OwnedFd,
        what: &str,
        adopt: impl FnOnce(OwnedFd) -> kdbus::Result<T>,
    ) -> Option<T> {
        let result = fd
            .try_clone()
            .map_err(|e| e.to_string())
            .and_then(|copy| adopt(copy).map_err(|e| e.to_string()));
        match result {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(format!(
                    "cannot take over {what}: {e}; keeping its handle open so that nothing \
                     queued on it is lost"
                ));
                self.orphans.push(fd);
                None
            }
        }
    }

    /// Settles into the current root: the bus mount is visible, service
    /// files are read, the phase is recorded.
    fn enter_root(&mut self) {
        self.ensure_domain_visible();
        let exe = std::fs::read_link("/proc/self/exe")
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.history.push(Phase {
            root: self.root,
            since_us: monotonic_us(),
            pid: pid(),
            exe: exe.clone(),
            bus_id: self.bus.as_ref().and_then(|b| b.id.clone()),
        });
        info!(
            root = self.root.as_str(),
            exe = exe.as_str(),
            bus_id = self
                .bus
                .as_ref()
                .and_then(|b| b.id.as_deref())
                .unwrap_or("none"),
            "running in the {}",
            self.root.as_str()
        );
        self.load_services();
        // Deferred starts may work here.
        for i in 0..self.activators.len() {
            if matches!(
                self.activators[i].state.activation,
                Activation::Deferred { .. }
            ) {
                self.activate(i);
            }
        }
        self.write_pid_file();
        self.publish();
    }

    /// Makes /sys/fs/kdbus show our domain in this root: systemd-shutdown
    /// binds /sys into the shutdown root without its submounts.
    fn ensure_domain_visible(&mut self) {
        let Some(domain) = &self.domain else { return };
        let target = Path::new(DOMAIN);
        let shown = mounts::open_path(target)
            .ok()
            .filter(|fd| mounts::fs_type_fd(fd).ok() == Some(mounts::KDBUS_SUPER_MAGIC))
            .and_then(|fd| mounts::same_file(&fd, domain).ok())
            .unwrap_or(false);
        if shown {
            return;
        }
        match mounts::attach_clone(domain, target) {
            Ok(()) => info!("re-attached the bus domain on {DOMAIN}"),
            Err(e) => {
                warn!("the bus domain is not visible on {DOMAIN} and cannot be attached there: {e}")
            }
        }
    }

    fn load_services(&mut self) {
        let (found, broken) = services::load(&self.opts.services_dir);
        for b in broken {
            self.problem(format!(
                "service file {} skipped: {}",
                b.file.display(),
                b.why
            ));
        }
        let Some(bus_path) = self.bus.as_ref().map(|b| PathBuf::from(&b.path)) else {
            return;
        };
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
            let uid = services::owner_uid(svc.user.as_deref());
            match activator::connect(&bus_path, &svc.name, uid) {
                Ok(conn) => {
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
                }
                Err(e) => self.problem(format!(
                    "cannot register an activator for {} ({}): {e}",
                    svc.name,
                    svc.file.display()
                )),
            }
        }
        self.update_owner_policies();
    }

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

    /// What keeps activator `i`'s policy from being replaced right now.
    fn policy_change_blocked(&self, i: usize) -> Option<String> {
        let a = &self.activators[i];
        if matches!(a.state.activation, Activation::Starting { .. }) || a.child.is_some() {
            // Its NAME_ACQUIRE would race with the handover.
            return Some("its service is being started".into());
        }
        match a
            .conn
            .conn_info(Peer::Name(&a.state.name), AttachFlags::empty())
        {
            Ok(info) if info.id != a.conn.id() => Some(format!(
                "a service (connection {}) owns the name; the policy changes when it is \
                 back with the activator",
                info.id
            )),
            _ => None,
        }
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
    fn update_owner_policies(&mut self) {
        let Some(bus_path) = self.bus.as_ref().map(|b| PathBuf::from(&b.path)) else {
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
            match h.replace(&bus_path, a.conn, &name, old_uid, Some(uid)) {
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
                    self.orphans.push(fd);
                }
            }
        }
    }

    fn record(&mut self, name: &str, event: String) {
        info!(name, "{event}");
        self.activations.push(ActivationRecord {
            name: name.to_owned(),
            root: self.root,
            at_us: monotonic_us(),
            event,
        });
    }

    /// A message waits on activator `i`: start its service if we can.
    fn activate(&mut self, i: usize) {
        let svc = self.activators[i].state.service.clone();
        let attempts = match &self.activators[i].state.activation {
            Activation::Starting { attempts, .. } | Activation::Failed { attempts, .. } => {
                *attempts
            }
            _ => 0,
        } + 1;
        let result = start_service(&svc);
        let name = svc.name.clone();
        match result {
            Started::Systemd(child, unit) => {
                self.activators[i].child = Some(child);
                self.activators[i].state.activation = Activation::Starting {
                    how: format!("systemctl start {unit}"),
                    since_us: monotonic_us(),
                    attempts,
                };
                self.record(&name, format!("started {unit} through systemd"));
            }
            Started::Direct(child, cmd) => {
                self.activators[i].child = Some(child);
                self.activators[i].state.activation = Activation::Starting {
                    how: cmd.clone(),
                    since_us: monotonic_us(),
                    attempts,
                };
                self.record(&name, format!("started {cmd}"));
            }
            Started::NotHere(reason) => {
                if !matches!(
                    self.activators[i].state.activation,
                    Activation::Deferred { .. }
                ) {
                    self.record(&name, format!("deferred: {reason}"));
                }
                self.activators[i].state.activation = Activation::Deferred { reason };
            }
            Started::Failed(error) => self.fail(i, error, attempts),
        }
        self.publish();
    }

    fn fail(&mut self, i: usize, error: String, attempts: u32) {
        let name = self.activators[i].state.name.clone();
        let retry =
            (attempts < MAX_ATTEMPTS).then(|| monotonic_us() + 5_000_000 * 3u64.pow(attempts - 1));
        let what = match retry {
            Some(_) => "its messages stay queued; retrying",
            None => "its messages stay queued until the service is started by other means",
        };
        self.problem(format!(
            "activation of {name} failed (attempt {attempts}/{MAX_ATTEMPTS}): {error}; {what}"
        ));
        self.activations.push(ActivationRecord {
            name,
            root: self.root,
            at_us: monotonic_us(),
            event: format!("failed: {error}"),
        });
        self.activators[i].state.activation = Activation::Failed {
            error,
            attempts,
            retry_us: retry,
        };
    }

    /// Progress of started services and retries.
    fn check_activations(&mut self) {
        let now = monotonic_us();
        for i in 0..self.activators.len() {
            // Reap what we started, whatever the activation's state.
            let exited = self.reap_child(i);
            let queued = self.activators[i].conn.has_message().unwrap_or(false);
            match self.activators[i].state.activation.clone() {
                Activation::Starting {
                    how,
                    since_us,
                    attempts,
                } => {
                    if !queued {
                        let name = self.activators[i].state.name.clone();
                        self.activators[i].state.activation = Activation::Idle;
                        self.record(
                            &name,
                            "service took the name; queued messages handed over".into(),
                        );
                        self.publish();
                    } else if let Some((false, detail)) = exited {
                        self.fail(i, format!("{how} exited with {detail}"), attempts);
                        self.publish();
                    } else if now.saturating_sub(since_us) > START_TIMEOUT.as_micros() as u64 {
                        self.fail(
                            i,
                            format!(
                                "the service did not take the name within {}s",
                                START_TIMEOUT.as_secs()
                            ),
                            attempts,
                        );
                        self.publish();
                    }
                }
                // What kept it from starting may be gone (systemd ready).
                Activation::Deferred { .. } if queued => self.activate(i),
                Activation::Failed {
                    retry_us: Some(at), ..
                } if at <= now && queued => self.activate(i),
                Activation::Failed { .. } if !queued => {
                    self.activators[i].state.activation = Activation::Idle;
                    self.publish();
                }
                _ => {}
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

    fn saved(&self) -> Saved {
        let (_, log) = self.log.snapshot();
        Saved {
            version: VERSION,
            exe_path: self.exe_path.clone(),
            bus: self.bus.clone(),
            owner_fd: self.owner.as_ref().map(|b| b.as_fd().as_raw_fd()),
            domain_fd: self.domain.as_ref().map(|f| f.as_raw_fd()),
            activators: self
                .activators
                .iter()
                .map(|a| SavedActivator {
                    fd: a.conn.fd().as_raw_fd(),
                    conn: a.conn.params(),
                    status: a.state.clone(),
                })
                .collect(),
            orphan_fds: self.orphans.iter().map(|f| f.as_raw_fd()).collect(),
            history: self.history.clone(),
            activations: self.activations.clone(),
            log,
            problems: self.problems.clone(),
            foreground: self.opts.foreground,
            debug: self.opts.debug,
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
            bus: self.bus.clone(),
            activators: self.activators.iter().map(|a| a.state.clone()).collect(),
            activations: self.activations.clone(),
            history: self.history.clone(),
            log: LogStatus {
                sink,
                to_kmsg: log.to_kmsg,
                to_journal: log.to_journal,
                waiting: log.pending_kmsg.len(),
                dropped: log.dropped,
                switches: log.switches,
                recent: log.recent,
            },
            problems: self.problems.clone(),
        }
    }

    fn publish(&self) {
        if let Err(e) = self.status().publish() {
            debug!("cannot publish the status in {STATUS_FILE}: {e}");
        }
    }

    fn write_pid_file(&self) {
        let _ = std::fs::create_dir_all("/run/kdbus");
        let _ = std::fs::write(PID_FILE, format!("{}\n", pid()));
    }

    /// Has the root moved away from us? Returns the directory to follow
    /// into (PID 1's root), or None when we are where PID 1 is and our
    /// binary is this root's.
    fn root_change(&self) -> Option<OwnedFd> {
        // Our root first, PID 1's second: a pivot_root between the two
        // (which moves both) can then only make us see PID 1 ahead of us,
        // never behind.
        let ours = mounts::open_path(Path::new("/")).ok()?;
        let pid1_root = rustix::fs::openat(
            &self.proc_dir,
            "1/root",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        if !mounts::same_file(&pid1_root, &ours).unwrap_or(true) {
            return Some(pid1_root);
        }
        // Same root, but is our binary still this root's? (systemd-shutdown
        // pivots everyone into the shutdown root; our binary then lives
        // under /oldroot.)
        let exe = File::open("/proc/self/exe").ok()?;
        let here = self.binary_here()?;
        let here = File::open(here).ok()?;
        if mounts::same_file(&exe, &here).unwrap_or(true) {
            None
        } else {
            // "/" as it is now, after whatever moved us.
            mounts::open_path(Path::new("/")).ok()
        }
    }

    fn same_root(&self, fd: &OwnedFd) -> bool {
        mounts::open_path(Path::new("/"))
            .ok()
            .and_then(|ours| mounts::same_file(&ours, fd).ok())
            .unwrap_or(false)
    }

    fn binary_here(&self) -> Option<PathBuf> {
        std::iter::once(self.exe_path.as_str())
            .chain(BINARY_PATHS)
            .map(PathBuf::from)
            .find(|p| p.is_file())
    }

    /// Moves into `root` and re-executes this root's kdbus-init with our
    /// state. Returns only if that failed (we then go on as we are).
    fn follow(&mut self, mut root: OwnedFd) {
        // The root may move on while we follow it (switch-root and a quick
        // shutdown): enter until we are where PID 1 is.
        for _ in 0..5 {
            let entered = rustix::process::fchdir(&root)
                .and_then(|_| rustix::process::chroot("."))
                .and_then(|_| rustix::process::chdir("/"));
            if let Err(e) = entered {
                self.problem(format!(
                    "cannot enter the new root: {e}; staying where we are"
                ));
                return;
            }
            match self.root_change() {
                Some(next) if !self.same_root(&next) => root = next,
                _ => break,
            }
        }
        // The new image needs /proc to find its way; without it, wait for
        // the next change rather than exec into a root we cannot run in.
        if !Path::new("/proc/self/mountinfo").exists() {
            warn!("the new root has no /proc yet: following later");
            self.follow_until = Some(Instant::now() + Duration::from_secs(3));
            return;
        }
        // /dev may be a different mount now: reopen our kmsg handle.
        self.log.reopen_kmsg();
        let Some(binary) = self.binary_here() else {
            self.problem(format!(
                "the new root has no kdbus-init binary ({}): going on with the old one, \
                 which keeps the previous root's files referenced",
                BINARY_PATHS.join(", ")
            ));
            self.root = root_kind(Some(self.root));
            self.enter_root();
            return;
        };
        info!(binary = %binary.display(), "root changed: re-executing from the new root");
        let saved = {
            let mut s = self.saved();
            s.log = self.log.save();
            s
        };
        let blob = match bootenv::state::seal("kdbus-init-state", &saved) {
            Ok(fd) => fd,
            Err(e) => {
                self.problem(format!(
                    "cannot save the state for the re-exec: {e}; staying as we are"
                ));
                return;
            }
        };
        let mut keep: Vec<BorrowedFd> = vec![blob.as_fd()];
        keep.extend(self.owner.as_ref().map(|b| b.as_fd()));
        keep.extend(self.domain.as_ref().map(|f| f.as_fd()));
        keep.extend(self.activators.iter().map(|a| a.conn.fd()));
        keep.extend(self.orphans.iter().map(|f| f.as_fd()));
        for fd in &keep {
            let _ = clear_cloexec(*fd);
        }
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "--state-fd".into(),
            blob.as_raw_fd().to_string().into(),
        ];
        if self.opts.foreground {
            args.push("--foreground".into());
        }
        if self.opts.debug {
            args.push("--debug".into());
        }
        args.push("--services-dir".into());
        args.push(self.opts.services_dir.clone().into());
        let err = Command::new(&binary).arg0("@kdbus-init").args(&args).exec();
        // Still here: the exec failed. Nothing is lost (saving the log
        // state copied the waiting records, it did not take them); go on.
        for fd in &keep {
            set_cloexec(*fd);
        }
        self.problem(format!(
            "re-executing {} failed: {err}; going on with the running binary",
            binary.display()
        ));
        self.root = root_kind(Some(self.root));
        self.enter_root();
    }

    /// The main loop. Returns when told to stop.
    pub fn run(mut self) {
        notify_ready();
        let mut next_check = Instant::now();
        loop {
            let now = Instant::now();
            let mut deadline = next_check.max(now);
            if let Some(t) = self.log.flush() {
                deadline = deadline.min(t);
            }
            if let Some(until) = self.follow_until {
                if now < until {
                    deadline = deadline.min(now + Duration::from_millis(50));
                } else {
                    self.follow_until = None;
                }
            }
            let timeout = deadline.saturating_duration_since(now);
            let mut fds = vec![
                PollFd::new(&self.signals, PollFlags::IN),
                PollFd::new(&self.mountinfo, PollFlags::PRI),
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
            let sig_ready = !fds[0].revents().is_empty();
            let mounts_changed = fds[1].revents().intersects(PollFlags::PRI | PollFlags::ERR);
            let ready: Vec<usize> = watched
                .iter()
                .enumerate()
                .filter(|(k, _)| {
                    fds[k + 2]
                        .revents()
                        .intersects(PollFlags::IN | PollFlags::ERR)
                })
                .map(|(_, &i)| i)
                .collect();
            drop(fds);

            let mut check_root = false;
            if sig_ready {
                for sig in self.read_signals() {
                    match sig {
                        signal_hook::consts::SIGUSR1 => check_root = true,
                        signal_hook::consts::SIGHUP => {
                            info!("SIGHUP: re-reading service files");
                            self.load_services();
                            self.publish();
                        }
                        signal_hook::consts::SIGTERM | signal_hook::consts::SIGINT => {
                            warn!("stopping on request: the bus {BUS_NAME} goes away with us");
                            self.publish_stopped();
                            return;
                        }
                        _ => {} // SIGCHLD: children are looked at below
                    }
                }
            }
            if mounts_changed {
                self.follow_until = Some(Instant::now() + Duration::from_secs(3));
                check_root = true;
            }
            if self.follow_until.is_some() {
                check_root = true;
            }
            if check_root || Instant::now() >= next_check {
                if let Some(root) = self.root_change() {
                    self.follow(root);
                }
            }
            for i in ready {
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

    fn read_signals(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        while matches!(self.signals.read(&mut buf), Ok(n) if n > 0) {}
        self.signal_flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect()
    }

    fn publish_stopped(&self) {
        let _ = std::fs::remove_file(PID_FILE);
        let _ = std::fs::remove_file(STATUS_FILE);
    }
}

enum Started {
    Systemd(Child, String),
    Direct(Child, String),
    NotHere(String),
    Failed(String),
}

fn unit_exists(unit: &str) -> bool {
    [
        "/etc/systemd/system",
        "/run/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ]
    .iter()
    .any(|d| Path::new(d).join(unit).exists())
}

fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Does PID 1 take requests? Right after switch-root it is re-executing
/// and its private socket is missing or not listening yet.
fn systemd_ready() -> bool {
    std::os::unix::net::UnixStream::connect("/run/systemd/private").is_ok()
}

/// Children of a previous process image (inherited across exec) have no
/// handle here: reap them so that they do not stay zombies (which would
/// hold up systemd-shutdown).
fn reap_orphans() {
    while let Ok(Some(_)) = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG) {}
}

fn start_service(svc: &Service) -> Started {
    if systemd_runs() {
        if let Some(unit) = svc.systemd_service.as_deref().filter(|u| unit_exists(u)) {
            if !systemd_ready() {
                return Started::NotHere(format!("systemd is not ready to start {unit} yet"));
            }
            // Not waited for here: right after switch-root PID 1 may still
            // be re-executing, and the event loop must not block on it.
            return match Command::new("systemctl")
                .args(["start", "--no-block", unit])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
            {
                Ok(child) => Started::Systemd(child, unit.to_owned()),
                Err(e) => Started::Failed(format!("cannot run systemctl: {e}")),
            };
        }
    }
    let Some(exec) = svc.exec.as_deref() else {
        return Started::NotHere(format!(
            "{} is not installed in this root and the service has no Exec=",
            svc.systemd_service.as_deref().unwrap_or("its unit")
        ));
    };
    let words: Vec<&str> = exec.split_whitespace().collect();
    if words.is_empty() || !Path::new(words[0]).is_file() {
        return Started::NotHere(format!(
            "{} is not in this root{}",
            words.first().unwrap_or(&"Exec="),
            svc.systemd_service
                .as_deref()
                .map(|u| format!(" and neither is {u}"))
                .unwrap_or_default()
        ));
    }
    let mut cmd = Command::new(words[0]);
    cmd.args(&words[1..])
        .stdin(Stdio::null())
        .env("DBUS_STARTER_BUS_TYPE", "system")
        .process_group(0);
    if let Some(user) = svc.user.as_deref() {
        match services::lookup_user(user) {
            Some((uid, gid)) => {
                cmd.uid(uid).gid(gid);
            }
            None => return Started::Failed(format!("User={user} does not exist in this root")),
        }
    }
    match cmd.spawn() {
        Ok(child) => Started::Direct(child, exec.to_owned()),
        Err(e) => Started::Failed(format!("cannot execute {exec}: {e}")),
    }
}

/// Loads kdbus.ko unless it is loaded (or built in).
fn load_module() -> Result<(), String> {
    if Path::new("/sys/module/kdbus").exists() {
        return Ok(());
    }
    let out = Command::new("modprobe")
        .args(["-q", "kdbus"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            info!("loaded kdbus.ko");
            Ok(())
        }
        Ok(o) => Err(format!(
            "kdbus.ko is not available for kernel {} (modprobe kdbus: {}): install it \
             (`make install`) and rebuild the initramfs with `dracut --add kdbus`",
            release(),
            match String::from_utf8_lossy(&o.stderr).trim() {
                "" => format!("exit status {}", o.status),
                s => s.to_owned(),
            }
        )),
        Err(e) => Err(format!("cannot run modprobe to load kdbus.ko: {e}")),
    }
}

fn release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// Asks dracut to unpack the initramfs into /run/initramfs at shutdown, so
/// the bus has a root to move into (dracut-shutdown.service does nothing
/// without this flag).
fn need_shutdown() {
    let _ = std::fs::create_dir_all("/run/initramfs");
    match File::create("/run/initramfs/.need_shutdown") {
        Ok(_) => debug!("requested the shutdown root (/run/initramfs/.need_shutdown)"),
        Err(e) => warn!("cannot request the shutdown root: {e}"),
    }
}

/// Tells systemd (Type=notify) that the bus is ready.
fn notify_ready() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}
