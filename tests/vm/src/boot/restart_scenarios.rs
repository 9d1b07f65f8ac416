//! Boot scenarios where kdbus-init dies: killed with SIGKILL in each phase
//! (`kdbus-boot-probe restart PHASE`, asked for by `kdbus.test.restart`),
//! and restarted by systemd (initramfs, real root) or by its holder (the
//! shutdown root; with dracut's shell init every phase) on the same bus;
//! and other faults of the real root (`kdbus-boot-probe faults`, asked for
//! by `kdbus.test.faults`): `systemctl restart`, journald stopped; and of
//! kdbus-init's surroundings (`kdbus-boot-probe faults-other`, asked for by
//! `kdbus.test.faults-other`): a real root with an older kdbus-init,
//! journald crashing, /run full, a shutdown root without kdbus-init and
//! kdbus.ko.

use super::initramfs::Flavour;
use super::scenarios::{
    activation_across_the_switch, bus_id, kdbus_on, shell_init, Checks, Scenario,
};

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "restart",
            about: "kdbus-init killed with SIGKILL in the initramfs, the real root and the shutdown root: the same bus, the client keeps its name, the waiting message is delivered once, logs once, clean poweroff",
            flavour: Flavour::Systemd,
            cmdline: "kdbus=1 kdbus.test.restart",
            shell: false,
            evaluate: killed_in_every_phase,
        },
        Scenario {
            name: "restart-shell-init",
            about: "dracut's shell init: kdbus-init killed with SIGKILL in the initramfs and the real root, restarted by its holder on the same bus",
            flavour: Flavour::Shell,
            cmdline: "kdbus=1 kdbus.test.restart",
            shell: false,
            evaluate: held_in_shell_init,
        },
        Scenario {
            name: "faults",
            about: "real root: systemctl restart kdbus-init keeps the bus, systemctl stop with a client connected keeps it and its name and says so; journald stopped and started while kdbus-init logs: records go to the kernel log and each reaches the journal once",
            flavour: Flavour::Systemd,
            cmdline: "kdbus=1 kdbus.test.faults",
            shell: false,
            evaluate: faults,
        },
        Scenario {
            name: "faults-other",
            about: "a real root whose kdbus-init is older: a copy of the running binary runs there, said, the bus, a service's name and a queued activation kept; journald crashes (SIGKILL, SIGABRT) while kdbus-init logs: each record in the journal once, in order; /run full: said on the console, a kill then keeps the bus; a shutdown root without kdbus-init and kdbus.ko: a copy of the binary runs there, both said, the bus kept, the real root unmounted",
            flavour: Flavour::Systemd,
            cmdline: "kdbus=1 kdbus.test.faults-other",
            shell: false,
            evaluate: other_faults,
        },
    ]
}

