//! Boot scenarios of the system bus, in an initramfs with D-Bus (dracut's
//! dbus module beside `--add kdbus`) and in the real root
//! (`kdbus.test.sysbus` runs `kdbus-test-sysbus.sh` there, which reports as
//! phase `sysbus`): with kdbus=1 kdbus-bridge is dbus.service on the kernel
//! bus from the initramfs on, systemd and its bus-activated services are
//! reachable through it, and a client that connected in the initramfs
//! keeps its connection to the shutdown root; with kdbus=0 the distro's
//! dbus-broker is the system bus in both and nothing of kdbus runs.

use super::initramfs::Flavour;
use super::scenarios::{bus_id, kdbus_off, kdbus_on, Checks, Scenario};

const P: &str = "sysbus";

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "system-bus",
            about: "kdbus=1: kdbus-bridge is dbus.service on the kernel bus from the initramfs on; systemd, logind, hostnamed (bus-activated by kdbus-init) and timedated answer through it in the real root; a D-Bus client of the initramfs (dbus-test-tool, '@') keeps its connection and answers busctl in the real root and dbus-send in the shutdown root; everything of kdbus-on holds",
            flavour: Flavour::SystemdDbus,
            cmdline: "kdbus=1 kdbus.test.sysbus",
            shell: false,
            evaluate: bridge_is_the_system_bus,
        },
        Scenario {
            name: "system-bus-bridge",
            about: "kdbus=1 in an image whose only D-Bus is kdbus-bridge (kdbus_bridge=yes, no dracut dbus module): everything system-bus checks",
            flavour: Flavour::SystemdBridge,
            cmdline: "kdbus=1 kdbus.test.sysbus",
            shell: false,
            evaluate: bridge_is_the_system_bus,
        },
        Scenario {
            name: "system-bus-bridge-0",
            about: "kdbus=0 in the image of system-bus-bridge: no D-Bus in the initramfs (the bridge waits for kdbus=1), dbus-broker is the real root's system bus, nothing of kdbus loaded",
            flavour: Flavour::SystemdBridge,
            cmdline: "kdbus=0 kdbus.test.sysbus",
            shell: false,
            evaluate: broker_only_in_the_real_root,
        },
        Scenario {
            name: "system-bus-0",
            about: "kdbus=0: dbus-broker is the system bus in the initramfs and the real root, as without kdbus; no kdbus-bridge, nothing of kdbus loaded",
            flavour: Flavour::SystemdDbus,
            cmdline: "kdbus=0 kdbus.test.sysbus",
            shell: false,
            evaluate: broker_is_the_system_bus,
        },
    ]
}

/// What the probe reports of the real root's system bus units and daemons.
const BUS_UNIT_KEYS: [&str; 5] = [
    "dbus_service",
    "dbus_socket",
    "dbus_state",
    "bridge_procs",
    "broker_procs",
];

