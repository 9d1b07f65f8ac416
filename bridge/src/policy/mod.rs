//! The bus policy: dbus-daemon's configuration files (`<policy>`,
//! `<allow>`, `<deny>`, `<limit>`, `<include>`, `<includedir>`), and the
//! decisions they make about owning names, sending and receiving.
//!
//! - [`parse`]: files to sections and limits.
//! - [`rules`]: the rule model and the decision functions.
//! - [`users`]: user and group names.
//! - [`console`]: who is at the console (`at_console`).
//! - [`kernel`]: what of it the kernel enforces, for native clients.
//!
//! The [`PolicyStore`] holds the policy in force; a reload
//! (`ReloadConfig`, SIGHUP) replaces it, and each client picks the new one
//! up at its next check, without being disconnected.

pub mod console;
pub mod kernel;
pub mod parse;
pub mod rules;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use parse::Limit;
pub use rules::{Candidate, ClientRules, Decision};
use users::Users;

/// A loaded configuration.
#[derive(Debug)]
pub struct Policy {
    sections: Vec<rules::Section>,
    pub limits: Vec<Limit>,
    users: Users,
    /// The uid that may connect when no user/group rule says anything.
    bus_uid: u32,
}

impl Policy {
    /// Reads `main` and its includes; the messages about files or rules
    /// left out come back with it.
    pub fn load(main: &Path, bus_uid: u32) -> Result<(Policy, Vec<String>), String> {
        let users = Users::read(Path::new("/"));
        let config = parse::load(main, &users)?;
        Ok((
            Policy {
                sections: config.sections,
                limits: config.limits,
                users,
                bus_uid,
            },
            config.warnings,
        ))
    }

    /// Allows everything (a bridge without configuration, and tests).
    pub fn allow_all() -> Policy {
        let text = r#"<busconfig><policy context="default"><allow user="*"/><allow own="*"/>
            <allow send_destination="*" send_requested_reply="false"/>
            <allow receive_sender="*" receive_requested_reply="false"/></policy></busconfig>"#;
        let mut warnings = Vec::new();
        let items = parse::parse_text(
            text,
            &"(built in)".into(),
            Path::new("/"),
            &Users::default(),
            &mut warnings,
        )
        .expect("the built-in policy parses");
        let sections = items
            .into_iter()
            .filter_map(|i| match i {
                parse::Item::Section(s) => Some(s),
                _ => None,
            })
            .collect();
        Policy {
            sections,
            limits: Vec::new(),
            users: Users::default(),
            bus_uid: 0,
        }
    }

    /// The rules for a client with this uid and gid. Whether it is at the
    /// console is decided now, as dbus-daemon decides it when a client
    /// connects (and again at a reload), and only if some policy asks.
    pub fn for_client(&self, uid: u32, gid: u32) -> ClientRules {
        let asks_console = self
            .sections
            .iter()
            .any(|s| matches!(s.context, rules::Context::Console(_)));
        ClientRules::new(
            &self.sections,
            uid,
            &self.users.groups_of(uid, gid),
            asks_console && console::at_console(uid),
        )
    }

    /// May a client with this uid and gid connect?
    pub fn can_connect(&self, uid: u32, gid: u32) -> Decision {
        rules::can_connect(
            &self.sections,
            uid,
            &self.users.groups_of(uid, gid),
            self.bus_uid,
        )
    }

    /// The last value the configuration gives a limit.
    pub fn limit(&self, name: &str) -> Option<u64> {
        self.limits
            .iter()
            .rev()
            .find(|l| l.name == name)
            .map(|l| l.value)
    }
}

/// The policy in force, shared by all clients.
#[derive(Debug)]
pub struct PolicyStore {
    /// `None`: the built-in policy that allows everything.
    path: Option<PathBuf>,
    bus_uid: u32,
    current: RwLock<Arc<Policy>>,
    generation: AtomicU64,
    /// What the kernel enforces of it, once [`PolicyStore::enforce_in_kernel`]
    /// was called.
    kernel: Mutex<Option<kernel::Holders>>,
}

