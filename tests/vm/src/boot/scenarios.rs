//! The boot scenarios and what each must show.

use super::initramfs::Flavour;
use super::markers::Markers;
use super::qemu::Console;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    /// Needs a piece another branch delivers; reported, not counted as a
    /// failure.
    Pending(String),
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
}

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub flavour: Flavour,
    /// Kernel command line words beyond root/console.
    pub cmdline: &'static str,
    /// Drive the shutdown debugging shell over the console.
    pub shell: bool,
    pub(super) evaluate: fn(&mut Checks),
}

pub const SHELL_PROMPT: &str = "kdbus-shutdown# ";
/// Typed into the shutdown shell (which has sed, not grep): the bus id
/// lines of both JSON documents, then kdbusctl's text. The quotes keep the
/// echoed command line from matching the "done" marker.
pub const SHELL_INPUT: &str = "kdbus-init status --json | sed -n '/\"id\"/p'; \
     kdbusctl status --json | sed -n '/\"id128\"/p'; kdbusctl status; echo @@T shell\" \"done\n";
pub const SHELL_DONE: &str = "@@T shell done";

pub fn all() -> Vec<Scenario> {
    let mut all = vec![
        Scenario {
            name: "kdbus-on",
            about: "kdbus=1, systemd initramfs: the bus from the initramfs through the real root to the shutdown root, activation across switch-root, logging exactly once",
            flavour: Flavour::Systemd,
            cmdline: "kdbus=1",
            shell: false,
            evaluate: kdbus_on,
        },
        Scenario {
            name: "kdbus-absent",
            about: "no kdbus= on the command line: nothing loaded or mounted, boot unchanged",
            flavour: Flavour::Systemd,
            cmdline: "",
            shell: false,
            evaluate: |c| kdbus_off(c, None),
        },
        Scenario {
            name: "kdbus-0",
            about: "kdbus=0: nothing loaded or mounted, boot unchanged",
            flavour: Flavour::Systemd,
            cmdline: "kdbus=0",
            shell: false,
            evaluate: |c| kdbus_off(c, None),
        },
        Scenario {
            name: "kdbus-banana",
            about: "kdbus=banana: a warning on the console, boot continues without the bus",
            flavour: Flavour::Systemd,
            cmdline: "kdbus=banana",
            shell: false,
            evaluate: |c| kdbus_off(c, Some("kdbus=banana is not a boolean")),
        },
        Scenario {
            name: "shell-init",
            about: "kdbus=1 with dracut's shell init (no systemd in the initramfs) and switch-root",
            flavour: Flavour::Shell,
            cmdline: "kdbus=1",
            shell: false,
            evaluate: shell_init,
        },
        Scenario {
            name: "shutdown-shell",
            about: "rd.kdbus.shell=shutdown: a shell in the shutdown root on the same bus; leaving it completes the poweroff",
            flavour: Flavour::Systemd,
            cmdline: "kdbus=1 rd.kdbus.shell=shutdown",
            shell: true,
            evaluate: shutdown_shell,
        },
    ];
    all.extend(super::initramfs_tools_scenarios::all());
    all.extend(super::restart_scenarios::all());
    all.extend(super::system_bus_scenarios::all());
    all
}

impl Scenario {
    pub fn evaluate(&self, console: &Console) -> Vec<Check> {
        let mut c = Checks {
            m: Markers::parse(&console.lines),
            console,
            out: Vec::new(),
            gate: None,
        };
        c.gate = bus_gate(console);
        c.base(
            "the VM powered off by itself in time",
            !console.timed_out && console.contains("reboot: Power down"),
            format!(
                "timed out: {}; last console lines:\n{}",
                console.timed_out,
                console.tail(30)
            ),
        );
        let trouble: Vec<String> = crate::dmesg::trouble(&console.lines.join("\n"))
            .into_iter()
            .map(str::to_owned)
            .collect();
        c.base(
            "no oops, BUG or WARNING in the kernel log",
            trouble.is_empty(),
            trouble.join("\n"),
        );
        (self.evaluate)(&mut c);
        c.out
    }
}

