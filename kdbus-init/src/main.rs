//! kdbus-init: the early-boot activator. Creates the system bus at boot
//! (`kdbus=1`), holds an activator for every D-Bus system service, and
//! carries the bus through initramfs → real root → shutdown root by
//! re-executing the new root's binary with its state and handles.

mod activation;
mod activator;
mod cli;
mod daemon;
mod error;
mod fds;
mod handover;
mod holder;
mod launch;
mod services;
mod signals;
mod state;
mod store;

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bootenv::cmdline::BootOptions;
use bootenv::log::{BootLog, LogConfig};
use tracing::{error, warn, Level};

use bootenv::status::{Status, StatusError, PID_FILE, STATUS_FILE};

use crate::cli::{Cmd, RunArgs};
use crate::error::Error;
use crate::state::Saved;

fn main() -> ExitCode {
    let cmd = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kdbus-init: {e}\n(see `kdbus-init --help`)");
            return ExitCode::from(2);
        }
    };
    match cmd {
        Cmd::Run(args) => run(args),
        Cmd::Status { json } => status(json),
        Cmd::Follow { timeout } => follow(Duration::from_secs(timeout)),
        Cmd::WaitReady { timeout, pid } => wait_ready(Duration::from_secs(timeout), pid),
        Cmd::Hold {
            daemon_pid,
            socket_fd,
        } => holder::run(daemon_pid, socket_fd),
        Cmd::Help => {
            let _ = std::io::stdout().lock().write_all(cli::HELP.as_bytes());
            ExitCode::SUCCESS
        }
        Cmd::Version => {
            // The hand-over marker as this file holds it (reading it here
            // also keeps it in the binary).
            let handover = match handover::own() {
                Ok(h) => h.to_string(),
                Err(e) => format!("hand-over marker unusable: {e}"),
            };
            println!("kdbus-init {} ({handover})", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

fn log_config(foreground: bool, debug: bool) -> LogConfig {
    let mut c = LogConfig::new("kdbus-init");
    c.also_stderr = foreground;
    c.max_level = if debug { Level::DEBUG } else { Level::INFO };
    c
}

/// Says `msg` on the console itself, whatever the log level filters.
fn console(msg: &str) {
    if let Ok(mut c) = std::fs::OpenOptions::new().write(true).open("/dev/console") {
        let _ = writeln!(c, "kdbus-init: {msg}");
    }
}

fn run(args: RunArgs) -> ExitCode {
    if let Some(fd) = args.state_fd {
        return resume(args, fd);
    }
    let cmdline = match &args.cmdline {
        Some(line) => BootOptions::parse(line),
        None => match BootOptions::from_proc() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("kdbus-init: cannot read /proc/cmdline: {e} (is /proc mounted?)");
                return ExitCode::from(1);
            }
        },
    };
    let debug = args.debug || cmdline.debug;
    if let Some(w) = cmdline.kdbus_warning() {
        let log = BootLog::new(log_config(args.foreground, debug), None);
        log.install();
        console(&w);
        warn!("{w}");
        log.flush();
        notify_ready();
        return ExitCode::SUCCESS;
    }
    if !cmdline.kdbus.enabled() {
        // Type=notify: an exit without READY would count as a failure.
        notify_ready();
        if args.foreground {
            eprintln!(
                "kdbus-init: kdbus is {} on the kernel command line: nothing to do",
                cmdline.kdbus
            );
        }
        return ExitCode::SUCCESS;
    }
    // A daemon started from the initramfs is a root storage daemon:
    // argv[0] starting with '@' makes systemd's killing sprees spare it.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if bootenv::mounts::in_initramfs() && !argv0.to_string_lossy().starts_with('@') {
        let rest: Vec<OsString> = std::env::args_os().skip(1).collect();
        let err = std::process::Command::new("/proc/self/exe")
            .arg0("@kdbus-init")
            .args(rest)
            .exec();
        console(&format!(
            "cannot mark itself as a root storage daemon ({err}); going on"
        ));
    }
    // Handles from the fd store: the previous kdbus-init died.
    let stored = store::inherited();
    if !stored.is_empty() {
        return restart(args, &cmdline, stored);
    }
    let log = BootLog::new(log_config(args.foreground, debug), None);
    log.install();
    for w in &cmdline.warnings {
        warn!("{w}");
    }
    let exe_path = std::fs::read_link("/proc/self/exe")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/usr/sbin/kdbus-init".into());
    let opts = daemon::Options {
        foreground: args.foreground,
        debug,
        services_dir: services_dir(&args, &cmdline),
    };
    match daemon::Daemon::start(opts, log.clone(), exe_path) {
        Ok(d) => {
            d.run();
            log.flush();
            ExitCode::SUCCESS
        }
        Err(msg) => {
            error!("{msg}; the boot continues without the bus");
            console(&format!("{msg}; the boot continues without the bus"));
            log.flush();
            notify_ready();
            ExitCode::from(1)
        }
    }
}

