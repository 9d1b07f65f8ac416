//! kdbus-bridge with Debian's own D-Bus programs: dbus-send, dbus-monitor,
//! busctl, gdbus and python3-dbus talk through the bridge to each other and
//! to native kdbus peers. Each test runs its own bridge on a bus of its own.
//! The python helpers are in tests/bridge/.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kdbus_abi_tests::fixture::TestBus;

/// target/debug/deps/bridge-HASH -> target/debug/kdbus-bridge
fn bridge_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("kdbus-bridge");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p kdbus-bridge)",
        bin.display()
    );
    bin
}

fn helper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bridge")
        .join(name)
}

/// Debian's python, which has python3-dbus (not whatever is first on PATH).
const PYTHON: &str = "/usr/bin/python3";

/// A bus of its own with a bridge serving it; both go on drop.
struct Bridge {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    address: String,
    bus: TestBus,
}

impl Bridge {
    /// A bridge whose policy allows everything (tests/bridge/open.conf).
    fn start() -> Bridge {
        Bridge::start_with(|_| helper("open.conf"))
    }

    /// A bridge with the configuration `config` returns; it gets the
    /// bridge's directory to write it in.
    fn start_with(config: impl FnOnce(&Path) -> PathBuf) -> Bridge {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let bus = TestBus::new();
        let dir = std::env::temp_dir().join(format!(
            "kdbus-bridge-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("bus.sock");
        let address = format!("unix:path={}", socket.display());
        let log = std::fs::File::create(dir.join("bridge.log")).unwrap();
        let config = config(&dir);
        let child = Command::new(bridge_binary())
            .arg("--config")
            .arg(config)
            .arg("--bus")
            .arg(bus.endpoint())
            .arg("--address")
            .arg(&address)
            .args(["--log", "stderr", "--verbose"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kdbus-bridge");
        let bridge = Bridge {
            child,
            dir,
            socket,
            address,
            bus,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&bridge.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "the bridge did not listen within 10 s; its log:\n{}",
                bridge.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bridge
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bridge.log")).unwrap_or_default()
    }

    /// busctl's option (dbus-send's --address means a peer, not a bus).
    fn address_arg(&self) -> String {
        format!("--address={}", self.address)
    }

    fn bus_arg(&self) -> String {
        format!("--bus={}", self.address)
    }

    /// Runs a program (at most 90 s: only a guard against a hang; a python
    /// client alone took 25 s to start on a loaded 2-core host under TCG)
    /// and returns its output.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("90")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    }

    /// Runs a program that must succeed; returns its stdout.
    fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} failed ({}):\n{}\nbridge log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a program that must fail; returns its stderr.
    fn fails(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            !out.status.success(),
            "{program} {args:?} succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `busctl` on the bridge's address; must succeed.
    fn busctl(&self, args: &[&str]) -> String {
        let addr = self.address_arg();
        let mut all = vec![addr.as_str()];
        all.extend_from_slice(args);
        self.ok("busctl", &all)
    }

    /// `gdbus call` of `method` on `dest`'s object `path`; must succeed.
    fn gdbus_call(&self, dest: &str, path: &str, method: &str, args: &[&str]) -> String {
        let mut all = vec![
            "call",
            "--address",
            &self.address,
            "--dest",
            dest,
            "--object-path",
            path,
            "--method",
            method,
        ];
        all.extend_from_slice(args);
        self.ok("gdbus", &all)
    }

    fn dbus_send(&self, args: &[&str]) -> String {
        let addr = self.bus_arg();
        let mut all = vec![addr.as_str(), "--print-reply"];
        all.extend_from_slice(args);
        self.ok("dbus-send", &all)
    }

    /// `dbus-send --print-reply` that must fail; returns its stderr.
    fn dbus_send_fails(&self, args: &[&str]) -> String {
        let addr = self.bus_arg();
        let mut all = vec![addr.as_str(), "--print-reply"];
        all.extend_from_slice(args);
        self.fails("dbus-send", &all)
    }

    /// Starts the python service owning `name`; waits until it owns it.
    fn service(&self, name: &str) -> Service {
        let mut child = Command::new(PYTHON)
            .arg(helper("service.py"))
            .arg(&self.address)
            .arg(name)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start service.py");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "service.py: bridge log:\n{}",
            self.log()
        );
        Service { child }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_driver_answers_dbus_send_busctl_and_gdbus() {
    let b = Bridge::start();
    let names = b.dbus_send(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ListNames",
    ]);
    assert!(names.contains("\"org.freedesktop.DBus\""), "{names}");
    assert!(names.contains("\":1."), "{names}");

    let id = b.dbus_send(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.GetId",
    ]);
    let conn = b.bus.conn();
    assert!(
        id.contains(&kdbus::id128_hex(conn.bus_id128())),
        "GetId: {id}"
    );

    let err = b.dbus_send_fails(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.GetNameOwner",
        "string:org.example.Nobody",
    ]);
    assert!(
        err.contains("org.freedesktop.DBus.Error.NameHasNoOwner"),
        "{err}"
    );
    let err = b.dbus_send_fails(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.NoSuchMethod",
    ]);
    assert!(
        err.contains("org.freedesktop.DBus.Error.UnknownMethod"),
        "{err}"
    );

    let list = b.busctl(&["list", "--no-pager"]);
    assert!(list.contains("org.freedesktop.DBus"), "{list}");
    let introspect = b.busctl(&[
        "introspect",
        "--no-pager",
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
    ]);
    assert!(introspect.contains(".RequestName"), "{introspect}");
    let reply = b.gdbus_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.NameHasOwner",
        &["org.freedesktop.DBus"],
    );
    assert_eq!(reply.trim(), "(true,)");
}

/// The driver's other interfaces, and what the system bus refuses: as
/// dbus-daemon on the system bus, UpdateActivationEnvironment is denied
/// (services get their environment from their units; here from kdbus-init).
#[test]
fn the_driver_answers_peer_and_properties_and_refuses_what_a_system_bus_does() {
    let b = Bridge::start();
    let driver = ["--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"];
    let call = |method: &str, args: &[&str]| {
        let mut all = driver.to_vec();
        all.push(method);
        all.extend_from_slice(args);
        b.dbus_send(&all)
    };
    let fails = |method: &str, args: &[&str]| {
        let mut all = driver.to_vec();
        all.push(method);
        all.extend_from_slice(args);
        b.dbus_send_fails(&all)
    };

    call("org.freedesktop.DBus.Peer.Ping", &[]);
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap();
    let id = call("org.freedesktop.DBus.Peer.GetMachineId", &[]);
    assert!(id.contains(machine_id.trim()), "GetMachineId: {id}");

    let prop = |name: &str| {
        call(
            "org.freedesktop.DBus.Properties.Get",
            &["string:org.freedesktop.DBus", &format!("string:{name}")],
        )
    };
    assert!(prop("Interfaces").contains("org.freedesktop.DBus.Monitoring"));
    assert!(prop("Features").contains("array ["));
    let all = call(
        "org.freedesktop.DBus.Properties.GetAll",
        &["string:org.freedesktop.DBus"],
    );
    assert!(
        all.contains("\"Features\"") && all.contains("\"Interfaces\""),
        "{all}"
    );
    let err = fails(
        "org.freedesktop.DBus.Properties.Get",
        &["string:org.freedesktop.DBus", "string:Bogus"],
    );
    assert!(err.contains("UnknownProperty"), "{err}");
    let err = fails(
        "org.freedesktop.DBus.Properties.Set",
        &[
            "string:org.freedesktop.DBus",
            "string:Features",
            "variant:string:x",
        ],
    );
    assert!(err.contains("PropertyReadOnly"), "{err}");

    // No SELinux in the VM: no context for the driver nor for a client
    // (whatever AppArmor's label), and no audit data.
    let err = fails(
        "org.freedesktop.DBus.GetConnectionSELinuxSecurityContext",
        &["string:org.freedesktop.DBus"],
    );
    assert!(err.contains("SELinuxSecurityContextUnknown"), "{err}");
    let _service = b.service("org.example.Labelled");
    let err = fails(
        "org.freedesktop.DBus.GetConnectionSELinuxSecurityContext",
        &["string:org.example.Labelled"],
    );
    assert!(err.contains("SELinuxSecurityContextUnknown"), "{err}");
    let err = fails(
        "org.freedesktop.DBus.GetConnectionSELinuxSecurityContext",
        &["string:org.example.Nobody"],
    );
    assert!(err.contains("NameHasNoOwner"), "{err}");
    let err = fails(
        "org.freedesktop.DBus.GetAdtAuditSessionData",
        &["string:org.freedesktop.DBus"],
    );
    assert!(err.contains("AdtAuditDataUnknown"), "{err}");

    let err = fails(
        "org.freedesktop.DBus.UpdateActivationEnvironment",
        &["dict:string:string:FOO,bar"],
    );
    assert!(err.contains("AccessDenied"), "{err}");
}

#[test]
fn clients_are_on_the_bus_with_their_own_credentials() {
    let b = Bridge::start();
    let out = b.ok(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            PYTHON,
            helper("client.py").to_str().unwrap(),
            &b.address,
            "creds",
        ],
    );
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields[0], "uid=65534", "{out}");
    let pid = fields[1].strip_prefix("pid=").unwrap();
    assert_eq!(fields[2], format!("self={pid}"), "{out}");
}