fn bridge_is_the_system_bus(c: &mut Checks) {
    kdbus_on(c);
    reported(c);
    let ok = c.is(P, "dbus_service", "kdbus-bridge.service")
        && c.is(P, "dbus_socket", "kdbus-bridge.socket")
        && c.is(P, "dbus_state", "active")
        && c.is(P, "bridge_procs", "1")
        && c.is(P, "broker_procs", "0");
    c.bus(
        "real root: dbus.service and dbus.socket are kdbus-bridge's (the generator's aliases), \
         active; no dbus-broker runs",
        ok,
        c.describe(P, &BUS_UNIT_KEYS),
    );
    let logs = c.m.all(P, "log").join(" | ");
    c.bus(
        "real root: the bridge took its socket from systemd and said so",
        logs.contains("listening on the socket systemd passed"),
        format!("dbus.service's journal: {logs}"),
    );
    clients_answer(c);
    let activated = |name: &str| {
        c.m.all("root", "activation")
            .iter()
            .any(|a| a.starts_with(&format!("{name} real-root")) && a.contains("took the name"))
    };
    let hostnamed = activated("org.freedesktop.hostname1");
    let timedated = activated("org.freedesktop.timedate1");
    c.bus(
        "real root: hostnamed and timedated were started by kdbus-init's activators",
        hostnamed && timedated,
        format!(
            "hostname1 {hostnamed}, timedate1 {timedated}; activations: {:?}",
            c.m.all("root", "activation")
        ),
    );
    let systemd: Vec<&str> =
        c.m.all("root", "activation")
            .into_iter()
            .filter(|a| a.starts_with("org.freedesktop.systemd1 "))
            .collect();
    // A call to it before PID 1 connects is deferred (a race: often none
    // comes), and the deferral ends when PID 1 takes the name.
    let deferred = systemd.iter().any(|a| a.contains("deferred"));
    let taken = systemd.iter().any(|a| a.contains("name was taken"));
    c.bus(
        "real root: nothing is started for org.freedesktop.systemd1 (PID 1 takes it itself; \
         a call that waited for it is handed over)",
        !systemd.iter().any(|a| a.contains(" started ")) && deferred == taken,
        format!("its activations: {systemd:?}"),
    );
    let initrd = bus_id(c, "initrd");
    let seen = bus_id(c, P);
    c.bus(
        "real root: busctl status reports the bus id of the initramfs's bus",
        initrd.is_some() && seen == initrd,
        format!("initrd {initrd:?}, busctl {seen:?}"),
    );
    the_initramfs_client_stays(c);
    policy_holds(c, true);
}

/// The initramfs's D-Bus is the bridge, which stays for the whole boot, and
/// a client that connected there keeps its connection (the same unique
/// name) through the real root into the shutdown root.
fn the_initramfs_client_stays(c: &mut Checks) {
    let ok = c.is("initrd", "dbus_service", "kdbus-bridge.service")
        && c.is("initrd", "dbus_state", "active");
    c.bus(
        "initramfs: dbus.service is kdbus-bridge, active, in place of dracut's dbus-broker",
        ok,
        c.describe("initrd", &["dbus_service", "dbus_state"]),
    );
    let first = unique_name(c.m.get("initrd", "early_owner"));
    c.bus(
        "initramfs: the early client (dbus-test-tool) owns org.kdbus.test.Early",
        first.is_some(),
        c.describe("initrd", &["early_owner", "early_pid"]),
    );
    let exe = c.m.get(P, "bridge_exe").unwrap_or("(missing)");
    c.bus(
        "real root: the bridge that serves is the initramfs's (its program went with the initramfs)",
        exe.ends_with("(deleted)"),
        format!("the bridge's program: {exe}"),
    );
    for (phase, where_) in [
        (P, "real root (busctl call)"),
        ("final", "shutdown root (dbus-send)"),
    ] {
        let owner = unique_name(c.m.get(phase, "early_owner"));
        let call = c.m.get(phase, "early_call").unwrap_or("(missing)");
        c.bus(
            &format!(
                "{where_}: the early client answers on the connection it opened in the initramfs"
            ),
            first.is_some() && owner == first && (call == "rc=0" || call.starts_with("rc=0 ")),
            format!("owner in the initramfs {first:?}, now {owner:?}; the call: {call}"),
        );
    }
}

