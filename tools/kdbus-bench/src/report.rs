//! Results: groups of cases measured in one run, each compared with the
//! group's baseline.

use std::fmt::Write;

use serde::Serialize;

use crate::measure::{human_bytes, human_ns, Stats};

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub name: String,
    #[serde(flatten)]
    pub stats: Stats,
    /// Median of this case / median of the baseline.
    pub ratio: f64,
}

/// What a benchmark varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Param {
    /// Payload size in bytes.
    Payload,
    /// Number of receivers of a broadcast.
    Subscribers,
}

impl Param {
    /// `8 B`, `64 KiB`, `10 subscribers`.
    pub fn label(self, value: usize) -> String {
        match self {
            Param::Payload => human_bytes(value),
            Param::Subscribers if value == 1 => "1 subscriber".to_owned(),
            Param::Subscribers => format!("{value} subscribers"),
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Param::Payload => "payload",
            Param::Subscribers => "fan-out",
        }
    }
}

/// One comparison: cases doing the same work, one of them the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// What is measured, e.g. `"unicast round trip"`.
    pub benchmark: String,
    pub param: Param,
    /// The parameter's value: bytes, or subscribers.
    pub value: usize,
    pub baseline: String,
    pub cases: Vec<CaseResult>,
}

impl Group {
    /// Builds the group; `results[0]` is the baseline.
    pub fn new(
        benchmark: &str,
        param: Param,
        value: usize,
        results: Vec<(String, Stats)>,
    ) -> Group {
        let base = results
            .first()
            .map(|(_, s)| s.median_ns.max(1))
            .unwrap_or(1);
        Group {
            benchmark: benchmark.to_owned(),
            param,
            value,
            baseline: results.first().map(|(n, _)| n.clone()).unwrap_or_default(),
            cases: results
                .into_iter()
                .map(|(name, stats)| CaseResult {
                    ratio: stats.median_ns as f64 / base as f64,
                    name,
                    stats,
                })
                .collect(),
        }
    }

    pub fn case(&self, name: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.name == name)
    }
}

/// A stated target, checked against the figures.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub description: String,
    pub case: String,
    pub max_ratio: f64,
    /// `(parameter label, ratio, met)` per group the target applies to.
    pub results: Vec<(String, f64, bool)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub kernel: String,
    pub cpus: usize,
    /// The CPU all threads ran on, unless `--no-pin`.
    pub pinned_cpu: Option<usize>,
    pub bus: String,
    /// Subtracted from every sample: the cost of the two clock reads
    /// around an operation (`measure::clock_overhead`).
    pub clock_overhead_ns: u64,
    pub groups: Vec<Group>,
    pub targets: Vec<Target>,
}

impl Report {
    /// Checks `case` ≤ `max_ratio` × baseline in every group of `benchmark`.
    pub fn check_target(&mut self, description: &str, benchmark: &str, case: &str, max_ratio: f64) {
        self.check_target_at(description, benchmark, case, None, max_ratio);
    }

