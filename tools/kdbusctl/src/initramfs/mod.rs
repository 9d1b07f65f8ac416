//! `kdbusctl initramfs IMAGE`: whether an initramfs image holds the bus
//! and whether its parts fit the image's kernel, without booting it.

pub mod archive;
pub mod checks;

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use archive::Segment;
use checks::{Findings, Level};

/// The image cannot bring up the bus (kdbusctl exits 1; an image it cannot
/// read at all exits 2).
#[derive(Debug)]
pub struct NotReady;

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the image cannot bring up the bus")
    }
}

impl std::error::Error for NotReady {}

#[derive(Serialize)]
struct Report<'a> {
    image: &'a Path,
    segments: &'a [Segment],
    entries: usize,
    #[serde(flatten)]
    findings: &'a Findings,
}

/// Inspects `image` and reports on `out`, as JSON with `json`.
pub fn run(out: &mut dyn Write, image: &Path, json: bool) -> Result<()> {
    let archive = archive::read(image)?;
    let findings = checks::check(&archive);
    let report = Report {
        image,
        segments: &archive.segments,
        entries: archive.members.len(),
        findings: &findings,
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_human(out, &report)?;
    }
    if findings.ready {
        Ok(())
    } else {
        Err(NotReady.into())
    }
}

fn print_human(out: &mut dyn Write, r: &Report<'_>) -> Result<()> {
    let layout: Vec<String> = r
        .segments
        .iter()
        .map(|s| {
            format!(
                "{} at byte {} ({} entries)",
                s.compression, s.offset, s.entries
            )
        })
        .collect();
    writeln!(out, "image:    {}", r.image.display())?;
    writeln!(out, "archives: {}", layout.join(", "))?;
    let kernels = if r.findings.kernels.is_empty() {
        "none (no lib/modules/<release>)".to_owned()
    } else {
        r.findings.kernels.join(", ")
    };
    writeln!(out, "kernel:   {kernels}")?;
    for c in &r.findings.checks {
        let tag = match c.level {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Fail => "FAIL",
        };
        writeln!(out, "  {tag:<5} {:<11} {}", c.part, c.message)?;
    }
    if r.findings.ready {
        writeln!(
            out,
            "verdict:  ready: with kdbus=1 this image brings up the bus"
        )?;
    } else {
        writeln!(
            out,
            "verdict:  NOT ready: this image cannot bring up the bus"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::archive::tests::cpio;
    use super::*;

    const KVER: &str = "6.1.0-57-amd64";

    fn module(kver: &str) -> Vec<u8> {
        format!("\x7fELF...license=GPL\0vermagic={kver} SMP preempt mod_unload modversions \0")
            .into_bytes()
    }

    fn image(module_kver: &str, extra: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let m = module(module_kver);
        let dep = format!("usr/lib/modules/{KVER}/modules.dep");
        let dir = format!("usr/lib/modules/{KVER}");
        let ko = format!("usr/lib/modules/{KVER}/extra/kdbus.ko");
        let mut entries: Vec<(&str, u32, &[u8])> = vec![
            (&dir, 0o040755, b""),
            (&ko, 0o100644, &m),
            (&dep, 0o100644, b"extra/kdbus.ko:\n"),
            ("usr/sbin/kdbus-init", 0o100755, b"\x7fELF"),
            (
                "usr/share/dbus-1/system-services/org.example.Svc.service",
                0o100644,
                b"[D-BUS Service]\nName=org.example.Svc\nExec=/bin/true\n",
            ),
        ];
        entries.extend_from_slice(extra);
        zstd::encode_all(&cpio(&entries)[..], 3).unwrap()
    }

    fn inspect(bytes: &[u8]) -> (Findings, String) {
        let dir = std::env::temp_dir().join(format!("kdbusctl-initramfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // tests run in parallel: one file per image
        let path = dir.join(format!("img-{:x}", content_hash(bytes)));
        std::fs::write(&path, bytes).unwrap();
        let mut out = Vec::new();
        let r = run(&mut out, &path, false);
        let findings = checks::check(&archive::read(&path).unwrap());
        assert_eq!(r.is_ok(), findings.ready);
        std::fs::remove_file(&path).ok();
        (findings, String::from_utf8(out).unwrap())
    }

    fn content_hash(bytes: &[u8]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        h.finish()
    }

    const SYSTEMD_WIRING: &[(&str, u32, &[u8])] = &[
        ("usr/lib/systemd/systemd", 0o100755, b"\x7fELF"),
        (
            "usr/lib/systemd/system/kdbus-init.service",
            0o100644,
            b"[Unit]\n",
        ),
        (
            "etc/systemd/system/initrd.target.wants/kdbus-init.service",
            0o120777,
            b"/usr/lib/systemd/system/kdbus-init.service",
        ),
    ];

    #[test]
    fn a_complete_systemd_image_is_ready() {
        let (f, text) = inspect(&image(KVER, SYSTEMD_WIRING));
        assert!(f.ready, "{text}");
        assert_eq!(f.kernels, vec![KVER.to_owned()]);
        assert_eq!(f.module_vermagic.as_deref(), Some(KVER));
        assert!(text.contains("wanted by initrd.target.wants"), "{text}");
        assert!(text.contains("org.example.Svc"), "{text}");
        assert!(text.contains("verdict:  ready"), "{text}");
    }

    #[test]
    fn a_module_for_another_kernel_is_reported() {
        let (f, text) = inspect(&image("6.12.118+deb12-amd64", SYSTEMD_WIRING));
        assert!(!f.ready);
        assert!(
            text.contains(
                "was built for 6.12.118+deb12-amd64, but the image is for 6.1.0-57-amd64"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_unit_nobody_wants_never_runs() {
        let (f, text) = inspect(&image(KVER, &SYSTEMD_WIRING[..2]));
        assert!(!f.ready);
        assert!(text.contains("no target wants it"), "{text}");
    }

    #[test]
    fn dracut_shell_init_and_initramfs_tools_are_recognised() {
        let hook: &[(&str, u32, &[u8])] = &[(
            "var/lib/dracut/hooks/cmdline/01-kdbus-start.sh",
            0o100755,
            b"#!/bin/sh\n",
        )];
        assert!(inspect(&image(KVER, hook)).0.ready);
        let script: &[(&str, u32, &[u8])] = &[("scripts/init-top/kdbus", 0o100755, b"#!/bin/sh\n")];
        let (f, text) = inspect(&image(KVER, script));
        assert!(f.ready, "{text}");
        assert!(
            text.contains("initramfs-tools runs scripts/init-top/kdbus"),
            "{text}"
        );
        let late: &[(&str, u32, &[u8])] =
            &[("scripts/init-bottom/kdbus", 0o100755, b"#!/bin/sh\n")];
        let (f, text) = inspect(&image(KVER, late));
        assert!(!f.ready, "an init-bottom script starts nothing: {text}");
        assert!(
            text.contains("nothing in the image starts kdbus-init"),
            "{text}"
        );
    }

    #[test]
    fn an_image_without_the_bus_says_what_is_missing() {
        let bytes = zstd::encode_all(
            &cpio(&[("usr/lib/systemd/systemd", 0o100755, b"\x7fELF")])[..],
            3,
        )
        .unwrap();
        let (f, text) = inspect(&bytes);
        assert!(!f.ready);
        assert!(text.contains("kdbus.ko is not in the image"), "{text}");
        assert!(text.contains("kdbus-init is not in the image"), "{text}");
    }

    #[test]
    fn json_carries_the_verdict_and_every_check() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("kdbusctl-json-{}", std::process::id()));
        std::fs::write(&path, image(KVER, SYSTEMD_WIRING)).unwrap();
        let mut out = Vec::new();
        run(&mut out, &path, true).unwrap();
        std::fs::remove_file(&path).ok();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["ready"], true);
        assert_eq!(v["segments"][0]["compression"], "zstd");
        assert_eq!(v["checks"][0]["part"], "module");
        assert_eq!(v["checks"][0]["level"], "ok");
    }
}
