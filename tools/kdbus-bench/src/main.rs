//! kdbus-bench: measures kdbus against other local IPC in one run and
//! prints absolute figures and ratios. Runs where kdbus.ko is loaded (in
//! the VM: `cargo run -p kdbus-vmtest -- module -- target/release/kdbus-bench`).
//!
//! Each benchmark is a set of cases doing the same work — the first one the
//! baseline — measured at several values of its parameter (payload size,
//! number of subscribers). New comparisons are new entries in
//! [`benchmarks`].

mod broadcast;
mod bulk;
mod dbus_call;
mod env;
mod measure;
mod report;
mod unicast;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::env::BenchBus;
use crate::measure::{clock_overhead, measure_side_by_side, Budget, Case, Stats};
use crate::report::{Group, Param, Report};

#[derive(Parser, Debug)]
#[command(
    name = "kdbus-bench",
    version,
    about = "Measures kdbus against AF_UNIX socketpairs, and kdbus-bridge against dbus-broker and dbus-daemon"
)]
struct Cli {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json_file: Option<PathBuf>,
    /// Seconds spent on each case (after warm-up).
    #[arg(long, default_value = "2", value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Duration,
    /// Upper bound of timed operations per case.
    #[arg(long, default_value_t = 200_000)]
    max_iterations: u64,
    /// Turns in which the cases of a comparison share their time, one
    /// after the other (see `measure_side_by_side`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Payload sizes of the unicast round trip in bytes (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [8usize, 64 << 10, 1 << 20])]
    sizes: Vec<usize>,
    /// Payload sizes of the D-Bus call round trip in bytes (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [8usize, 64 << 10])]
    dbus_sizes: Vec<usize>,
    /// Subscriber counts of the broadcast fan-out (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100])]
    subscribers: Vec<usize>,
    /// Payload sizes of the bulk transfer in bytes (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize << 20, 16 << 20])]
    bulk_sizes: Vec<usize>,
    /// A smoke run: a few iterations per case, no warm-up to speak of —
    /// checks that every case works, the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// A kdbusfs mount to create the benchmark bus in (default:
    /// /sys/fs/kdbus if mounted, else a private mount).
    #[arg(long, value_name = "DIR")]
    mount: Option<PathBuf>,
    /// Run only benchmarks whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Let the threads run on any CPU. By default all of them share one
    /// CPU, so that a round trip measures the IPC path rather than
    /// cross-CPU wakeup latency (which under QEMU's TCG is a timer tick).
    #[arg(long)]
    no_pin: bool,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs >= 0.0 && secs.is_finite() => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("{s:?} is not a number of seconds")),
    }
}

/// The cases of one benchmark at one parameter value, baseline first.
type Cases = Vec<Box<dyn Case>>;

/// A comparison: given the bus and a parameter value, builds its cases.
struct Benchmark {
    name: &'static str,
    param: Param,
    /// The parameter values to measure at.
    values: fn(&Cli) -> Vec<usize>,
    cases: fn(&BenchBus, usize) -> Result<Cases>,
}