    /// Checks `case` ≤ `max_ratio` × baseline in the groups of `benchmark`
    /// whose parameter is `value` (all of them for `None`): a target may
    /// hold for one payload size only.
    pub fn check_target_at(
        &mut self,
        description: &str,
        benchmark: &str,
        case: &str,
        value: Option<usize>,
        max_ratio: f64,
    ) {
        let results = self
            .groups
            .iter()
            .filter(|g| g.benchmark == benchmark && value.is_none_or(|v| g.value == v))
            .filter_map(|g| {
                g.case(case)
                    .map(|c| (g.param.label(g.value), c.ratio, c.ratio <= max_ratio))
            })
            .collect();
        self.targets.push(Target {
            description: description.to_owned(),
            case: case.to_owned(),
            max_ratio,
            results,
        });
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let pinning = match self.pinned_cpu {
            Some(cpu) => format!("all threads on CPU {cpu}"),
            None => "threads on any CPU".to_owned(),
        };
        let _ = writeln!(
            out,
            "kdbus-bench on Linux {}, {} CPUs ({pinning}), bus {}; reading the clock \
             around an operation costs {}, taken off every figure",
            self.kernel,
            self.cpus,
            self.bus,
            human_ns(self.clock_overhead_ns)
        );
        let mut last = String::new();
        for g in &self.groups {
            if g.benchmark != last {
                let _ = writeln!(
                    out,
                    "\n{} (median per operation; ratio = median / {} median)",
                    g.benchmark, g.baseline
                );
                let _ = writeln!(
                    out,
                    "  {:<15} {:<18} {:>8} {:>10} {:>10} {:>10} {:>7}",
                    g.param.heading(),
                    "case",
                    "iters",
                    "median",
                    "mean",
                    "p99",
                    "ratio"
                );
                last = g.benchmark.clone();
            }
            for c in &g.cases {
                let _ = writeln!(
                    out,
                    "  {:<15} {:<18} {:>8} {:>10} {:>10} {:>10} {:>6}x",
                    g.param.label(g.value),
                    c.name,
                    c.stats.iterations,
                    human_ns(c.stats.median_ns),
                    human_ns(c.stats.mean_ns),
                    human_ns(c.stats.p99_ns),
                    ratio_text(c.ratio)
                );
            }
        }
        for t in &self.targets {
            let _ = writeln!(out, "\ntarget: {}", t.description);
            for (label, ratio, met) in &t.results {
                let _ = writeln!(
                    out,
                    "  {label:<15} {} {ratio:.2}x  {}",
                    t.case,
                    if *met { "met" } else { "NOT met" }
                );
            }
        }
        out
    }
}

/// Two decimals; three significant digits for ratios far below 1.
fn ratio_text(ratio: f64) -> String {
    if ratio < 0.1 {
        format!("{ratio:.3}")
    } else {
        format!("{ratio:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(median: u64) -> Stats {
        Stats {
            iterations: 10,
            min_ns: median,
            median_ns: median,
            mean_ns: median,
            p99_ns: median,
        }
    }

    #[test]
    fn ratios_are_against_the_first_case_and_targets_are_checked() {
        let mut report = Report {
            kernel: "6.1".into(),
            cpus: 2,
            pinned_cpu: Some(0),
            bus: "0-bench".into(),
            clock_overhead_ns: 0,
            groups: vec![
                Group::new(
                    "unicast round trip",
                    Param::Payload,
                    8,
                    vec![
                        ("socketpair".into(), stats(10_000)),
                        ("kdbus".into(), stats(15_000)),
                    ],
                ),
                Group::new(
                    "unicast round trip",
                    Param::Payload,
                    1 << 20,
                    vec![
                        ("socketpair".into(), stats(1_000_000)),
                        ("kdbus".into(), stats(2_500_000)),
                    ],
                ),
            ],
            targets: Vec::new(),
        };
        assert_eq!(report.groups[0].cases[0].ratio, 1.0);
        assert_eq!(report.groups[0].cases[1].ratio, 1.5);
        report.check_target("kdbus <= 2x socketpair", "unicast round trip", "kdbus", 2.0);
        assert_eq!(
            report.targets[0].results,
            [
                ("8 B".to_owned(), 1.5, true),
                ("1 MiB".to_owned(), 2.5, false)
            ]
        );
        report.check_target_at(
            "kdbus 8 B <= 1.3x socketpair",
            "unicast round trip",
            "kdbus",
            Some(8),
            1.3,
        );
        assert_eq!(report.targets[1].results, [("8 B".to_owned(), 1.5, false)]);
        let text = report.render();
        assert!(text.contains("1.50x"), "{text}");
        assert!(
            text.contains("8 B             kdbus 1.50x  NOT met"),
            "{text}"
        );
        assert!(
            text.contains("1 MiB           kdbus 2.50x  NOT met"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["groups"][0]["cases"][1]["median_ns"], 15_000);
        assert_eq!(json["groups"][1]["value"], 1 << 20);
        assert_eq!(json["groups"][1]["param"], "payload");
        assert_eq!(Param::Subscribers.label(10), "10 subscribers");
        assert_eq!(Param::Subscribers.label(1), "1 subscriber");
        assert_eq!(ratio_text(0.0042), "0.004");
        assert_eq!(ratio_text(2.154), "2.15");
    }
}
