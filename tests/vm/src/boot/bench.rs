//! The boot benchmark, all in one run: kernel start to the switch into the
//! real root (systemd's UserspaceTimestampMonotonic in the real root, i.e.
//! the end of the initramfs) and to multi-user.target, and initramfs size,
//! with and without `--add kdbus` and `kdbus=1`; and the system bus: the
//! same image with D-Bus (dracut's dbus module beside `--add kdbus`) booted
//! with `kdbus=1` (kdbus-bridge, from the initramfs on) and `kdbus=0`
//! (dbus-broker).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::initramfs::{Content, Flavour};
use super::markers::Markers;
use super::Env;

struct Variant {
    initramfs: &'static str,
    cmdline: &'static str,
    image: PathBuf,
    /// The variant the others of its group are compared with.
    baseline: bool,
}

impl Variant {
    /// The kernel command line as the tables show it.
    fn cmdline_shown(&self) -> &'static str {
        if self.cmdline.is_empty() {
            "absent"
        } else {
            self.cmdline
        }
    }
}

/// One variant's boots, in seconds.
#[derive(Default)]
struct Times {
    switch_root: Vec<f64>,
    /// Kernel start to multi-user.target per run, `None` where a boot gave
    /// no figure: [`print_paired`] pairs the variants run by run.
    multi_user: Vec<Option<f64>>,
    /// kdbus-init.service from its start to READY=1 (or its exit).
    unit: Vec<f64>,
}

impl Times {
    /// The boots that gave a time to multi-user.target.
    fn multi_user_measured(&self) -> Vec<f64> {
        self.multi_user.iter().flatten().copied().collect()
    }
}

pub fn run(env: &Env, runs: u32, system_bus_only: bool) -> Result<bool> {
    println!("initramfs size added by the kdbus parts, per compressor:");
    super::footprint::report(env)?;
    let variants = variants(env, system_bus_only)?;
    if runs == 0 {
        // The image sizes alone, without booting.
        print_sizes(env, &variants)?;
        return Ok(true);
    }
    let mut times: Vec<Times> = variants.iter().map(|_| Times::default()).collect();
    let mut ok = true;
    // Interleave the variants so that drift on a shared machine hits all.
    for r in 0..runs {
        for (i, v) in variants.iter().enumerate() {
            let console = env.boot(&format!("bench-{i}"), &v.image, v.cmdline, false)?;
            let m = Markers::parse(&console.lines);
            let secs = |key: &str| {
                m.num("root", key)
                    .filter(|v| *v > 0)
                    .map(|us| us as f64 / 1e6)
            };
            let start = secs("unit_ExecMainStartTimestampMonotonic");
            let ready = secs("unit_ActiveEnterTimestampMonotonic")
                .or(secs("unit_InactiveEnterTimestampMonotonic"));
            if let (Some(a), Some(b)) = (start, ready) {
                times[i].unit.push(b - a);
            }
            match (secs("userspace_us"), secs("multi_user_us")) {
                (Some(switch), Some(done)) => {
                    eprintln!(
                        "bench: run {} {} {}: switch-root after {switch:.2} s, \
                         multi-user.target after {done:.2} s",
                        r + 1,
                        v.initramfs,
                        v.cmdline
                    );
                    times[i].switch_root.push(switch);
                    times[i].multi_user.push(Some(done));
                }
                _ => {
                    eprintln!(
                        "bench: run {} {} {}: no measurement (see {})",
                        r + 1,
                        v.initramfs,
                        v.cmdline,
                        env.console_log(&format!("bench-{i}")).display()
                    );
                    times[i].multi_user.push(None);
                    ok = false;
                }
            }
        }
    }
    print_table(&variants, &times, runs);
    print_paired(&variants, &times);
    print_sizes(env, &variants)?;
    // Per image: the two are not the same initramfs.
    for (v, t) in variants.iter().zip(&times) {
        if v.cmdline == "kdbus=1" && !t.unit.is_empty() {
            println!(
                "kdbus-init.service, start to ready (journald and sysinit.target wait for it), \
                 {}: median {:.0} ms of {} boot(s)",
                v.initramfs,
                median(&t.unit) * 1000.0,
                t.unit.len()
            );
        }
    }
    Ok(ok)
}

