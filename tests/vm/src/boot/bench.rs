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

/// One variant's boots, in seconds.
#[derive(Default)]
struct Times {
    switch_root: Vec<f64>,
    multi_user: Vec<f64>,
    /// kdbus-init.service from its start to READY=1 (or its exit).
    unit: Vec<f64>,
}

pub fn run(env: &Env, runs: u32, system_bus_only: bool) -> Result<bool> {
    println!("initramfs size added by the kdbus parts, per compressor:");
    super::footprint::report(env)?;
    if runs == 0 {
        return Ok(true);
    }
    let variants = variants(env, system_bus_only)?;
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
                    times[i].multi_user.push(done);
                }
                _ => {
                    eprintln!(
                        "bench: run {} {} {}: no measurement (see {})",
                        r + 1,
                        v.initramfs,
                        v.cmdline,
                        env.console_log(&format!("bench-{i}")).display()
                    );
                    ok = false;
                }
            }
        }
    }
    print_table(&variants, &times, runs);
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
        let done = median(&t.multi_user);
        if v.baseline {
            base = done;
        }
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {:+.1} % | {:.2} MiB |",
            v.initramfs,
            if v.cmdline.is_empty() {
                "absent"
            } else {
                v.cmdline
            },
            median(&t.switch_root),
            done,
            (done / base - 1.0) * 100.0,
            mib(&v.image)
        );
    }
}

/// What `--add kdbus` adds (gzip), and what the bridge costs in an image
/// with D-Bus compared with dracut's dbus-broker module alone.
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
    }
    Ok(())
}

fn mib(p: &Path) -> f64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0
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