fn benchmarks() -> Vec<Benchmark> {
    vec![
        Benchmark {
            name: "unicast round trip",
            param: Param::Payload,
            values: |cli| cli.sizes.clone(),
            cases: |bus, size| {
                Ok(vec![
                    Box::new(unicast::SocketPair::new(size)?),
                    Box::new(unicast::KdbusSyncCall::new(bus, size)?),
                    Box::new(unicast::KdbusAsyncCall::new(bus, size)?),
                ])
            },
        },
        Benchmark {
            name: "D-Bus call round trip",
            param: Param::Payload,
            values: |cli| cli.dbus_sizes.clone(),
            cases: |bus, size| {
                use dbus_call::{DbusCall, Route};
                Ok(vec![
                    Box::new(DbusCall::new(Route::Broker, bus, size)?),
                    Box::new(DbusCall::new(Route::BridgeToLegacy, bus, size)?),
                    Box::new(DbusCall::new(Route::BridgeToNative, bus, size)?),
                    Box::new(DbusCall::new(Route::Daemon, bus, size)?),
                ])
            },
        },
        Benchmark {
            name: "broadcast fan-out",
            param: Param::Subscribers,
            values: |cli| cli.subscribers.clone(),
            cases: |bus, n| {
                Ok(vec![
                    Box::new(broadcast::SocketPairFanOut::new(n)?),
                    Box::new(broadcast::KdbusBroadcast::new(bus, n)?),
                ])
            },
        },
        Benchmark {
            name: "bulk transfer",
            param: Param::Payload,
            values: |cli| cli.bulk_sizes.clone(),
            cases: |bus, size| {
                Ok(vec![
                    Box::new(unicast::SocketPair::with_reply(
                        size,
                        unicast::Reply::Empty,
                    )?),
                    Box::new(bulk::KdbusPoolCopy::new(bus, size)?),
                    Box::new(bulk::KdbusMemfd::new(bus, size)?),
                ])
            },
        },
    ]
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(report) => {
            let met = report.targets.iter().all(|t| t.results.iter().all(|r| r.2));
            if !met {
                eprintln!("kdbus-bench: a target was not met (figures above)");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kdbus-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Pins this thread, and so every thread it starts, to the first CPU it
/// may run on. Returns that CPU.
fn pin_to_one_cpu() -> Result<usize> {
    use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
    let allowed = sched_getaffinity(None)?;
    let cpu = (0..CpuSet::MAX_CPU)
        .find(|&c| allowed.is_set(c))
        .context("no CPU in this thread's affinity mask")?;
    let mut one = CpuSet::new();
    one.set(cpu);
    sched_setaffinity(None, &one)?;
    Ok(cpu)
}

fn run(cli: Cli) -> Result<Report> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = if cli.no_pin {
        None
    } else {
        Some(pin_to_one_cpu().context("pinning to one CPU (use --no-pin)")?)
    };
    let bus = BenchBus::create(cli.mount.as_deref())?;
    let budget = if cli.quick {
        Budget::QUICK
    } else {
        Budget {
            warmup: 20,
            min_iterations: 20,
            max_iterations: cli.max_iterations.max(20),
            duration: cli.duration,
        }
    };
    let rounds = if cli.quick { 1 } else { cli.rounds };
    // after pinning: on the CPU the cases run on
    let clock_ns = clock_overhead();
    let mut report = Report {
        kernel: rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned(),
        cpus,
        pinned_cpu: pinned,
        bus: bus.name().to_owned(),
        clock_overhead_ns: clock_ns,
        groups: Vec::new(),
        targets: Vec::new(),
    };
    for bench in benchmarks() {
        if cli.only.as_deref().is_some_and(|o| !bench.name.contains(o)) {
            continue;
        }
        for value in (bench.values)(&cli) {
            let mut cases = (bench.cases)(&bus, value)?;
            let names: Vec<String> = cases.iter().map(|c| c.name()).collect();
            let label = bench.param.label(value);
            let stats = measure_side_by_side(&mut cases, budget, rounds, clock_ns, |i| {
                eprintln!("kdbus-bench: {} {label}: {}", bench.name, names[i]);
            })
            .with_context(|| format!("{} {label}", bench.name))?;
            let results: Vec<(String, Stats)> = names.into_iter().zip(stats).collect();
            report
                .groups
                .push(Group::new(bench.name, bench.param, value, results));
        }
    }
    if !cli.quick {
        report.check_target(
            "kdbus round trip <= 2x socketpair round trip (issue 3)",
            "unicast round trip",
            "kdbus sync call",
            2.0,
        );
        report.check_target_at(
            "kdbus sync call with 8 B <= 1.3x socketpair round trip (issue 10)",
            "unicast round trip",
            "kdbus sync call",
            Some(8),
            1.3,
        );
        // "at least as good as" the module kdbus.ko replaced: its ratios
        for (size, old_ratio) in [(65536, 0.17), (1 << 20, 0.080)] {
            report.check_target_at(
                &format!(
                    "kdbus sync call with {} <= {old_ratio}x socketpair, the replaced \
                     module's ratio (issue 10)",
                    report::Param::Payload.label(size)
                ),
                "unicast round trip",
                "kdbus sync call",
                Some(size),
                old_ratio,
            );
        }
        report.check_target(
            "kdbus broadcast <= 1.5x the same fan-out over socketpairs (issue 10)",
            "broadcast fan-out",
            "kdbus broadcast",
            1.5,
        );
        report.check_target(
            "legacy -> legacy through kdbus-bridge no slower than dbus-broker (issue 11)",
            "D-Bus call round trip",
            dbus_call::Route::BridgeToLegacy.name(),
            1.0,
        );
        report.check_target(
            "legacy -> native through kdbus-bridge >= 1.5x faster than dbus-broker (issue 11)",
            "D-Bus call round trip",
            dbus_call::Route::BridgeToNative.name(),
            1.0 / 1.5,
        );
    }
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &cli.json_file {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if cli.json {
        println!("{json}");
    } else {
        print!("{}", report.render());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_defaults() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["kdbus-bench"]).unwrap();
        assert_eq!(cli.sizes, [8, 65536, 1 << 20]);
        assert_eq!(cli.dbus_sizes, [8, 65536]);
        assert_eq!(cli.subscribers, [1, 10, 100]);
        assert_eq!(cli.bulk_sizes, [1 << 20, 16 << 20]);
        assert!(!cli.quick);
        assert_eq!(cli.duration, Duration::from_secs(2));
        let cli =
            Cli::try_parse_from(["kdbus-bench", "--sizes", "1,2", "--duration", "0.1"]).unwrap();
        assert_eq!(cli.sizes, [1, 2]);
        assert!(Cli::try_parse_from(["kdbus-bench", "--duration", "x"]).is_err());
    }

    #[test]
    fn every_benchmark_is_named_and_measured_somewhere() {
        let cli = Cli::try_parse_from(["kdbus-bench"]).unwrap();
        for b in benchmarks() {
            assert!(!b.name.is_empty());
            assert!(!(b.values)(&cli).is_empty(), "{}", b.name);
        }
    }
}
