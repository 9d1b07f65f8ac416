//! Timing loop and statistics, shared by every benchmark.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

/// One thing to measure: an operation repeated many times (a round trip,
/// a fan-out...). Setup happens in the constructor, teardown in `Drop`.
pub trait Case {
    /// Short name, e.g. `"kdbus sync call"`.
    fn name(&self) -> String;
    /// Performs the operation once.
    fn run_once(&mut self) -> Result<()>;
}

/// How long and how often each case runs.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Untimed runs first (page faults, caches, lazy allocations).
    pub warmup: u64,
    pub min_iterations: u64,
    pub max_iterations: u64,
    /// Stop once this much time was spent (after `min_iterations`).
    pub duration: Duration,
}

impl Budget {
    /// A smoke run: three timed operations after one warm-up, to check
    /// that a case works; the figures mean nothing.
    pub const QUICK: Budget = Budget {
        warmup: 1,
        min_iterations: 3,
        max_iterations: 3,
        duration: Duration::ZERO,
    };
}

/// Statistics of one case, in nanoseconds per operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub iterations: u64,
    pub min_ns: u64,
    pub median_ns: u64,
    pub mean_ns: u64,
    pub p99_ns: u64,
}

impl Stats {
    /// From per-operation samples (not empty).
    pub fn from_samples(mut samples: Vec<u64>) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let n = samples.len();
        // Nearest-rank percentile.
        let rank = |p: f64| samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Stats {
            iterations: n as u64,
            min_ns: samples[0],
            median_ns: rank(0.5),
            mean_ns: (samples.iter().map(|&s| s as u128).sum::<u128>() / n as u128) as u64,
            p99_ns: rank(0.99),
        }
    }
}

/// What reading the clock before and after an operation costs by
/// itself. Under QEMU's TCG the guest's clock source is the emulated HPET
/// and every read is a system call: two of them cost a few per cent of a
/// socketpair round trip (1.7 µs of 43 µs in one run), the same for every
/// case, which would pull every ratio towards 1. Every sample is taken
/// with it subtracted (see [`measure_side_by_side`]).
pub fn clock_overhead() -> u64 {
    let samples = (0..1000)
        .map(|_| {
            let t = Instant::now();
            t.elapsed().as_nanos() as u64
        })
        .collect();
    Stats::from_samples(samples).median_ns
}

/// Runs `case` within `budget` and times every operation, less
/// `clock_ns` (see [`clock_overhead`]). For one case by itself (tests);
/// comparisons use [`measure_side_by_side`].
#[cfg(test)]
pub fn measure(case: &mut dyn Case, budget: Budget, clock_ns: u64) -> Result<Stats> {
    Ok(Stats::from_samples(samples(case, budget, clock_ns)?))
}

/// Runs `case` within `budget`; the time of every operation, less
/// `clock_ns`.
fn samples(case: &mut dyn Case, budget: Budget, clock_ns: u64) -> Result<Vec<u64>> {
    for _ in 0..budget.warmup {
        case.run_once()?;
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while (samples.len() as u64) < budget.max_iterations
        && ((samples.len() as u64) < budget.min_iterations || started.elapsed() < budget.duration)
    {
        let t = Instant::now();
        case.run_once()?;
        samples.push((t.elapsed().as_nanos() as u64).saturating_sub(clock_ns));
    }
    Ok(samples)
}

impl Budget {
    /// Round `round` of `rounds` that share this budget: the warm-up
    /// comes first, time and iterations are split evenly.
    fn share(self, round: u32, rounds: u32) -> Budget {
        let part = |n: u64| n.div_ceil(u64::from(rounds));
        Budget {
            warmup: if round == 0 { self.warmup } else { 0 },
            min_iterations: part(self.min_iterations),
            max_iterations: part(self.max_iterations),
            duration: self.duration / rounds,
        }
    }
}

/// Measures `cases` side by side: `rounds` turns, each giving every case
/// its share of `budget` in order, and one figure per case from all its
/// turns. The host's slow spells (under TCG a VM's speed varies by up
/// to 2x over seconds) then fall on every case alike instead of on
/// whichever ran at the time, which matters for ratios between cases.
/// `started` is told the index of each case as its first turn begins.
pub fn measure_side_by_side(
    cases: &mut [Box<dyn Case>],
    budget: Budget,
    rounds: u32,
    clock_ns: u64,
    mut started: impl FnMut(usize),
) -> Result<Vec<Stats>> {
    let rounds = rounds.max(1);
    let mut all: Vec<Vec<u64>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        for (i, case) in cases.iter_mut().enumerate() {
            if round == 0 {
                started(i);
            }
            all[i].extend(samples(
                case.as_mut(),
                budget.share(round, rounds),
                clock_ns,
            )?);
        }
    }
    Ok(all.into_iter().map(Stats::from_samples).collect())
}

