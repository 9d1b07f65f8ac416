//! `kdbusctl initramfs` on real images: the ones the boot tests build with
//! dracut (with and without `--add kdbus`) and with initramfs-tools, one
//! whose kdbus.ko was built for another kernel, and broken files. Each
//! case has its expected exit status (0 ready, 1 not ready, 2 unreadable)
//! and the words a user must read.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::initramfs::{Content, Flavour, Inputs};
use super::initramfs_tools;
use super::Env;

struct Case {
    name: String,
    image: PathBuf,
    json: bool,
    exit: i32,
    want: Vec<String>,
}

fn case(name: &str, image: &Path, exit: i32, want: &[&str]) -> Case {
    Case {
        name: name.to_owned(),
        image: image.to_path_buf(),
        json: false,
        exit,
        want: want.iter().map(|s| s.to_string()).collect(),
    }
}

/// The kdbusctl that reads images (the default features; the one in
/// initramfs images leaves the decompressors out).
fn kdbusctl(checkout: &Path) -> Result<PathBuf> {
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(checkout)
        .args(["build", "-q", "--release", "-p", "kdbusctl"])
        .status()
        .context("run cargo")?;
    if !st.success() {
        bail!("building kdbusctl failed");
    }
    Ok(checkout.join("target/release/kdbusctl"))
}

/// Another installed kernel than `kver`, for the mismatched module.
fn other_kernel(kver: &str) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir("/lib/modules")
        .ok()?
        .flatten()
        .filter(|e| e.path().join("modules.dep").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|k| k != kver)
        .collect();
    found.sort();
    found.pop()
}

/// Broken files made from a good image: truncated, wrong magic, random
/// bytes, empty.
fn broken(dir: &Path, good: &Path) -> Result<[PathBuf; 4]> {
    let bytes = std::fs::read(good)?;
    let truncated = dir.join("broken-truncated.img");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
    let magic = dir.join("broken-magic.img");
    let mut m = bytes.clone();
    m[..4].copy_from_slice(b"BAD!");
    std::fs::write(&magic, m)?;
    // xorshift: the same "random" bytes every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let random: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let rnd = dir.join("broken-random.img");
    std::fs::write(&rnd, random)?;
    let empty = dir.join("broken-empty.img");
    std::fs::write(&empty, b"")?;
    Ok([truncated, magic, rnd, empty])
}

fn cases(env: &Env, images: &mut Vec<PathBuf>) -> Result<Vec<Case>> {
    let kver = env.kernel.release.clone();
    let plain = env.initramfs(Flavour::Systemd, Content::Plain)?;
    let sd = env.initramfs(Flavour::Systemd, Content::Kdbus)?;
    let sh = env.initramfs(Flavour::Shell, Content::Kdbus)?;
    let it = env.initramfs(Flavour::InitramfsTools, Content::Kdbus)?;
    let it_plain = env.initramfs(Flavour::InitramfsTools, Content::Plain)?;
    images.extend([&plain, &sd, &sh, &it, &it_plain].map(|p| p.to_path_buf()));
    let built_for = format!("built for {kver}");
    let mut out = vec![
        case(
            "dracut without --add kdbus: not ready, says what is missing",
            &plain,
            1,
            &[
                "kdbus.ko is not in the image",
                "kdbus-init is not in the image",
                "verdict:  NOT ready",
            ],
        ),
        case(
            "dracut --add kdbus, systemd: ready, unit wanted by initrd.target",
            &sd,
            0,
            &[
                &built_for,
                "wanted by initrd.target.wants",
                "verdict:  ready",
            ],
        ),
        case(
            "dracut --add kdbus, shell init: ready, started by the cmdline hook",
            &sh,
            0,
            &[
                &built_for,
                "dracut's shell init runs",
                "01-kdbus-start.sh",
                "verdict:  ready",
            ],
        ),
        case(
            "initramfs-tools with the kdbus hook: ready, started by scripts/init-top/kdbus",
            &it,
            0,
            &[
                &built_for,
                "initramfs-tools runs scripts/init-top/kdbus",
                "verdict:  ready",
            ],
        ),
        Case {
            json: true,
            ..case(
                "initramfs-tools, --json: the verdict and the zstd archive",
                &it,
                0,
                &["\"ready\": true", "\"compression\": \"zstd\""],
            )
        },
        case(
            "initramfs-tools without the hook: not ready",
            &it_plain,
            1,
            &["kdbus.ko is not in the image", "verdict:  NOT ready"],
        ),
    ];
    match other_kernel(&kver) {
        Some(other) => {
            let inputs = Inputs {
                kver: &other,
                ..env.image_inputs()
            };
            let mismatched = initramfs_tools::build(&env.cache, Content::Kdbus, &inputs)?;
            images.push(mismatched.clone());
            let why = format!("was built for {kver}, but the image is for {other}");
            out.push(case(
                &format!("an image for {other} holding the module built for {kver}: not ready"),
                &mismatched,
                1,
                &[&why, "verdict:  NOT ready"],
            ));
        }
        None => out.push(case(
            "a second kernel is installed for the mismatched-module image (make deps)",
            Path::new("/nonexistent"),
            0,
            &[],
        )),
    }
    let dir = env.checkout.join("target/vmtest/inspect");
    std::fs::create_dir_all(&dir)?;
    let [truncated, magic, random, empty] = broken(&dir, &it)?;
    out.push(case(
        "a truncated image: a clear error",
        &truncated,
        2,
        &["is truncated or corrupt", "rebuild the image"],
    ));
    out.push(case(
        "wrong magic: not an initramfs",
        &magic,
        2,
        &["not an initramfs image: it starts with 42 41 44 21"],
    ));
    out.push(case(
        "random bytes: not an initramfs",
        &random,
        2,
        &["not an initramfs image"],
    ));
    out.push(case(
        "an empty file: not an initramfs",
        &empty,
        2,
        &["the file is empty"],
    ));
    Ok(out)
}

/// Runs every case: (name, passed, why not).
pub fn run(env: &Env, images: &mut Vec<PathBuf>) -> Result<Vec<(String, bool, String)>> {
    let kdbusctl = kdbusctl(&env.checkout)?;
    let mut results = Vec::new();
    for c in cases(env, images)? {
        let mut cmd = Command::new(&kdbusctl);
        cmd.arg("initramfs").arg(&c.image);
        if c.json {
            cmd.arg("--json");
        }
        let o = cmd.output().context("run kdbusctl")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let missing: Vec<&String> = c.want.iter().filter(|w| !text.contains(*w)).collect();
        let code = o.status.code().unwrap_or(-1);
        let ok = code == c.exit && missing.is_empty() && !text.contains("panicked");
        results.push((
            c.name,
            ok,
            format!(
                "exit {code} (want {}), missing {missing:?}; output:\n{}",
                c.exit,
                text.trim_end()
            ),
        ));
    }
    Ok(results)
}
