//! The boot benchmark: kernel start to the switch into the real root
//! (systemd's UserspaceTimestampMonotonic in the real root, i.e. the end of
//! the initramfs), and initramfs size, with and without `--add kdbus` and
//! `kdbus=1`, all in one run.

use anyhow::Result;

use super::initramfs::{Content, Flavour};
use super::markers::Markers;
use super::Env;

pub fn run(env: &Env, runs: u32) -> Result<bool> {
    println!("initramfs size added by the kdbus parts, per compressor:");
    super::footprint::report(env)?;
    if runs == 0 {
        return Ok(true);
    }
    let plain = env.initramfs(Flavour::Systemd, Content::Plain)?;
    let kdbus = env.initramfs(Flavour::Systemd, Content::Kdbus)?;
    let variants = [
        ("without --add kdbus", &plain, ""),
        ("--add kdbus, kdbus=0", &kdbus, "kdbus=0"),
        ("--add kdbus, kdbus=1", &kdbus, "kdbus=1"),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    // kdbus-init.service from its start to READY=1 (or its exit).
    let mut unit: Vec<f64> = Vec::new();
    let mut ok = true;
    // Interleave the variants so that drift on a shared machine hits all.
    for r in 0..runs {
        for (i, (name, img, cmdline)) in variants.iter().enumerate() {
            let console = env.boot(&format!("bench-{i}"), img, cmdline, false)?;
            let m = Markers::parse(&console.lines);
            let start = m
                .num("root", "unit_ExecMainStartTimestampMonotonic")
                .filter(|v| *v > 0);
            let ready = m
                .num("root", "unit_ActiveEnterTimestampMonotonic")
                .filter(|v| *v > 0)
                .or(m
                    .num("root", "unit_InactiveEnterTimestampMonotonic")
                    .filter(|v| *v > 0));
            if let (Some(a), Some(b), true) = (start, ready, i == 2) {
                unit.push(b.saturating_sub(a) as f64 / 1e6);
            }
            match m.num("root", "userspace_us") {
                Some(us) => {
                    eprintln!(
                        "bench: run {} {name}: switch-root after {:.2} s",
                        r + 1,
                        us as f64 / 1e6
                    );
                    times[i].push(us as f64 / 1e6);
                }
                None => {
                    eprintln!(
                        "bench: run {} {name}: no measurement (see {})",
                        r + 1,
                        env.console_log(&format!("bench-{i}")).display()
                    );
                    ok = false;
                }
            }
        }
    }
    let size =
        |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0;
    let base = median(&times[0]);
    println!("| initramfs | kdbus= | kernel start → switch-root (median of {runs}) | vs. without | initramfs (gzip) |");
    println!("|---|---|---|---|---|");
    for (i, (name, img, _)) in variants.iter().enumerate() {
        let t = median(&times[i]);
        println!(
            "| {} | {} | {:.2} s | {:+.1} % | {:.2} MiB |",
            if i == 0 { "plain" } else { "--add kdbus" },
            name.rsplit(", ")
                .next()
                .filter(|_| i > 0)
                .unwrap_or("absent"),
            t,
            (t / base - 1.0) * 100.0,
            size(img)
        );
    }
    println!(
        "initramfs size added by --add kdbus: {:+.2} MiB (gzip)",
        size(&kdbus) - size(&plain)
    );
    if !unit.is_empty() {
        println!(
            "kdbus-init.service, start to ready (journald and sysinit.target wait for it): \
             median {:.0} ms of {} boot(s)",
            median(&unit) * 1000.0,
            unit.len()
        );
    }
    Ok(ok)
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