/// A real root with an older kdbus-init (`kdbus-boot-probe faults-other
/// initrd`), journald crashes, /run full, a shutdown root without kdbus
/// (`kdbus-boot-probe faults-other root`).
fn other_faults(c: &mut Checks) {
    let p = "other-root";
    let boot_bus = bus_id(c, "initrd");
    c.base(
        "the real root's fault steps ran",
        c.m.seen(p) && c.m.get(p, "error").is_none(),
        c.describe(p, &["error"]),
    );
    older_real_root(c, boot_bus.as_deref());
    c.bus(
        "journald killed with SIGKILL and with SIGABRT while kdbus-init logs: restarted each time",
        is(c, p, "journald_sigkill", "restarted") && is(c, p, "journald_sigabrt", "restarted"),
        c.describe(p, &["journald_sigkill", "journald_sigabrt"]),
    );
    let journal = c.m.get(p, "hup_journal").unwrap_or("").to_owned();
    let records: Vec<(u64, &str)> = journal
        .split(',')
        .filter_map(|r| {
            let (n, t) = r.split_once(':')?;
            Some((n.parse().ok()?, t))
        })
        .collect();
    let sent = c.m.num(p, "hup_sent");
    let numbers: Vec<u64> = records.iter().map(|r| r.0).collect();
    c.bus(
        "journald crashes: each of kdbus-init's records is in the journal once, in order",
        sent == Some(12) && numbers == (1..=12).collect::<Vec<u64>>(),
        c.describe(p, &["hup_sent", "hup_journal"]),
    );
    let window: Vec<u64> =
        c.m.get(p, "crash_window")
            .unwrap_or("")
            .split(',')
            .filter_map(|n| n.parse().ok())
            .collect();
    // While journald is down a record goes to the kernel log, unless
    // records of ours may still be unread in journald's socket (held by
    // PID 1): then it queues behind them, because the next journald
    // imports the kernel log first and would put it ahead of them. A crash
    // usually leaves something unread, so either route is right here; the
    // `faults` boot (journald stopped, nothing unread) checks the kernel log.
    let via_kmsg = records
        .iter()
        .filter(|(n, t)| window.contains(n) && t.starts_with("kernel"))
        .count();
    let arrived = window.iter().all(|n| numbers.contains(n));
    c.bus(
        "journald crashes: the records logged while it was down reached the journal once it was back",
        window.len() == 6 && arrived,
        format!(
            "{via_kmsg} of them through the kernel log; {}",
            c.describe(p, &["crash_window", "hup_journal", "log_switches"])
        ),
    );
    let said = c
        .console_index(
            // kdbus-init's own console line, not the probe's marker.
            "kdbus-init: cannot write the state file /run/kdbus/kdbus-init.state (No space left on device",
        )
        .is_some();
    c.bus(
        "/run full: kdbus-init says on the console that it cannot write its state file",
        c.m.num(p, "run_filled").is_some() && said,
        format!(
            "said on the console: {said}; {}",
            c.describe(p, &["run_filled"])
        ),
    );
    let ids = ["full_bus_id", "full_status_bus_id", "bus_id_after"];
    let same = boot_bus.as_deref().is_some_and(|id| {
        ids.iter()
            .all(|k| c.m.get(p, k).is_some_and(|v| v.starts_with(id)))
    });
    let restarts = (
        c.m.num(p, "full_restarts_before"),
        c.m.num(p, "full_restarts_after"),
    );
    c.bus(
        "/run full: kdbus-init killed then takes the same bus back, its owner handle held",
        is(c, p, "full_kill", "ok")
            && is(c, p, "full_restarted", "true")
            && is(c, p, "full_owner_held", "true")
            && matches!(restarts, (Some(a), Some(b)) if b == a + 1)
            && same,
        format!(
            "boot bus {boot_bus:?}; {}",
            c.describe(
                p,
                &[
                    "full_kill",
                    "full_restarted",
                    "full_owner_held",
                    "full_restarts_before",
                    "full_restarts_after"
                ]
                .iter()
                .chain(ids.iter())
                .copied()
                .collect::<Vec<_>>()
            )
        ),
    );
    let kept =
        c.m.all(p, "full_problem")
            .iter()
            .any(|m| m.contains("No space left on device"));
    c.bus(
        "/run full: once freed, the status is written again and keeps the problem",
        is(c, p, "run_freed", "true") && kept,
        c.describe(p, &["run_freed", "full_problem"]),
    );
    // The shutdown root.
    let removed = c.m.get(p, "shutdown_root_removed").unwrap_or("").to_owned();
    c.base(
        "the shutdown root unpacked early, kdbus-init and kdbus.ko removed from it",
        is(c, p, "shutdown_root_unpacked", "ok")
            && removed.contains("sbin/kdbus-init")
            && removed.contains("kdbus.ko"),
        c.describe(p, &["shutdown_root_unpacked", "shutdown_root_removed"]),
    );
    let s = "shutdown";
    let problems = c.m.all(s, "problem");
    let no_binary = problems
        .iter()
        .any(|m| m.contains("no kdbus-init binary") && m.contains("running a copy"));
    let no_module = problems
        .iter()
        .any(|m| m.contains("shutdown-root has no kdbus.ko for the running kernel"));
    c.bus(
        "shutdown root without kdbus-init: a copy of the running binary follows into it, and says so",
        is(c, s, "root", "shutdown-root")
            && is(c, s, "exe_link", "/run/kdbus/kdbus-init-copy")
            && is(c, s, "fds_oldroot", "0")
            && no_binary,
        c.describe(s, &["root", "exe_link", "fds_oldroot"]),
    );
    c.bus(
        "shutdown root without kdbus.ko: said, the bus goes on",
        no_module
            && boot_bus.is_some()
            && bus_id(c, s) == boot_bus
            && is(c, s, "owner_held", "yes"),
        format!(
            "boot bus {boot_bus:?}; {}",
            c.describe(s, &["bus_id", "owner_held"])
        ),
    );
    c.bus(
        "shutdown root without kdbus: the real root unmounted cleanly, the bus still alive",
        is(c, "final", "oldroot_mounts", "0") && is(c, "final", "alive", "yes"),
        c.describe("final", &["oldroot_mounts", "alive"]),
    );
}

