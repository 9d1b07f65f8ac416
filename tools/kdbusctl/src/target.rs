//! Which bus to talk to, and connecting to it with errors a user can act on.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use kdbus::{bus_path, Connection, Errno, HelloBuilder, KDBUSFS_MOUNT, SYSTEM_BUS_NAME};

/// A resolved `--bus` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The endpoint node to connect to.
    pub path: PathBuf,
    /// The system bus (`0-system`), which has its own advice when missing.
    pub is_system: bool,
}

/// `--bus` may be an endpoint path, a bus directory, a bus name
/// (`0-system`, `1000-user`) or the shorthands `system` / `user`.
pub fn resolve(arg: Option<&str>, euid: u32) -> Target {
    let path = match arg {
        None | Some("system") => bus_path(KDBUSFS_MOUNT, SYSTEM_BUS_NAME),
        Some("user") => bus_path(KDBUSFS_MOUNT, &kdbus::prefixed_name(euid, "user")),
        Some(a) if a.contains('/') => {
            let p = PathBuf::from(a);
            if p.is_dir() {
                p.join("bus")
            } else {
                p
            }
        }
        Some(name) => bus_path(KDBUSFS_MOUNT, name),
    };
    let is_system = path.parent().and_then(Path::file_name) == Some(SYSTEM_BUS_NAME.as_ref());
    Target { path, is_system }
}

impl Target {
    /// The bus directory's name (`0-system`).
    pub fn bus_name(&self) -> String {
        self.path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Connects with `hello`, turning the usual failures into advice.
    pub fn connect(&self, hello: &HelloBuilder) -> Result<Connection> {
        hello.connect(&self.path).map_err(|err| self.explain(err))
    }

    pub fn explain(&self, err: kdbus::Error) -> anyhow::Error {
        match err.errno() {
            Some(Errno::NOENT) | Some(Errno::NOTDIR) if err.command_name().is_none() => {
                let why =
                    kdbus::bus::diagnose_missing_bus(&self.path).unwrap_or_else(|| err.to_string());
                if self.is_system && Path::new(KDBUSFS_MOUNT).join("control").exists() {
                    anyhow!(
                        "no kdbus system bus: {why}.\n\
                         Boot with kdbus=1 so that kdbus-init creates it, or pick another bus with --bus"
                    )
                } else if self.is_system {
                    anyhow!(
                        "no kdbus system bus: {why}.\n\
                         Boot with kdbus=1 (kdbus-init loads the module, mounts kdbusfs and creates the bus)"
                    )
                } else {
                    anyhow!("cannot reach bus {}: {why}", self.path.display())
                }
            }
            Some(Errno::ACCESS) | Some(Errno::PERM) if err.command_name().is_none() => {
                anyhow!("{err}\nThe bus is not open to this user: run as root or as the bus owner")
            }
            Some(Errno::NOTTY) => anyhow!("{err}\n{} is not a kdbus endpoint", self.path.display()),
            _ => anyhow!("cannot connect to {}: {err}", self.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_paths_and_shorthands() {
        let sys = resolve(None, 1000);
        assert_eq!(sys.path, Path::new("/sys/fs/kdbus/0-system/bus"));
        assert!(sys.is_system);
        assert_eq!(sys.bus_name(), "0-system");
        assert_eq!(resolve(Some("system"), 1000), sys);
        assert_eq!(resolve(Some("0-system"), 1000), sys);

        let user = resolve(Some("user"), 1000);
        assert_eq!(user.path, Path::new("/sys/fs/kdbus/1000-user/bus"));
        assert!(!user.is_system);

        let custom = resolve(Some("/mnt/kd/0-test/0-ep"), 0);
        assert_eq!(custom.path, Path::new("/mnt/kd/0-test/0-ep"));
        assert_eq!(custom.bus_name(), "0-test");

        // An existing directory means the bus directory.
        let dir = std::env::temp_dir();
        assert_eq!(resolve(dir.to_str(), 0).path, dir.join("bus"));
    }

    #[test]
    fn a_missing_bus_gets_advice() {
        let target = Target {
            path: PathBuf::from("/nonexistent/kdbus/0-system/bus"),
            is_system: true,
        };
        let err = target
            .connect(&HelloBuilder::new())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("no kdbus system bus"), "{err}");
        assert!(err.contains("kdbus=1"), "{err}");

        let other = resolve(Some("/nonexistent/x/0-foo/bus"), 0);
        let err = other.connect(&HelloBuilder::new()).unwrap_err().to_string();
        assert!(err.contains("cannot reach bus"), "{err}");
        assert!(err.contains("not loaded"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_an_endpoint_says_so() {
        let target = Target {
            path: PathBuf::from("/dev/null"),
            is_system: false,
        };
        let err = target
            .connect(&HelloBuilder::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a kdbus endpoint"), "{err}");
    }
}