fn variants(env: &Env, system_bus_only: bool) -> Result<Vec<Variant>> {
    let with_dbus = env.initramfs(Flavour::SystemdDbus, Content::Kdbus)?;
    let mut all = Vec::new();
    if !system_bus_only {
        let plain = env.initramfs(Flavour::Systemd, Content::Plain)?;
        let kdbus = env.initramfs(Flavour::Systemd, Content::Kdbus)?;
        all.extend([
            Variant {
                initramfs: "plain",
                cmdline: "",
                image: plain,
                baseline: true,
            },
            Variant {
                initramfs: "--add kdbus",
                cmdline: "kdbus=0",
                image: kdbus.clone(),
                baseline: false,
            },
            Variant {
                initramfs: "--add kdbus",
                cmdline: "kdbus=1",
                image: kdbus,
                baseline: false,
            },
        ]);
    }
    all.extend([
        Variant {
            initramfs: "dbus, --add kdbus",
            cmdline: "kdbus=0",
            image: with_dbus.clone(),
            baseline: true,
        },
        Variant {
            initramfs: "dbus, --add kdbus",
            cmdline: "kdbus=1",
            image: with_dbus,
            baseline: false,
        },
    ]);
    Ok(all)
}

fn print_table(variants: &[Variant], times: &[Times], runs: u32) {
    println!(
        "| initramfs | kdbus= | kernel start → switch-root (median of {runs}) | → multi-user.target | \
         vs. the first of its group (multi-user) | initramfs (gzip) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut base = f64::NAN;
    for (v, t) in variants.iter().zip(times) {
        let done = median(&t.multi_user_measured());
        if v.baseline {
            base = done;
        }
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {:+.1} % | {:.2} MiB |",
            v.initramfs,
            v.cmdline_shown(),
            median(&t.switch_root),
            done,
            (done / base - 1.0) * 100.0,
            mib(&v.image)
        );
    }
}

/// Each variant against its group's baseline booted in the same run: the
/// runs interleave the variants, so a pair shares the machine's state of
/// the moment, and the spread of single boots under TCG (seconds) largely
/// cancels out of the differences. Reported with a distribution-free 95 %
/// confidence interval of their median: a difference is resolved when
/// the interval excludes zero.
fn print_paired(variants: &[Variant], times: &[Times]) {
    let label = |v: &Variant| format!("{}, {}", v.initramfs, v.cmdline_shown());
    let mut base: Option<(&Variant, &Times)> = None;
    for (v, t) in variants.iter().zip(times) {
        if v.baseline {
            base = Some((v, t));
            continue;
        }
        let Some((bv, b)) = base else { continue };
        let diffs: Vec<f64> = b
            .multi_user
            .iter()
            .zip(&t.multi_user)
            .filter_map(|(b, t)| Some((*t)? - (*b)?))
            .collect();
        let base_median = median(&b.multi_user_measured());
        let pct = |d: f64| d / base_median * 100.0;
        let what = format!("{} against {} in the same run", label(v), label(bv));
        let d = median(&diffs);
        match median_ci95(&diffs) {
            Some((lo, hi)) => println!(
                "paired by run, {what}: multi-user.target {d:+.2} s ({:+.1} %), 95 % CI \
                 [{lo:+.2}, {hi:+.2}] s ([{:+.1}, {:+.1}] %) from {} pairs: {}",
                pct(d),
                pct(lo),
                pct(hi),
                diffs.len(),
                if lo > 0.0 {
                    "slower"
                } else if hi < 0.0 {
                    "faster"
                } else {
                    "no difference resolved"
                }
            ),
            None => println!(
                "paired by run, {what}: multi-user.target {d:+.2} s from {} pairs \
                 (too few for a 95 % interval: at least 6)",
                diffs.len()
            ),
        }
    }
}