#[test]
fn calls_errors_and_fds_between_legacy_clients() {
    let b = Bridge::start();
    let _service = b.service("org.example.Test");
    let reply = b.dbus_send(&[
        "--dest=org.example.Test",
        "/org/example/Echo",
        "org.example.Echo.Echo",
        "string:through the bridge",
    ]);
    assert!(reply.contains("string \"through the bridge\""), "{reply}");

    let reply = b.gdbus_call(
        "org.example.Test",
        "/org/example/Echo",
        "org.example.Echo.Echo",
        &["from gdbus"],
    );
    assert_eq!(reply.trim(), "('from gdbus',)");

    let reply = b.busctl(&[
        "call",
        "org.example.Test",
        "/org/example/Echo",
        "org.example.Echo",
        "Echo",
        "s",
        "from busctl",
    ]);
    assert_eq!(reply.trim(), "s \"from busctl\"");

    let err = b.dbus_send_fails(&[
        "--dest=org.example.Test",
        "/org/example/Echo",
        "org.example.Echo.Fail",
    ]);
    assert!(err.contains("org.example.Error.Failed"), "{err}");
    let err = b.dbus_send_fails(&["--dest=org.example.Nobody", "/", "org.example.Echo.Echo"]);
    assert!(
        err.contains("org.freedesktop.DBus.Error.ServiceUnknown"),
        "{err}"
    );

    let out = b.ok(
        PYTHON,
        &[helper("client.py").to_str().unwrap(), &b.address, "fds"],
    );
    assert_eq!(out.trim(), "fds ok");
}

