//! Initramfs images built with the host's dracut (Debian 12: dracut 059 and
//! systemd 252, the same versions as in the guest root, so no chroot and no
//! kernel inside the image are needed). Our dracut modules come from the
//! checkout through a private dracutbasedir, the binaries and kdbus.ko from
//! the build tree (KDBUS_BINDIR, KDBUS_KO): nothing is installed on the host.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const SYSTEM_DRACUT: &str = "/usr/lib/dracut";

/// Which init runs in the initramfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// systemd in the initramfs (dracut's systemd modules).
    Systemd,
    /// The same with D-Bus (dracut's dbus module: dbus-broker), which
    /// `--add kdbus` accompanies with kdbus-bridge.
    SystemdDbus,
    /// systemd with kdbus-bridge as its only D-Bus (`kdbus_bridge=yes`,
    /// no dracut dbus module): the bridge in place of dbus-broker.
    SystemdBridge,
    /// dracut's own shell init, no systemd.
    Shell,
    /// initramfs-tools (mkinitramfs), not dracut: see `initramfs_tools.rs`.
    InitramfsTools,
}

impl Flavour {
    fn modules(self) -> String {
        const SYSTEMD: &str = "base systemd systemd-initrd systemd-journald dracut-systemd rootfs-block kernel-modules fs-lib udev-rules shutdown";
        match self {
            Flavour::Systemd | Flavour::SystemdBridge => SYSTEMD.to_owned(),
            Flavour::SystemdDbus => format!("{SYSTEMD} dbus"),
            Flavour::Shell => {
                "base rootfs-block kernel-modules fs-lib udev-rules shutdown".to_owned()
            }
            Flavour::InitramfsTools => {
                unreachable!("initramfs-tools images are not built by dracut")
            }
        }
    }
}

/// Builds the binaries that go into images as `make install` builds them
/// (`make initramfs-bins`: the Makefile holds the size flags, the standard
/// library rebuilt for size among them) and returns where they are.
pub fn build_bins(checkout: &Path, cargo: &str) -> Result<Bins> {
    let st = Command::new("make")
        .current_dir(checkout)
        .args(["-s", "--no-print-directory", "initramfs-bins"])
        .arg(format!("CARGO={cargo}"))
        .status()
        .context("run make initramfs-bins (run `make deps`)")?;
    if !st.success() {
        bail!("make initramfs-bins failed (see its output above)");
    }
    // Built with --target (the host's): cargo puts them below that name.
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("run rustc -vV")?;
    let host = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV names no host target")?;
    let target = checkout.join("target").join(host);
    Ok(Bins {
        dir: target.join("initramfs"),
        bridge: target.join("initramfs-unwind/kdbus-bridge"),
    })
}

/// Where `make initramfs-bins` leaves its binaries.
pub struct Bins {
    /// kdbus-init, switch-root, kdbusctl (profile `initramfs`).
    pub dir: PathBuf,
    /// kdbus-bridge (profile `initramfs-unwind`).
    pub bridge: PathBuf,
}

pub struct Inputs<'a> {
    pub checkout: &'a Path,
    pub kver: &'a str,
    pub bindir: &'a Path,
    pub kdbus_ko: &'a Path,
    pub probe: &'a Path,
    /// kdbus-bridge as `make install` builds it (images with D-Bus).
    pub bridge: &'a Path,
}

/// A dracut base directory: the system's, plus our modules.
fn dracut_base(cache: &Path, checkout: &Path) -> Result<PathBuf> {
    let base = cache.join("dracut");
    if base.exists() {
        std::fs::remove_dir_all(&base)?;
    }
    std::fs::create_dir_all(base.join("modules.d"))?;
    for e in std::fs::read_dir(SYSTEM_DRACUT).context("read /usr/lib/dracut (run `make deps`)")? {
        let e = e?;
        if e.file_name() == "modules.d" {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), base.join(e.file_name()))?;
    }
    for e in std::fs::read_dir(Path::new(SYSTEM_DRACUT).join("modules.d"))? {
        let e = e?;
        let name = e.file_name();
        // An installed copy of ours (make install) must not shadow the
        // checkout's.
        if name == "50kdbus" || name == "90kdbustest" {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), base.join("modules.d").join(name))?;
    }
    std::os::unix::fs::symlink(
        checkout.join("dracut/50kdbus"),
        base.join("modules.d/50kdbus"),
    )?;
    std::os::unix::fs::symlink(
        checkout.join("tests/vm/guest/90kdbustest"),
        base.join("modules.d/90kdbustest"),
    )?;
    Ok(base)
}

