//! kdbus-bridge: every D-Bus program on the kernel bus.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use kdbus_bridge::bus::BusConfig;
use kdbus_bridge::launcher::{listener, Limits};
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
    /// Seconds a method call may wait for its reply.
    #[arg(long, default_value_t = 120)]
    reply_timeout: u64,
    /// Largest message a client may send, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_message_size: usize,
}

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
    let config = Arc::new(BusConfig {
        bus_path: cli.bus.clone(),
        reply_timeout: Duration::from_secs(cli.reply_timeout),
        pool_size: kdbus::DEFAULT_POOL_SIZE,
        bus_id: kdbus::id128_hex(probe.bus_id128()),
    });
    drop(probe);
    let limits = Arc::new(Limits {
        max_message: cli.max_message_size,
        ..Limits::default()
    });
    let socket = match listener::from_systemd()? {
        Some(socket) => socket,
        None => listener::bind(&listener::socket_path(&cli.address)?)?,
    };
    listener::serve(socket, config, limits)
}