/// Checks that need the bus itself are pending while kdbus.ko cannot
/// create one.
fn bus_gate(console: &Console) -> Option<String> {
    console
        .contains("does not implement BUS_MAKE")
        .then(|| "kdbus.ko does not implement BUS_MAKE yet (bus core not merged)".to_owned())
}

pub struct Checks<'a> {
    pub m: Markers,
    console: &'a Console,
    out: Vec<Check>,
    gate: Option<String>,
}

impl Checks<'_> {
    fn push(&mut self, name: &str, outcome: Outcome) {
        self.out.push(Check {
            name: name.to_owned(),
            outcome,
        });
    }

    /// A check that holds whatever the state of the bus core.
    pub(super) fn base(&mut self, name: &str, ok: bool, why: impl Into<String>) {
        let o = if ok {
            Outcome::Pass
        } else {
            Outcome::Fail(why.into())
        };
        self.push(name, o);
    }

    /// A check that needs a working bus.
    pub(super) fn bus(&mut self, name: &str, ok: bool, why: impl Into<String>) {
        let o = match (&self.gate, ok) {
            (_, true) => Outcome::Pass,
            (Some(g), false) => Outcome::Pending(g.clone()),
            (None, false) => Outcome::Fail(why.into()),
        };
        self.push(name, o);
    }

    fn get(&self, phase: &str, key: &str) -> String {
        self.m.get(phase, key).unwrap_or("(missing)").to_owned()
    }

    pub(super) fn is(&self, phase: &str, key: &str, want: &str) -> bool {
        self.m.get(phase, key) == Some(want)
    }

    pub(super) fn describe(&self, phase: &str, keys: &[&str]) -> String {
        let mut s: Vec<String> = keys
            .iter()
            .map(|k| format!("{phase}.{k}={}", self.get(phase, k)))
            .collect();
        for p in self.m.all(phase, "problem") {
            s.push(format!("problem: {p}"));
        }
        s.join(", ")
    }

    pub(super) fn console_index(&self, needle: &str) -> Option<usize> {
        self.console.lines.iter().position(|l| l.contains(needle))
    }
}

pub(super) fn module_and_mount(c: &mut Checks, phase: &str) {
    let m = (
        c.is(phase, "module", "yes"),
        c.m.num(phase, "kdbusfs_mounts").unwrap_or(0) >= 1,
    );
    c.base(
        &format!("{phase}: kdbus.ko loaded and kdbusfs mounted"),
        m.0 && m.1,
        c_describe(c, phase, &["module", "kdbusfs_mounts"]),
    );
}

fn c_describe(c: &Checks, phase: &str, keys: &[&str]) -> String {
    c.describe(phase, keys)
}