/// The real root's kdbus-init was made older (its hand-over marker says it
/// takes over state format 1 only) from the initramfs: kdbus-init must run
/// a copy of its own binary there, say so, and keep the bus, the name of a
/// service started in the initramfs and a message queued there.
fn older_real_root(c: &mut Checks, boot_bus: Option<&str>) {
    let (i, p) = ("other-initrd", "other-root");
    c.base(
        "the real root's kdbus-init replaced from the initramfs by an older one (its hand-over marker patched)",
        c.m.get(i, "older_planted")
            .is_some_and(|v| v.starts_with("ok (was ;writes=")),
        c.describe(i, &["older_planted"]),
    );
    let said = "the new root's kdbus-init /usr/sbin/kdbus-init cannot take over the running \
                one's state (it is older: it hands over state format 1, takes over 1-1";
    let in_status =
        c.m.all(p, "older_problem")
            .iter()
            .any(|m| m.starts_with(said) && m.contains("running a copy"));
    // kdbus-init's own console line, not the probe's marker.
    let on_console = c.console_index(&format!("kdbus-init: {said}")).is_some();
    c.bus(
        "real root with an older kdbus-init: a copy of the running binary runs there instead, said on the console and in the status",
        is(c, p, "older_exe", "/run/kdbus/kdbus-init-copy") && in_status && on_console,
        format!(
            "said on the console: {on_console}; {}",
            c.describe(p, &["older_exe", "older_problem"])
        ),
    );
    let client = c.m.get(i, "client_id").filter(|v| v.parse::<u64>().is_ok());
    c.bus(
        "real root with an older kdbus-init: the same bus; the service started in the initramfs still owns its name and got its message once",
        boot_bus.is_some_and(|id| c.m.get(p, "bus_id_before").is_some_and(|v| v.starts_with(id)))
            && client.is_some()
            && c.m.get(p, "older_client_id") == client
            && is(c, p, "older_client_report", "uid=0 received=sent-before-the-switch"),
        format!(
            "boot bus {boot_bus:?}; {}; {}",
            c.describe(i, &["client_id"]),
            c.describe(p, &["bus_id_before", "older_client_id", "older_client_report"])
        ),
    );
    activation_across_the_switch(c);
}

