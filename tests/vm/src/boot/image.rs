//! The Debian 12 root disk of the boot tests: built once by mmdebstrap,
//! cached under build/boot/ by the hash of its recipe, and copied for each
//! boot with the project's binaries and the test services added.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Packages of the root: systemd as init, udev, kmod, dracut for
/// dracut-shutdown.service (it unpacks the initramfs into /run/initramfs at
/// shutdown, which is where the bus goes last), and dbus-broker, Debian's
/// default system bus: the bus of kdbus=0, which kdbus-bridge replaces with
/// kdbus=1 (hostnamectl, timedatectl and loginctl come with systemd), and
/// dbus-send (dbus-bin), whose errors show the message the bus gave.
/// libpam-systemd: a session started with PAM is logind's (the at_console
/// check logs a user in on a virtual terminal).
const PACKAGES: &str =
    "systemd,systemd-sysv,udev,kmod,dracut,util-linux,dbus-broker,dbus-bin,libpam-systemd";

/// Runs in the new root (mmdebstrap --customize-hook, "$1" = the root).
const CUSTOMIZE: &str = r#"
set -e
echo kdbus-vm >"$1/etc/hostname"
echo '/dev/vda / ext4 rw 0 1' >"$1/etc/fstab"
chroot "$1" passwd -d root >/dev/null
# The user of an activatable test service: only the real root knows it.
chroot "$1" useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kdbus-late
: >"$1/etc/machine-id"
# A quiet, quick boot: no login prompts, no timers.
for u in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer \
         e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
    ln -sf /dev/null "$1/etc/systemd/system/$u"
done
rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*
"#;

pub fn recipe_hash() -> String {
    let mut h = DefaultHasher::new();
    ("bookworm", PACKAGES, CUSTOMIZE, 1u32).hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The cached base root (a tar made by mmdebstrap), built if missing.
pub fn base(cache: &Path) -> Result<PathBuf> {
    let tar = cache.join(format!("root-{}.tar", recipe_hash()));
    if tar.is_file() {
        return Ok(tar);
    }
    std::fs::create_dir_all(cache)?;
    eprintln!(
        "kdbus-vmtest: building the Debian 12 root image (mmdebstrap, ~1 min, cached in {})",
        cache.display()
    );
    // mmdebstrap picks the output format from the name: keep ".tar".
    let tmp = cache.join(format!("root-{}.part.tar", recipe_hash()));
    // A hook that names an executable file is run with the root as $1.
    let hook = cache.join("customize.sh");
    std::fs::write(&hook, format!("#!/bin/sh\n{CUSTOMIZE}"))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    let status = Command::new("mmdebstrap")
        .args(["--variant=minbase", "--quiet"])
        .arg(format!("--include={PACKAGES}"))
        .arg(format!("--customize-hook={}", hook.display()))
        .args(["bookworm"])
        .arg(&tmp)
        .status()
        .context("run mmdebstrap (run `make deps`)")?;
    if !status.success() {
        bail!("mmdebstrap failed ({status}): is the Debian mirror reachable? see its output above");
    }
    std::fs::rename(&tmp, &tar)?;
    // Older bases are of no use any more.
    for e in std::fs::read_dir(cache)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("root-")
            && name.ends_with(".tar")
            && e.path() != tar
            && e.path().is_file()
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(tar)
}

/// A file to put into a root copy.
pub struct Add {
    pub from: PathBuf,
    pub to: String,
    pub mode: u32,
}

/// Makes a raw ext4 disk from the base tar plus `adds` and `links`
/// (symlink path -> target).
pub fn disk(base: &Path, dir: &Path, adds: &[Add], links: &[(&str, &str)]) -> Result<PathBuf> {
    let root = dir.join("root");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    let st = Command::new("tar")
        .arg("-xpf")
        .arg(base)
        .arg("-C")
        .arg(&root)
        .status()
        .context("run tar")?;
    if !st.success() {
        bail!("unpacking {} failed", base.display());
    }
    for a in adds {
        let to = root.join(a.to.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap())?;
        std::fs::copy(&a.from, &to)
            .with_context(|| format!("copy {} into the root", a.from.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(a.mode))?;
    }
    for (link, target) in links {
        let at = root.join(link.trim_start_matches('/'));
        std::fs::create_dir_all(at.parent().unwrap())?;
        let _ = std::fs::remove_file(&at);
        std::os::unix::fs::symlink(target, &at)?;
    }
    let img = dir.join("root.img");
    let _ = std::fs::remove_file(&img);
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "kdbusroot", "-d"])
        .arg(&root)
        .arg(&img)
        .arg("1500M")
        .status()
        .context("run mkfs.ext4 (package e2fsprogs)")?;
    if !st.success() {
        bail!("mkfs.ext4 failed");
    }
    std::fs::remove_dir_all(&root)?;
    Ok(img)
}
