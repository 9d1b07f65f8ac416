//! D-Bus system service files (`/usr/share/dbus-1/system-services/*.service`):
//!
//! ```text
//! [D-BUS Service]
//! Name=org.example.Foo
//! Exec=/usr/libexec/foo --bar
//! User=root
//! SystemdService=foo.service
//! ```
//!
//! A file that cannot be read or lacks what activation needs is reported
//! and skipped; the others are used.

use std::path::{Path, PathBuf};

use crate::error::Error;

pub use bootenv::status::Service;

pub const SYSTEM_SERVICES: &str = "/usr/share/dbus-1/system-services";

/// A service file that was skipped, and why.
#[derive(Debug)]
pub struct Broken {
    pub file: PathBuf,
    pub why: Error,
}

/// Is `name` a valid D-Bus well-known name? (Two or more dot-separated
/// elements of `[A-Za-z0-9_-]`, none starting with a digit, <= 255 bytes.)
pub fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 || name.starts_with('.') || name.starts_with(':') {
        return false;
    }
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.as_bytes()[0].is_ascii_digit()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

pub fn parse(file: &Path, text: &str) -> Result<Service, Error> {
    let mut in_group = false;
    let mut seen_group = false;
    let (mut name, mut exec, mut user, mut unit) = (None, None, None, None);
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            in_group = line == "[D-BUS Service]";
            seen_group |= in_group;
            continue;
        }
        if !in_group {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::ServiceSyntax {
                line: n + 1,
                found: line.to_owned(),
            });
        };
        let v = v.trim().to_owned();
        match k.trim() {
            "Name" => name = Some(v),
            "Exec" => exec = Some(v),
            "User" => user = Some(v),
            "SystemdService" => unit = Some(v),
            _ => {}
        }
    }
    if !seen_group {
        return Err(Error::ServiceNoGroup);
    }
    let name = name.ok_or(Error::ServiceNoName)?;
    if !valid_name(&name) {
        return Err(Error::ServiceBadName(name));
    }
    if exec.as_deref().map_or(true, str::is_empty) && unit.as_deref().map_or(true, str::is_empty) {
        return Err(Error::ServiceNothingToStart(name));
    }
    Ok(Service {
        name,
        exec: exec.filter(|e| !e.is_empty()),
        user,
        systemd_service: unit.filter(|u| !u.is_empty()),
        file: file.to_path_buf(),
    })
}

/// Reads every `*.service` in `dir` (sorted by file name; the first file
/// claiming a name wins).
pub fn load(dir: &Path) -> (Vec<Service>, Vec<Broken>) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "service"))
            .collect(),
        Err(_) => return (Vec::new(), Vec::new()),
    };
    files.sort();
    let mut services: Vec<Service> = Vec::new();
    let mut broken = Vec::new();
    for file in files {
        let parsed = std::fs::read_to_string(&file)
            .map_err(Error::ServiceRead)
            .and_then(|t| parse(&file, &t));
        match parsed {
            Ok(s) => {
                if let Some(first) = services.iter().find(|o| o.name == s.name) {
                    let why = Error::ServiceDuplicate {
                        name: s.name,
                        first: first.file.display().to_string(),
                    };
                    broken.push(Broken { file, why });
                } else {
                    services.push(s);
                }
            }
            Err(why) => broken.push(Broken { file, why }),
        }
    }
    (services, broken)
}

/// The uid and gid of `user` from this root's /etc/passwd (names or
/// numbers).
pub fn lookup_user(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    lookup_user_in(&passwd, user)
}

fn lookup_user_in(passwd: &str, user: &str) -> Option<(u32, u32)> {
    if let Ok(uid) = user.parse::<u32>() {
        return Some((uid, uid));
    }
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// The uid that may own a service's name, as this root knows it: its
/// `User=` (root without one, as dbus-daemon runs system services), or
/// `None` if this root has no such user.
pub fn owner_uid(user: Option<&str>) -> Option<u32> {
    match user {
        None => Some(0),
        Some(u) => lookup_user(u).map(|(uid, _)| uid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_service_file() {
        let s = parse(
            Path::new("x.service"),
            "# comment\n[D-BUS Service]\nName=org.example.Foo\nExec=/usr/bin/foo --x\nUser=root\nSystemdService=foo.service\n",
        )
        .unwrap();
        assert_eq!(s.name, "org.example.Foo");
        assert_eq!(s.exec.as_deref(), Some("/usr/bin/foo --x"));
        assert_eq!(s.user.as_deref(), Some("root"));
        assert_eq!(s.systemd_service.as_deref(), Some("foo.service"));
    }

    #[test]
    fn broken_files_say_why() {
        let p = Path::new("x.service");
        assert!(parse(p, "Name=a.b\n")
            .unwrap_err()
            .to_string()
            .contains("[D-BUS Service]"));
        assert!(parse(p, "[D-BUS Service]\nExec=/x\n")
            .unwrap_err()
            .to_string()
            .contains("Name="));
        assert!(parse(p, "[D-BUS Service]\nName=nodots\nExec=/x\n")
            .unwrap_err()
            .to_string()
            .contains("not a valid"));
        assert!(parse(p, "[D-BUS Service]\nName=a.b\n")
            .unwrap_err()
            .to_string()
            .contains("nothing to start"));
        assert!(parse(p, "[D-BUS Service]\ngarbage\n")
            .unwrap_err()
            .to_string()
            .contains("line 2"));
    }

    #[test]
    fn users_resolve_by_name_or_number() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nkdbus-late:x:998:997::/nonexistent:/usr/sbin/nologin\nbroken:x\n";
        assert_eq!(lookup_user_in(passwd, "kdbus-late"), Some((998, 997)));
        assert_eq!(lookup_user_in(passwd, "root"), Some((0, 0)));
        assert_eq!(lookup_user_in(passwd, "1234"), Some((1234, 1234)));
        assert_eq!(lookup_user_in(passwd, "broken"), None);
        assert_eq!(lookup_user_in(passwd, "nobody-here"), None);
        assert_eq!(owner_uid(None), Some(0), "no User= means root");
        assert_eq!(owner_uid(Some("no-such-user-anywhere")), None);
    }

    #[test]
    fn names() {
        assert!(valid_name("org.freedesktop.systemd1"));
        assert!(valid_name("a-b.c_d"));
        assert!(!valid_name("org"));
        assert!(!valid_name("org..x"));
        assert!(!valid_name("org.1x"));
        assert!(!valid_name(":1.5"));
    }

    #[test]
    fn load_skips_broken_and_duplicate_files() {
        let dir = std::env::temp_dir().join(format!("kdbus-init-svc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.service"),
            "[D-BUS Service]\nName=org.a.A\nExec=/a\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("b.service"),
            "[D-BUS Service]\nName=org.a.A\nExec=/b\n",
        )
        .unwrap();
        std::fs::write(dir.join("c.service"), "[D-BUS Service]\nExec=/c\n").unwrap();
        std::fs::write(dir.join("d.txt"), "ignored").unwrap();
        std::fs::create_dir(dir.join("e.service")).unwrap(); // unreadable as a file
        let (ok, bad) = load(&dir);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].exec.as_deref(), Some("/a"));
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad
            .iter()
            .any(|b| b.why.to_string().contains("already provided")));
        assert!(bad
            .iter()
            .any(|b| b.why.to_string().contains("cannot read")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
