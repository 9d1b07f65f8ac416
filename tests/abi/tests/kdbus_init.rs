//! kdbus-init against the real module: the system bus with an activator
//! whose service fails to start. The failure is reported (status, log),
//! the queued message stays on the activator, and the service started by
//! other means later receives it, once. An activator the kernel refuses
//! because another connection holds its name's policy is registered once
//! that connection is gone.
//!
//! kdbus-init sets up the machine's bus (`/sys/fs/kdbus`, `0-system`), so
//! everything happens in this one test; it needs the `kdbus-init` binary
//! next to the test binaries (`kdbus-vmtest abi` builds it).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bootenv::status::{Activation, Status, STATUS_FILE};
use kdbus::{Access, Connection, MessageBuilder, NameFlags, PolicyAccess};
use kdbus_abi_tests::fixture::*;

const NAME: &str = "org.kdbus.test.Broken";
const BLOCKED: &str = "org.kdbus.test.Blocked";

fn kdbus_init_binary() -> PathBuf {
    // target/debug/deps/kdbus_init-HASH -> target/debug/kdbus-init
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("kdbus-init");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p kdbus-init)",
        bin.display()
    );
    bin
}

/// kdbus-init in the foreground; killed on drop, its mount detached.
struct KdbusInit {
    child: Child,
}

impl Drop for KdbusInit {
    fn drop(&mut self) {
        // kdbus-init is made to outlive every root change and ignores the
        // usual signals; the bus goes with its owner handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = rustix::mount::unmount("/sys/fs/kdbus", rustix::mount::UnmountFlags::DETACH);
    }
}

impl KdbusInit {
    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        text
    }
}

/// Waits (20 s at most) until kdbus-init's status satisfies `ready`.
fn wait_status(what: &str, ready: impl Fn(&Status) -> bool) -> Status {
    let start = Instant::now();
    loop {
        if let Ok(status) = Status::read(Path::new(STATUS_FILE)) {
            if ready(&status) {
                return status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("kdbus-init status: waited 20 s for {what}; last status:\n{status:#?}");
            }
        } else if start.elapsed() > Duration::from_secs(20) {
            panic!("kdbus-init status: waited 20 s for {what}; no readable {STATUS_FILE}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn activation(status: &Status) -> Option<&Activation> {
    status
        .activators
        .iter()
        .find(|a| a.name == NAME)
        .map(|a| &a.activation)
}

#[test]
fn a_failed_activation_is_reported_and_keeps_the_message_queued() {
    let services = tempdir();
    std::fs::write(
        services.join(format!("{NAME}.service")),
        format!("[D-BUS Service]\nName={NAME}\nExec=/bin/false\nUser=root\n"),
    )
    .unwrap();

    let _ = std::fs::remove_file(STATUS_FILE);
    let mut init = KdbusInit {
        child: Command::new(kdbus_init_binary())
            .args(["run", "--foreground", "--cmdline", "kdbus=1"])
            .arg("--services-dir")
            .arg(&services)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kdbus-init"),
    };

    let status = wait_status("the activator", |s| activation(s).is_some());
    let endpoint = PathBuf::from(&status.bus.as_ref().expect("a bus").path);

    // a message to the activatable name starts the service, which fails
    let client = Connection::connect(&endpoint).expect("HELLO on the system bus");
    client
        .send(&MessageBuilder::to_name(NAME).payload(b"for the service"))
        .expect("send to the activatable name");
    let status = wait_status("the failed activation", |s| {
        matches!(activation(s), Some(Activation::Failed { .. }))
    });
    let Some(Activation::Failed {
        error, attempts, ..
    }) = activation(&status)
    else {
        unreachable!()
    };
    assert_eq!(*attempts, 1);
    assert!(error.contains("exit status: 1"), "the reason: {error}");
    assert!(
        status
            .problems
            .iter()
            .any(|p| p.contains(NAME) && p.contains("messages stay queued")),
        "the failure among the problems: {:#?}",
        status.problems
    );

    // the service, started by other means, gets the message, once
    let service = TestBus::hello().connect(&endpoint).unwrap();
    service
        .acquire_name(NAME, NameFlags::empty())
        .expect("take the name over from the activator");
    let msg = recv_msg(&service);
    assert_eq!(msg.payload_to_vec(), b"for the service");
    assert_eq!(msg.src_id(), client.id());
    drop(msg);
    assert!(!readable(&service), "the message arrived twice");

    // A new service file whose name's policy entry another connection
    // holds (kdbus-bridge's policy holders do, for names without one): the
    // kernel refuses its activator; kdbus-init says so and tries again
    // until the entry is gone.
    let holder = TestBus::hello()
        .policy_holder(BLOCKED, &[PolicyAccess::world(Access::Talk)])
        .connect(&endpoint)
        .expect("a policy holder for the name");
    std::fs::write(
        services.join(format!("{BLOCKED}.service")),
        format!("[D-BUS Service]\nName={BLOCKED}\nExec=/bin/false\n"),
    )
    .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(init.child.id() as i32).unwrap(),
        rustix::process::Signal::HUP,
    )
    .unwrap();
    let status = wait_status("the refused activator", |s| {
        s.problems.iter().any(|p| p.contains(BLOCKED))
    });
    assert!(
        status.activators.iter().all(|a| a.name != BLOCKED),
        "{status:#?}"
    );
    drop(holder);
    wait_status("the activator registered once the entry is gone", |s| {
        s.activators.iter().any(|a| a.name == BLOCKED)
    });

    let log = init.stderr();
    assert!(
        log.contains(&format!("activation of {NAME} failed")),
        "kdbus-init's log:\n{log}"
    );
}

/// A fresh directory under /tmp (the guest's own).
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kdbus-init-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
