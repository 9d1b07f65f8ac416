//! The part of the bus policy the kernel enforces: owning names and
//! talking to them, for native kdbus clients.
//!
//! The bridge's own clients never meet the kernel's policy: their
//! connections carry the clients' credentials, which only the bus owner
//! may fake, and the owner passes every policy check. For them the bridge
//! decides every message (see `crate::bus::access`). A native client
//! reaches the kernel directly, so what it may own and whom it may talk to
//! is what policy holders tell the kernel.
//!
//! The kernel's policy only grants: a user, a group or everyone may OWN or
//! TALK to a name (OWN includes TALK), and nothing else is allowed. So
//! the translation grants only what the configuration allows whatever
//! else is true: everyone, a user or a group is granted access to a name
//! if the rules that decide for it allow every message to the name (for
//! TALK) or owning it (for OWN), and no context that could apply as well
//! comes later with a rule that denies some of it. A rule that allows only
//! some messages (an interface, a member) grants nothing here: native
//! clients are then refused by the kernel where the bridge would have let
//! some messages pass. One thing the kernel cannot see: its TALK grant for
//! a name holds for all of its owner's names, where a `send_destination`
//! rule about another name of the same owner would count too.
//!
//! Names with a service file are left to kdbus-init's activators, whose
//! policy (everyone may talk, the service's user may own) the kernel
//! keeps next to them; a name can have only one policy entry.

use std::path::{Path, PathBuf};

use kdbus::{Access, Connection, Errno, HelloBuilder, PolicyAccess, Subject};
use tracing::{debug, info, warn};

use super::rules::{Action, Context, MessageMatch, NameMatch, Rule, Section};
use super::Policy;
use crate::protocol::{Kind, DRIVER_NAME};

/// Where kdbus-init reads the system bus's service files.
pub const SERVICES_DIR: &str = "/usr/share/dbus-1/system-services";

/// A holder only registers policy; it never receives anything.
const HOLDER_POOL: u64 = 4096;

/// What the rules of one context (all its `<policy>` sections, in order)
/// say about one question: owning a name, or sending to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verdict {
    /// A rule allows all of it and no rule after that denies any of it.
    allows_all: bool,
    /// Whatever this context decides, it is to allow.
    never_denies: bool,
}

impl Verdict {
    /// `rules`: the context's rules that concern the question, each with
    /// whether it concerns all of it (`true`) or only some.
    fn of<'a>(rules: impl Iterator<Item = (&'a Rule, bool)>) -> Verdict {
        let mut v = Verdict {
            allows_all: false,
            never_denies: true,
        };
        for (rule, whole) in rules {
            if rule.allow && whole {
                v = Verdict {
                    allows_all: true,
                    never_denies: true,
                };
            } else if !rule.allow {
                v = Verdict {
                    allows_all: false,
                    never_denies: false,
                };
            }
        }
        v
    }
}

/// Does `m` (a send rule) concern messages to `name`, and all of them?
fn send_rule_about(allow: bool, m: &MessageMatch, name: &str) -> Option<bool> {
    // A deny that only concerns eavesdropping never applies (the bridge
    // lets nobody eavesdrop), nor does a rule about broadcasts.
    if (!allow && m.eavesdrop == Some(true)) || m.broadcast == Some(true) {
        return None;
    }
    match &m.peer {
        None | Some(NameMatch::Any) => {}
        Some(peer) if peer.matches(name) => {}
        Some(_) => return None,
    }
    let whole = MessageMatch {
        peer: m.peer.clone(),
        ..MessageMatch::default()
    };
    Some(*m == whole)
}

/// The question a grant answers.
#[derive(Clone, Copy)]
enum Question<'a> {
    Own(&'a str),
    Talk(&'a str),
}

fn verdict(rules: &[&Rule], q: Question<'_>) -> Verdict {
    Verdict::of(rules.iter().filter_map(|r| {
        let whole = match (&r.action, q) {
            (Action::Own(m), Question::Own(name)) => m.matches(name).then_some(true),
            (Action::Send(m), Question::Talk(name)) => send_rule_about(r.allow, m, name),
            _ => None,
        };
        whole.map(|w| (&**r, w))
    }))
}

/// The rules of the context of `id` in `contexts` (added if new).
fn of<'l, 'a>(contexts: &'l mut Vec<(u32, Vec<&'a Rule>)>, id: u32) -> &'l mut Vec<&'a Rule> {
    let at = match contexts.iter().position(|(i, _)| *i == id) {
        Some(at) => at,
        None => {
            contexts.push((id, Vec::new()));
            contexts.len() - 1
        }
    };
    &mut contexts[at].1
}

