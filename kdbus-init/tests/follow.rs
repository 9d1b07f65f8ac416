//! kdbus-init follows a root change: in a private PID + mount namespace a
//! shell plays PID 1 of an initramfs, kdbus-init runs there (resumed from a
//! state blob without a bus, since the host kernel has no kdbus), and the
//! project's switch-root moves to a new root. kdbus-init must re-execute
//! from the new root's binary with its state. Needs root; no VM.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

fn busybox() -> PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox is missing: run `make deps` (package busybox-static)")
}

fn switch_root() -> PathBuf {
    // The sibling binary of this workspace (same profile as this test).
    let me = PathBuf::from(env!("CARGO_BIN_EXE_kdbus-init"));
    let sr = me.with_file_name("switch-root");
    if !sr.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "switch-root"])
            .status()
            .unwrap();
        assert!(st.success(), "cannot build switch-root");
    }
    sr
}

/// A state blob as a previous kdbus-init would hand over: no bus, a
/// problem to carry along, log counters.
fn blob() -> std::os::fd::OwnedFd {
    let state = serde_json::json!({
        "version": 2,
        "exe_path": "/usr/sbin/kdbus-init",
        "bus": null,
        "owner_fd": null,
        "domain_fd": null,
        "activators": [],
        "history": [],
        "activations": [],
        "log": {"to_kmsg": 0, "to_journal": 7, "dropped": 0, "pending_kmsg": [], "switches": []},
        "problems": ["carried-over-marker"],
        "foreground": false,
        "debug": false
    });
    bootenv::state::seal("kdbus-init-state", &state).unwrap()
}

fn run_in_namespace(name: &str, fd: std::os::fd::OwnedFd) -> (String, String) {
    run_mode(name, fd, "")
}

/// A kdbus-init binary that says it cannot take over this build's state:
/// this build with the numbers of its hand-over marker patched to `fields`
/// (same length).
fn patched_binary(name: &str, fields: &[u8; 28]) -> PathBuf {
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_kdbus-init")).unwrap();
    let magic = b"KDBUS-INIT-HANDOVER-MARKER";
    let at = bytes
        .windows(magic.len())
        .position(|w| w == magic)
        .expect("kdbus-init has a hand-over marker")
        + magic.len();
    assert_eq!(&bytes[at..at + 8], b";writes=");
    bytes[at..at + fields.len()].copy_from_slice(fields);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn run_mode(name: &str, fd: std::os::fd::OwnedFd, mode: &str) -> (String, String) {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kdbus-init-{name}"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/follow.sh");
    // The blob goes to the namespace as fd 3.
    let raw = fd.as_raw_fd();
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount", "sh"])
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_kdbus-init"))
        .arg(switch_root())
        .arg(busybox())
        .arg(&work)
        .arg(mode);
    let older: Option<&[u8; 28]> = match mode {
        "older" => Some(b";writes=0001;reads=0001-0001"),
        "older-garbled" => Some(b";writes=0001;reads=00x1-0001"),
        _ => None,
    };
    if let Some(fields) = older {
        let name = format!("binary-{mode}");
        cmd.env("KDBUS_INIT_OLDER", patched_binary(&name, fields));
    }
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 and fcntl are async-signal-safe; only the child's fd
    // table is changed.
    unsafe {
        cmd.pre_exec(move || {
            let from = std::os::fd::BorrowedFd::borrow_raw(raw);
            if raw == 3 {
                // dup2 onto itself would keep close-on-exec.
                rustix::io::fcntl_setfd(from, rustix::io::FdFlags::empty())?;
            } else {
                let mut three = std::os::fd::OwnedFd::from_raw_fd_checked(3);
                rustix::io::dup2(from, &mut three)?;
                std::mem::forget(three);
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run unshare (util-linux)");
    let _ = std::fs::remove_dir_all(&work);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

trait FromRawChecked {
    fn from_raw_fd_checked(fd: i32) -> Self;
}
impl FromRawChecked for std::os::fd::OwnedFd {
    fn from_raw_fd_checked(fd: i32) -> Self {
        // SAFETY: only used as the target of dup2 in the child, which
        // replaces whatever fd 3 was.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
    }
}

fn checks(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("CHECK "))
        .collect()
}

/// What must hold after the switch whatever the blob said: kdbus-init
/// moved into the new root and runs its binary.
fn assert_followed(stdout: &str, report: &str) {
    let c = checks(stdout);
    let has = |s: &str| c.iter().any(|l| l.contains(s));
    assert!(has("before \"root\": \"initramfs\""), "{report}");
    assert!(has("after \"root\": \"real-root\""), "{report}");
    assert!(has("exe is the new root's binary"), "{report}");
    assert!(has("argv0 @kdbus-init"), "{report}");
    assert!(has("root_link /"), "{report}");
    assert!(has("deleted_maps 0"), "{report}");
    assert!(stdout.contains("STATUS kdbus-init:    pid"), "{report}");
    assert!(
        stdout.contains("phase real-root, binary /usr/sbin/kdbus-init"),
        "{report}"
    );
    // And on into the shutdown root.
    assert!(
        has("shutdown exe is the shutdown root's binary: yes"),
        "{report}"
    );
    assert!(has("shutdown root_link /"), "{report}");
    assert!(has("shutdown oldroot refs 0"), "{report}");
    assert!(has("shutdown \"root\": \"shutdown-root\""), "{report}");
}

#[test]
fn kdbus_init_follows_switch_root() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (PID and mount namespaces): run it as root");
    }
    let (stdout, stderr) = run_in_namespace("follow", blob());
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_followed(&stdout, &report);
    // One phase from the first image, one after the re-exec; state and
    // log counters carried over.
    assert!(checks(&stdout).contains(&"history 2"), "{report}");
    assert!(checks(&stdout).contains(&"shutdown history 3"), "{report}");
    assert!(
        stdout.contains("STATUS   problem      carried-over-marker"),
        "{report}"
    );
    assert!(!stdout.contains("problem      the state"), "{report}");
    // "  log          now to stderr; 3 record(s) to kmsg, 7 to journald, ..."
    let journal: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("STATUS   log          "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no log line\n{report}"));
    assert_eq!(journal, 7, "journald counter not carried over\n{report}");
}

#[test]
fn corrupt_state_blob_is_reported_and_kdbus_init_goes_on() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (PID and mount namespaces): run it as root");
    }
    let (stdout, stderr) = run_in_namespace(
        "corrupt",
        bootenv::state::seal_bytes("kdbus-init-state", b"{\"version\": 1, \"exe").unwrap(),
    );
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("STATUS   problem      the state blob is corrupt"),
        "{report}"
    );
    assert!(stdout.contains("so the bus survives"), "{report}");
    assert_followed(&stdout, &report);
}

