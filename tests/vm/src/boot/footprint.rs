//! What the kdbus parts add to an initramfs: the same builder's image with
//! and without them, unpacked to its cpio archive and compressed again with
//! each compressor at that builder's own default level, and which files the
//! added bytes are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::initramfs::{Content, Flavour};
use super::Env;

/// The target for the added size with zstd.
const TARGET: u64 = 300 * 1000;

struct Builder {
    name: &'static str,
    flavour: Flavour,
    /// (compressor, level) as the builder uses them.
    levels: [(&'static str, u32); 2],
}

const BUILDERS: [Builder; 2] = [
    Builder {
        name: "initramfs-tools (hook)",
        flavour: Flavour::InitramfsTools,
        levels: [("zstd", 9), ("gzip", 6)],
    },
    Builder {
        name: "dracut --add kdbus (systemd)",
        flavour: Flavour::Systemd,
        levels: [("zstd", 15), ("gzip", 9)],
    },
];

/// Unpacks the compressed archive of `image` into a cpio file.
fn unpack(image: &Path, out: &Path) -> Result<()> {
    let head = std::fs::read(image)?
        .into_iter()
        .take(4)
        .collect::<Vec<u8>>();
    let tool = match head.as_slice() {
        [0x28, 0xb5, 0x2f, 0xfd] => "zstd",
        [0x1f, 0x8b, ..] => "gzip",
        _ => bail!(
            "{}: not a single zstd or gzip archive (early cpio segments are not expected in \
             the test images)",
            image.display()
        ),
    };
    let st = Command::new(tool)
        .args(["-d", "-c", "-q"])
        .stdin(std::fs::File::open(image)?)
        .stdout(std::fs::File::create(out)?)
        .status()
        .with_context(|| format!("run {tool}"))?;
    if !st.success() {
        bail!("{tool} -d {} failed", image.display());
    }
    Ok(())
}

/// The size of `file` compressed with `tool` at `level`.
fn compressed(file: &Path, tool: &str, level: u32) -> Result<u64> {
    let mut cmd = Command::new(tool);
    match tool {
        "zstd" => cmd.args(["-q", &format!("-{level}"), "-c"]),
        _ => cmd.args(["-n", &format!("-{level}"), "-c"]),
    };
    let out = cmd
        .stdin(std::fs::File::open(file)?)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run {tool}"))?;
    if !out.status.success() {
        bail!("{tool} failed on {}", file.display());
    }
    Ok(out.stdout.len() as u64)
}

/// path -> size of the regular files in a cpio archive.
fn members(cpio: &Path) -> Result<HashMap<String, u64>> {
    let out = Command::new("cpio")
        .args(["-t", "-v", "--quiet"])
        .stdin(std::fs::File::open(cpio)?)
        .output()
        .context("run cpio")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(8)?.to_string(), f.get(4)?.parse().ok()?))
        })
        .collect())
}

/// One member of a cpio archive, extracted to `out`.
fn extract(cpio: &Path, path: &str, out: &Path) -> Result<()> {
    let st = Command::new("cpio")
        .args(["-i", "--quiet", "--to-stdout", path])
        .stdin(std::fs::File::open(cpio)?)
        .stdout(std::fs::File::create(out)?)
        .status()
        .context("run cpio")?;
    if !st.success() {
        bail!("cpio could not extract {path}");
    }
    Ok(())
}

/// What one builder's images say.
pub struct Added {
    pub builder: &'static str,
    /// Bytes the kdbus parts add with zstd, at the builder's level.
    pub zstd: i64,
    pub zstd_level: u32,
    /// The images compared (without, with).
    pub images: [PathBuf; 2],
}

/// Prints the added bytes per builder and compressor, and where they go;
/// returns the zstd figure of every builder.
pub fn report(env: &Env) -> Result<Vec<Added>> {
    let dir = env.checkout.join("target/vmtest/footprint");
    std::fs::create_dir_all(&dir)?;
    let mut figures = Vec::new();
    println!("| builder | files added | uncompressed | zstd | gzip |");
    println!("|---|---|---|---|---|");
    let mut details = Vec::new();
    for (bi, b) in BUILDERS.iter().enumerate() {
        let mut images: Vec<PathBuf> = Vec::new();
        let mut cpio: Vec<PathBuf> = Vec::new();
        for (i, content) in [Content::Plain, Content::Kdbus].into_iter().enumerate() {
            let image = env.initramfs(b.flavour, content)?;
            let out = dir.join(format!("image-{bi}-{i}.cpio"));
            unpack(&image, &out)?;
            images.push(image);
            cpio.push(out);
        }
        let raw = |p: &Path| std::fs::metadata(p).map(|m| m.len() as i64);
        let mut cells = vec![format!("{:+}", raw(&cpio[1])? - raw(&cpio[0])?)];
        for (tool, level) in b.levels {
            let added = compressed(&cpio[1], tool, level)? as i64
                - compressed(&cpio[0], tool, level)? as i64;
            if tool == "zstd" {
                figures.push(Added {
                    builder: b.name,
                    zstd: added,
                    zstd_level: level,
                    images: [images[0].clone(), images[1].clone()],
                });
            }
            cells.push(format!("{added:+} (-{level})"));
        }
        let (without, with) = (members(&cpio[0])?, members(&cpio[1])?);
        // (path, bytes added, whether the file is new)
        let mut added: Vec<(&String, i64, bool)> = with
            .iter()
            .filter(|(p, s)| without.get(*p) != Some(s))
            .map(|(p, s)| match without.get(p) {
                Some(before) => (p, *s as i64 - *before as i64, false),
                None => (p, *s as i64, true),
            })
            .collect();
        added.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        println!("| {} | {} | {} |", b.name, added.len(), cells.join(" | "));
        let (tool, level) = b.levels[0];
        let mut lines = Vec::new();
        for (path, bytes, new) in added.iter().take(8) {
            if *new {
                let one = dir.join("member");
                extract(&cpio[1], path, &one)?;
                lines.push(format!(
                    "  {bytes:>9} B new, {tool} -{level} alone {:>8} B  {path}",
                    compressed(&one, tool, level)?
                ));
            } else {
                lines.push(format!(
                    "  {bytes:>+9} B in a file both images have  {path}"
                ));
            }
        }
        details.push((b.name, lines));
    }
    println!("(same builder, same kernel, with and without the kdbus parts; bytes)");
    for (name, lines) in details {
        println!("largest added files, {name}:");
        for l in lines {
            println!("{l}");
        }
    }
    let within = figures.iter().all(|f| f.zstd <= TARGET as i64);
    println!(
        "target: at most {TARGET} B added with zstd: {}",
        if within { "met" } else { "NOT met" }
    );
    Ok(figures)
}

/// The boot suite's check: every builder's kdbus parts within [`TARGET`]
/// with zstd, as (check, passed, why) like the other checks without a
/// boot. The images compared are added to `images` (kept by the cache
/// pruning).
pub fn check(env: &Env, images: &mut Vec<PathBuf>) -> Result<Vec<(String, bool, String)>> {
    Ok(report(env)?
        .into_iter()
        .map(|f| {
            images.extend(f.images);
            (
                format!(
                    "{}: the kdbus parts add at most {TARGET} B with zstd",
                    f.builder
                ),
                f.zstd <= TARGET as i64,
                format!(
                    "{:+} B with zstd -{} (see the table above for the largest files)",
                    f.zstd, f.zstd_level
                ),
            )
        })
        .collect())
}