/// Tells systemd we are done starting (no-op without $NOTIFY_SOCKET).
fn notify_ready() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}

fn services_dir(args: &RunArgs, cmdline: &BootOptions) -> PathBuf {
    args.services_dir
        .clone()
        .or_else(|| cmdline.services_dir.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(services::SYSTEM_SERVICES))
}

fn resume(args: RunArgs, fd: i32) -> ExitCode {
    // SAFETY: the previous image handed us this fd number for exactly this
    // purpose; if it is not open, fcntl fails and we never use it.
    let blob = (fd >= 0
        && rustix::io::fcntl_getfd(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }).is_ok())
    .then(|| unsafe { OwnedFd::from_raw_fd(fd) });
    let saved: Result<Saved, Error> = match blob {
        None => Err(Error::StateFdMissing(fd)),
        // The JSON text as it is (checked to be JSON), taken apart by
        // `state::decode`.
        Some(blob) => bootenv::state::open::<Box<serde_json::value::RawValue>>(blob)
            .map_err(Error::from)
            .and_then(|json| {
                state::decode(json.get().as_bytes(), |e| {
                    Error::StateBlob(bootenv::state::StateError::Corrupt(e))
                })
            }),
    };
    let (foreground, debug) = match &saved {
        Ok(s) => (s.foreground || args.foreground, s.debug || args.debug),
        Err(_) => (args.foreground, args.debug),
    };
    let log = BootLog::new(
        log_config(foreground, debug),
        saved.as_ref().ok().map(|s| s.log.clone()),
    );
    log.install();
    let cmdline = BootOptions::from_proc().unwrap_or_else(|_| BootOptions::parse(""));
    let opts = daemon::Options {
        foreground,
        debug,
        services_dir: services_dir(&args, &cmdline),
    };
    match daemon::Daemon::resume(opts, log.clone(), saved, fd) {
        Ok(d) => {
            d.run();
            log.flush();
            ExitCode::SUCCESS
        }
        Err(e) => hold_forever(&format!("cannot set up after the re-exec: {e}")),
    }
}

fn restart(args: RunArgs, cmdline: &BootOptions, stored: Vec<(String, OwnedFd)>) -> ExitCode {
    let saved = state::load(std::path::Path::new(state::STATE_FILE));
    let (foreground, debug) = match &saved {
        Ok(s) => (s.foreground || args.foreground, s.debug || args.debug),
        Err(_) => (args.foreground, args.debug || cmdline.debug),
    };
    let log = BootLog::new(
        log_config(foreground, debug),
        saved.as_ref().ok().map(|s| s.log.clone()),
    );
    log.install();
    let opts = daemon::Options {
        foreground,
        debug,
        services_dir: services_dir(&args, cmdline),
    };
    match daemon::Daemon::restart(opts, log.clone(), saved, stored) {
        Ok(d) => {
            d.run();
            log.flush();
            ExitCode::SUCCESS
        }
        Err(e) => hold_forever(&format!("cannot set up after a restart: {e}")),
    }
}

