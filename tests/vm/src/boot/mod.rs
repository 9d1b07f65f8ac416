//! Full boots under QEMU: a real Debian 12 root disk, a `dracut --add kdbus`
//! initramfs, and the scenarios of `scenarios.rs`, judged from the serial
//! console.

pub mod bench;
pub mod demo;
pub mod footprint;
pub mod image;
pub mod initramfs;
pub mod initramfs_tools;
pub mod initramfs_tools_scenarios;
pub mod inspect;
pub mod markers;
pub mod qemu;
pub mod restart_scenarios;
pub mod scenarios;
pub mod system_bus_scenarios;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::kernel::Kernel;
use initramfs::Flavour;
use scenarios::{Outcome, Scenario};

pub struct Env {
    pub checkout: PathBuf,
    pub kernel: Kernel,
    pub timeout: Duration,
    pub echo: bool,
    cache: PathBuf,
    bindir: PathBuf,
    probe: PathBuf,
    bridge: PathBuf,
    kdbus_ko: PathBuf,
    base: PathBuf,
    results: PathBuf,
}

/// Files of the checkout in every booted real root: (path in the checkout,
/// path in the root, mode).
const ROOT_FILES: &[(&str, &str, u32)] = &[
    // As `make install` puts them in place.
    (
        "dracut/50kdbus/kdbus-init.service",
        "/usr/lib/systemd/system/kdbus-init.service",
        0o644,
    ),
    (
        "systemd/kdbus-bridge.service",
        "/usr/lib/systemd/system/kdbus-bridge.service",
        0o644,
    ),
    (
        "systemd/kdbus-bridge.socket",
        "/usr/lib/systemd/system/kdbus-bridge.socket",
        0o644,
    ),
    (
        "systemd/kdbus-system-bus-generator",
        "/usr/lib/systemd/system-generators/kdbus-system-bus-generator",
        0o755,
    ),
    // The probe's units and the services it activates.
    (
        "tests/vm/guest/root/kdbus-test-root.service",
        "/etc/systemd/system/kdbus-test-root.service",
        0o644,
    ),
    (
        "tests/vm/guest/root/kdbus-test-late.service",
        "/etc/systemd/system/kdbus-test-late.service",
        0o644,
    ),
    (
        "tests/vm/guest/90kdbustest/org.kdbus.test.Late.service",
        "/usr/share/dbus-1/system-services/org.kdbus.test.Late.service",
        0o644,
    ),
    (
        "tests/vm/guest/90kdbustest/org.kdbus.test.LateUser.service",
        "/usr/share/dbus-1/system-services/org.kdbus.test.LateUser.service",
        0o644,
    ),
    // The early client came from the initramfs: its policy, and its unit,
    // without which systemd would stop it when it isolates the default
    // target after the switch.
    (
        "tests/vm/guest/90kdbustest/org.kdbus.test.Early.conf",
        "/usr/share/dbus-1/system.d/org.kdbus.test.Early.conf",
        0o644,
    ),
    (
        "tests/vm/guest/90kdbustest/kdbus-test-early-client.service",
        "/etc/systemd/system/kdbus-test-early-client.service",
        0o644,
    ),
    // The system bus report (kdbus.test.sysbus).
    (
        "tests/vm/guest/root/kdbus-test-sysbus.sh",
        "/usr/lib/kdbus-test/kdbus-test-sysbus.sh",
        0o755,
    ),
    (
        "tests/vm/guest/root/kdbus-test-sysbus.service",
        "/etc/systemd/system/kdbus-test-sysbus.service",
        0o644,
    ),
];

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

impl Env {
    /// Builds the release binaries and the root image (cached).
    pub fn prepare(checkout: &Path, kernel: Kernel, timeout: Duration, echo: bool) -> Result<Env> {
        let kdbus_ko = checkout.join("kmod/kdbus.ko");
        kernel.check_module(&kdbus_ko)?;
        // The binaries as `make install` builds them (kdbus-bridge, the
        // system bus of kdbus=1, included), the test probe as a plain
        // release build.
        let bins = initramfs::build_bins(checkout, &cargo())?;
        let st = Command::new(cargo())
            .current_dir(checkout)
            .args(["build", "-q", "--release", "-p", "kdbus-vmtest"])
            .args(["--bin", "kdbus-boot-probe"])
            .status()
            .context("run cargo")?;
        if !st.success() {
            bail!("building the boot probe failed");
        }
        let cache = checkout.join("build/boot");
        let base = image::base(&cache)?;
        let results = checkout.join("target/vmtest/boot");
        std::fs::create_dir_all(&results)?;
        Ok(Env {
            checkout: checkout.to_path_buf(),
            kernel,
            timeout,
            echo,
            probe: checkout.join("target/release/kdbus-boot-probe"),
            bridge: bins.bridge,
            cache,
            bindir: bins.dir,
            kdbus_ko,
            base,
            results,
        })
    }

