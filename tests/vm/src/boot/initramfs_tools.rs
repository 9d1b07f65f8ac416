//! Initramfs images built with the host's initramfs-tools (`mkinitramfs`
//! from initramfs-tools-core, Debian 12's 0.142), for the same kernel and
//! root as the dracut images. Our hook and boot scripts come from the
//! checkout through a private configuration directory (`mkinitramfs -d`),
//! the binaries and kdbus.ko from the build tree (KDBUS_BINDIR, KDBUS_KO):
//! nothing is installed on the host, and a copy installed there by `make
//! install` is hidden from the build.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::initramfs::{Content, Inputs};

/// Where `make install` puts our hook and scripts: hidden while building.
const INSTALLED: [&str; 3] = [
    "/usr/share/initramfs-tools/hooks/kdbus",
    "/usr/share/initramfs-tools/scripts/init-top/kdbus",
    "/usr/share/initramfs-tools/scripts/init-bottom/kdbus",
];

/// A small image for the VM: only the drivers its disk needs (force-loaded
/// from the `modules` list), the root file system type given.
const CONF: &str = "MODULES=list\nBUSYBOX=auto\nKEYMAP=n\nCOMPRESS=zstd\nDEVICE=\n\
                    NFSROOT=auto\nRUNSIZE=10%\nFSTYPE=ext4\n";
const MODULES: &str = "virtio_pci\nvirtio_blk\next4\n";

/// The files of one directory tree below the checkout, in a stable order.
fn tree_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn hash_inputs(content: Content, inputs: &Inputs) -> Result<String> {
    let mut h = DefaultHasher::new();
    (content, inputs.kver, CONF, MODULES, 1u32).hash(&mut h);
    if content != Content::Plain {
        for f in [
            inputs.bindir.join("kdbus-init"),
            inputs.kdbus_ko.to_path_buf(),
        ] {
            std::fs::read(&f)
                .with_context(|| format!("read {}", f.display()))?
                .hash(&mut h);
        }
        let mut trees = vec![inputs.checkout.join("initramfs-tools")];
        if content == Content::KdbusTest {
            std::fs::read(inputs.probe)?.hash(&mut h);
            trees.push(inputs.checkout.join("tests/vm/guest/initramfs-tools"));
            trees.push(inputs.checkout.join("tests/vm/guest/90kdbustest"));
        }
        for t in trees {
            for f in tree_files(&t)? {
                f.strip_prefix(inputs.checkout).ok().hash(&mut h);
                std::fs::read(&f)?.hash(&mut h);
            }
        }
    }
    Ok(format!("{:016x}", h.finish()))
}

/// Copies the hook and scripts of `from` (a tree laid out like
/// /usr/share/initramfs-tools) into the configuration directory `to`.
fn add_tree(from: &Path, to: &Path) -> Result<()> {
    for f in tree_files(from)? {
        let dest = to.join(f.strip_prefix(from).expect("below its tree"));
        std::fs::create_dir_all(dest.parent().expect("has a parent"))?;
        std::fs::copy(&f, &dest).with_context(|| format!("copy {}", f.display()))?;
    }
    Ok(())
}

/// A private mkinitramfs configuration directory for `content`.
fn confdir(cache: &Path, tag: &str, content: Content, checkout: &Path) -> Result<PathBuf> {
    let dir = cache.join(format!("{tag}.conf"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    for d in ["conf.d", "hooks", "scripts"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::write(dir.join("initramfs.conf"), CONF)?;
    std::fs::write(dir.join("modules"), MODULES)?;
    if content != Content::Plain {
        add_tree(&checkout.join("initramfs-tools"), &dir)?;
    }
    if content == Content::KdbusTest {
        add_tree(&checkout.join("tests/vm/guest/initramfs-tools"), &dir)?;
    }
    Ok(dir)
}

/// Builds (or finds in the cache) an initramfs-tools image, compressed
/// with zstd (Debian's default).
pub fn build(cache: &Path, content: Content, inputs: &Inputs) -> Result<PathBuf> {
    let tag = format!(
        "initrd-itools-{}-{}",
        match content {
            Content::Plain => "plain",
            Content::Kdbus => "kdbus",
            Content::KdbusTest => "kdbustest",
        },
        hash_inputs(content, inputs)?
    );
    let out = cache.join(format!("{tag}.img"));
    if out.exists() {
        return Ok(out);
    }
    std::fs::create_dir_all(cache)?;
    let conf = confdir(cache, &tag, content, inputs.checkout)?;
    eprintln!("kdbus-vmtest: building {tag}.img with mkinitramfs");
    let part = cache.join(format!("{tag}.part"));
    // In a private mount namespace, an installed copy of our hook and
    // scripts is covered up so that only the checkout's count.
    let script = format!(
        "for f in {}; do [ -e \"$f\" ] && mount --bind /dev/null \"$f\"; done; exec mkinitramfs \"$@\"",
        INSTALLED.join(" ")
    );
    let st = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg("-d")
        .arg(&conf)
        .args(["-c", "zstd", "-o"])
        .arg(&part)
        .arg(inputs.kver)
        .env("KDBUS_BINDIR", inputs.bindir)
        .env("KDBUS_KO", inputs.kdbus_ko)
        .env("KDBUS_TEST_PROBE", inputs.probe)
        .env("KDBUS_TEST_GUEST", inputs.checkout.join("tests/vm/guest"))
        .status()
        .context("run mkinitramfs (package initramfs-tools-core: run `make deps`)")?;
    if !st.success() {
        bail!("mkinitramfs failed ({st}) building {tag}.img: see its output above");
    }
    std::fs::rename(&part, &out)?;
    std::fs::remove_dir_all(&conf)?;
    Ok(out)
}
