//! What an image needs to bring up the bus, checked part by part.

use serde::Serialize;

use super::archive::{Archive, Member};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Info,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub part: &'static str,
    pub level: Level,
    pub message: String,
}

impl Check {
    fn new(part: &'static str, level: Level, message: impl Into<String>) -> Check {
        Check {
            part,
            level,
            message: message.into(),
        }
    }
}

/// A D-Bus system service file in the image: what an activator is made for.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub file: String,
    pub name: Option<String>,
}

/// Everything the checks found.
#[derive(Debug, Clone, Serialize)]
pub struct Findings {
    /// Kernel releases the image has modules for.
    pub kernels: Vec<String>,
    pub module: Option<String>,
    pub module_vermagic: Option<String>,
    pub services: Vec<Service>,
    pub checks: Vec<Check>,
    /// Whether the image can bring up the bus (with kdbus=1).
    pub ready: bool,
}

/// Checks every kdbus part of `archive`.
pub fn check(archive: &Archive) -> Findings {
    let kernels = kernels(archive);
    let module = archive.members.iter().find(|m| is_kdbus_module(&m.path));
    let vermagic = module.and_then(vermagic);
    let services = services(archive);
    let mut checks = vec![
        check_module(archive, module, vermagic.as_deref(), &kernels),
        check_init(archive),
        check_start(archive),
    ];
    checks.push(match services.len() {
        0 => Check::new(
            "services",
            Level::Info,
            "no D-Bus system service files: kdbus-init will hold no activators",
        ),
        n => Check::new(
            "services",
            Level::Info,
            format!(
                "{n} D-Bus system service file(s): {}",
                services
                    .iter()
                    .map(|s| s.name.as_deref().unwrap_or("(no Name=)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    });
    for s in services.iter().filter(|s| s.name.is_none()) {
        checks.push(Check::new(
            "services",
            Level::Info,
            format!("{} has no Name= line: it gets no activator", s.file),
        ));
    }
    let ready = !checks.iter().any(|c| c.level == Level::Fail);
    Findings {
        kernels,
        module: module.map(|m| m.path.clone()),
        module_vermagic: vermagic,
        services,
        checks,
        ready,
    }
}

fn find<'a>(archive: &'a Archive, paths: &[&str]) -> Option<&'a Member> {
    archive
        .members
        .iter()
        .find(|m| paths.iter().any(|p| m.path == *p))
}

/// `lib/modules/<release>/` directories (usr-merged or not).
fn kernels(archive: &Archive) -> Vec<String> {
    let mut out: Vec<String> = archive
        .members
        .iter()
        .filter(|m| m.is_dir())
        .filter_map(|m| {
            let rest = m
                .path
                .strip_prefix("usr/lib/modules/")
                .or_else(|| m.path.strip_prefix("lib/modules/"))?;
            (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn is_kdbus_module(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    path.contains("lib/modules/")
        && matches!(
            file,
            "kdbus.ko" | "kdbus.ko.xz" | "kdbus.ko.zst" | "kdbus.ko.gz"
        )
}

/// The module's ELF image, decompressed if it was stored compressed.
fn module_elf(m: &Member) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    if m.path.ends_with(".ko") {
        return Some(m.data.clone());
    } else if m.path.ends_with(".xz") {
        liblzma::read::XzDecoder::new(&m.data[..])
            .read_to_end(&mut out)
            .ok()?;
    } else if m.path.ends_with(".zst") {
        out = zstd::decode_all(&m.data[..]).ok()?;
    } else {
        flate2::read::GzDecoder::new(&m.data[..])
            .read_to_end(&mut out)
            .ok()?;
    }
    Some(out)
}

/// The kernel release in the module's `vermagic=` modinfo string.
fn vermagic(m: &Member) -> Option<String> {
    let elf = module_elf(m)?;
    let key = b"vermagic=";
    let at = elf.windows(key.len()).position(|w| w == key)? + key.len();
    let value = elf[at..].split(|&b| b == 0).next()?;
    let value = std::str::from_utf8(value).ok()?;
    value.split_whitespace().next().map(str::to_owned)
}

fn check_module(
    archive: &Archive,
    module: Option<&Member>,
    vermagic: Option<&str>,
    kernels: &[String],
) -> Check {
    let Some(module) = module else {
        return Check::new(
            "module",
            Level::Fail,
            "kdbus.ko is not in the image: build it with `dracut --add kdbus` \
             (or update-initramfs with the kdbus hook installed)",
        );
    };
    let Some(built_for) = vermagic else {
        return Check::new(
            "module",
            Level::Fail,
            format!(
                "{} has no readable vermagic: it is not a kernel module",
                module.path
            ),
        );
    };
    let Some(release) = module_release(&module.path) else {
        return Check::new(
            "module",
            Level::Fail,
            format!("{} is not below lib/modules/<release>/", module.path),
        );
    };
    if built_for != release {
        return Check::new(
            "module",
            Level::Fail,
            format!(
                "{} was built for {built_for}, but the image is for {release}: \
                 rebuild the module for {release} (dkms, or make -C kmod KVER={release})",
                module.path
            ),
        );
    }
    let dep = format!("lib/modules/{release}/modules.dep");
    let listed = find(archive, &[&dep, &format!("usr/{dep}")])
        .is_some_and(|d| String::from_utf8_lossy(&d.data).contains("kdbus.ko"));
    if !listed {
        return Check::new(
            "module",
            Level::Fail,
            format!(
                "{} is present but not in modules.dep: modprobe cannot load it \
                 (run depmod {release} before building the image)",
                module.path
            ),
        );
    }
    let others: Vec<&String> = kernels.iter().filter(|k| **k != release).collect();
    let note = if others.is_empty() {
        String::new()
    } else {
        format!(" (the image also has modules for {others:?})")
    };
    Check::new(
        "module",
        Level::Ok,
        format!("{}, built for {built_for}{note}", module.path),
    )
}

fn module_release(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("usr/lib/modules/")
        .or_else(|| path.strip_prefix("lib/modules/"))?;
    rest.split('/').next()
}

fn check_init(archive: &Archive) -> Check {
    match find(archive, &["usr/sbin/kdbus-init", "sbin/kdbus-init"]) {
        Some(m) if m.is_executable() => Check::new("kdbus-init", Level::Ok, m.path.clone()),
        Some(m) => Check::new(
            "kdbus-init",
            Level::Fail,
            format!("{} is not an executable file", m.path),
        ),
        None => Check::new(
            "kdbus-init",
            Level::Fail,
            "kdbus-init is not in the image: install it (make install) and rebuild the image",
        ),
    }
}

/// How kdbus-init gets started: a systemd unit that a target wants, a
/// dracut hook, or an initramfs-tools boot script.
fn check_start(archive: &Archive) -> Check {
    let unit = find(
        archive,
        &[
            "usr/lib/systemd/system/kdbus-init.service",
            "lib/systemd/system/kdbus-init.service",
            "etc/systemd/system/kdbus-init.service",
        ],
    );
    let wanted_by: Vec<&str> = archive
        .members
        .iter()
        .filter(|m| m.path.ends_with(".wants/kdbus-init.service"))
        .filter_map(|m| m.path.rsplit('/').nth(1))
        .collect();
    let systemd = find(archive, &["usr/lib/systemd/systemd", "lib/systemd/systemd"]).is_some();
    let dracut_hook = archive
        .members
        .iter()
        .find(|m| m.path.contains("dracut/hooks/") && m.path.ends_with("kdbus-start.sh"));
    // initramfs-tools starts it before the root is mounted; an init-bottom
    // script alone comes too late.
    let tools_script = find(
        archive,
        &["scripts/init-top/kdbus", "scripts/init-premount/kdbus"],
    );

    if systemd {
        return match (unit, wanted_by.is_empty()) {
            (Some(u), false) => Check::new(
                "start",
                Level::Ok,
                format!(
                    "systemd starts {} (wanted by {})",
                    u.path,
                    wanted_by.join(", ")
                ),
            ),
            (Some(u), true) => Check::new(
                "start",
                Level::Fail,
                format!(
                    "{} is installed but no target wants it: it never runs",
                    u.path
                ),
            ),
            (None, _) => Check::new(
                "start",
                Level::Fail,
                "the image boots with systemd but has no kdbus-init.service",
            ),
        };
    }
    if let Some(hook) = dracut_hook {
        return Check::new(
            "start",
            Level::Ok,
            format!("dracut's shell init runs {}", hook.path),
        );
    }
    if let Some(script) = tools_script {
        return Check::new(
            "start",
            Level::Ok,
            format!("initramfs-tools runs {}", script.path),
        );
    }
    Check::new(
        "start",
        Level::Fail,
        "nothing in the image starts kdbus-init (no systemd unit, dracut hook or \
         initramfs-tools script)",
    )
}

fn services(archive: &Archive) -> Vec<Service> {
    let mut out: Vec<Service> = archive
        .members
        .iter()
        .filter(|m| m.is_file() && m.path.ends_with(".service"))
        .filter(|m| {
            m.path.starts_with("usr/share/dbus-1/system-services/")
                || m.path
                    .starts_with("usr/local/share/dbus-1/system-services/")
        })
        .map(|m| Service {
            file: m.path.clone(),
            name: String::from_utf8_lossy(&m.data)
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Name="))
                .map(|n| n.trim().to_owned())
                .next(),
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}