/// Returning would drop the bus handles: stay, holding them.
fn hold_forever(why: &str) -> ExitCode {
    error!("{why}; holding the bus without serving it");
    console(&format!("{why}; holding the bus without serving it"));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn status(json: bool) -> ExitCode {
    let not_running = |e: &dyn std::fmt::Display| {
        eprintln!(
            "kdbus-init: no status in {STATUS_FILE} ({e}): kdbus-init is not running (kdbus=1 \
             missing on the kernel command line, or it failed: see `journalctl -t kdbus-init`)"
        );
        ExitCode::from(1)
    };
    // A reader that stops early (`| sed q`) is not an error worth a panic.
    let print = |text: &str| {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        ExitCode::SUCCESS
    };
    if json {
        // The document as published, whatever this build's schema.
        return match std::fs::read_to_string(STATUS_FILE) {
            Ok(text) => print(&format!("{}\n", text.trim_end())),
            Err(e) => not_running(&e),
        };
    }
    match Status::read(std::path::Path::new(STATUS_FILE)) {
        Ok(s) => print(&s.render(usize::MAX)),
        Err(e @ (StatusError::Missing | StatusError::Unreadable(_))) => not_running(&e),
        Err(e) => {
            eprintln!("kdbus-init: {STATUS_FILE} is not a status this version reads: {e}");
            ExitCode::from(1)
        }
    }
}

fn running_pid() -> Option<i32> {
    std::fs::read_to_string(PID_FILE).ok()?.trim().parse().ok()
}

fn follow(timeout: Duration) -> ExitCode {
    let Some(pid) = running_pid() else {
        eprintln!("kdbus-init: not running (no {PID_FILE})");
        return ExitCode::from(1);
    };
    let target = rustix::process::Pid::from_raw(pid).expect("positive pid");
    if let Err(e) = rustix::process::kill_process(target, rustix::process::Signal::USR1) {
        eprintln!("kdbus-init: cannot signal pid {pid}: {e}");
        return ExitCode::from(1);
    }
    let start = Instant::now();
    let exe = format!("/proc/{pid}/exe");
    while start.elapsed() < timeout {
        let same = std::fs::File::open(&exe)
            .ok()
            .zip(std::fs::File::open("/proc/self/exe").ok())
            .is_some_and(|(a, b)| bootenv::mounts::same_file(&a, &b).unwrap_or(false));
        if same {
            return ExitCode::SUCCESS;
        }
        if runs_copy_here(pid) {
            eprintln!(
                "kdbus-init: pid {pid} moved into this root, but runs {} (a copy of its own \
                 binary): this root's kdbus-init cannot take its state over (see `kdbus-init \
                 status`)",
                daemon::BINARY_COPY
            );
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "kdbus-init: pid {pid} did not move to this root's binary within {}s (see `kdbus-init status`)",
        timeout.as_secs()
    );
    ExitCode::from(1)
}

/// Did kdbus-init `pid` move into our root, running the copy of its own
/// binary because this root's could not take over?
fn runs_copy_here(pid: i32) -> bool {
    use bootenv::mounts::{open_path, same_file};
    use std::path::Path;
    let exe = std::fs::File::open(format!("/proc/{pid}/exe"))
        .ok()
        .zip(std::fs::File::open(daemon::BINARY_COPY).ok())
        .is_some_and(|(a, b)| same_file(&a, &b).unwrap_or(false));
    let root = open_path(Path::new(&format!("/proc/{pid}/root")))
        .ok()
        .zip(open_path(Path::new("/")).ok())
        .is_some_and(|(a, b)| same_file(&a, &b).unwrap_or(false));
    exe && root
}

fn wait_ready(timeout: Duration, pid: Option<u32>) -> ExitCode {
    if !BootOptions::from_proc().is_ok_and(|o| o.kdbus.enabled()) {
        return ExitCode::SUCCESS;
    }
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(pid) = pid {
            // Gone (or a zombie) without a bus: it failed and said why.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let dead = stat.is_empty()
                || stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'));
            if dead && Status::read(std::path::Path::new(STATUS_FILE)).is_err() {
                eprintln!("kdbus-init: exited without setting up the bus (see the kernel log)");
                return ExitCode::from(1);
            }
        }
        if let Ok(s) = Status::read(std::path::Path::new(STATUS_FILE)) {
            if s.bus.is_some() && std::path::Path::new(&format!("/proc/{}", s.pid)).exists() {
                return ExitCode::SUCCESS;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "kdbus-init: the bus did not come up within {}s (see the kernel log)",
        timeout.as_secs()
    );
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use bootenv::status::RootKind;

    #[test]
    fn root_kind_names() {
        assert_eq!(RootKind::ShutdownRoot.as_str(), "shutdown-root");
        assert_eq!(
            serde_json::to_string(&RootKind::RealRoot).unwrap(),
            "\"real-root\""
        );
    }
}