/// The bus policy as a user without privileges meets it
/// (`kdbus-test-sysbus.sh`): with kdbus=0 the same script shows that
/// dbus-broker, the reference, agrees on what is checked of both.
fn policy_holds(c: &mut Checks, kdbus: bool) {
    let denied = |v: &str| v.starts_with("rc=1 ") && v.contains("Error.AccessDenied");
    let primary_owner = |v: &str| v.starts_with("rc=0 ") && v.ends_with("uint32 1");
    let get = |c: &Checks, k: &str| c.m.get(P, k).unwrap_or("(missing)").to_owned();
    let record = |c: &mut Checks, name: &str, ok: bool, why: String| {
        if kdbus {
            c.bus(name, ok, why)
        } else {
            c.base(name, ok, why)
        }
    };
    let own = get(c, "policy_own_reserved");
    record(
        c,
        "policy, unprivileged user: owning org.freedesktop.login1, which its system.d file \
         reserves to root, is denied",
        denied(&own),
        own,
    );
    let (before, after) = (
        get(c, "policy_own_before_reload"),
        get(c, "policy_own_after_reload"),
    );
    record(
        c,
        "policy, unprivileged user: a name denied by default may be owned once a policy file \
         allowing it is added and the bus reloaded (systemctl reload dbus.service)",
        denied(&before) && primary_owner(&after),
        format!("before: {before}; after: {after}"),
    );
    if !kdbus {
        return;
    }
    let forbidden = get(c, "policy_denied_call");
    record(
        c,
        "policy, unprivileged user: a call that a deny send_member rule forbids is AccessDenied, \
         and the error names the rule",
        denied(&forbidden) && forbidden.contains("send_member=\"Forbidden\""),
        forbidden,
    );
    let allowed = get(c, "policy_allowed_call");
    record(
        c,
        "policy, unprivileged user: a call that an allow send_destination rule permits is answered",
        allowed.starts_with("rc=0 "),
        allowed,
    );
    let seats = get(c, "console_seats");
    let [before, during, after] =
        ["before", "during", "after"].map(|when| get(c, &format!("policy_console_{when}")));
    record(
        c,
        "policy, unprivileged user: a name that an at_console=\"true\" policy allows is denied, \
         owned while the user has a session on seat0 (a virtual terminal), denied after it",
        denied(&before) && seats == "[seat0]" && primary_owner(&during) && denied(&after),
        format!("before: {before}; seats: {seats}; during: {during}; after: {after}"),
    );
}

/// The unique name (`":1.N"`, quoted) in a reply printed by busctl or
/// dbus-send (whose header line names sender and destination unquoted).
fn unique_name(reply: Option<&str>) -> Option<String> {
    let reply = reply?;
    let at = reply.find("\":1.")? + 1;
    let name: String = reply[at..]
        .chars()
        .take_while(|ch| *ch == ':' || *ch == '.' || ch.is_ascii_digit())
        .collect();
    (name.len() > 3).then_some(name)
}

fn broker_is_the_system_bus(c: &mut Checks) {
    kdbus_off(c, None);
    reported(c);
    c.base(
        "initramfs: dbus.service is dracut's dbus-broker",
        c.is("initrd", "dbus_service", "dbus-broker.service"),
        c.describe("initrd", &["dbus_service"]),
    );
    broker_serves_the_real_root(c);
}

/// kdbus=0 with an image whose only D-Bus is the bridge: the initramfs
/// goes without one, the real root has the distro's.
fn broker_only_in_the_real_root(c: &mut Checks) {
    kdbus_off(c, None);
    reported(c);
    c.base(
        "initramfs: no D-Bus runs (dbus.service is not there: the bridge's generator waits for kdbus=1)",
        c.is("initrd", "dbus_service", "dbus.service")
            && c.m.get("initrd", "dbus_state") != Some("active"),
        c.describe("initrd", &["dbus_service", "dbus_state"]),
    );
    broker_serves_the_real_root(c);
}

fn broker_serves_the_real_root(c: &mut Checks) {
    policy_holds(c, false);
    let ok = c.is(P, "dbus_service", "dbus-broker.service")
        && c.is(P, "dbus_socket", "dbus.socket")
        && c.is(P, "dbus_state", "active")
        && c.is(P, "bridge_procs", "0")
        && c.m.num(P, "broker_procs").unwrap_or(0) >= 1;
    c.base(
        "real root: dbus.service is dbus-broker, active; no kdbus-bridge runs",
        ok,
        c.describe(P, &BUS_UNIT_KEYS),
    );
    clients_answer(c);
}

fn reported(c: &mut Checks) {
    c.base(
        "the system bus report ran in the real root",
        c.m.seen(P),
        "no '@@T sysbus end' marker",
    );
}