/// Bytes that authenticate as root (the tests run as root).
fn authenticated(socket: &Path) -> UnixStream {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"\0AUTH EXTERNAL 30\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"OK "),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(b"BEGIN\r\n").unwrap();
    s
}

#[test]
fn bad_clients_affect_nobody_else() {
    let b = Bridge::start();
    let _service = b.service("org.example.Test");

    // A wrong uid is refused.
    let mut liar = UnixStream::connect(&b.socket).unwrap();
    liar.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    liar.write_all(b"\0AUTH EXTERNAL 31303030\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = liar.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"REJECTED"), "{:?}", &buf[..n]);

    // Garbage after authenticating: the bridge hangs up on that client.
    let mut garbage = authenticated(&b.socket);
    garbage.write_all(&[0xAB; 4096]).unwrap();
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);

    // Half a message, then silence; and a client that calls and leaves.
    let mut stalled = authenticated(&b.socket);
    stalled.write_all(b"l\x01\x00\x01\x10\x00\x00\x00").unwrap();
    let quitter = authenticated(&b.socket);
    drop(quitter);

    let start = Instant::now();
    let reply = b.dbus_send(&[
        "--dest=org.example.Test",
        "/org/example/Echo",
        "org.example.Echo.Echo",
        "string:still served",
    ]);
    assert!(reply.contains("still served"), "{reply}");
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(stalled);
}

/// The signals dbus-monitor printed: (path, member, first string argument).
fn monitored(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with("signal ") {
            continue;
        }
        let field = |key: &str| {
            line.split([' ', ';'])
                .find_map(|f| f.strip_prefix(key))
                .unwrap_or_default()
                .to_owned()
        };
        let arg = lines
            .peek()
            .and_then(|l| l.trim().strip_prefix("string \""))
            .map(|s| s.trim_end_matches('"').to_owned())
            .unwrap_or_default();
        out.push((field("path="), field("member="), arg));
    }
    out
}

#[test]
fn signals_reach_exactly_the_clients_whose_rules_match() {
    let b = Bridge::start();
    let _service = b.service("org.example.Test");
    let out_path = b.dir.join("monitor.out");
    let mut monitor = Command::new("dbus-monitor")
        .args(["--address", &b.address])
        .args([
            "type='signal',interface='org.example.Echo',member='Ping',arg0='one'",
            "type='signal',path_namespace='/org/example/ns'",
            "type='signal',sender='org.example.Test',member='Ping',arg0='svc'",
            // No bloom bits for argNpath: only the bridge's exact check
            // keeps the wrong paths away.
            "type='signal',member='Tree',arg0path='/a/b/'",
            "type='signal',member='Sync'",
        ])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dbus-monitor");
    let emit = |path: &str, member: &str, arg: &str| {
        let bus = b.bus_arg();
        let iface_member = format!("org.example.Echo.{member}");
        let arg = format!("string:{arg}");
        b.ok(
            "dbus-send",
            &[&bus, "--type=signal", path, &iface_member, &arg],
        );
    };
    // dbus-monitor installs its rules in order: once it sees Sync, the
    // others are in place.
    let synced = |tag: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            emit("/sync", "Sync", tag);
            std::thread::sleep(Duration::from_millis(200));
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            if monitored(&text)
                .iter()
                .any(|(_, m, a)| m == "Sync" && a == tag)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dbus-monitor never saw Sync {tag}:\n{text}\nbridge log:\n{}",
                b.log()
            );
        }
    };
    synced("start");
    emit("/x", "Ping", "one");
    emit("/x", "Ping", "two");
    emit("/org/example/ns/deep", "Other", "z");
    emit("/org/example/nsx", "Other", "z");
    emit("/org/example/ns", "Other", "top");
    emit("/x", "Ping", "svc"); // right arg0, wrong sender
    b.dbus_send(&[
        "--dest=org.example.Test",
        "/org/example/Echo",
        "org.example.Echo.Emit",
        "string:/from/service",
        "string:svc",
    ]);
    emit("/t", "Tree", "/a/b/c");
    emit("/t", "Tree", "/c/");
    emit("/t", "Tree", "/a/");
    emit("/t", "Tree", "/a/bc");
    synced("end");
    let _ = monitor.kill();
    let _ = monitor.wait();
    let text = std::fs::read_to_string(&out_path).unwrap();
    let got: Vec<_> = monitored(&text)
        .into_iter()
        // NameAcquired and NameLost of its own unique name are the driver's
        // to the monitor itself (before and as it becomes one), not rules'.
        .filter(|(_, member, _)| !["Sync", "NameAcquired", "NameLost"].contains(&member.as_str()))
        .map(|(p, m, a)| format!("{p} {m} {a}"))
        .collect();
    assert_eq!(
        got,
        [
            "/x Ping one",
            "/org/example/ns/deep Other z",
            "/org/example/ns Other top",
            "/from/service Ping svc",
            "/t Tree /a/b/c",
            "/t Tree /a/",
        ],
        "dbus-monitor's output:\n{text}\nbridge log:\n{}",
        b.log()
    );
}