pub(super) fn bus_id(c: &Checks, phase: &str) -> Option<String> {
    c.m.get(phase, "bus_id")
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

pub(super) fn kdbus_on(c: &mut Checks) {
    for p in ["initrd", "root", "shutdown", "final"] {
        let seen = c.m.seen(p);
        if p == "initrd" || p == "root" {
            c.base(
                &format!("the {p} phase reported"),
                seen,
                format!("no '@@T {p} end' marker"),
            );
        } else {
            c.bus(
                &format!("the {p} phase reported (shutdown root entered)"),
                seen,
                format!("no '@@T {p} end' marker: was /run/initramfs unpacked?"),
            );
        }
    }
    module_and_mount(c, "initrd");
    // The first kdbus-init lines come before journald starts.
    let first = c.console_index("kdbus-init[");
    let journald = c.console_index("Journal Service");
    c.base(
        "initrd: kdbus-init's first log lines are on the console before journald starts",
        matches!((first, journald), (Some(a), Some(b)) if a < b),
        format!("first kdbus-init console line {first:?}, journald line {journald:?}"),
    );
    let id = bus_id(c, "initrd");
    c.bus(
        "initrd: bus 0-system created, owner handle held",
        id.is_some() && c.is("initrd", "owner_held", "yes"),
        c.describe("initrd", &["status", "bus_id", "owner_held"]),
    );
    let (created, journald_us) = (
        c.m.num("initrd", "bus_created_us"),
        c.m.num("initrd", "journald_start_us"),
    );
    c.bus(
        "initrd: the bus existed before journald started",
        matches!((created, journald_us), (Some(a), Some(b)) if a > 0 && a < b),
        format!("bus created at {created:?} us, journald started at {journald_us:?} us"),
    );
    let marked =
        c.m.get("initrd", "argv0")
            .is_some_and(|a| a.starts_with('@'));
    c.bus(
        "initrd: kdbus-init marked itself a root storage daemon ('@' argv[0])",
        marked,
        c.describe("initrd", &["argv0"]),
    );
    // The real root.
    let same = id.is_some() && bus_id(c, "root") == id;
    c.bus("real root: the same bus id as in the initramfs", same, {
        format!("initrd {:?}, root {:?}", id, bus_id(c, "root"))
    });
    let ok = c.is("root", "root", "real-root")
        && c.is("root", "exe_here", "yes")
        && c.is("root", "root_link", "/")
        && c.is("root", "deleted_maps", "0");
    c.bus(
        "real root: kdbus-init runs from the real root's binary and maps nothing of the initramfs",
        ok,
        c.describe(
            "root",
            &["root", "exe_here", "exe_link", "root_link", "deleted_maps"],
        ),
    );
    c.bus(
        "real root: kdbus-init.service still active",
        c.is("root", "unit_state", "active"),
        c.describe("root", &["unit_state"]),
    );
    c.bus(
        "real root: no failed units",
        c.is("root", "failed_units", "0"),
        format!("{:?}", c.m.all("root", "failed_unit")),
    );
    let (n, e, d) = (
        c.m.num("root", "journal_records"),
        c.m.num("root", "journal_emitted"),
        c.m.num("root", "journal_duplicates"),
    );
    c.bus(
        "real root: every kdbus-init record is in journalctl -b exactly once",
        n.is_some() && n == e && e > Some(0) && d == Some(0),
        {
            format!(
                "journal has {n:?} records, kdbus-init emitted {e:?}, duplicates {d:?} {:?}",
                c.m.all("root", "journal_duplicate")
            )
        },
    );
    let transports = c.m.all("root", "journal_transport");
    let kernel = transports.iter().any(|t| t.starts_with("kernel "));
    let native = transports.iter().any(|t| t.starts_with("journal "));
    c.bus(
        "real root: records reached the journal through kmsg and natively",
        kernel && native,
        format!("transports seen: {transports:?}"),
    );
    activation_across_the_switch(c);
    user_activation(c);
    // The shutdown root.
    let same = id.is_some() && bus_id(c, "shutdown") == id;
    c.bus(
        "shutdown root: the same bus id",
        same,
        format!("initrd {:?}, shutdown {:?}", id, bus_id(c, "shutdown")),
    );
    let ok = c.is("shutdown", "root", "shutdown-root")
        && c.is("shutdown", "exe_here", "yes")
        && c.is("shutdown", "fds_oldroot", "0")
        && !c.get("shutdown", "exe_link").contains("oldroot");
    c.bus(
        "shutdown root: kdbus-init runs from /run/initramfs and holds nothing of the real root",
        ok,
        c.describe("shutdown", &["root", "exe_here", "exe_link", "fds_oldroot"]),
    );
    c.bus(
        "shutdown root: the real root unmounted cleanly, the bus still alive",
        c.is("final", "oldroot_mounts", "0") && c.is("final", "alive", "yes"),
        c.describe("final", &["oldroot_mounts", "alive"]),
    );
    let last = c.console_index("running in the shutdown-root");
    c.bus(
        "shutdown root: kdbus-init's shutdown-phase records reach the console",
        last.is_some(),
        "no 'kdbus-init ... running in the shutdown-root' line on the console",
    );
}

/// Did the initramfs client send `what` ("NAME TEXT")?
/// The activation queued in the initramfs reached the service the real
/// root started, once.
pub(super) fn activation_across_the_switch(c: &mut Checks) {
    let deferred =
        c.m.all("initrd", "activation")
            .iter()
            .any(|a| a.starts_with("org.kdbus.test.Late ") && a.contains("deferred"));
    let delivered =
        c.m.all("root", "activation")
            .iter()
            .any(|a| a.starts_with("org.kdbus.test.Late ") && a.contains("took the name"));
    let sent_late = sent(c, "org.kdbus.test.Late hello-from-the-initramfs");
    let served = served(c, "org.kdbus.test.Late");
    c.bus(
        "activation: queued in the initramfs, the service started in the real root got it once",
        sent_late
            && deferred
            && delivered
            && served
                .as_ref()
                .is_some_and(|(_, got)| got == "hello-from-the-initramfs"),
        format!(
            "sent {sent_late}, deferred in the initramfs {deferred}, name taken in the real root \
             {delivered}, served {served:?}; activations: {:?} {:?}",
            c.m.all("initrd", "activation"),
            c.m.all("root", "activation")
        ),
    );
}

fn sent(c: &Checks, what: &str) -> bool {
    c.m.all("client", "sent").contains(&what)
}

/// `@@T root served NAME uid=N received=A|B`: (uid, received).
fn served(c: &Checks, name: &str) -> Option<(u32, String)> {
    c.m.all("root", "served").iter().find_map(|v| {
        let rest = v.strip_prefix(name)?.strip_prefix(" uid=")?;
        let (uid, got) = rest.split_once(" received=")?;
        Some((uid.parse().ok()?, got.to_owned()))
    })
}

/// The uid the activator of `name` lets own the name in `phase`.
fn owner(c: &Checks, phase: &str, name: &str) -> Option<String> {
    c.m.all(phase, "owner")
        .iter()
        .find_map(|v| v.strip_prefix(name)?.strip_prefix(' ').map(str::to_owned))
}

/// A service running as a user that only the real root knows: no owner in
/// the initramfs, the activator replaced in the real root with the user's
/// uid, the message queued in the initramfs delivered once to the service
/// running as that uid.
pub(super) fn user_activation(c: &mut Checks) {
    let name = "org.kdbus.test.LateUser";
    let sent = sent(c, &format!("{name} hello-to-a-user"));
    let (initrd, root) = (owner(c, "initrd", name), owner(c, "root", name));
    let uid: Option<u32> = root.as_deref().and_then(|u| u.parse().ok());
    let replaced =
        c.m.all("root", "activation")
            .iter()
            .any(|a| a.starts_with(name) && a.contains("owner policy now"));
    let served = served(c, name);
    c.bus(
        "activation as a user only the real root knows: owner policy set after the switch, \
         the service got the message once, as that user",
        sent && initrd.as_deref() == Some("none")
            && uid.is_some_and(|u| u != 0)
            && replaced
            && served == uid.map(|u| (u, "hello-to-a-user".to_owned())),
        format!(
            "sent {sent}, owner in the initramfs {initrd:?} (want none), in the real root \
             {root:?}, activator replaced {replaced}, served {served:?}; activations: {:?}; \
             problems: {:?}",
            c.m.all("root", "activation"),
            c.m.all("root", "problem")
        ),
    );
}

pub(super) fn kdbus_off(c: &mut Checks, warning: Option<&str>) {
    for p in ["initrd", "root"] {
        c.base(
            &format!("the {p} phase reported"),
            c.m.seen(p),
            format!("no '@@T {p} end' marker"),
        );
        let quiet = c.is(p, "module", "no")
            && c.is(p, "kdbusfs_mounts", "0")
            && c.is(p, "status", "missing");
        c.base(
            &format!("{p}: nothing loaded, nothing mounted, no kdbus-init"),
            quiet,
            c.describe(p, &["module", "kdbusfs_mounts", "status"]),
        );
    }
    c.base(
        "real root: no failed units",
        c.is("root", "failed_units", "0"),
        format!("{:?}", c.m.all("root", "failed_unit")),
    );
    c.base(
        "no shutdown root requested",
        !c.m.seen("shutdown"),
        "the shutdown root was entered",
    );
    match warning {
        Some(w) => {
            let shown = c.console_index(w).is_some();
            c.base(
                "a clear warning on the console",
                shown,
                format!("no '{w}' on the console"),
            );
        }
        None => {
            let silent = c.console_index("kdbus-init[").is_none();
            c.base(
                "kdbus-init logged nothing",
                silent,
                "kdbus-init wrote to the kernel log",
            );
        }
    }
}

pub(super) fn shell_init(c: &mut Checks) {
    for p in ["initrd", "root"] {
        c.base(
            &format!("the {p} phase reported"),
            c.m.seen(p),
            format!("no '@@T {p} end' marker"),
        );
    }
    module_and_mount(c, "initrd");
    c.base(
        "our switch-root performed the switch",
        c.console_index("switch-root[").is_some()
            && c.console_index("switched to /sysroot").is_some(),
        "no 'switch-root[..]: switched to /sysroot' line on the console",
    );
    let id = bus_id(c, "initrd");
    c.bus(
        "initrd: bus 0-system created",
        id.is_some(),
        c.describe("initrd", &["status", "bus_id"]),
    );
    c.bus(
        "real root: the same bus id as in the initramfs",
        id.is_some() && bus_id(c, "root") == id,
        format!("initrd {:?}, root {:?}", id, bus_id(c, "root")),
    );
    c.bus(
        "real root: kdbus-init runs from the real root's binary",
        c.is("root", "root", "real-root")
            && c.is("root", "exe_here", "yes")
            && c.is("root", "deleted_maps", "0"),
        c.describe("root", &["root", "exe_here", "exe_link", "deleted_maps"]),
    );
}

fn shutdown_shell(c: &mut Checks) {
    let prompt = c.console_index(SHELL_PROMPT);
    c.bus(
        "the debugging shell opened in the shutdown root",
        prompt.is_some(),
        "no shell prompt on the console",
    );
    let id = bus_id(c, "initrd");
    let shell: Vec<&str> = c
        .console
        .lines
        .iter()
        .skip(prompt.unwrap_or(usize::MAX))
        .map(String::as_str)
        .collect();
    let with_id = |extra: &str| {
        id.as_ref().is_some_and(|id| {
            shell
                .iter()
                .any(|l| l.contains(id.as_str()) && l.contains(extra))
        })
    };
    c.bus(
        "kdbus-init status --json in the shell shows the boot's bus id",
        with_id("\"id\""),
        format!("bus id {id:?} not in kdbus-init's output"),
    );
    c.bus(
        "kdbusctl status --json in the shell shows the boot's bus id",
        with_id("\"id128\""),
        format!("bus id {id:?} not in kdbusctl's JSON"),
    );
    let phase = shell
        .iter()
        .any(|l| l.starts_with("kdbus-init:") && l.contains("phase shutdown-root"));
    let same = with_id("bus          0-system id")
        && shell
            .iter()
            .any(|l| l.contains("this bus     is the bus kdbus-init holds"));
    c.bus(
        "kdbusctl status in the shell shows kdbus-init in the shutdown root, on the same bus",
        phase && same,
        format!(
            "kdbus-init's phase shutdown-root shown: {phase}; the boot's bus {id:?} as the one \
             it holds: {same}"
        ),
    );
    let done = c.console_index(SHELL_DONE);
    let off = c.console_index("reboot: Power down");
    c.bus(
        "leaving the shell completes the poweroff",
        matches!((done, off), (Some(a), Some(b)) if a < b),
        format!("shell done at line {done:?}, power down at {off:?}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn console(lines: &[&str]) -> Console {
        Console {
            lines: lines.iter().map(|s| s.to_string()).collect(),
            timed_out: false,
            elapsed: Duration::from_secs(1),
        }
    }

    fn scenario(name: &str) -> Scenario {
        all().into_iter().find(|s| s.name == name).unwrap()
    }

    fn off_boot(module: &str) -> Vec<&'static str> {
        let m: &'static str = if module == "yes" {
            "@@T initrd module yes"
        } else {
            "@@T initrd module no"
        };
        vec![
            m,
            "@@T initrd kdbusfs_mounts 0",
            "@@T initrd status missing",
            "@@T initrd end initrd",
            "@@T root module no",
            "@@T root kdbusfs_mounts 0",
            "@@T root status missing",
            "@@T root failed_units 0",
            "@@T root end root",
            "[   14.6] reboot: Power down",
        ]
    }

    #[test]
    fn a_quiet_boot_passes_and_a_loaded_module_fails() {
        let checks = scenario("kdbus-0").evaluate(&console(&off_boot("no")));
        assert!(
            checks.iter().all(|c| c.outcome == Outcome::Pass),
            "{checks:?}"
        );
        let checks = scenario("kdbus-0").evaluate(&console(&off_boot("yes")));
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .collect();
        assert_eq!(failed.len(), 1, "{checks:?}");
        assert!(failed[0].name.contains("initrd: nothing loaded"));
    }

    #[test]
    fn hangs_and_oopses_fail() {
        let mut c = console(&off_boot("no"));
        c.timed_out = true;
        let checks = scenario("kdbus-absent").evaluate(&c);
        assert!(checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fail(_)) && c.name.contains("powered off")));
        let mut lines = off_boot("no");
        lines.push("[ 3.0] BUG: kernel NULL pointer dereference, address: 0000000000000008");
        let checks = scenario("kdbus-absent").evaluate(&console(&lines));
        assert!(checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fail(_)) && c.name.contains("oops")));
    }

    #[test]
    fn bus_checks_are_pending_only_while_bus_make_is_missing() {
        let base = [
            "[ 4.5] kdbus-init[124]: kdbus-init starting: kdbus=1 root=initramfs",
            "[ 7.3] systemd[1]: Starting systemd-journald.service - Journal Service...",
            "@@T initrd module yes",
            "@@T initrd kdbusfs_mounts 1",
            "@@T initrd end initrd",
            "@@T root end root",
            "[ 14.6] reboot: Power down",
        ];
        let mut gated = base.to_vec();
        gated.push("kdbus-init: creating the bus 0-system failed: this kdbus.ko does not implement BUS_MAKE (ENOTTY)");
        let checks = scenario("kdbus-on").evaluate(&console(&gated));
        assert!(
            !checks.iter().any(|c| matches!(c.outcome, Outcome::Fail(_))),
            "{checks:?}"
        );
        assert!(checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Pending(_))));
        // Without that excuse, a missing bus is a failure.
        let checks = scenario("kdbus-on").evaluate(&console(&base));
        assert!(checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fail(_))
                && c.name.contains("bus 0-system created")));
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn failed(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn a_user_service_must_get_its_message_once_as_its_user() {
        let good = full_boot();
        assert!(failed(&scenario("kdbus-on").evaluate(&good)).is_empty());
        let user_check = |c: &Console| {
            failed(&scenario("kdbus-on").evaluate(c))
                .iter()
                .any(|n| n.starts_with("activation as a user"))
        };
        for (from, to) in [
            // delivered twice
            (
                "uid=998 received=hello-to-a-user",
                "uid=998 received=hello-to-a-user|hello-to-a-user",
            ),
            // the service ran as root
            ("LateUser uid=998 received", "LateUser uid=0 received"),
            // the initramfs already knew the user: not the case under test
            (
                "initrd owner org.kdbus.test.LateUser none",
                "initrd owner org.kdbus.test.LateUser 998",
            ),
            // the activator was never replaced
            ("owner policy now", "something else"),
        ] {
            let mut bad = good.clone();
            for l in &mut bad.lines {
                *l = l.replace(from, to);
            }
            assert!(user_check(&bad), "{from} -> {to} must fail");
        }
    }

    #[test]
    fn the_shutdown_shell_must_show_kdbus_init_on_the_same_bus() {
        let shell = |kdbusctl_lines: &[String]| {
            let mut lines = vec![
                format!("@@T initrd bus_id {ID}"),
                "@@T initrd end initrd".to_owned(),
                SHELL_PROMPT.to_owned(),
                format!("    \"id\": \"{ID}\","),
                format!("    \"id128\": \"{ID}\","),
            ];
            lines.extend_from_slice(kdbusctl_lines);
            lines.push(SHELL_DONE.to_owned());
            lines.push("[ 40.0] reboot: Power down".to_owned());
            Console {
                lines,
                timed_out: false,
                elapsed: Duration::from_secs(40),
            }
        };
        let good = [
            "kdbus-init:    pid 125 (@kdbus-init), phase shutdown-root, binary /usr/sbin/kdbus-init"
                .to_owned(),
            format!("  bus          0-system id {ID} (owner handle held)"),
            "  this bus     is the bus kdbus-init holds".to_owned(),
        ];
        let checks = scenario("shutdown-shell").evaluate(&shell(&good));
        assert!(failed(&checks).is_empty(), "{checks:#?}");
        let mut wrong_phase = good.clone();
        wrong_phase[0] = wrong_phase[0].replace("shutdown-root", "real-root");
        let mut other_bus = good.clone();
        other_bus[2] = format!("  this bus     is NOT the bus kdbus-init holds ({ID})");
        for bad in [wrong_phase, other_bus] {
            let checks = scenario("shutdown-shell").evaluate(&shell(&bad));
            assert_eq!(
                failed(&checks),
                ["kdbusctl status in the shell shows kdbus-init in the shutdown root, on the same bus"],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_full_kdbus_boot_passes() {
        let checks = scenario("kdbus-on").evaluate(&full_boot());
        assert!(
            checks.iter().all(|c| c.outcome == Outcome::Pass),
            "{checks:#?}"
        );
    }

    fn full_boot() -> Console {
        let id = ID;
        let l = |s: String| s;
        let mut lines: Vec<String> = vec![
            l("[ 4.5] kdbus-init[124]: kdbus-init starting: kdbus=1 root=initramfs".into()),
            l("[ 7.3] systemd[1]: Starting systemd-journald.service - Journal Service...".into()),
        ];
        for p in ["initrd", "root", "shutdown", "final"] {
            lines.push(format!("@@T {p} module yes"));
            lines.push(format!("@@T {p} kdbusfs_mounts 1"));
            lines.push(format!("@@T {p} bus_id {id}"));
            lines.push(format!("@@T {p} owner_held yes"));
            lines.push(format!("@@T {p} exe_here yes"));
            lines.push(format!("@@T {p} root_link /"));
            lines.push(format!("@@T {p} deleted_maps 0"));
            lines.push(format!("@@T {p} fds_oldroot 0"));
            lines.push(format!("@@T {p} alive yes"));
            lines.push(format!("@@T {p} oldroot_mounts 0"));
            lines.push(format!("@@T {p} argv0 @kdbus-init"));
        }
        for s in [
            "@@T initrd root initramfs",
            "@@T initrd bus_created_us 4500000",
            "@@T initrd journald_start_us 7300000",
            "@@T initrd activation org.kdbus.test.Late initramfs deferred: not here",
            "@@T root root real-root",
            "@@T root unit_state active",
            "@@T root failed_units 0",
            "@@T root journal_records 12",
            "@@T root journal_emitted 12",
            "@@T root journal_duplicates 0",
            "@@T root journal_transport kernel 10",
            "@@T client sent org.kdbus.test.Late hello-from-the-initramfs",
            "@@T client sent org.kdbus.test.LateUser hello-to-a-user",
            "@@T initrd owner org.kdbus.test.Late 0",
            "@@T initrd owner org.kdbus.test.LateUser none",
            "@@T root owner org.kdbus.test.LateUser 998",
            "@@T root activation org.kdbus.test.LateUser real-root owner policy now kdbus-late (uid 998, from the real-root); queued messages kept",
            "@@T root served org.kdbus.test.Late uid=0 received=hello-from-the-initramfs",
            "@@T root served org.kdbus.test.LateUser uid=998 received=hello-to-a-user",
            "@@T root journal_transport journal 2",
            "@@T root activation org.kdbus.test.Late real-root service took the name; queued messages handed over",
            "@@T shutdown root shutdown-root",
            "@@T shutdown exe_link /usr/sbin/kdbus-init",
            "[ 20.1] kdbus-init[124]: running in the shutdown-root root=shutdown-root",
        ] {
            lines.push(s.into());
        }
        for p in ["initrd", "root", "shutdown", "final"] {
            lines.push(format!("@@T {p} end {p}"));
        }
        lines.push("[ 21.0] reboot: Power down".into());
        Console {
            lines,
            timed_out: false,
            elapsed: Duration::from_secs(21),
        }
    }
}