    pub fn initramfs(&self, flavour: Flavour, content: initramfs::Content) -> Result<PathBuf> {
        let inputs = self.image_inputs();
        match flavour {
            Flavour::InitramfsTools => initramfs_tools::build(&self.cache, content, &inputs),
            _ => initramfs::build(&self.cache, flavour, content, &inputs),
        }
    }

    /// What images are built from.
    pub fn image_inputs(&self) -> initramfs::Inputs<'_> {
        initramfs::Inputs {
            checkout: &self.checkout,
            kver: &self.kernel.release,
            bindir: &self.bindir,
            kdbus_ko: &self.kdbus_ko,
            probe: &self.probe,
            bridge: &self.bridge,
        }
    }

    /// Boots once; returns the console.
    pub fn boot(
        &self,
        name: &str,
        initrd: &Path,
        cmdline: &str,
        shell: bool,
    ) -> Result<qemu::Console> {
        let dir = self.results.join(name);
        std::fs::create_dir_all(&dir)?;
        let add = |from: PathBuf, to: &str, mode: u32| image::Add {
            from,
            to: to.to_owned(),
            mode,
        };
        // The real root has the module for the running kernel, as an
        // installed system has (the modules.dep line is depmod's).
        let modules = format!("/usr/lib/modules/{}", self.kernel.release);
        let dep = dir.join("modules.dep");
        std::fs::write(&dep, "extra/kdbus.ko:\n")?;
        let mut adds = vec![
            add(
                self.kdbus_ko.clone(),
                &format!("{modules}/extra/kdbus.ko"),
                0o644,
            ),
            add(dep, &format!("{modules}/modules.dep"), 0o644),
            add(
                initrd.to_path_buf(),
                &format!("/boot/initrd.img-{}", self.kernel.release),
                0o644,
            ),
            add(
                self.bindir.join("kdbus-init"),
                "/usr/sbin/kdbus-init",
                0o755,
            ),
            add(self.bindir.join("kdbusctl"), "/usr/bin/kdbusctl", 0o755),
            add(
                self.bindir.join("switch-root"),
                "/usr/lib/kdbus/switch-root",
                0o755,
            ),
            // The system bus of kdbus=1, as `make install` puts it in place.
            add(self.bridge.clone(), "/usr/bin/kdbus-bridge", 0o755),
            add(
                self.probe.clone(),
                "/usr/lib/kdbus-test/kdbus-boot-probe",
                0o755,
            ),
            // The activatable test service, only in the real root.
            add(
                self.probe.clone(),
                "/usr/lib/kdbus-test/late-service",
                0o755,
            ),
        ];
        for &(from, to, mode) in ROOT_FILES {
            adds.push(add(self.checkout.join(from), to, mode));
        }
        let links = [
            (
                "/etc/systemd/system/multi-user.target.wants/kdbus-test-root.service",
                "/etc/systemd/system/kdbus-test-root.service",
            ),
            (
                "/etc/systemd/system/multi-user.target.wants/kdbus-test-sysbus.service",
                "/etc/systemd/system/kdbus-test-sysbus.service",
            ),
        ];
        let disk = image::disk(&self.base, &dir, &adds, &links)?;
        let mut responses = Vec::new();
        if shell {
            responses.push((
                scenarios::SHELL_PROMPT.to_owned(),
                scenarios::SHELL_INPUT.to_owned(),
            ));
            responses.push((scenarios::SHELL_DONE.to_owned(), "exit\n".to_owned()));
        }
        let full = format!(
            "root=/dev/vda rw console=ttyS0,115200 panic=-1 rd.shell=0 rd.emergency=poweroff \
             systemd.show_status=1 {cmdline}"
        );
        let boot = qemu::Boot {
            kernel: &self.kernel.image,
            initrd,
            disk: &disk,
            cmdline: full,
            timeout: self.timeout,
            log: dir.join("console.log"),
            responses,
            echo: self.echo,
        };
        let mut console = boot.run()?;
        if console.froze_in_kernel_init() {
            // Nothing of ours had run: the initramfs (kdbus.ko, kdbus-init)
            // comes after. Under TCG QEMU has frozen there, rarely, with
            // both vCPUs silent; the boot is retried once, the frozen
            // console kept beside the new one.
            let frozen = dir.join("console-frozen.log");
            eprintln!(
                "kdbus-vmtest: {name}: the VM froze before the kernel ran the initramfs \
                 (last line: {:?}); booting again, the frozen console is {}",
                console.lines.last().map(String::as_str).unwrap_or(""),
                frozen.display()
            );
            std::fs::rename(dir.join("console.log"), &frozen)?;
            console = boot.run()?;
        }
        let _ = std::fs::remove_file(&disk);
        Ok(console)
    }

    pub fn console_log(&self, name: &str) -> PathBuf {
        self.results.join(name).join("console.log")
    }
}