#[test]
fn name_ownership_and_queueing() {
    let b = Bridge::start();
    let out = b.ok(PYTHON, &[helper("names.py").to_str().unwrap(), &b.address]);
    assert_eq!(out.trim(), "names ok");
}

/// A service written against the kdbus library, answering D-Bus calls:
/// the payload of its messages is the D-Bus message.
fn native_service(conn: &kdbus::Connection, stop: &std::sync::atomic::AtomicBool) {
    use kdbus::dbus::Message;
    let mut serial = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if !conn.wait(Some(Duration::from_millis(100))).unwrap() {
            continue;
        }
        let Some(call) = conn.recv().unwrap().message else {
            continue;
        };
        if !call.is_call() {
            continue;
        }
        let msg = call.dbus().expect("a D-Bus message");
        let (who,): (String,) = msg.body_as().expect("one string");
        let mut reply = Message::method_return(msg.header(), &(format!("hello {who}"),)).unwrap();
        serial += 1;
        reply
            .stamp(serial, Some(&format!(":1.{}", conn.id())))
            .unwrap();
        conn.send(&kdbus::MessageBuilder::reply_to(&call).dbus(&reply))
            .unwrap();
    }
}

#[test]
fn native_kdbus_peers_and_legacy_clients_call_each_other() {
    let b = Bridge::start();
    let _service = b.service("org.example.Test");
    let native = b.bus.conn();
    native
        .acquire_name("org.example.Native", kdbus::NameFlags::empty())
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| native_service(&native, &stop));
        let reply = b.busctl(&[
            "call",
            "org.example.Native",
            "/org/example/Native",
            "org.example.Native",
            "Greet",
            "s",
            "busctl",
        ]);
        assert_eq!(reply.trim(), "s \"hello busctl\"");
        let reply = b.dbus_send(&[
            "--dest=org.example.Native",
            "/org/example/Native",
            "org.example.Native.Greet",
            "string:dbus-send",
        ]);
        assert!(reply.contains("string \"hello dbus-send\""), "{reply}");
        stop.store(true, Ordering::Relaxed);
    });

    // And the other way: a native caller reaches the python service.
    use kdbus::dbus::Message;
    let caller = b.bus.conn();
    let mut call = Message::method_call(
        Some("org.example.Test"),
        "/org/example/Echo",
        Some("org.example.Echo"),
        "Echo",
        &("from kdbus",),
    )
    .unwrap();
    call.stamp(7, Some(&format!(":1.{}", caller.id()))).unwrap();
    let reply = caller
        .call(&kdbus::MessageBuilder::to_name("org.example.Test").dbus(&call))
        .unwrap();
    let reply = reply.dbus().unwrap();
    assert_eq!(reply.header().reply_serial, Some(7));
    let (text,): (String,) = reply.body_as().unwrap();
    assert_eq!(text, "from kdbus");
}

