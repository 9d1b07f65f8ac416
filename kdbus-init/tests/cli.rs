//! kdbus-init's command line and its answers to bad input, on the host
//! (which cannot load kernel modules: exactly the "module missing" case).
//! Each run gets a private mount namespace with its own /run and /dev, so
//! nothing reaches the host's /run or kernel log.

use std::process::{Command, Output};

fn kdbus_init(args: &str) -> Output {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (mount namespaces): run it as root");
    }
    let script = format!(
        "mount -t tmpfs run /run && mount -t tmpfs dev /dev && mknod -m 666 /dev/null c 1 3 && exec {} {args}",
        env!("CARGO_BIN_EXE_kdbus-init")
    );
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare (util-linux)")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_names_the_options() {
    let o = Command::new(env!("CARGO_BIN_EXE_kdbus-init"))
        .arg("--help")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for word in [
        "status",
        "follow",
        "wait-ready",
        "kdbus=1",
        "rd.kdbus.shell=shutdown",
    ] {
        assert!(s.contains(word), "--help lacks {word}:\n{s}");
    }
}

#[test]
fn kdbus_off_touches_nothing() {
    for line in ["root=/dev/vda", "kdbus=0", "kdbus=off"] {
        let o = kdbus_init(&format!("run --foreground --cmdline '{line}'"));
        assert!(o.status.success(), "{line}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("nothing to do"), "{line}: {}", text(&o));
        assert!(!err.contains("starting"), "{line}: {}", text(&o));
    }
}

#[test]
fn a_bad_value_is_a_warning_and_off() {
    let o = kdbus_init("run --foreground --cmdline 'kdbus=banana'");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "kdbus=banana is not a boolean (use kdbus=1 or kdbus=0); booting without kdbus"
        ),
        "{}",
        text(&o)
    );
}

#[test]
fn a_missing_module_is_reported_and_the_boot_goes_on() {
    // The host kernel has no kdbus.ko and cannot load modules.
    let o = kdbus_init("run --foreground --cmdline 'kdbus=1'");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains("kdbus.ko is not available for kernel"),
        "{}",
        text(&o)
    );
    assert!(err.contains("dracut --add kdbus"), "{}", text(&o));
    assert!(
        err.contains("the boot continues without the bus"),
        "{}",
        text(&o)
    );
}

#[test]
fn status_without_a_running_kdbus_init_says_so() {
    let o = kdbus_init("status");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("kdbus-init is not running"),
        "{}",
        text(&o)
    );
    let o = kdbus_init("follow --timeout 1");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not running"),
        "{}",
        text(&o)
    );
}