fn faults(c: &mut Checks) {
    kdbus_on(c);
    let p = "faults-root";
    let boot_bus = bus_id(c, "initrd");
    let ids = ["bus_id_before", "status_bus_id_after", "bus_id_after"];
    let same = boot_bus.as_deref().is_some_and(|id| {
        ids.iter()
            .all(|k| c.m.get(p, k).is_some_and(|v| v.starts_with(id)))
    });
    c.bus(
        "systemctl restart kdbus-init.service: a new kdbus-init on the same bus, its owner handle held",
        c.m.seen(p)
            && c.m.get(p, "error").is_none()
            && is(c, p, "systemctl_restart", "ok")
            && is(c, p, "restarts", "0 -> 1")
            && is(c, p, "owner_held_after", "true")
            && is(c, p, "unit_after_restart", "active")
            && same,
        format!(
            "boot bus {boot_bus:?}; {}",
            c.describe(
                p,
                &["systemctl_restart", "restarts", "owner_held_after", "unit_after_restart", "error"]
                    .iter()
                    .chain(ids.iter())
                    .copied()
                    .collect::<Vec<_>>()
            )
        ),
    );
    let ids = ["stop_status_bus_id", "stop_bus_id"];
    let same = boot_bus.as_deref().is_some_and(|id| {
        ids.iter()
            .all(|k| c.m.get(p, k).is_some_and(|v| v.starts_with(id)))
    });
    let said = c
        .console_index("would take the bus 0-system down")
        .is_some();
    let journal = c.m.num(p, "stop_in_journal").unwrap_or(0);
    c.bus(
        "systemctl stop kdbus-init.service: the bus is kept (a new kdbus-init on it), and the console and the journal say so",
        c.m.get(p, "systemctl_stop").is_some()
            && is(c, p, "stop_restarts", "2")
            && is(c, p, "unit_after_stop", "active")
            && same
            && said
            && journal >= 1,
        format!(
            "said on the console: {said}; {}",
            c.describe(
                p,
                &["systemctl_stop", "stop_restarts", "unit_after_stop", "stop_status_bus_id", "stop_bus_id", "stop_in_journal"]
            )
        ),
    );
    c.bus(
        "systemctl stop kdbus-init.service with a client connected: it still owns its name and calls to it succeed",
        is(c, p, "stop_client_owns_name", "yes")
            && is(c, p, "stop_call_before", "pong")
            && is(c, p, "stop_call_after", "pong"),
        c.describe(
            p,
            &["stop_client_owns_name", "stop_call_before", "stop_call_after"],
        ),
    );
    // The last switch away from journald is followed by one back.
    let switches = c.m.get(p, "log_switches").unwrap_or("").to_owned();
    let back = switches
        .rfind("journal->kmsg")
        .is_some_and(|at| switches[at..].contains("kmsg->journal"));
    c.bus(
        "journald stopped and started: kdbus-init logs to the kernel log meanwhile and to journald again after",
        is(c, p, "journald_stop", "ok") && is(c, p, "journald_start", "ok") && back,
        c.describe(p, &["journald_stop", "journald_start", "log_switches"]),
    );
}

/// The phases, their probe marker names and how the checks call them.
const PHASES: [(&str, &str); 3] = [
    ("initrd", "initramfs"),
    ("root", "real root"),
    ("shutdown", "shutdown root"),
];

fn killed_in_every_phase(c: &mut Checks) {
    // Everything an undisturbed boot shows still holds (same bus in every
    // root, activation across the switch, each record once in the
    // journal, the real root unmounted, poweroff).
    kdbus_on(c);
    restart_checks(c, &PHASES);
}

fn held_in_shell_init(c: &mut Checks) {
    shell_init(c);
    restart_checks(c, &PHASES[..2]);
}

/// Is marker `key` of `phase` `want`? A kernel line may run into a marker
/// on the console (`want[  7.96] virtio...`): that tail is not the value.
fn is(c: &Checks, phase: &str, key: &str, want: &str) -> bool {
    c.m.get(phase, key)
        .is_some_and(|v| v == want || v.strip_prefix(want).is_some_and(|r| r.starts_with('[')))
}