/// Waits (10 s at most) until something is queued on `activator`.
fn wait_queued(activator: &kdbus::Connection, b: &Bridge) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !activator.has_message().unwrap() {
        assert!(
            Instant::now() < deadline,
            "nothing queued on the activator; bridge log:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Output of a program started in the background.
fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn activatable_names_start_their_service_when_called() {
    use kdbus::{Access, HelloBuilder, PolicyAccess};
    let b = Bridge::start();
    let world = [PolicyAccess::world(Access::Talk)];
    let lazy = b
        .bus
        .connect(HelloBuilder::new().activator("org.example.Lazy", &world));
    let lazy2 = b
        .bus
        .connect(HelloBuilder::new().activator("org.example.Lazy2", &world));
    let driver = |method: &str, args: &[&str]| {
        let member = format!("org.freedesktop.DBus.{method}");
        let mut all = vec![
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            &member,
        ];
        all.extend_from_slice(args);
        b.dbus_send(&all)
    };
    let activatable = driver("ListActivatableNames", &[]);
    assert!(
        activatable.contains("\"org.example.Lazy\""),
        "{activatable}"
    );
    let names = driver("ListNames", &[]);
    assert!(!names.contains("org.example.Lazy"), "{names}");
    let owned = driver("NameHasOwner", &["string:org.example.Lazy"]);
    assert!(owned.contains("boolean false"), "{owned}");

    // Without auto-start the call fails at once.
    let out = b.run(
        "busctl",
        &[
            &b.address_arg(),
            "--auto-start=no",
            "call",
            "org.example.Lazy",
            "/org/example/Echo",
            "org.example.Echo",
            "Echo",
            "s",
            "x",
        ],
    );
    assert!(!out.status.success());

    // A call queues on the activator; once the service owns the name the
    // kernel hands the call over and the caller gets its answer.
    let call = Command::new("dbus-send")
        .args([
            &b.bus_arg(),
            "--print-reply",
            "--dest=org.example.Lazy",
            "/org/example/Echo",
            "org.example.Echo.Echo",
            "string:started on demand",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_queued(&lazy, &b);
    let _service = b.service("org.example.Lazy");
    let reply = finish(call);
    assert!(reply.contains("string \"started on demand\""), "{reply}");

    // StartServiceByName answers once the started service answers.
    let start = Command::new("dbus-send")
        .args([
            &b.bus_arg(),
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.StartServiceByName",
            "string:org.example.Lazy2",
            "uint32:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_queued(&lazy2, &b);
    let _service2 = b.service("org.example.Lazy2");
    let reply = finish(start);
    assert!(reply.contains("uint32 1"), "{reply}");
    let again = driver(
        "StartServiceByName",
        &["string:org.example.Lazy2", "uint32:0"],
    );
    assert!(again.contains("uint32 2"), "{again}");
}

/// dbus-monitor with no rules (it becomes a monitor of everything), its
/// output going to a file; returned once it shows what is sent.
struct Watching {
    monitor: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Watching {
    fn start(b: &Bridge, tag: &str) -> Watching {
        let out = b.dir.join(format!("{tag}.out"));
        let err = b.dir.join(format!("{tag}.err"));
        let monitor = Command::new("dbus-monitor")
            .args(["--address", &b.address])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start dbus-monitor");
        let w = Watching { monitor, out, err };
        let bus = b.bus_arg();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !w.text().contains("member=Sync") {
            b.ok(
                "dbus-send",
                &[&bus, "--type=signal", "/sync", "org.example.Echo.Sync"],
            );
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                Instant::now() < deadline,
                "dbus-monitor saw nothing:\n{}\n{}",
                w.text(),
                b.log()
            );
        }
        w
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Everything it printed until a signal `Done` came by (sent after what
    /// the test watches: the monitor shows messages in order).
    fn until_done(mut self, b: &Bridge) -> String {
        b.ok(
            "dbus-send",
            &[
                &b.bus_arg(),
                "--type=signal",
                "/sync",
                "org.example.Echo.Done",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let text = loop {
            let text = self.text();
            if text.contains("member=Done") || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
        let stderr = std::fs::read_to_string(&self.err).unwrap_or_default();
        assert!(!stderr.contains("eavesdropping"), "no monitor: {stderr}");
        text
    }
}

#[test]
fn dbus_monitor_sees_calls_replies_and_signals() {
    let b = Bridge::start();
    let _service = b.service("org.example.Test");
    let watching = Watching::start(&b, "monitor");
    b.dbus_send(&[
        "--dest=org.example.Test",
        "/org/example/Echo",
        "org.example.Echo.Echo",
        "string:watched",
    ]);
    let text = watching.until_done(&b);
    let call = text
        .find("method call")
        .filter(|&at| text[at..].contains("member=Echo"))
        .unwrap_or_else(|| panic!("no call in:\n{text}"));
    let ret = text[call..]
        .find("method return")
        .unwrap_or_else(|| panic!("no return in:\n{text}"));
    assert!(text[call + ret..].contains("string \"watched\""), "{text}");
}

/// Calls to org.freedesktop.DBus never cross kdbus: the bridge hands them
/// and the driver's answers to its monitors, as dbus-daemon's show them.
#[test]
fn dbus_monitor_sees_the_drivers_calls_and_replies() {
    let b = Bridge::start();
    let watching = Watching::start(&b, "driver-monitor");
    let id = b.dbus_send(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.GetId",
    ]);
    let id = id
        .lines()
        .find_map(|l| l.trim().strip_prefix("string "))
        .unwrap_or_else(|| panic!("no id in {id}"))
        .to_owned();
    let text = watching.until_done(&b);
    let call = text
        .match_indices("method call")
        .map(|(at, _)| at)
        .find(|&at| {
            let line = text[at..].lines().next().unwrap_or("");
            line.contains("destination=org.freedesktop.DBus") && line.contains("member=GetId")
        })
        .unwrap_or_else(|| panic!("no GetId call in:\n{text}"));
    let caller = text[call..]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("sender="))
        .expect("the call has a sender")
        .to_owned();
    assert!(caller.starts_with(":1."), "{text}");
    let ret = text[call..]
        .find("method return")
        .map(|at| call + at)
        .unwrap_or_else(|| panic!("no return after the call in:\n{text}"));
    let line = text[ret..].lines().next().unwrap_or("");
    assert!(
        line.contains("sender=org.freedesktop.DBus")
            && line.contains(&format!("destination={caller}")),
        "{text}"
    );
    assert!(
        text[ret..].contains(&id),
        "the reply carries the id {id}:\n{text}"
    );
}

/// Starts `program args` with its stdout line-buffered into `file`.
fn spawn_logged(program: &str, args: &[&str], file: &Path) -> Child {
    Command::new("stdbuf")
        .arg("-oL")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(file).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"))
}

#[test]
fn busctl_and_gdbus_introspect_and_monitor_a_service() {
    let b = Bridge::start();
    let _service = b.service("org.example.Test");
    let xml = b.ok(
        "gdbus",
        &[
            "introspect",
            "--address",
            &b.address,
            "--dest",
            "org.example.Test",
            "--object-path",
            "/org/example/Echo",
        ],
    );
    assert!(xml.contains("interface org.example.Echo"), "{xml}");
    assert!(xml.contains("Echo(in  s"), "{xml}");
    let members = b.busctl(&[
        "introspect",
        "--no-pager",
        "org.example.Test",
        "/org/example/Echo",
    ]);
    assert!(members.contains(".ReadFd"), "{members}");

    let busctl_out = b.dir.join("busctl-monitor.out");
    let gdbus_out = b.dir.join("gdbus-monitor.out");
    let addr = b.address_arg();
    let mut monitors = [
        spawn_logged("busctl", &[&addr, "monitor"], &busctl_out),
        spawn_logged(
            "gdbus",
            &[
                "monitor",
                "--address",
                &b.address,
                "--dest",
                "org.example.Test",
            ],
            &gdbus_out,
        ),
    ];
    // Both start asynchronously: emit until each has seen a signal.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (busctl_text, gdbus_text) = loop {
        b.dbus_send(&[
            "--dest=org.example.Test",
            "/org/example/Echo",
            "org.example.Echo.Emit",
            "string:/watched",
            "string:marker",
        ]);
        std::thread::sleep(Duration::from_millis(300));
        let busctl_text = std::fs::read_to_string(&busctl_out).unwrap_or_default();
        let gdbus_text = std::fs::read_to_string(&gdbus_out).unwrap_or_default();
        // A monitor that starts between an Emit call and its signal sees
        // the signal alone: go on until busctl has seen a whole round.
        if busctl_text.contains("Member=Emit")
            && busctl_text.contains("\"marker\"")
            && gdbus_text.contains("'marker'")
        {
            break (busctl_text, gdbus_text);
        }
        assert!(
            Instant::now() < deadline,
            "monitors saw no signal:\nbusctl:\n{busctl_text}\ngdbus:\n{gdbus_text}\n{}",
            b.log()
        );
    };
    for m in &mut monitors {
        let _ = m.kill();
        let _ = m.wait();
    }
    // busctl shows nothing before the NameLost of its own unique name;
    // then everything, the call that made the signal too.
    assert!(busctl_text.contains("Member=Emit"), "{busctl_text}");
    assert!(busctl_text.contains("Member=Ping"), "{busctl_text}");
    // gdbus watches the service's signals only.
    assert!(
        gdbus_text.contains("/watched: org.example.Echo.Ping ('marker',)"),
        "{gdbus_text}"
    );
    assert!(!gdbus_text.contains("Emit"), "{gdbus_text}");
}

#[test]
fn kdbusctl_call_reaches_a_legacy_service() {
    let b = Bridge::start();
    let _service = b.service("org.example.Test");
    let ep = b.bus.endpoint();
    let ep = ep.to_str().unwrap();
    let kdbusctl = |args: &[&str]| {
        let mut all = vec![
            "kdbusctl",
            "--bus",
            ep,
            "call",
            "--path",
            "/org/example/Echo",
        ];
        all.extend_from_slice(args);
        let mut out = Vec::new();
        kdbusctl::run_args(all, &mut out).map(|()| String::from_utf8(out).unwrap())
    };
    let reply = kdbusctl(&[
        "--method",
        "org.example.Echo.Echo",
        "org.example.Test",
        "from kdbusctl",
    ])
    .unwrap();
    assert_eq!(reply, "from kdbusctl\n");
    let err = kdbusctl(&["--method", "org.example.Echo.Fail", "org.example.Test"]).unwrap_err();
    assert!(
        format!("{err:#}").contains("org.example.Error.Failed"),
        "{err:#}"
    );
}

/// The test policy: Debian's system bus configuration, then a service
/// name of the test's with one method denied (`deny` is the member).
fn policy_conf(deny: &str) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>/usr/share/dbus-1/system.conf</include>
  <policy context="default">
    <allow own="org.kdbus.test.Policy"/>
    <allow send_destination="org.kdbus.test.Policy"/>
    <deny send_destination="org.kdbus.test.Policy" send_interface="org.example.Echo" send_member="{deny}"/>
  </policy>
</busconfig>
"#
    )
}

impl Bridge {
    /// dbus-send --print-reply as the unprivileged user nobody.
    fn as_nobody(&self, args: &[&str]) -> Output {
        let addr = self.bus_arg();
        let mut all = vec![
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "dbus-send",
            addr.as_str(),
            "--print-reply",
        ];
        all.extend_from_slice(args);
        self.run("setpriv", &all)
    }

    fn wait_log(&self, text: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log().matches(text).count() < count {
            assert!(
                Instant::now() < deadline,
                "the bridge did not log {text:?} within 10 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bus_policy_decides_owning_and_calls_and_reloads() {
    let b = Bridge::start_with(|dir| {
        let path = dir.join("policy.conf");
        std::fs::write(&path, policy_conf("Fail")).unwrap();
        path
    });
    let conf = b.dir.join("policy.conf");
    let conf_name = conf.display().to_string();

    // system.conf denies owning names by default; hostname1's own file
    // lets root own it.
    let out = b.as_nobody(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.RequestName",
        "string:org.freedesktop.hostname1",
        "uint32:4",
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "nobody may own hostname1");
    assert!(
        err.contains("org.freedesktop.DBus.Error.AccessDenied")
            && err.contains(r#"<deny own="*"/>"#)
            && err.contains("/usr/share/dbus-1/system.conf"),
        "{err}"
    );
    let reply = b.dbus_send(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.RequestName",
        "string:org.freedesktop.hostname1",
        "uint32:4",
    ]);
    assert!(reply.contains("uint32 1"), "root owns hostname1: {reply}");
    // And a name no file allows, not even to root.
    let err = b.dbus_send_fails(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.RequestName",
        "string:org.example.Unlisted",
        "uint32:4",
    ]);
    assert!(err.contains("AccessDenied"), "{err}");

    // The test's own name: allowed to own and to call, except Fail.
    let _service = b.service("org.kdbus.test.Policy");
    // The unique name in GetNameOwner's reply (the line `string ":1.N"`).
    let owner = |b: &Bridge| {
        let reply = b.dbus_send(&[
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetNameOwner",
            "string:org.kdbus.test.Policy",
        ]);
        let line = reply.lines().find(|l| l.contains("string \":1."));
        line.unwrap_or_else(|| panic!("GetNameOwner: {reply}"))
            .trim()
            .to_owned()
    };
    let service_owner = owner(&b);
    let echo = [
        "--dest=org.kdbus.test.Policy",
        "/org/example/Echo",
        "org.example.Echo.Echo",
        "string:allowed",
    ];
    let fail = [
        "--dest=org.kdbus.test.Policy",
        "/org/example/Echo",
        "org.example.Echo.Fail",
    ];
    let out = b.as_nobody(&echo);
    assert!(out.status.success(), "Echo is allowed: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("string \"allowed\""));
    let out = b.as_nobody(&fail);
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains("org.freedesktop.DBus.Error.AccessDenied")
            && err.contains(r#"send_member="Fail""#)
            && err.contains(&conf_name),
        "Fail must be denied by the test's rule: {err}"
    );

    // SIGHUP: the new file denies Echo instead; Fail reaches the service
    // (which fails as asked).
    std::fs::write(&conf, policy_conf("Echo")).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(b.child.id() as i32).unwrap(),
        rustix::process::Signal::HUP,
    )
    .unwrap();
    b.wait_log("bus policy reloaded (SIGHUP)", 1);
    let err = stderr(&b.as_nobody(&fail));
    assert!(
        err.contains("org.example.Error.Failed"),
        "after SIGHUP: {err}"
    );
    let err = stderr(&b.as_nobody(&echo));
    assert!(
        err.contains("AccessDenied") && err.contains(r#"send_member="Echo""#),
        "{err}"
    );

    // ReloadConfig: back to denying Fail. A broken file in between is
    // refused and the policy in force stays.
    std::fs::write(&conf, "<busconfig><policy").unwrap();
    let err = b.dbus_send_fails(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ReloadConfig",
    ]);
    assert!(
        err.contains("not reloaded") && err.contains(&conf_name),
        "{err}"
    );
    let err = stderr(&b.as_nobody(&echo));
    assert!(err.contains("AccessDenied"), "the old policy stays: {err}");
    std::fs::write(&conf, policy_conf("Fail")).unwrap();
    b.dbus_send(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ReloadConfig",
    ]);
    let out = b.as_nobody(&echo);
    assert!(out.status.success(), "after ReloadConfig: {}", stderr(&out));
    let err = stderr(&b.as_nobody(&fail));
    assert!(err.contains("AccessDenied"), "after ReloadConfig: {err}");
    // The service stayed connected through the reloads.
    assert_eq!(owner(&b), service_owner);
}

/// A native call of `member` (Echo or Fail) to `dest`, from a connection
/// of `uid` to the bridge's bus: the reply's text or error name, or the
/// errno the kernel refused the call with.
fn native_call(
    b: &Bridge,
    uid: u32,
    dest: &'static str,
    member: &'static str,
) -> Result<Result<String, String>, kdbus::Errno> {
    let ep = b.bus.endpoint();
    kdbus_abi_tests::as_user(uid, uid, move || {
        use kdbus::dbus::{Kind, Message};
        let caller = kdbus::HelloBuilder::new().connect(&ep).unwrap();
        let text = format!("from uid {uid}");
        let mut call = if member == "Echo" {
            Message::method_call(
                Some(dest),
                "/org/example/Echo",
                Some("org.example.Echo"),
                member,
                &(text,),
            )
        } else {
            Message::method_call(
                Some(dest),
                "/org/example/Echo",
                Some("org.example.Echo"),
                member,
                &(),
            )
        }
        .unwrap();
        call.stamp(1, Some(&format!(":1.{}", caller.id()))).unwrap();
        let reply = caller.call(&kdbus::MessageBuilder::to_name(dest).dbus(&call));
        let reply = reply.map_err(|e| e.errno().expect("an errno"))?;
        let reply = reply.dbus().unwrap();
        if reply.header().kind == Kind::Error {
            return Ok(Err(reply.header().error_name.clone().unwrap_or_default()));
        }
        let (text,): (String,) = reply.body_as().unwrap();
        Ok(Ok(text))
    })
}

fn native_echo(b: &Bridge, uid: u32, dest: &'static str) -> Result<String, kdbus::Errno> {
    native_call(b, uid, dest, "Echo").map(|r| r.expect("Echo answers"))
}

/// Whether a native connection of `uid` may own `name` (the errno if not).
/// It queues for the name, which the kernel allows if it may own it.
fn native_own(b: &Bridge, uid: u32, name: &'static str) -> Result<(), kdbus::Errno> {
    let ep = b.bus.endpoint();
    kdbus_abi_tests::as_user(uid, uid, move || {
        let conn = kdbus::HelloBuilder::new().connect(&ep).unwrap();
        conn.acquire_name(name, kdbus::NameFlags::QUEUE)
            .map(|_| ())
            .map_err(|e| e.errno().expect("an errno"))
    })
}

/// Debian's system bus configuration and `rules` in a default context
/// and one of user nobody.
fn native_policy_conf(default: &str, nobody: &str) -> String {
    format!(
        r#"<busconfig>
  <include>/usr/share/dbus-1/system.conf</include>
  <policy context="default">{default}</policy>
  <policy user="nobody">{nobody}</policy>
</busconfig>
"#
    )
}

#[test]
fn native_clients_meet_the_bus_policy_in_the_kernel() {
    const OPEN: &str = "org.kdbus.test.Native";
    const SOME: &str = "org.kdbus.test.Some";
    const ACTIVATABLE: &str = "org.kdbus.test.Activatable";
    let everyone = format!(
        r#"<allow own="{OPEN}"/><allow send_destination="{OPEN}"/>
           <allow own="{SOME}"/><allow send_destination="{SOME}" send_interface="org.example.Echo"/>"#
    );
    // An activatable name (its activator lets everyone talk to it), whose
    // rules allow one interface and deny a member of it.
    let activatable = format!(
        r#"<allow own="{ACTIVATABLE}"/>
           <allow send_destination="{ACTIVATABLE}" send_interface="org.example.Echo"/>
           <deny send_destination="{ACTIVATABLE}" send_member="Fail"/>"#
    );
    let everyone = everyone + &activatable;
    let b = Bridge::start_with(|dir| {
        let path = dir.join("native.conf");
        std::fs::write(&path, native_policy_conf(&everyone, "")).unwrap();
        path
    });
    b.wait_log("bus policy for native clients handed to the kernel", 1);
    let _open = b.service(OPEN);
    let _some = b.service(SOME);

    // Everyone may own and call OPEN: the kernel lets native clients of
    // any user do both (without a policy holder it refuses both).
    assert_eq!(native_own(&b, 65534, OPEN), Ok(()));
    assert_eq!(
        native_echo(&b, 65534, OPEN).as_deref(),
        Ok("from uid 65534")
    );
    // SOME allows one interface only, which the kernel cannot say: it
    // refuses native clients, the bridge decides for its own.
    assert_eq!(native_own(&b, 65534, SOME), Err(kdbus::Errno::PERM));
    assert_eq!(native_echo(&b, 65534, SOME), Err(kdbus::Errno::PERM));
    let dest = format!("--dest={SOME}");
    let out = b.as_nobody(&[
        dest.as_str(),
        "/org/example/Echo",
        "org.example.Echo.Echo",
        "string:legacy",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The kernel lets everyone talk to an activatable name: the bridge
    // applies the native sender's send rules.
    let activator = b.bus.connect(kdbus::HelloBuilder::new().activator(
        ACTIVATABLE,
        &[kdbus::PolicyAccess::world(kdbus::Access::Talk)],
    ));
    let _activatable = b.service(ACTIVATABLE);
    assert_eq!(
        native_echo(&b, 65534, ACTIVATABLE).as_deref(),
        Ok("from uid 65534")
    );
    let denied = native_call(&b, 65534, ACTIVATABLE, "Fail");
    assert_eq!(
        denied,
        Ok(Err("org.freedesktop.DBus.Error.AccessDenied".into())),
        "the bridge log:\n{}",
        b.log()
    );
    assert!(b.log().contains(r#"send_member="Fail""#), "{}", b.log());
    drop(activator);

    // Reloaded: OPEN is nobody's alone now.
    let conf = b.dir.join("native.conf");
    let only_nobody = format!(r#"<allow own="{OPEN}"/><allow send_destination="{OPEN}"/>"#);
    std::fs::write(&conf, native_policy_conf("", &only_nobody)).unwrap();
    b.dbus_send(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ReloadConfig",
    ]);
    b.wait_log("bus policy for native clients handed to the kernel", 2);
    assert_eq!(native_own(&b, 65534, OPEN), Ok(()));
    assert_eq!(native_own(&b, 1000, OPEN), Err(kdbus::Errno::PERM));
    assert_eq!(native_echo(&b, 1000, OPEN), Err(kdbus::Errno::PERM));
    assert_eq!(
        native_echo(&b, 65534, OPEN).as_deref(),
        Ok("from uid 65534")
    );
    // And with no rule about it, nobody may own it.
    std::fs::write(&conf, native_policy_conf("", "")).unwrap();
    b.dbus_send(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ReloadConfig",
    ]);
    b.wait_log("bus policy for native clients handed to the kernel", 3);
    assert_eq!(native_own(&b, 65534, OPEN), Err(kdbus::Errno::PERM));
}