/// `1.5 µs`, `12.3 ms`...
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.1} s", ns as f64 / 1e9),
    }
}

/// `8 B`, `64 KiB`, `1 MiB`.
pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_use_nearest_rank() {
        let s = Stats::from_samples((1..=100).rev().collect());
        assert_eq!(s.iterations, 100);
        assert_eq!(s.min_ns, 1);
        assert_eq!(s.median_ns, 50);
        assert_eq!(s.p99_ns, 99);
        assert_eq!(s.mean_ns, 50);
        let one = Stats::from_samples(vec![7]);
        assert_eq!((one.median_ns, one.p99_ns), (7, 7));
    }

    struct Counter(u64);

    impl Case for Counter {
        fn name(&self) -> String {
            "counter".into()
        }
        fn run_once(&mut self) -> Result<()> {
            self.0 += 1;
            Ok(())
        }
    }

    #[test]
    fn budget_bounds_the_runs() {
        let mut c = Counter(0);
        let budget = Budget {
            warmup: 3,
            min_iterations: 10,
            max_iterations: 50,
            duration: Duration::from_secs(3600),
        };
        let stats = measure(&mut c, budget, 0).unwrap();
        assert_eq!(stats.iterations, 50, "max_iterations caps a long duration");
        assert_eq!(c.0, 53, "warm-up runs are not timed");
        let stats = measure(
            &mut c,
            Budget {
                duration: Duration::ZERO,
                ..budget
            },
            0,
        )
        .unwrap();
        assert_eq!(stats.iterations, 10, "min_iterations even without time");
    }

    /// Records, in a shared log, which case ran each operation.
    struct Logged(usize, std::rc::Rc<std::cell::RefCell<Vec<usize>>>);

    impl Case for Logged {
        fn name(&self) -> String {
            format!("case {}", self.0)
        }
        fn run_once(&mut self) -> Result<()> {
            self.1.borrow_mut().push(self.0);
            Ok(())
        }
    }

    #[test]
    fn side_by_side_cases_take_turns() {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut cases: Vec<Box<dyn Case>> = (0..2)
            .map(|i| Box::new(Logged(i, log.clone())) as Box<dyn Case>)
            .collect();
        let budget = Budget {
            warmup: 1,
            min_iterations: 6,
            max_iterations: 6,
            duration: Duration::ZERO,
        };
        let mut started = Vec::new();
        let stats = measure_side_by_side(&mut cases, budget, 3, 0, |i| started.push(i)).unwrap();
        assert_eq!(started, [0, 1]);
        assert_eq!(
            stats.iter().map(|s| s.iterations).collect::<Vec<_>>(),
            [6, 6]
        );
        // one warm-up run each, then three turns of two timed runs
        let expected = [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1];
        assert_eq!(*log.borrow(), expected);
    }

    #[test]
    fn the_clock_costs_less_than_a_millisecond() {
        assert!(clock_overhead() < 1_000_000);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_ns(950), "950 ns");
        assert_eq!(human_ns(12_345), "12.3 µs");
        assert_eq!(human_ns(4_608_800), "4.6 ms");
        assert_eq!(human_ns(12_345_678), "12.3 ms");
        assert_eq!(human_ns(2_500_000_000), "2.5 s");
        assert_eq!(human_bytes(8), "8 B");
        assert_eq!(human_bytes(65536), "64 KiB");
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }
}