impl PolicyStore {
    pub fn new(path: Option<PathBuf>, bus_uid: u32, policy: Policy) -> PolicyStore {
        PolicyStore {
            path,
            bus_uid,
            current: RwLock::new(Arc::new(policy)),
            generation: AtomicU64::new(1),
            kernel: Mutex::new(None),
        }
    }

    /// Hands the policy's part that the kernel can enforce to the kernel
    /// of `bus`, now and after every reload (see [`kernel`]).
    pub fn enforce_in_kernel(&self, bus: &Path) {
        let mut holders = kernel::Holders::new(bus, Path::new(kernel::SERVICES_DIR));
        holders.sync(&self.current().1);
        *self.kernel.lock().unwrap_or_else(|e| e.into_inner()) = Some(holders);
    }

    pub fn allow_all() -> PolicyStore {
        PolicyStore::new(None, 0, Policy::allow_all())
    }

    /// The policy and its generation (which a reload increases).
    pub fn current(&self) -> (u64, Arc<Policy>) {
        let policy = self.current.read().unwrap_or_else(|e| e.into_inner());
        (self.generation.load(Ordering::Acquire), policy.clone())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads the files again. On failure the policy in force stays.
    /// Returns the messages about what was left out.
    pub fn reload(&self) -> Result<Vec<String>, String> {
        let Some(path) = &self.path else {
            return Ok(Vec::new());
        };
        let (policy, warnings) = Policy::load(path, self.bus_uid)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(holders) = self
            .kernel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            // The policy in force: a reload that finished meanwhile may
            // have replaced this one.
            holders.sync(&self.current().1);
        }
        Ok(warnings)
    }

    /// Reloads and logs what happened (SIGHUP, ReloadConfig).
    pub fn reload_logged(&self, why: &str) -> Result<(), String> {
        match self.reload() {
            Ok(warnings) => {
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                tracing::info!("bus policy reloaded ({why})");
                Ok(())
            }
            Err(e) => {
                tracing::error!("reloading the bus policy failed, the old one stays: {e}");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Kind;

    /// Debian's system bus configuration, as installed with dbus-daemon.
    #[test]
    fn debian_system_bus() {
        let main = Path::new("/usr/share/dbus-1/system.conf");
        assert!(main.exists(), "install dbus-daemon (make deps)");
        let (policy, _) = Policy::load(main, 0).unwrap();
        let root = policy.for_client(0, 0);
        let user = policy.for_client(65534, 65534);
        assert!(root.can_own("org.freedesktop.hostname1").allowed());
        assert!(!user.can_own("org.freedesktop.hostname1").allowed());
        assert!(!root.can_own("org.example.Anything").allowed());
        let mut to_driver = Candidate {
            kind: Kind::MethodCall,
            path: Some("/org/freedesktop/DBus"),
            interface: Some("org.freedesktop.DBus"),
            member: Some("Hello"),
            error: None,
            peer: Some("org.freedesktop.DBus"),
            requested_reply: false,
            fds: 0,
        };
        let mut driver = || vec!["org.freedesktop.DBus".to_owned()];
        assert!(user.can_send(&to_driver, &mut driver).allowed());
        to_driver.member = Some("UpdateActivationEnvironment");
        assert!(!user.can_send(&to_driver, &mut driver).allowed());
        to_driver.interface = Some("org.freedesktop.DBus.Monitoring");
        to_driver.member = Some("BecomeMonitor");
        assert!(!user.can_send(&to_driver, &mut driver).allowed());
        assert!(root.can_send(&to_driver, &mut driver).allowed());
        assert!(policy.can_connect(65534, 65534).allowed());
    }

    #[test]
    fn allow_all() {
        let p = Policy::allow_all().for_client(1000, 1000);
        assert!(p.can_own("a.b").allowed());
        let reply = Candidate {
            kind: Kind::Error,
            path: None,
            interface: None,
            member: None,
            error: Some("x.Y"),
            peer: Some(":1.4"),
            requested_reply: false,
            fds: 3,
        };
        assert!(p.can_send(&reply, &mut Vec::new).allowed());
        assert!(p.can_receive(&reply, &mut Vec::new).allowed());
        assert!(!p.needs_destination_names);
    }
}
