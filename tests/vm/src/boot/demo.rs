//! `make demo`: one boot with kdbus=1 through initramfs → real root →
//! shutdown root, told as a timeline: the `system-bus` scenario, whose
//! initramfs has D-Bus, so that the timeline shows the kernel bus and a
//! D-Bus client of the initramfs (through kdbus-bridge) in every root.

use anyhow::Result;

use super::initramfs::{Content, Flavour};
use super::markers::Markers;
use super::scenarios::{self, Outcome};
use super::Env;

pub fn run(env: &Env) -> Result<bool> {
    let scenario = scenarios::all()
        .into_iter()
        .find(|s| s.name == "system-bus")
        .expect("system-bus scenario");
    let initrd = env.initramfs(Flavour::SystemdDbus, Content::KdbusTest)?;
    let size = std::fs::metadata(&initrd).map(|m| m.len()).unwrap_or(0);
    println!(
        "demo: booting {} with kdbus=1 (initramfs {:.1} MiB, QEMU/TCG)",
        env.kernel.release,
        size as f64 / 1048576.0
    );
    let console = env.boot("demo", &initrd, scenario.cmdline, false)?;
    let m = Markers::parse(&console.lines);
    for (phase, title) in [
        ("initrd", "initramfs"),
        ("root", "real root"),
        ("shutdown", "shutdown root (/run/initramfs)"),
        ("final", "after the real root was unmounted"),
    ] {
        if !m.seen(phase) {
            println!("[{title}] not reached");
            continue;
        }
        let at = m
            .get(phase, "uptime")
            .and_then(|s| s.parse::<f64>().ok())
            .map(|s| format!("{s:7.2}s"))
            .unwrap_or_else(|| "      - ".into());
        println!("[{at}] {title}");
        let g = |k: &str| m.get(phase, k).unwrap_or("-").to_owned();
        println!(
            "           kdbus.ko {} | kdbusfs mounts {} | kdbus-init pid {} ({}) from {}",
            g("module"),
            g("kdbusfs_mounts"),
            g("pid"),
            g("argv0"),
            g("exe_link")
        );
        println!(
            "           bus 0-system id {} | owner handle held: {}",
            g("bus_id"),
            g("owner_held")
        );
        let acts = m.all(phase, "activator");
        let idle = acts.iter().filter(|a| a.ends_with(" idle")).count();
        let busy: Vec<&str> = acts
            .iter()
            .filter(|a| !a.ends_with(" idle"))
            .copied()
            .collect();
        let test: Vec<&str> = acts
            .iter()
            .filter(|a| a.starts_with("org.kdbus.test."))
            .copied()
            .collect();
        println!(
            "           connections: {} activator(s), {idle} idle; {}",
            acts.len(),
            if busy.is_empty() {
                format!("test name: {}", test.join(", "))
            } else {
                format!("busy: {}", busy.join(", "))
            }
        );
        // What happened in this root (the status keeps the whole history).
        let here = m.get(phase, "root").unwrap_or("-");
        for a in m.all(phase, "activation") {
            let Some((name, rest)) = a.split_once(' ') else {
                continue;
            };
            if let Some(event) = rest.strip_prefix(here).and_then(|e| e.strip_prefix(' ')) {
                println!("           activation: {name}: {event}");
            }
        }
        println!(
            "           log: {} record(s) to kmsg, {} handed to journald (now to {})",
            g("log_to_kmsg"),
            g("log_to_journal"),
            g("log_sink")
        );
        // The D-Bus client that connected in the initramfs: its unique
        // name and its answer (the real root's report is phase sysbus).
        let dbus_phase = if phase == "root" { "sysbus" } else { phase };
        if let Some(owner) = m.get(dbus_phase, "early_owner") {
            let owner = unique_name_in(owner);
            let first = m.get("initrd", "early_owner").map(unique_name_in);
            let whose = if phase == "initrd" {
                "dbus-test-tool, '@' argv[0], through kdbus-bridge".to_owned()
            } else if first == Some(owner) {
                "the connection it opened in the initramfs".to_owned()
            } else {
                format!("not the initramfs's {}", first.unwrap_or("-"))
            };
            let call = m
                .get(dbus_phase, "early_call")
                .map(|c| format!("; a call to it: {}", first_words(c)))
                .unwrap_or_default();
            println!("           D-Bus: org.kdbus.test.Early owned by {owner} ({whose}){call}");
        }
        if phase == "root" {
            if let Some(exe) = m.get("sysbus", "bridge_exe") {
                println!("           kdbus-bridge serving: {exe}");
            }
            for s in m.all(phase, "served") {
                println!("           service reports: {s}");
            }
            println!(
                "           journalctl -b -t kdbus-init: {} record(s), {} emitted, {} duplicate(s)",
                g("journal_records"),
                g("journal_emitted"),
                g("journal_duplicates")
            );
        }
        if phase == "final" {
            println!(
                "           mounts left under /oldroot: {}",
                g("oldroot_mounts")
            );
        }
        for p in m.all(phase, "problem") {
            println!("           problem: {p}");
        }
    }
    println!("kdbus-init's records on the console (from kmsg):");
    let mut registered = 0;
    for l in console
        .lines
        .iter()
        .filter(|l| l.contains("kdbus-init["))
        .take(30)
    {
        if l.contains("activator registered") {
            registered += 1;
            continue;
        }
        if registered > 0 {
            println!("    ... ({registered} activators registered) ...");
            registered = 0;
        }
        println!("    {}", l.trim());
    }
    if registered > 0 {
        println!("    ... ({registered} activators registered) ...");
    }
    let checks = scenario.evaluate(&console);
    let failed: Vec<_> = checks
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
        .collect();
    let pending: Vec<_> = checks
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Pending(_)))
        .collect();
    for c in &failed {
        if let Outcome::Fail(why) = &c.outcome {
            println!("FAIL: {}: {}", c.name, why);
        }
    }
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for c in &pending {
        if let Outcome::Pending(why) = &c.outcome {
            match reasons.iter_mut().find(|(r, _)| r == why) {
                Some((_, names)) => names.push(&c.name),
                None => reasons.push((why, vec![&c.name])),
            }
        }
    }
    for (why, names) in reasons {
        println!("could not run yet, {why}:");
        for n in names {
            println!("    {n}");
        }
    }
    println!(
        "total: {:.1} s from QEMU start to power-off; console log {}",
        console.elapsed.as_secs_f64(),
        env.console_log("demo").display()
    );
    // The demo is about showing the bus: a check that could not run
    // because a piece is missing is not a pass.
    let pass = failed.is_empty() && pending.is_empty();
    println!(
        "{} ({} checks passed, {} failed, {} could not run yet)",
        if pass { "PASS" } else { "FAIL" },
        checks.len() - failed.len() - pending.len(),
        failed.len(),
        pending.len()
    );
    Ok(pass)
}

/// The quoted unique name in a reply printed by busctl or dbus-send.
fn unique_name_in(reply: &str) -> &str {
    reply
        .split('"')
        .find(|w| w.starts_with(":1."))
        .unwrap_or(reply)
}

/// The start of a reply: its status and kind, not its timestamps.
fn first_words(reply: &str) -> String {
    reply
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