/// What every system bus must give its clients, whichever it is.
fn clients_answer(c: &mut Checks) {
    let listed = c.m.all(P, "listed");
    let both = ["org.freedesktop.systemd1", "org.freedesktop.login1"]
        .iter()
        .all(|n| listed.contains(n));
    c.bus(
        "real root: busctl --system list shows org.freedesktop.systemd1 and org.freedesktop.login1",
        c.is(P, "busctl_list_rc", "0") && both,
        format!(
            "busctl rc {}, listed {listed:?}, owners {:?}",
            c.m.get(P, "busctl_list_rc").unwrap_or("(missing)"),
            c.m.all(P, "owner")
        ),
    );
    for (key, want) in [("hostnamectl", "kdbus-vm"), ("timedatectl", "Timezone=")] {
        let v = c.m.get(P, key).unwrap_or("(missing)").to_owned();
        let ok = v.starts_with("rc=0 ") && v.contains(want);
        c.bus(&format!("real root: {key} answers"), ok, v);
    }
    let v = c.m.get(P, "loginctl").unwrap_or("(missing)").to_owned();
    c.bus(
        "real root: loginctl list-sessions works",
        v == "rc=0" || v.starts_with("rc=0 "),
        v,
    );
}

#[cfg(test)]
mod tests {
    use super::super::qemu::Console;
    use super::super::scenarios::Outcome;
    use super::*;
    use std::time::Duration;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn broker_boot() -> Vec<String> {
        let mut lines: Vec<String> = [
            "@@T initrd module no",
            "@@T initrd kdbusfs_mounts 0",
            "@@T initrd status missing",
            "@@T initrd end initrd",
            "@@T initrd dbus_service dbus-broker.service",
            "@@T sysbus dbus_service dbus-broker.service",
            "@@T sysbus dbus_socket dbus.socket",
            "@@T sysbus dbus_state active",
            "@@T sysbus bridge_procs 0",
            "@@T sysbus broker_procs 1",
            "@@T sysbus busctl_list_rc 0",
            "@@T sysbus listed org.freedesktop.systemd1",
            "@@T sysbus listed org.freedesktop.login1",
            "@@T sysbus hostnamectl rc=0 kdbus-vm",
            "@@T sysbus timedatectl rc=0 Timezone=Etc/UTC",
            "@@T sysbus loginctl rc=0",
            "@@T sysbus policy_own_reserved rc=1 Error org.freedesktop.DBus.Error.AccessDenied: denied",
            "@@T sysbus policy_own_before_reload rc=1 Error org.freedesktop.DBus.Error.AccessDenied: x",
            "@@T sysbus policy_own_after_reload rc=0 method return time=1 uint32 1",
            "@@T sysbus end sysbus",
            "@@T root module no",
            "@@T root kdbusfs_mounts 0",
            "@@T root status missing",
            "@@T root failed_units 0",
            "@@T root end root",
            "[ 30.0] reboot: Power down",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        lines.push(format!("@@T sysbus bus_id {ID}"));
        lines
    }

    fn evaluate(name: &str, lines: Vec<String>) -> Vec<String> {
        let console = Console {
            lines,
            timed_out: false,
            elapsed: Duration::from_secs(30),
        };
        let s = all().into_iter().find(|s| s.name == name).unwrap();
        s.evaluate(&console)
            .into_iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn dbus_broker_boot_passes_and_a_running_bridge_fails() {
        assert!(evaluate("system-bus-0", broker_boot()).is_empty());
        let bridged: Vec<String> = broker_boot()
            .into_iter()
            .map(|l| l.replace("bridge_procs 0", "bridge_procs 1"))
            .collect();
        let failed = evaluate("system-bus-0", bridged);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].contains("no kdbus-bridge runs"));
    }

    #[test]
    fn a_bus_without_logind_or_an_unanswered_hostnamectl_fails() {
        let no_logind: Vec<String> = broker_boot()
            .into_iter()
            .filter(|l| !l.ends_with("listed org.freedesktop.login1"))
            .collect();
        let failed = evaluate("system-bus-0", no_logind);
        assert!(failed.iter().any(|f| f.contains("busctl --system list")));
        let silent: Vec<String> = broker_boot()
            .into_iter()
            .map(|l| l.replace("hostnamectl rc=0 kdbus-vm", "hostnamectl rc=124 "))
            .collect();
        let failed = evaluate("system-bus-0", silent);
        assert_eq!(failed, ["real root: hostnamectl answers"]);
    }