/// Checks of images that need no boot.
const STATIC_CHECKS: [&str; 3] = ["image-content", "image-check", "footprint"];

/// Prints checks that need no boot; true if all passed.
fn report_static(results: &[(String, bool, String)], passed: &mut u32, failed: &mut u32) -> bool {
    let mut all = true;
    for (name, ok, why) in results {
        if *ok {
            *passed += 1;
            eprintln!("   ok       {name}");
        } else {
            *failed += 1;
            all = false;
            eprintln!(
                "   FAIL     {name}\n            {}",
                why.replace('\n', "\n            ")
            );
        }
    }
    all
}

/// Runs the named scenarios (all if empty); true if none failed.
pub fn run(env: &Env, names: &[String]) -> Result<bool> {
    let all = scenarios::all();
    let chosen: Vec<&Scenario> = if names.is_empty() {
        all.iter().collect()
    } else {
        let mut v = Vec::new();
        for n in names
            .iter()
            .filter(|n| !STATIC_CHECKS.contains(&n.as_str()))
        {
            match all.iter().find(|s| s.name == n) {
                Some(s) => v.push(s),
                None => bail!(
                    "no boot scenario '{n}' (known: {}, {})",
                    STATIC_CHECKS.join(", "),
                    all.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        v
    };
    let mut images = Vec::new();
    let (mut passed, mut failed, mut pending) = (0, 0, 0);
    let mut failed_scenarios = Vec::new();
    if names.is_empty() || names.iter().any(|n| n == "image-content") {
        eprintln!("== image-content: what --add kdbus puts into an initramfs, and what not");
        let mut bad = false;
        for (name, ok, why) in image_content(env, &mut images)? {
            if ok {
                passed += 1;
                eprintln!("   ok       {name}");
            } else {
                failed += 1;
                bad = true;
                eprintln!("   FAIL     {name}\n            {why}");
            }
        }
        if bad {
            failed_scenarios.push("image-content");
        }
    }
    if names.is_empty() || names.iter().any(|n| n == "image-check") {
        eprintln!("== image-check: kdbusctl initramfs on real and broken images");
        let results = inspect::run(env, &mut images)?;
        if !report_static(&results, &mut passed, &mut failed) {
            failed_scenarios.push("image-check");
        }
    }
    if names.is_empty() || names.iter().any(|n| n == "footprint") {
        eprintln!("== footprint: what the kdbus parts add to an initramfs");
        let results = footprint::check(env, &mut images)?;
        if !report_static(&results, &mut passed, &mut failed) {
            failed_scenarios.push("footprint");
        }
    }
    for s in chosen {
        let initrd = env.initramfs(s.flavour, initramfs::Content::KdbusTest)?;
        images.push(initrd.clone());
        eprintln!("== boot {}: {}", s.name, s.about);
        let console = env.boot(s.name, &initrd, s.cmdline, s.shell)?;
        let checks = s.evaluate(&console);
        let mut bad = false;
        for c in &checks {
            match &c.outcome {
                Outcome::Pass => {
                    passed += 1;
                    eprintln!("   ok       {}", c.name);
                }
                Outcome::Pending(why) => {
                    pending += 1;
                    eprintln!("   PENDING  {} ({why})", c.name);
                }
                Outcome::Fail(why) => {
                    failed += 1;
                    bad = true;
                    eprintln!(
                        "   FAIL     {}\n            {}",
                        c.name,
                        why.replace('\n', "\n            ")
                    );
                }
            }
        }
        eprintln!(
            "-> {}: {} in {:.1} s (console: {})",
            s.name,
            if bad { "FAIL" } else { "PASS" },
            console.elapsed.as_secs_f64(),
            env.console_log(s.name).display()
        );
        if bad {
            failed_scenarios.push(s.name);
        }
    }
    initramfs::prune(&env.cache, &images, &["kdbustest", "kdbus", "plain"]);
    if !failed_scenarios.is_empty() {
        eprintln!("failed scenarios: {}", failed_scenarios.join(", "));
    }
    println!("boot: {passed} passed, {failed} failed, {pending} skipped");
    Ok(failed == 0)
}

/// `dracut --add kdbus` brings the module, the binaries, the unit (or the
/// shell-init hook and switch_root) and the shutdown hook, and in images
/// with D-Bus the bridge; without it, nothing of kdbus is in the image.
fn image_content(env: &Env, images: &mut Vec<PathBuf>) -> Result<Vec<(String, bool, String)>> {
    let mut out = Vec::new();
    let mut check = |name: &str, files: &[String], want: &[&str], unwanted: &[&str]| {
        let missing: Vec<&&str> = want
            .iter()
            .filter(|w| {
                !files
                    .iter()
                    .any(|f| f == *w || f.ends_with(&format!("/{w}")))
            })
            .collect();
        let present: Vec<&String> = files
            .iter()
            .filter(|f| unwanted.iter().any(|u| f.contains(u)))
            .collect();
        out.push((
            name.to_owned(),
            missing.is_empty() && present.is_empty(),
            format!("missing {missing:?}, unexpected {present:?}"),
        ));
    };
    let plain = env.initramfs(Flavour::Systemd, initramfs::Content::Plain)?;
    let sd = env.initramfs(Flavour::Systemd, initramfs::Content::Kdbus)?;
    let sh = env.initramfs(Flavour::Shell, initramfs::Content::Kdbus)?;
    images.extend([plain.clone(), sd.clone(), sh.clone()]);
    check(
        "without --add kdbus: nothing of kdbus in the image",
        &initramfs::list(&plain)?,
        &[],
        &["kdbus"],
    );
    check(
        "--add kdbus, systemd: module, kdbus-init, unit wanted by initrd.target, shutdown hook; \
         no shell tools unless asked for",
        &initramfs::list(&sd)?,
        &[
            "extra/kdbus.ko",
            "usr/sbin/kdbus-init",
            "system/kdbus-init.service",
            "initrd.target.wants/kdbus-init.service",
            "pre-shutdown/10-kdbus-shutdown.sh",
            "shutdown",
        ],
        &[
            "kdbus-start.sh",
            "kdbus-test",
            "kdbus-boot-probe",
            "kdbusctl",
            "kdbus-bridge",
        ],
    );
    // What an image needs for the bridge to be its D-Bus with kdbus=1:
    // the bridge, its units, the generator that makes them dbus.service
    // and dbus.socket, and the bus configuration.
    const BRIDGE_PARTS: [&str; 5] = [
        "usr/bin/kdbus-bridge",
        "system/kdbus-bridge.service",
        "system/kdbus-bridge.socket",
        "system-generators/kdbus-system-bus-generator",
        "usr/share/dbus-1/system.conf",
    ];
    // The image of the system-bus scenarios.
    let with_dbus = env.initramfs(Flavour::SystemdDbus, initramfs::Content::KdbusTest)?;
    images.push(with_dbus.clone());
    check(
        "--add kdbus in an image with dracut's dbus: kdbus-bridge, its units and the generator \
         that makes them dbus.service with kdbus=1, beside dbus-broker for kdbus=0",
        &initramfs::list(&with_dbus)?,
        &[&BRIDGE_PARTS[..], &["usr/bin/dbus-broker"]].concat(),
        &[],
    );
    let bridge_only = env.initramfs(Flavour::SystemdBridge, initramfs::Content::Kdbus)?;
    images.push(bridge_only.clone());
    check(
        "--add kdbus with kdbus_bridge=yes and no dracut dbus module: kdbus-bridge, its units, \
         the generator and the bus configuration, and no other D-Bus daemon",
        &initramfs::list(&bridge_only)?,
        &BRIDGE_PARTS,
        &["dbus-broker", "dbus-daemon"],
    );
    let shell_tools = env.initramfs(Flavour::Systemd, initramfs::Content::KdbusTest)?;
    images.push(shell_tools.clone());
    check(
        "--add kdbus with kdbus_shell=yes: kdbusctl and setsid for the shutdown shell",
        &initramfs::list(&shell_tools)?,
        &["usr/bin/kdbusctl", "setsid", "usr/sbin/kdbus-init"],
        &[],
    );
    check(
        "--add kdbus, shell init: module, binaries, cmdline hook, our switch_root, shutdown hook",
        &initramfs::list(&sh)?,
        &[
            "extra/kdbus.ko",
            "usr/sbin/kdbus-init",
            "cmdline/01-kdbus-start.sh",
            "usr/sbin/switch_root",
            "pre-shutdown/10-kdbus-shutdown.sh",
        ],
        &["kdbus-init.service", "kdbus-test"],
    );
    Ok(out)
}