/// The distribution-free 95 % confidence interval of the median of `v`:
/// the order statistics k and n+1-k, with k the largest such that a
/// fair coin shows k-1 heads or fewer in n throws with probability at
/// most 2.5 % (the sign test). `None` below six values.
fn median_ci95(v: &[f64]) -> Option<(f64, f64)> {
    let n = v.len();
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // P(X <= j) for X ~ Binomial(n, 1/2), accumulated term by term
    let mut term = 0.5f64.powi(n as i32);
    let mut cdf = term;
    let mut k = 0;
    for j in 0..n {
        if cdf > 0.025 {
            break;
        }
        k = j + 1;
        term *= (n - j) as f64 / (j + 1) as f64;
        cdf += term;
    }
    (k >= 1).then(|| (s[k - 1], s[n - k]))
}

/// What `--add kdbus` adds (gzip), and what the bridge costs in an image
/// with D-Bus compared with dracut's dbus-broker module alone: beside
/// dbus-broker, and in its place.
fn print_sizes(env: &Env, variants: &[Variant]) -> Result<()> {
    let dbus_plain = env.initramfs(Flavour::SystemdDbus, Content::Plain)?;
    let image = |initramfs: &str| {
        variants
            .iter()
            .find(|v| v.initramfs == initramfs)
            .map(|v| v.image.clone())
    };
    if let (Some(plain), Some(kdbus)) = (image("plain"), image("--add kdbus")) {
        println!(
            "initramfs size added by --add kdbus: {:+.2} MiB (gzip)",
            mib(&kdbus) - mib(&plain)
        );
    }
    if let Some(with_bridge) = image("dbus, --add kdbus") {
        println!(
            "image with dracut's dbus module (dbus-broker): {:.2} MiB; with --add kdbus too \
             (kdbus-bridge beside dbus-broker): {:.2} MiB ({:+.2} MiB, gzip)",
            mib(&dbus_plain),
            mib(&with_bridge),
            mib(&with_bridge) - mib(&dbus_plain)
        );
        let bridge_only = env.initramfs(Flavour::SystemdBridge, Content::Kdbus)?;
        let added = bytes(&bridge_only) as i64 - bytes(&dbus_plain) as i64;
        println!(
            "image with --add kdbus and kdbus-bridge in place of dracut's dbus module \
             (kdbus_bridge=yes): {:.2} MiB ({:+} KiB, gzip); target (issue 12): no larger than \
             with dracut's dbus module: {}",
            mib(&bridge_only),
            added / 1024,
            if added <= 0 { "met" } else { "NOT met" }
        );
    }
    Ok(())
}

fn bytes(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn mib(p: &Path) -> f64 {
    bytes(p) as f64 / 1048576.0
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_interval_takes_the_sign_test_order_statistics() {
        let v: Vec<f64> = (1..=21).map(f64::from).collect();
        // n = 21: P(X <= 5) = 1.3 %, P(X <= 6) = 3.9 %: the 6th and 16th
        assert_eq!(median_ci95(&v), Some((6.0, 16.0)));
        let v: Vec<f64> = (1..=11).rev().map(f64::from).collect();
        // n = 11: P(X <= 1) = 0.6 %, P(X <= 2) = 3.3 %: the 2nd and 10th
        assert_eq!(median_ci95(&v), Some((2.0, 10.0)));
        // n = 6: only the extremes, P(X = 0) = 1.6 %
        assert_eq!(
            median_ci95(&[3.0, 1.0, 2.0, 6.0, 5.0, 4.0]),
            Some((1.0, 6.0))
        );
        assert_eq!(median_ci95(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
    }
}
