//! The Debian kernel the VMs boot, and the match between it and kdbus.ko.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub struct Kernel {
    pub release: String,
    pub image: PathBuf,
}

impl Kernel {
    /// The given release, or the newest one that has both an image in
    /// /boot and headers to build modules against.
    pub fn find(release: Option<&str>) -> Result<Kernel> {
        let release = match release {
            Some(r) => r.to_owned(),
            None => newest_release()?,
        };
        let image = PathBuf::from(format!("/boot/vmlinuz-{release}"));
        if !image.exists() {
            bail!("no kernel image {} (run `make deps`)", image.display());
        }
        Ok(Kernel { release, image })
    }

    /// kdbus.ko must exist and be built for this kernel.
    pub fn check_module(&self, module: &Path) -> Result<()> {
        if !module.exists() {
            bail!("{} does not exist (run `make -C kmod`)", module.display());
        }
        let out = Command::new("modinfo")
            .args(["-F", "vermagic"])
            .arg(module)
            .output()
            .context("run modinfo (package kmod)")?;
        let vermagic = String::from_utf8_lossy(&out.stdout);
        if vermagic.split_whitespace().next() != Some(self.release.as_str()) {
            bail!(
                "{} was built for '{}', not for {}: rebuild with `make -C kmod KVER={}`",
                module.display(),
                vermagic.trim(),
                self.release,
                self.release
            );
        }
        Ok(())
    }
}

fn newest_release() -> Result<String> {
    let mut releases: Vec<String> = std::fs::read_dir("/lib/modules")
        .context("read /lib/modules (run `make deps`)")?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("build/Makefile").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|r| Path::new(&format!("/boot/vmlinuz-{r}")).exists())
        .collect();
    releases.sort_by_key(|r| version_key(r));
    releases
        .pop()
        .context("no installed kernel with headers in /lib/modules (run `make deps`)")
}

/// Orders "6.1.0-9-amd64" before "6.1.0-10-amd64".
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn releases_sort_numerically() {
        assert!(version_key("6.1.0-9-amd64") < version_key("6.1.0-10-amd64"));
        assert!(version_key("6.1.0-56-amd64") < version_key("6.12.0-1-amd64"));
    }
}