#[test]
fn unsealed_state_is_refused() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (PID and mount namespaces): run it as root");
    }
    let fd = rustix::fs::memfd_create("kdbus-init-state", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let (stdout, stderr) = run_in_namespace("unsealed", fd);
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("not a sealed memfd"), "{report}");
    assert_followed(&stdout, &report);
}

#[test]
fn a_new_root_without_kdbus_init_is_reported_and_the_old_binary_goes_on() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (PID and mount namespaces): run it as root");
    }
    let (stdout, stderr) = run_mode("no-binary", blob(), "no-binary");
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let c = checks(&stdout);
    assert!(
        c.iter()
            .any(|l| l.contains("after \"root\": \"real-root\"")),
        "{report}"
    );
    assert!(
        !c.iter().any(|l| l.contains("exe is the new root's binary")),
        "{report}"
    );
    assert!(
        stdout.contains("STATUS   problem      the new root has no kdbus-init binary"),
        "{report}"
    );
    // Still alive and able to move on: into the shutdown root, which has one.
    assert!(
        c.iter()
            .any(|l| l.contains("shutdown exe is the shutdown root's binary: yes")),
        "{report}"
    );
    assert!(
        c.iter().any(|l| l.contains("shutdown oldroot refs 0")),
        "{report}"
    );
}

#[test]
fn a_new_root_with_an_older_kdbus_init_gets_a_copy_of_the_running_one() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (PID and mount namespaces): run it as root");
    }
    let (stdout, stderr) = run_mode("older", blob(), "older");
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let c = checks(&stdout);
    let has = |s: &str| c.iter().any(|l| l.contains(s));
    assert!(has("after \"root\": \"real-root\""), "{report}");
    // Not the older binary: a copy of the running one, which stays.
    assert!(!has("exe is the new root's binary"), "{report}");
    assert!(has("exe is the copy"), "{report}");
    assert!(c.contains(&"history 2"), "{report}");
    assert!(c.contains(&"history later 2"), "{report}");
    assert!(
        stdout.contains(
            "STATUS   problem      the new root's kdbus-init /usr/sbin/kdbus-init cannot take \
             over the running one's state (it is older: it hands over state format 1, takes \
             over 1-1, the running one hands over 2): running a copy of the previous root's at \
             /run/kdbus/kdbus-init-copy; install kdbus-init"
        ),
        "{report}"
    );
    assert!(
        stdout.contains("STATUS   problem      carried-over-marker"),
        "{report}"
    );
    // `kdbus-init follow` of this root does not wait for what cannot come.
    assert!(
        has("follow says: kdbus-init: pid")
            && has("runs /run/kdbus/kdbus-init-copy")
            && has("(exit 0)"),
        "{report}"
    );
    // On into the shutdown root, whose binary is current again.
    assert!(
        has("shutdown exe is the shutdown root's binary: yes"),
        "{report}"
    );
    assert!(has("shutdown oldroot refs 0"), "{report}");
}

#[test]
fn a_new_root_whose_kdbus_init_has_no_marker_gets_a_copy_too() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (PID and mount namespaces): run it as root");
    }
    // The marker's numbers unreadable: as a binary without one.
    let (stdout, stderr) = run_mode("garbled", blob(), "older-garbled");
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let c = checks(&stdout);
    assert!(c.iter().any(|l| l.contains("exe is the copy")), "{report}");
    assert!(
        stdout.contains("its hand-over marker is malformed") && stdout.contains("taken as older"),
        "{report}"
    );
}

#[test]
fn a_state_blob_of_an_unknown_format_is_reported_and_kdbus_init_goes_on() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (PID and mount namespaces): run it as root");
    }
    // As a newer build would hand over: another format, other fields.
    let state = serde_json::json!({
        "version": 3,
        "bus": {"handles": [3, 4]},
        "activators": "elsewhere"
    });
    let (stdout, stderr) = run_in_namespace(
        "unknown-format",
        bootenv::state::seal("kdbus-init-state", &state).unwrap(),
    );
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains(
            "STATUS   problem      the state handed over has format 3, this kdbus-init takes \
             over formats 2-2 only"
        ),
        "{report}"
    );
    assert!(stdout.contains("so the bus survives"), "{report}");
    assert_followed(&stdout, &report);
}
