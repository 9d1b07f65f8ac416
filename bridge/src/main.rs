//! kdbus-bridge: every D-Bus program on the kernel bus.

mod cli;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cli::{Cli, Cmd, LogTarget, DEFAULT_CONFIG};
use kdbus_bridge::bus::BusConfig;
use kdbus_bridge::launcher::{follow, listener, Limits};
use kdbus_bridge::policy::{Policy, PolicyStore};
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::Signals;
use tracing::{info, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

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

/// A bad command line exits with 2; a failure while serving is reported
/// by the standard library's `Result` handling ("Error: ...", exit 1).
fn main() -> Result<ExitCode> {
    let cli = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Cmd::Serve(cli)) => cli,
        Ok(Cmd::Help) => {
            print!("{}", cli::HELP);
            return Ok(ExitCode::SUCCESS);
        }
        Ok(Cmd::Version) => {
            println!("kdbus-bridge {}", env!("CARGO_PKG_VERSION"));
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            eprintln!("kdbus-bridge: {e}\n(see `kdbus-bridge --help`)");
            return Ok(ExitCode::from(2));
        }
    };
    serve(cli)?;
    Ok(ExitCode::SUCCESS)
}

fn serve(cli: Cli) -> Result<()> {
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
    config.policy.enforce_in_kernel(&cli.bus);
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