/// The rules of each context, in the order they override each other.
/// (Vectors rather than maps: a handful of contexts, and less code.)
struct Contexts<'a> {
    default: Vec<&'a Rule>,
    groups: Vec<(u32, Vec<&'a Rule>)>,
    users: Vec<(u32, Vec<&'a Rule>)>,
    console: Vec<Vec<&'a Rule>>,
    mandatory: Vec<&'a Rule>,
}

impl<'a> Contexts<'a> {
    fn new(sections: &'a [Section]) -> Contexts<'a> {
        let mut c = Contexts {
            default: Vec::new(),
            groups: Vec::new(),
            users: Vec::new(),
            console: vec![Vec::new(), Vec::new()],
            mandatory: Vec::new(),
        };
        for s in sections {
            let rules = match s.context {
                Context::Default => &mut c.default,
                Context::Group(g) => of(&mut c.groups, g),
                Context::User(u) => of(&mut c.users, u),
                Context::Console(at) => &mut c.console[at as usize],
                Context::Mandatory => &mut c.mandatory,
            };
            rules.extend(s.rules.iter().map(|r| &**r));
        }
        c
    }

    /// Who is granted what `q` asks, whatever else applies to them. A
    /// context decides for a message when it is the last one that has a
    /// rule about it; so a grant needs the deciding context to allow all
    /// of it and every context that may come after it never to deny.
    fn grants(&self, q: Question<'_>) -> Vec<Subject> {
        let never_denies = |rules: &Vec<&Rule>| verdict(rules, q).never_denies;
        let consoles_ok = self.console.iter().all(never_denies);
        let mut granted = Vec::new();
        let mandatory = verdict(&self.mandatory, q);
        if mandatory.allows_all {
            granted.push(Subject::World);
        }
        if !mandatory.never_denies || mandatory.allows_all {
            return granted;
        }
        let users_ok = self.users.iter().all(|(_, r)| never_denies(r));
        if verdict(&self.default, q).allows_all
            && consoles_ok
            && users_ok
            && self.groups.iter().all(|(_, r)| never_denies(r))
        {
            granted.push(Subject::World);
            return granted;
        }
        for (uid, rules) in &self.users {
            if consoles_ok && verdict(rules, q).allows_all {
                granted.push(Subject::User(*uid));
            }
        }
        for &(gid, ref rules) in &self.groups {
            let others_ok = self
                .groups
                .iter()
                .all(|(g, r)| *g == gid || never_denies(r));
            if consoles_ok && users_ok && others_ok && verdict(rules, q).allows_all {
                granted.push(Subject::Group(gid));
            }
        }
        granted
    }

    /// May a native client receive whatever reaches it? The kernel knows
    /// no receive rules: TALK is granted only if the configuration lets
    /// everybody receive every kind of message.
    fn receiving_is_open(&self) -> bool {
        let all = [&self.default, &self.mandatory]
            .into_iter()
            .chain(self.groups.iter().map(|(_, r)| r))
            .chain(self.users.iter().map(|(_, r)| r))
            .chain(&self.console);
        let denies = all.flat_map(|rules| rules.iter()).any(
            |r| matches!(&r.action, Action::Receive(m) if !r.allow && m.eavesdrop != Some(true)),
        );
        let opens = |kind: Kind| {
            self.default.iter().any(|r| match &r.action {
                Action::Receive(m) if r.allow => {
                    let whole = MessageMatch {
                        peer: m.peer.clone(),
                        kind: m.kind,
                        ..MessageMatch::default()
                    };
                    *m == whole
                        && matches!(m.peer, None | Some(NameMatch::Any))
                        && m.kind.is_none_or(|k| k == kind)
                }
                _ => false,
            })
        };
        let kinds = [
            Kind::MethodCall,
            Kind::MethodReturn,
            Kind::Error,
            Kind::Signal,
        ];
        !denies && kinds.into_iter().all(opens)
    }
}

/// The names the configuration speaks of.
fn named(sections: &[Section]) -> Vec<&str> {
    fn name(m: &NameMatch) -> Option<&str> {
        match m {
            NameMatch::Exact(n) | NameMatch::Prefix(n) => Some(n),
            NameMatch::Any => None,
        }
    }
    sections
        .iter()
        .flat_map(|s| &s.rules)
        .filter_map(|r| match &r.action {
            Action::Own(m) => name(m),
            Action::Send(m) => m.peer.as_ref().and_then(name),
            _ => None,
        })
        .filter(|n| *n != DRIVER_NAME && !n.starts_with(':'))
        .fold(Vec::new(), |mut names, n| {
            if !names.contains(&n) {
                names.push(n);
            }
            names
        })
}

impl Policy {
    /// The policy entries the kernel can enforce, one per name (see the
    /// module comment).
    pub fn kernel_entries(&self) -> Vec<kdbus::Policy> {
        let contexts = Contexts::new(&self.sections);
        if !contexts.receiving_is_open() {
            return Vec::new();
        }
        named(&self.sections)
            .into_iter()
            .filter_map(|name| {
                let own = contexts.grants(Question::Own(name));
                let talk = contexts.grants(Question::Talk(name));
                let has =
                    |set: &[Subject], s: &Subject| set.contains(s) || set.contains(&Subject::World);
                // Who may talk, at OWN if they may own too; then who may own
                // and talks by a wider grant. OWN includes TALK: owning
                // alone grants nothing.
                let mut access: Vec<_> = talk
                    .iter()
                    .map(|&s| {
                        let level = if has(&own, &s) {
                            Access::Own
                        } else {
                            Access::Talk
                        };
                        PolicyAccess::new(s, level)
                    })
                    .collect();
                access.extend(
                    own.iter()
                        .filter(|s| !talk.contains(s) && has(&talk, s))
                        .map(|&s| PolicyAccess::new(s, Access::Own)),
                );
                (!access.is_empty()).then(|| kdbus::Policy::new(name, access))
            })
            .collect()
    }
}

/// The names of the service files in `dir` (what kdbus-init holds
/// activators for).
fn activatable(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "service"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("Name="))
                .map(|n| n.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The policy holders the bridge keeps on the bus: one connection per
/// name, since the kernel takes one name per holder.
pub struct Holders {
    bus: PathBuf,
    services: PathBuf,
    /// Name, its holder and the access it holds.
    held: Vec<(String, Connection, Vec<PolicyAccess>)>,
}

impl std::fmt::Debug for Holders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holders")
            .field("bus", &self.bus)
            .field("names", &self.held.iter().map(|h| &h.0).collect::<Vec<_>>())
            .finish()
    }
}

impl Holders {
    pub fn new(bus: &Path, services: &Path) -> Holders {
        Holders {
            bus: bus.to_owned(),
            services: services.to_owned(),
            held: Vec::new(),
        }
    }

    /// Makes the kernel hold `policy`'s entries: new names get a holder,
    /// changed ones an update, names no longer in it lose theirs.
    pub fn sync(&mut self, policy: &Policy) {
        let skip = activatable(&self.services);
        let mut wanted = policy.kernel_entries();
        wanted.retain(|e| !skip.contains(&e.name));
        self.held
            .retain(|(name, ..)| wanted.iter().any(|e| e.name == *name));
        for e in wanted {
            self.hold(e.name, e.access);
        }
        info!(
            names = self.held.len(),
            "bus policy for native clients handed to the kernel"
        );
    }

    fn hold(&mut self, name: String, access: Vec<PolicyAccess>) {
        if let Some((_, conn, held)) = self.held.iter_mut().find(|h| h.0 == name) {
            if *held == access {
                return;
            }
            let update = kdbus::Update {
                policy: Some(kdbus::Policy::new(name.as_str(), access.iter().copied())),
                ..kdbus::Update::default()
            };
            match conn.update(&update) {
                Ok(()) => *held = access,
                Err(e) => warn!("the kernel kept the old policy for {name}: {e}"),
            }
            return;
        }
        let hello = HelloBuilder::new()
            .policy_holder(name.as_str(), &access)
            .description("kdbus-bridge-policy")
            .pool_size(HOLDER_POOL);
        match hello.connect(&self.bus) {
            Ok(conn) => {
                self.held.push((name, conn, access));
            }
            // An activator (or another holder) has the name's entry.
            Err(e) if e.is(Errno::EXIST) => {
                debug!("the kernel's policy for {name} is its activator's")
            }
            Err(e) => warn!(
                "the kernel cannot hold the policy for {name} ({e}): native clients \
                 are refused what only this policy would allow"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::users::Users;

    fn policy(body: &str) -> Policy {
        let text = format!(
            "<busconfig><policy context=\"default\">\
             <allow receive_type=\"method_call\"/><allow receive_type=\"method_return\"/>\
             <allow receive_type=\"error\"/><allow receive_type=\"signal\"/></policy>\
             {body}</busconfig>"
        );
        let mut warnings = Vec::new();
        let sections = super::super::parse::parse_text(
            &text,
            &"test.conf".into(),
            Path::new("/"),
            &Users::default(),
            &mut warnings,
        )
        .unwrap()
        .into_iter()
        .filter_map(|i| match i {
            super::super::parse::Item::Section(s) => Some(s),
            _ => None,
        })
        .collect();
        assert!(warnings.is_empty(), "{warnings:?}");
        Policy {
            sections,
            limits: Vec::new(),
            users: Users::default(),
            bus_uid: 0,
        }
    }

    fn entries(body: &str) -> Vec<(String, Vec<PolicyAccess>)> {
        policy(body)
            .kernel_entries()
            .into_iter()
            .map(|e| (e.name, e.access))
            .collect()
    }

    fn entry(name: &str, access: &[PolicyAccess]) -> (String, Vec<PolicyAccess>) {
        (name.to_owned(), access.to_vec())
    }

    #[test]
    fn everyone_may_own_and_talk() {
        let e = entries(
            r#"<policy context="default"><deny own="*"/><deny send_type="method_call"/>
               <allow own="a.Open"/><allow send_destination="a.Open"/></policy>"#,
        );
        assert_eq!(e, [entry("a.Open", &[PolicyAccess::world(Access::Own)])]);
    }

    #[test]
    fn only_some_messages_grant_nothing() {
        // The member's deny after the allow, and an allow of one
        // interface: neither is all messages to the name.
        let e = entries(
            r#"<policy context="default"><allow own="a.B"/><allow send_destination="a.B"/>
               <deny send_destination="a.B" send_member="Fail"/>
               <allow send_destination="a.C" send_interface="a.I"/></policy>"#,
        );
        assert_eq!(e, []);
    }

    #[test]
    fn users_and_groups_get_their_own_grants() {
        let e = entries(
            r#"<policy user="7"><allow own="a.Svc"/><allow send_destination="a.Svc"/></policy>
               <policy group="9"><allow send_destination="a.Svc"/></policy>
               <policy context="default"><allow send_destination="a.Svc" send_interface="a.I"/></policy>"#,
        );
        assert_eq!(
            e,
            [entry(
                "a.Svc",
                &[
                    PolicyAccess::user(7, Access::Own),
                    PolicyAccess::group(9, Access::Talk)
                ]
            )]
        );
    }

    #[test]
    fn a_later_context_that_may_deny_withholds_the_grant() {
        // Everyone may talk by default, but user 7 is denied a member, and
        // a group's deny reaches whoever is in it.
        let e = entries(
            r#"<policy context="default"><allow send_destination="a.X"/><allow send_destination="a.Y"/></policy>
               <policy user="7"><deny send_destination="a.X" send_member="M"/></policy>
               <policy group="9"><deny send_type="method_call"/></policy>"#,
        );
        assert_eq!(e, []);
        // The mandatory context decides for everybody.
        let e = entries(
            r#"<policy context="default"><allow send_destination="a.X"/></policy>
               <policy context="mandatory"><deny send_destination="a.X" send_member="M"/></policy>"#,
        );
        assert_eq!(e, []);
    }

    #[test]
    fn owning_without_talking_grants_nothing() {
        // OWN includes TALK in the kernel.
        let e = entries(r#"<policy context="default"><allow own="a.Quiet"/></policy>"#);
        assert_eq!(e, []);
    }

    #[test]
    fn receive_rules_the_kernel_cannot_see_withhold_every_grant() {
        let open = r#"<policy context="default"><allow own="a.O"/><allow send_destination="a.O"/></policy>"#;
        assert_eq!(entries(open).len(), 1);
        let e = entries(&format!(
            r#"{open}<policy user="7"><deny receive_sender="a.O" receive_member="M"/></policy>"#
        ));
        assert_eq!(e, []);
    }

    #[test]
    fn debian_system_bus_grants_root_its_services() {
        let (policy, _) = Policy::load(Path::new("/usr/share/dbus-1/system.conf"), 0).unwrap();
        let e = policy.kernel_entries();
        let login1 = e.iter().find(|e| e.name == "org.freedesktop.login1");
        // Root owns and talks; everyone else is allowed some interfaces
        // only, which the kernel cannot say.
        assert_eq!(
            login1.map(|e| e.access.clone()),
            Some(vec![PolicyAccess::user(0, Access::Own)]),
            "{e:?}"
        );
        // hostname1's file lets everyone call it (polkit decides).
        let hostname1 = e.iter().find(|e| e.name == "org.freedesktop.hostname1");
        assert_eq!(
            hostname1.map(|e| e.access.clone()),
            Some(vec![
                PolicyAccess::world(Access::Talk),
                PolicyAccess::user(0, Access::Own)
            ]),
        );
        assert!(e.iter().all(|e| e.name != DRIVER_NAME));
    }

    #[test]
    fn service_files_name_what_activators_hold() {
        let dir = std::env::temp_dir().join(format!("kdbus-bridge-svc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.service"),
            "[D-BUS Service]\nName=a.Svc\nExec=/bin/false\n",
        )
        .unwrap();
        std::fs::write(dir.join("b.txt"), "Name=not.This\n").unwrap();
        let names = activatable(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["a.Svc"]);
    }
}