fn hash_inputs(flavour: Flavour, with_kdbus: bool, inputs: &Inputs) -> Result<String> {
    let mut h = DefaultHasher::new();
    (flavour, with_kdbus, inputs.kver, 2u32).hash(&mut h);
    if with_kdbus {
        for f in ["kdbus-init", "kdbusctl", "switch-root"] {
            std::fs::read(inputs.bindir.join(f))
                .with_context(|| format!("read {}", inputs.bindir.join(f).display()))?
                .hash(&mut h);
        }
        std::fs::read(inputs.kdbus_ko)?.hash(&mut h);
        std::fs::read(inputs.probe)?.hash(&mut h);
        let mut dirs = vec!["dracut/50kdbus", "tests/vm/guest/90kdbustest"];
        if matches!(flavour, Flavour::SystemdDbus | Flavour::SystemdBridge) {
            std::fs::read(inputs.bridge)?.hash(&mut h);
            dirs.push("systemd");
        }
        for dir in dirs {
            let mut files: Vec<_> = std::fs::read_dir(inputs.checkout.join(dir))?
                .flatten()
                .map(|e| e.path())
                .collect();
            files.sort();
            for f in files {
                f.file_name().hash(&mut h);
                std::fs::read(&f)?.hash(&mut h);
            }
        }
    }
    Ok(format!("{:016x}", h.finish()))
}

/// What goes into an initramfs besides dracut's own modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// Nothing of ours.
    Plain,
    /// `--add kdbus`, as a user builds it.
    Kdbus,
    /// `--add kdbus` plus the test module (probe, test service file).
    KdbusTest,
}

/// Builds (or finds in the cache) an initramfs.
pub fn build(cache: &Path, flavour: Flavour, content: Content, inputs: &Inputs) -> Result<PathBuf> {
    let with_kdbus = content != Content::Plain;
    let tag = format!(
        "initrd-{}-{}-{}.img",
        match flavour {
            Flavour::Systemd => "systemd",
            Flavour::SystemdDbus => "sddbus",
            Flavour::SystemdBridge => "sdbridge",
            Flavour::Shell => "shell",
            Flavour::InitramfsTools => "itools",
        },
        match content {
            Content::Plain => "plain",
            Content::Kdbus => "kdbus",
            Content::KdbusTest => "kdbustest",
        },
        hash_inputs(flavour, with_kdbus, inputs)?
    );
    let out = cache.join(&tag);
    if out.exists() {
        return Ok(out);
    }
    std::fs::create_dir_all(cache)?;
    let base = dracut_base(cache, inputs.checkout)?;
    eprintln!("kdbus-vmtest: building {tag} with dracut");
    let mut cmd = Command::new("dracut");
    cmd.env("dracutbasedir", &base)
        .env("KDBUS_BINDIR", inputs.bindir)
        .env("KDBUS_KO", inputs.kdbus_ko)
        .env("KDBUS_TEST_PROBE", inputs.probe)
        .env("KDBUS_BRIDGE", inputs.bridge)
        .env("KDBUS_UNITS", inputs.checkout.join("systemd"))
        .args([
            "--force",
            "--quiet",
            "--no-hostonly",
            "--no-hostonly-cmdline",
            "--no-early-microcode",
            "--gzip",
        ])
        .args(["--kver", inputs.kver])
        .args(["-m", &flavour.modules()])
        .args(["--add-drivers", "virtio_blk virtio_pci ext4"]);
    // Keep the host's own dracut configuration out of the test images. The
    // test images carry the shutdown shell's tools (opt-in); the
    // bridge-only flavour asks for the bridge as a user does.
    let mut settings = String::new();
    if content == Content::KdbusTest {
        settings.push_str("kdbus_shell=yes\n");
    }
    if flavour == Flavour::SystemdBridge {
        settings.push_str("kdbus_bridge=yes\n");
    }
    let conf = cache.join(format!("{tag}.conf"));
    std::fs::write(&conf, settings)?;
    let confdir = cache.join("dracut.conf.d");
    std::fs::create_dir_all(&confdir)?;
    cmd.arg("--conf").arg(&conf).arg("--confdir").arg(&confdir);
    match content {
        Content::Plain => {}
        Content::Kdbus => {
            cmd.args(["--add", "kdbus"]);
        }
        Content::KdbusTest => {
            cmd.args(["--add", "kdbus kdbustest"]);
        }
    }
    let part = cache.join(format!("{tag}.part"));
    cmd.arg(&part);
    let st = cmd.status().context("run dracut (run `make deps`)");
    let _ = std::fs::remove_file(&conf);
    let st = st?;
    if !st.success() {
        bail!("dracut failed ({st}) building {tag}: see its output above");
    }
    std::fs::rename(&part, &out)?;
    Ok(out)
}

/// The paths inside an initramfs image (lsinitrd).
pub fn list(image: &Path) -> Result<Vec<String>> {
    let out = Command::new("lsinitrd")
        .arg(image)
        .output()
        .context("run lsinitrd (package dracut-core)")?;
    if !out.status.success() {
        bail!("lsinitrd {} failed", image.display());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.starts_with(['-', 'd', 'l', 'c', 'b', 'p', 's']) && l.split_whitespace().count() >= 9
        })
        .filter_map(|l| l.split_whitespace().nth(8).map(str::to_owned))
        .collect())
}

/// Removes cached images of the given contents that are not in `keep`.
pub fn prune(cache: &Path, keep: &[PathBuf], contents: &[&str]) {
    if let Ok(rd) = std::fs::read_dir(cache) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = contents.iter().any(|c| name.contains(&format!("-{c}-")));
            if name.starts_with("initrd-") && ours && !keep.contains(&e.path()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