    /// The same boot's report with the bridge as the bus.
    fn bridge_boot() -> Vec<String> {
        broker_boot()
            .into_iter()
            .map(|l| {
                l.replace("dbus-broker.service", "kdbus-bridge.service")
                    .replace("dbus_socket dbus.socket", "dbus_socket kdbus-bridge.socket")
                    .replace("bridge_procs 0", "bridge_procs 1")
                    .replace("broker_procs 1", "broker_procs 0")
            })
            .collect()
    }

    #[test]
    fn the_bridge_boot_wants_the_initramfs_bus_id_and_kdbus_activation() {
        let mut lines = bridge_boot();
        lines.push(
            "@@T root activation org.freedesktop.systemd1 real-root started /bin/false".into(),
        );
        let failed = evaluate("system-bus", lines);
        for want in [
            "the bridge took its socket from systemd",
            "started by kdbus-init's activators",
            "PID 1 takes it itself",
            "bus id of the initramfs's bus",
        ] {
            assert!(
                failed.iter().any(|f| f.contains(want)),
                "{want}: {failed:?}"
            );
        }
        assert!(!failed
            .iter()
            .any(|f| f.contains("dbus.service and dbus.socket")));
    }

    #[test]
    fn a_reload_that_changes_nothing_fails_the_policy_check() {
        let unchanged: Vec<String> = broker_boot()
            .into_iter()
            .map(|l| {
                if l.contains("policy_own_after_reload") {
                    "@@T sysbus policy_own_after_reload rc=1 Error org.freedesktop.DBus.Error.AccessDenied: x".into()
                } else {
                    l
                }
            })
            .collect();
        let failed = evaluate("system-bus-0", unchanged);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].contains("bus reloaded"));
    }

    #[test]
    fn the_early_client_must_keep_its_unique_name_to_the_shutdown_root() {
        let boot_with = |owner_at_the_end: &str| {
            let mut lines = bridge_boot();
            lines.extend([
                "@@T initrd dbus_state active".to_owned(),
                "@@T initrd early_owner s \":1.7\"".to_owned(),
                "@@T sysbus early_owner s \":1.7\"".to_owned(),
                "@@T sysbus early_call rc=0 ".to_owned(),
                "@@T sysbus bridge_exe /usr/bin/kdbus-bridge (deleted)".to_owned(),
                "@@T final early_call rc=0 method return time=1 sender=:1.7".to_owned(),
                format!(
                    "@@T final early_owner rc=0 method return time=1 sender=org.freedesktop.DBus \
                     -> destination=:1.9 serial=3 reply_serial=2 string \"{owner_at_the_end}\""
                ),
            ]);
            evaluate("system-bus", lines)
        };
        let stays = |failed: &[String]| !failed.iter().any(|f| f.contains("early client"));
        let failed = boot_with(":1.7");
        assert!(stays(&failed), "{failed:?}");
        assert!(!stays(&boot_with(":1.12")));
        assert_eq!(unique_name(Some("s \":1.42\"")), Some(":1.42".into()));
        assert_eq!(unique_name(Some("Call failed: no owner")), None);
    }

    #[test]
    fn a_call_to_systemd1_that_waited_must_be_handed_over() {
        let failed_systemd1 =
            |records: &[&str]| {
                let mut lines = broker_boot();
                lines.extend(records.iter().map(|r| {
                    format!("@@T root activation org.freedesktop.systemd1 real-root {r}")
                }));
                evaluate("system-bus", lines)
                    .iter()
                    .any(|f| f.contains("org.freedesktop.systemd1"))
            };
        let deferred = "deferred: systemd takes this name itself when it connects to the bus";
        let taken = "the name was taken without a start from here; queued messages handed over";
        assert!(!failed_systemd1(&[]));
        assert!(!failed_systemd1(&[deferred, taken]));
        assert!(failed_systemd1(&[deferred]));
    }
}
