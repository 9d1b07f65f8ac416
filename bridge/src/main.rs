//! kdbus-bridge: every D-Bus program on the kernel bus.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use kdbus_bridge::bus::BusConfig;
use kdbus_bridge::launcher::{follow, listener, Limits};
use kdbus_bridge::policy::{Policy, PolicyStore};
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::Signals;
use tracing::{info, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// Serves the D-Bus socket protocol and connects each client to the kdbus
/// bus with its own credentials.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The D-Bus address to serve (ignored when systemd passes a socket).
    #[arg(long, default_value = "unix:path=/run/dbus/system_bus_socket")]
    address: String,
    /// The kdbus bus endpoint.
    #[arg(long, default_value = kdbus::SYSTEM_BUS_PATH)]
    bus: PathBuf,
    /// Where the log goes (auto: the journal when started by systemd).
    #[arg(long, value_enum, default_value_t = LogTarget::Auto)]
    log: LogTarget,
    /// Log every client and refused message.
    #[arg(long, short)]
    verbose: bool,
    /// The bus configuration whose policy and limits apply (dbus-daemon's
    /// format; SIGHUP or ReloadConfig reads it again).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Seconds a method call may wait for its reply [default: the
    /// configuration's reply_timeout, else 120].
    #[arg(long)]
    reply_timeout: Option<u64>,
    /// Largest message a client may send, in bytes [default: the
    /// configuration's max_message_size, else 32 MiB].
    #[arg(long)]
    max_message_size: Option<usize>,
    /// Serve for the whole boot: enter each new root PID 1 switches to (the
    /// real root, the shutdown root) instead of ending with the old one.
    #[arg(long)]
    follow_root: bool,
}

const DEFAULT_CONFIG: &str = "/usr/share/dbus-1/system.conf";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogTarget {
    Auto,
    Stderr,
    Journal,
}

fn init_log(target: LogTarget, verbose: bool) -> Result<()> {
    let level = if verbose {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let journal = match target {
        LogTarget::Journal => true,
        LogTarget::Stderr => false,
        LogTarget::Auto => std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    if journal {
        let layer = tracing_journald::layer()
            .context("cannot reach the journal; use --log stderr")?
            .with_syslog_identifier("kdbus-bridge".into());
        tracing_subscriber::registry()
            .with(layer.with_filter(level))
            .init();
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false);
        tracing_subscriber::registry()
            .with(layer.with_filter(level))
            .init();
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_log(cli.log, cli.verbose)?;
    // One connection of our own: proves the bus is there and tells its id.
    let probe = kdbus::HelloBuilder::new()
        .creds(kdbus::Creds::current())
        .pids(kdbus::Pids::current())
        .pool_size(4096 * 4)
        .connect(&cli.bus)
        .map_err(|e| {
            let advice = kdbus::bus::diagnose_missing_bus(&cli.bus).unwrap_or_else(|| {
                "the bridge must run as the bus owner or root to connect clients with their own credentials".into()
            });
            anyhow::anyhow!("cannot connect to {}: {e}\n{advice}", cli.bus.display())
        })?;
    let bus_uid = rustix::process::geteuid().as_raw();
    let (policy, warnings) = Policy::load(&cli.config, bus_uid).map_err(|e| {
        let hint = if cli.config == Path::new(DEFAULT_CONFIG) {
            " (it comes with Debian's dbus-system-bus-common package)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot load the bus policy{hint}: {e}; give another with --config")
    })?;
    for w in &warnings {
        warn!("{w}");
    }
    // SIGHUP is caught before any thread starts, so that none dies of it.
    let mut hangups = Signals::new([SIGHUP]).context("catching SIGHUP")?;
    let limit = |name: &str| policy.limit(name);
    let mut limits = Limits::default();
    limits.max_message = cli
        .max_message_size
        .or(limit("max_message_size").map(|v| v as usize))
        .unwrap_or(limits.max_message);
    if let Some(n) = limit("max_message_unix_fds") {
        limits.max_fds = n as usize;
    }
    if let Some(ms) = limit("auth_timeout") {
        limits.auth_timeout = Duration::from_millis(ms);
    }
    let reply_timeout = cli
        .reply_timeout
        .map(Duration::from_secs)
        .or(limit("reply_timeout").map(Duration::from_millis))
        .unwrap_or(Duration::from_secs(120));
    let config = Arc::new(BusConfig {
        bus_path: cli.bus.clone(),
        reply_timeout,
        pool_size: kdbus::DEFAULT_POOL_SIZE,
        bus_id: kdbus::id128_hex(probe.bus_id128()),
        policy: Arc::new(PolicyStore::new(Some(cli.config.clone()), bus_uid, policy)),
        monitors: Arc::default(),
    });
    drop(probe);
    let limits = Arc::new(limits);
    let store = config.policy.clone();
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            for _ in hangups.forever() {
                let _ = store.reload_logged("SIGHUP");
            }
        })
        .context("starting the thread that waits for SIGHUP")?;
    if cli.follow_root {
        follow::start(config.policy.clone())?;
    }
    let socket = match listener::from_systemd()? {
        Some(socket) => {
            info!(
                "listening on the socket systemd passed; bus id {}",
                config.bus_id
            );
            socket
        }
        None => {
            let path = listener::socket_path(&cli.address)?;
            let socket = listener::bind(&path)?;
            info!("listening on {}; bus id {}", path.display(), config.bus_id);
            socket
        }
    };
    // Type=notify: clients (systemd itself first) are served from now on.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    listener::serve(socket, config, limits)
}
