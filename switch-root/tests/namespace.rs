//! switch-root in a private mount namespace on the host: a tmpfs plays the
//! initramfs, another one the real root. No VM needed, but root is.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn switch_root_in_a_mount_namespace() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root (it creates a mount namespace): run it as root");
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox is missing: run `make deps` (package busybox-static)");
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("switch-root-ns");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/namespace.sh");
    let out = Command::new("unshare")
        .args(["--mount", "--fork", "sh"])
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_switch-root"))
        .arg(&busybox)
        .arg(&work)
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let checks: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("CHECK "))
        .collect();
    let report = format!(
        "status {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let has = |want: &str| checks.iter().any(|c| c.starts_with(want));

    assert!(out.status.success(), "{report}");
    // Refusals: clear messages, nothing changed.
    assert!(
        has("bad-host refused: switch-root: / is not an initramfs"),
        "{report}"
    );
    for (case, why) in [
        ("/notmounted /sbin/init", "is not a mount point"),
        ("/sysroot /sbin/missing", "not found in NEWROOT"),
        ("/sysroot /sbin/noexec", "is not an executable file"),
        ("/sysroot sbin/init", "must be an absolute path"),
        ("/nonexistent /sbin/init", "NEWROOT /nonexistent"),
    ] {
        let line = checks
            .iter()
            .find(|c| c.starts_with(&format!("bad-case refused: {case}:")))
            .unwrap_or_else(|| panic!("{case} was not refused\n{report}"));
        assert!(line.contains(why), "{case}: {line}\n{report}");
        assert!(line.contains("nothing was changed"), "{line}");
    }
    assert!(has("dry-run ok"), "{report}");
    assert!(has("unchanged-after-refusals"), "{report}");
    assert!(has("api-still-mounted"), "{report}");
    // The switch.
    for f in [
        "/newroot-marker",
        "/dev/devmarker",
        "/sys/fs/kdbus/busmarker",
        "/run/runmarker",
        "/proc/self/stat",
    ] {
        assert!(
            has(&format!("present {f}")),
            "{f} missing after the switch\n{report}"
        );
    }
    assert!(!has("present /etc/initrd-release"), "{report}");
    assert!(has("args one two words"), "{report}");
    assert!(has("root /"), "{report}");
    assert!(has("init exited 0"), "{report}");
    assert!(has("kdbus-init told to follow"), "{report}");
    // Initramfs emptied, other file systems inside it untouched.
    let left = checks
        .iter()
        .find_map(|c| c.strip_prefix("left-in-initramfs "))
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(left.trim(), "keep", "{report}");
    assert!(has("other-fs-kept"), "{report}");
    let _ = std::fs::remove_dir_all(&work);
}