/// The kills of `phases`, each after the previous one.
fn restart_checks(c: &mut Checks, phases: &[(&str, &str)]) {
    let boot_bus = bus_id(c, "initrd");
    for (n, (phase, label)) in phases.iter().enumerate() {
        let p = format!("restart-{phase}");
        let restarts = (
            c.m.num(&p, "restarts_before"),
            c.m.num(&p, "restarts_after"),
        );
        c.bus(
            &format!("{label}: kdbus-init killed with SIGKILL and restarted"),
            c.m.seen(&p)
                && c.m.get(&p, "error").is_none()
                && c.m.get(&p, "killed").is_some()
                && c.m.num(&p, "serving_again_ms").is_some()
                && restarts == (Some(n as u64), Some(n as u64 + 1)),
            c.describe(
                &p,
                &[
                    "killed",
                    "serving_again_ms",
                    "restarts_before",
                    "restarts_after",
                    "error",
                ],
            ),
        );
        let ids = ["bus_id_before", "bus_id_after", "hello_bus_id"];
        // A kernel line may run into a marker on the console: the id is
        // what the value starts with.
        let same = boot_bus.as_deref().is_some_and(|id| {
            ids.iter()
                .all(|k| c.m.get(&p, k).is_some_and(|v| v.starts_with(id)))
        });
        c.bus(
            &format!("{label}: the same bus after the restart, its owner handle held"),
            same && is(c, &p, "owner_held_after", "true"),
            format!("boot bus {boot_bus:?}; {}", c.describe(&p, &ids)),
        );
        c.bus(
            &format!("{label}: the client still owns its name and calls to it succeed"),
            is(c, &p, "client_owns_name", "yes")
                && is(c, &p, "call_before", "pong")
                && is(c, &p, "call_after", "pong"),
            c.describe(&p, &["client_owns_name", "call_before", "call_after"]),
        );
        c.bus(
            &format!(
                "{label}: the message that waited on an activator across the kill is delivered once"
            ),
            is(c, &p, "deferred_before_kill", "true")
                && is(
                    c,
                    &p,
                    "served",
                    &format!("uid=0 received=waiting-in-{phase}"),
                ),
            c.describe(&p, &["deferred_before_kill", "served"]),
        );
    }
    let last = format!("restart-{}", phases[phases.len() - 1].0);
    let want = format!("restarts     {} (last at", phases.len());
    let shown =
        c.m.get(&last, "kdbusctl")
            .is_some_and(|l| l.starts_with(&want));
    c.bus(
        "kdbusctl status shows the restart count and the time of the last one",
        shown,
        c.describe(&last, &["kdbusctl"]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::qemu::Console;
    use crate::boot::scenarios::Outcome;
    use std::time::Duration;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn boot() -> Vec<String> {
        let mut lines = vec![format!("@@T initrd bus_id {ID}")];
        for (n, (phase, _)) in PHASES.iter().enumerate() {
            let p = format!("@@T restart-{phase}");
            for l in [
                format!("{p} begin {phase}"),
                format!("{p} bus_id_before {ID}"),
                format!("{p} restarts_before {n}"),
                format!("{p} call_before pong"),
                format!("{p} deferred_before_kill true"),
                format!("{p} killed 120"),
                format!("{p} serving_again_ms 800"),
                format!("{p} restarts_after {}", n + 1),
                format!("{p} bus_id_after {ID}"),
                format!("{p} owner_held_after true"),
                format!("{p} hello_bus_id {ID}"),
                format!("{p} client_owns_name yes"),
                format!("{p} call_after pong"),
                format!("{p} served uid=0 received=waiting-in-{phase}"),
                format!("{p} end {phase}"),
            ] {
                lines.push(l);
            }
        }
        lines.push(
            "@@T restart-shutdown kdbusctl restarts     3 (last at 41.20s), the bus kept".into(),
        );
        lines
    }

    /// The checks of `scenario` that fail on a console of `lines`
    /// (power-off aside: these consoles end before it).
    fn failures(scenario: &Scenario, lines: Vec<String>) -> Vec<String> {
        let console = Console {
            lines,
            timed_out: false,
            elapsed: Duration::from_secs(60),
        };
        scenario
            .evaluate(&console)
            .into_iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .map(|c| c.name)
            .filter(|n| !n.contains("powered off"))
            .collect()
    }

    fn failed(lines: Vec<String>) -> Vec<String> {
        let scenario = Scenario {
            evaluate: |c| restart_checks(c, &PHASES),
            ..all().remove(0)
        };
        failures(&scenario, lines)
    }

    #[test]
    fn a_boot_that_kept_everything_passes() {
        assert!(failed(boot()).is_empty(), "{:?}", failed(boot()));
        // A kernel line that ran into a marker on the console.
        let noisy: Vec<String> = boot()
            .iter()
            .map(|l| {
                l.replace(
                    "deferred_before_kill true",
                    "deferred_before_kill true[  7.96] virtio_blk",
                )
            })
            .collect();
        assert!(failed(noisy.clone()).is_empty(), "{:?}", failed(noisy));
    }

    #[test]
    fn each_loss_fails() {
        for (from, to, check) in [
            // delivered twice
            (
                "received=waiting-in-root",
                "received=waiting-in-root|waiting-in-root",
                "real root: the message",
            ),
            // a new bus after the restart
            (
                "restart-initrd bus_id_after 0123",
                "restart-initrd bus_id_after 9999",
                "initramfs: the same bus",
            ),
            // the client lost its name
            (
                "restart-shutdown client_owns_name yes",
                "restart-shutdown client_owns_name no",
                "shutdown root: the client",
            ),
            // not restarted
            (
                "restart-root restarts_after 2",
                "restart-root restarts_after 1",
                "real root: kdbus-init killed",
            ),
            ("restarts     3", "restarts     0", "kdbusctl status"),
        ] {
            let bad: Vec<String> = boot().iter().map(|l| l.replace(from, to)).collect();
            let f = failed(bad);
            assert!(
                f.iter().any(|n| n.starts_with(check)),
                "{from} -> {to}: {f:?}"
            );
        }
    }

    /// A `faults-other` boot where everything held.
    fn other_boot() -> Vec<String> {
        let journal: Vec<String> = (1..=12)
            .map(|n| {
                let t = if [3, 8].contains(&n) {
                    "kernel"
                } else {
                    "journal"
                };
                format!("{n}:{t}")
            })
            .collect();
        let o = "@@T other-root";
        let i = "@@T other-initrd";
        let older = "the new root's kdbus-init /usr/sbin/kdbus-init cannot take over the \
                     running one's state (it is older: it hands over state format 1, takes \
                     over 1-1, the running one hands over 2): running a copy of the previous \
                     root's at /run/kdbus/kdbus-init-copy; install kdbus-init 0.1.0 or later";
        let mut lines = vec![format!("@@T initrd bus_id {ID}")];
        for l in [
            "@@T client sent org.kdbus.test.Late hello-from-the-initramfs".to_owned(),
            format!("{i} begin initrd"),
            format!("{i} older_planted ok (was ;writes=0002;reads=0002-0002)"),
            format!("{i} client_id 17"),
            format!("{i} end initrd"),
            "@@T initrd activation org.kdbus.test.Late initramfs deferred: no program".into(),
            format!("kdbus-init: {older}"),
            format!("{o} begin root"),
            format!("{o} bus_id_before {ID}"),
            format!("{o} older_exe /run/kdbus/kdbus-init-copy"),
            format!("{o} older_problem {older}"),
            format!("{o} older_client_id 17"),
            format!("{o} older_client_report uid=0 received=sent-before-the-switch"),
            format!("{o} journald_sigkill restarted"),
            format!("{o} journald_sigabrt restarted"),
            format!("{o} hup_sent 12"),
            format!("{o} crash_window 3,4,5,8,9,10"),
            format!("{o} hup_journal {}", journal.join(",")),
            format!("{o} log_switches kmsg->journal journal->kmsg kmsg->journal journal->kmsg kmsg->journal"),
            format!("{o} full_restarts_before 0"),
            format!("{o} run_filled 314572800"),
            format!("{o} full_kill ok"),
            format!("{o} full_restarted true"),
            format!("{o} full_bus_id {ID}"),
            format!("{o} run_freed true"),
            format!("{o} full_restarts_after 1"),
            format!("{o} full_status_bus_id {ID}"),
            format!("{o} full_owner_held true"),
            format!("{o} full_problem cannot write the state file /run/kdbus/kdbus-init.state (No space left on device (os error 28)): the bus is kept"),
            format!("{o} bus_id_after {ID}"),
            format!("{o} shutdown_root_unpacked ok"),
            format!("{o} shutdown_root_removed usr/sbin/kdbus-init usr/lib/modules/6.1.0-57-amd64/extra/kdbus.ko"),
            format!("{o} end root"),
            "kdbus-init: cannot write the state file /run/kdbus/kdbus-init.state (No space left on device (os error 28)): the bus is kept".into(),
            "@@T root activation org.kdbus.test.Late real-root service took the name; queued messages handed over".into(),
            "@@T root served org.kdbus.test.Late uid=0 received=hello-from-the-initramfs".into(),
            "@@T shutdown begin shutdown".into(),
            "@@T shutdown root shutdown-root".into(),
            format!("@@T shutdown bus_id {ID}"),
            "@@T shutdown owner_held yes".into(),
            "@@T shutdown problem the new root has no kdbus-init binary (/usr/sbin/kdbus-init): running a copy of the previous root's at /run/kdbus/kdbus-init-copy".into(),
            "@@T shutdown problem the shutdown-root has no kdbus.ko for the running kernel (...)".into(),
            "@@T shutdown exe_link /run/kdbus/kdbus-init-copy".into(),
            "@@T shutdown fds_oldroot 0".into(),
            "@@T shutdown end shutdown".into(),
            "@@T final oldroot_mounts 0".into(),
            "@@T final alive yes".into(),
            "@@T final end final".into(),
        ] {
            lines.push(l);
        }
        lines
    }

    fn other_failed(lines: Vec<String>) -> Vec<String> {
        let scenario = all()
            .into_iter()
            .find(|s| s.name == "faults-other")
            .unwrap();
        failures(&scenario, lines)
    }

    #[test]
    fn other_faults_pass_when_everything_held_and_fail_on_each_loss() {
        assert!(
            other_failed(other_boot()).is_empty(),
            "{:?}",
            other_failed(other_boot())
        );
        for (from, to, check) in [
            // the older binary ran, or nothing was said, or not planted
            (
                "older_exe /run/kdbus/kdbus-init-copy",
                "older_exe /usr/sbin/kdbus-init",
                "real root with an older kdbus-init: a copy",
            ),
            (
                "older_problem the new root's",
                "older_other the new root's",
                "real root with an older kdbus-init: a copy",
            ),
            (
                "kdbus-init: the new root's",
                "kdbus-init: ",
                "real root with an older kdbus-init: a copy",
            ),
            (
                "older_planted ok",
                "older_planted error: no /sysroot/usr/sbin/kdbus-init within 60 s",
                "the real root's kdbus-init replaced",
            ),
            // a new bus, the service lost its name or its message
            (
                "other-root bus_id_before 0123",
                "other-root bus_id_before 9999",
                "real root with an older kdbus-init: the same bus",
            ),
            (
                "older_client_id 17",
                "older_client_id 18",
                "real root with an older kdbus-init: the same bus",
            ),
            (
                "received=sent-before-the-switch",
                "received=",
                "real root with an older kdbus-init: the same bus",
            ),
            // the queued activation lost or doubled
            (
                "received=hello-from-the-initramfs",
                "received=hello-from-the-initramfs|hello-from-the-initramfs",
                "activation: queued in the initramfs",
            ),
            // a record lost, doubled, out of order
            ("12:journal", "11:journal", "journald crashes: each"),
            (
                "3:kernel,4:journal",
                "4:journal,3:kernel",
                "journald crashes: each",
            ),
            // records logged while journald was down are missing
            (
                "crash_window 3,4,5,8,9,10",
                "crash_window 3,4,5,13",
                "journald crashes: the records logged",
            ),
            (
                "journald_sigabrt restarted",
                "journald_sigabrt not restarted",
                "journald killed",
            ),
            // silent about /run
            (
                "kdbus-init: cannot write the state file",
                "kdbus-init: ",
                "/run full: kdbus-init says",
            ),
            ("full_problem ", "full_other ", "/run full: once freed"),
            // a new bus, or no restart, after the kill
            (
                "full_bus_id 0123",
                "full_bus_id 9999",
                "/run full: kdbus-init killed",
            ),
            (
                "full_restarts_after 1",
                "full_restarts_after 0",
                "/run full: kdbus-init killed",
            ),
            // the old binary went on, or nothing said
            (
                "exe_link /run/kdbus/kdbus-init-copy",
                "exe_link /oldroot/usr/sbin/kdbus-init",
                "shutdown root without kdbus-init",
            ),
            (
                "problem the new root has no",
                "problem the new root",
                "shutdown root without kdbus-init",
            ),
            (
                "problem the shutdown-root has no kdbus.ko",
                "problem",
                "shutdown root without kdbus.ko",
            ),
            (
                "@@T shutdown bus_id 0123",
                "@@T shutdown bus_id 9999",
                "shutdown root without kdbus.ko",
            ),
            (
                "final alive yes",
                "final alive no",
                "shutdown root without kdbus: the real root",
            ),
            (
                "oldroot_mounts 0",
                "oldroot_mounts 1",
                "shutdown root without kdbus: the real root",
            ),
        ] {
            let bad: Vec<String> = other_boot().iter().map(|l| l.replace(from, to)).collect();
            let f = other_failed(bad);
            assert!(
                f.iter().any(|n| n.starts_with(check)),
                "{from} -> {to}: {f:?}"
            );
        }
    }
}
