//! Reading the bus configuration: `<busconfig>` files with their
//! `<include>`s and `<includedir>`s, into policy sections and limits.
//!
//! A file that cannot be read or parsed, or that holds a rule the bus
//! cannot understand, is left out as a whole with a message naming the
//! file and line; the files around it still load. Only the main file must
//! be sound.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use roxmltree::{Document, Node, ParsingOptions};

use crate::policy::rules::{Action, Context, MessageMatch, NameMatch, Origin, Rule, Section};
use crate::policy::users::Users;
use crate::protocol::Kind;

/// `<limit name="...">` values the configuration sets, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    pub value: u64,
    pub origin: Origin,
}

/// Limits dbus-daemon knows.
const LIMIT_NAMES: &[&str] = &[
    "max_incoming_bytes",
    "max_incoming_unix_fds",
    "max_outgoing_bytes",
    "max_outgoing_unix_fds",
    "max_message_size",
    "max_message_unix_fds",
    "service_start_timeout",
    "auth_timeout",
    "pending_fd_timeout",
    "max_completed_connections",
    "max_incomplete_connections",
    "max_connections_per_user",
    "max_pending_service_starts",
    "max_names_per_connection",
    "max_match_rules_per_connection",
    "max_replies_per_connection",
    "reply_timeout",
];

/// Elements that configure dbus-daemon itself and mean nothing to the
/// bridge (its socket and service starts are set up elsewhere).
const IGNORED_ELEMENTS: &[&str] = &[
    "type",
    "user",
    "fork",
    "keep_umask",
    "listen",
    "pidfile",
    "auth",
    "servicedir",
    "standard_system_servicedirs",
    "standard_session_servicedirs",
    "servicehelper",
    "syslog",
    "selinux",
    "apparmor",
    "allow_anonymous",
];

const MAX_DEPTH: usize = 16;

/// The configuration read from a main file and everything it includes.
#[derive(Debug, Default)]
pub struct Config {
    pub sections: Vec<Section>,
    pub limits: Vec<Limit>,
    /// Problems that left a file, element or rule out.
    pub warnings: Vec<String>,
    /// Every file read.
    pub files: Vec<PathBuf>,
}

/// One file's content, accepted only if all of it parsed.
pub(crate) enum Item {
    Section(Section),
    Limit(Limit),
    Include { path: PathBuf, ignore_missing: bool },
    IncludeDir(PathBuf),
}

/// Reads `main` and its includes. Fails only if `main` itself cannot be
/// read or parsed.
pub fn load(main: &Path, users: &Users) -> Result<Config, String> {
    let mut config = Config::default();
    let items = parse_file(main, users, &mut config.warnings)?;
    config.files.push(main.to_owned());
    let mut stack = vec![main.to_owned()];
    expand(items, users, &mut config, &mut stack);
    Ok(config)
}

fn expand(items: Vec<Item>, users: &Users, config: &mut Config, stack: &mut Vec<PathBuf>) {
    for item in items {
        match item {
            Item::Section(s) => config.sections.push(s),
            Item::Limit(l) => config.limits.push(l),
            Item::Include {
                path,
                ignore_missing,
            } => {
                if ignore_missing && !path.exists() {
                    continue;
                }
                include(&path, users, config, stack);
            }
            Item::IncludeDir(dir) => {
                // A missing directory is normal (nothing installed there).
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                    .collect();
                // dbus-daemon leaves the order open; a sorted one makes
                // overrides between files predictable.
                files.sort();
                for file in files {
                    include(&file, users, config, stack);
                }
            }
        }
    }
}

fn include(path: &Path, users: &Users, config: &mut Config, stack: &mut Vec<PathBuf>) {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    if stack.contains(&canonical) || stack.len() >= MAX_DEPTH {
        config.warnings.push(format!(
            "{}: included again from within itself (or nested {MAX_DEPTH} deep); ignored",
            path.display()
        ));
        return;
    }
    match parse_file(path, users, &mut config.warnings) {
        Ok(items) => {
            config.files.push(path.to_owned());
            stack.push(canonical);
            expand(items, users, config, stack);
            stack.pop();
        }
        Err(e) => config.warnings.push(format!(
            "{e}; the file is ignored, the rest of the policy applies"
        )),
    }
}

fn parse_file(path: &Path, users: &Users, warnings: &mut Vec<String>) -> Result<Vec<Item>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: Arc<str> = path.display().to_string().into();
    let base = path.parent().unwrap_or(Path::new("/"));
    parse_text(&text, &file, base, users, warnings)
}

/// Parses one file's text; `base` resolves relative includes.
pub(crate) fn parse_text(
    text: &str,
    file: &Arc<str>,
    base: &Path,
    users: &Users,
    warnings: &mut Vec<String>,
) -> Result<Vec<Item>, String> {
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options)
        .map_err(|e| format!("{file}: not well-formed XML: {e}"))?;
    let p = Parser {
        doc: &doc,
        file,
        base,
        users,
    };
    let root = doc.root_element();
    if root.tag_name().name() != "busconfig" {
        return Err(format!(
            "{file}: the root element is <{}>, not <busconfig>",
            root.tag_name().name()
        ));
    }
    let mut items = Vec::new();
    for node in root.children().filter(Node::is_element) {
        match node.tag_name().name() {
            "policy" => {
                if let Some(section) = p.policy(node, warnings)? {
                    items.push(Item::Section(section));
                }
            }
            "limit" => {
                if let Some(limit) = p.limit(node, warnings)? {
                    items.push(Item::Limit(limit));
                }
            }
            "include" => {
                let selinux = node.attribute("if_selinux_enabled") == Some("yes");
                if selinux {
                    // SELinux contexts are not supported by the bridge.
                    continue;
                }
                let ignore_missing = match node.attribute("ignore_missing") {
                    None | Some("no") => false,
                    Some("yes") => true,
                    Some(v) => {
                        return Err(p.at(node, &format!("ignore_missing=\"{v}\" must be yes or no")))
                    }
                };
                items.push(Item::Include {
                    path: p.path(node)?,
                    ignore_missing,
                });
            }
            "includedir" => items.push(Item::IncludeDir(p.path(node)?)),
            name if IGNORED_ELEMENTS.contains(&name) => {}
            name => warnings.push(p.at(node, &format!("unknown element <{name}> ignored"))),
        }
    }
    Ok(items)
}

struct Parser<'a, 'd> {
    doc: &'a Document<'d>,
    file: &'a Arc<str>,
    base: &'a Path,
    users: &'a Users,
}

impl Parser<'_, '_> {
    fn line(&self, node: Node<'_, '_>) -> u32 {
        self.doc.text_pos_at(node.range().start).row
    }

    fn origin(&self, node: Node<'_, '_>) -> Origin {
        Origin {
            file: self.file.clone(),
            line: self.line(node),
        }
    }

    fn at(&self, node: Node<'_, '_>, what: &str) -> String {
        format!("{} line {}: {what}", self.file, self.line(node))
    }

    fn path(&self, node: Node<'_, '_>) -> Result<PathBuf, String> {
        let text = node.text().unwrap_or_default().trim();
        if text.is_empty() {
            return Err(self.at(node, &format!("<{}> names no file", node.tag_name().name())));
        }
        Ok(self.base.join(text))
    }

    fn limit(
        &self,
        node: Node<'_, '_>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Limit>, String> {
        let name = node
            .attribute("name")
            .ok_or_else(|| self.at(node, "<limit> has no name attribute"))?;
        let text = node.text().unwrap_or_default().trim();
        let value = text
            .parse()
            .map_err(|_| self.at(node, &format!("limit {name}: {text:?} is not a number")))?;
        if !LIMIT_NAMES.contains(&name) {
            warnings.push(self.at(node, &format!("unknown limit {name:?} ignored")));
            return Ok(None);
        }
        Ok(Some(Limit {
            name: name.to_owned(),
            value,
            origin: self.origin(node),
        }))
    }

    fn policy(
        &self,
        node: Node<'_, '_>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Section>, String> {
        let attrs: Vec<_> = node.attributes().collect();
        let [attr] = attrs.as_slice() else {
            return Err(self.at(
                node,
                "<policy> needs exactly one of context, user, group or at_console",
            ));
        };
        let context = match (attr.name(), attr.value()) {
            ("context", "default") => Context::Default,
            ("context", "mandatory") => Context::Mandatory,
            ("at_console", "true") => Context::Console(true),
            ("at_console", "false") => Context::Console(false),
            ("user", user) => match self.users.uid(user) {
                Some(uid) => Context::User(uid),
                None => {
                    warnings.push(self.at(
                        node,
                        &format!("unknown user {user:?}: this policy is ignored"),
                    ));
                    return Ok(None);
                }
            },
            ("group", group) => match self.users.gid(group) {
                Some(gid) => Context::Group(gid),
                None => {
                    warnings.push(self.at(
                        node,
                        &format!("unknown group {group:?}: this policy is ignored"),
                    ));
                    return Ok(None);
                }
            },
            (name, value) => {
                return Err(self.at(
                    node,
                    &format!("<policy {name}=\"{value}\"> is not a known policy"),
                ))
            }
        };
        let mut rules = Vec::new();
        for child in node.children().filter(Node::is_element) {
            let allow = match child.tag_name().name() {
                "allow" => true,
                "deny" => false,
                other => {
                    return Err(self.at(
                        child,
                        &format!("<{other}> inside <policy>: only <allow> and <deny> belong there"),
                    ))
                }
            };
            let Some(action) = self.action(child, warnings)? else {
                continue;
            };
            if matches!(action, Action::ConnectUser(_) | Action::ConnectGroup(_))
                && !matches!(context, Context::Default | Context::Mandatory)
            {
                warnings.push(self.at(
                    child,
                    "user and group rules count only in context=\"default\" or \"mandatory\" policies; ignored",
                ));
                continue;
            }
            let text = rule_text(child);
            rules.push(Arc::new(Rule {
                allow,
                action,
                text,
                origin: self.origin(child),
            }));
        }
        Ok(Some(Section { context, rules }))
    }

    /// What an `<allow>` or `<deny>` is about (`None`: a rule about an
    /// unknown user or group, left out).
    fn action(
        &self,
        node: Node<'_, '_>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Action>, String> {
        let mut send = MessageMatch::default();
        let mut receive = MessageMatch::default();
        let mut modifiers = MessageMatch::default();
        let (mut is_send, mut is_receive, mut has_modifier) = (false, false, false);
        let mut other: Option<Action> = None;
        let mut count = 0;
        for attr in node.attributes() {
            let (name, value) = (attr.name(), attr.value());
            let err = |what: &str| self.at(node, &format!("{name}=\"{value}\": {what}"));
            let any = |v: &str| (v != "*").then(|| v.to_owned());
            let boolean = || match value {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(err("must be true or false")),
            };
            count += 1;
            if let Some(field) = name.strip_prefix("send_") {
                is_send = true;
                match field {
                    "destination" if value == "*" => send.peer = Some(NameMatch::Any),
                    "destination" | "destination_prefix" if send.peer.is_some() => {
                        return Err(err(
                            "send_destination and send_destination_prefix exclude each other",
                        ))
                    }
                    "destination" => send.peer = Some(NameMatch::Exact(value.into())),
                    "destination_prefix" => send.peer = Some(NameMatch::Prefix(value.into())),
                    "broadcast" => send.broadcast = Some(boolean()?),
                    _ => message_field(&mut send, field, value, any, boolean, &err)?,
                }
            } else if let Some(field) = name.strip_prefix("receive_") {
                is_receive = true;
                match field {
                    "sender" if value == "*" => receive.peer = Some(NameMatch::Any),
                    "sender" => receive.peer = Some(NameMatch::Exact(value.into())),
                    _ => message_field(&mut receive, field, value, any, boolean, &err)?,
                }
            } else {
                match name {
                    "eavesdrop" => {
                        has_modifier = true;
                        modifiers.eavesdrop = Some(boolean()?);
                    }
                    "min_fds" | "max_fds" => {
                        has_modifier = true;
                        let n = value.parse().map_err(|_| err("must be a number"))?;
                        if name == "min_fds" {
                            modifiers.min_fds = Some(n);
                        } else {
                            modifiers.max_fds = Some(n);
                        }
                    }
                    "log" => {
                        count -= 1;
                        boolean()?;
                    }
                    "own" | "own_prefix" | "user" | "group" if other.is_some() => {
                        return Err(err(
                            "own, own_prefix, user and group each make a rule of their own",
                        ))
                    }
                    "own" if value == "*" => other = Some(Action::Own(NameMatch::Any)),
                    "own" => other = Some(Action::Own(NameMatch::Exact(value.into()))),
                    "own_prefix" => other = Some(Action::Own(NameMatch::Prefix(value.into()))),
                    "user" if value == "*" => other = Some(Action::ConnectUser(None)),
                    "group" if value == "*" => other = Some(Action::ConnectGroup(None)),
                    "user" => match self.users.uid(value) {
                        Some(uid) => other = Some(Action::ConnectUser(Some(uid))),
                        None => {
                            warnings.push(err("unknown user; the rule is ignored"));
                            return Ok(None);
                        }
                    },
                    "group" => match self.users.gid(value) {
                        Some(gid) => other = Some(Action::ConnectGroup(Some(gid))),
                        None => {
                            warnings.push(err("unknown group; the rule is ignored"));
                            return Ok(None);
                        }
                    },
                    _ => return Err(err("unknown attribute")),
                }
            }
        }
        if let Some(action) = other {
            if count > 1 {
                return Err(self.at(
                    node,
                    "own, own_prefix, user and group cannot be combined with other attributes",
                ));
            }
            return Ok(Some(action));
        }
        let merge = |mut m: MessageMatch| {
            m.eavesdrop = modifiers.eavesdrop;
            m.min_fds = modifiers.min_fds;
            m.max_fds = modifiers.max_fds;
            m
        };
        match (is_send, is_receive) {
            (true, true) => Err(self.at(
                node,
                "a rule cannot test both send_* and receive_* attributes",
            )),
            (true, false) => Ok(Some(Action::Send(merge(send)))),
            (false, true) => Ok(Some(Action::Receive(merge(receive)))),
            // eavesdrop="..." alone is a receive rule.
            (false, false) if has_modifier => Ok(Some(Action::Receive(merge(receive)))),
            (false, false) => {
                Err(self.at(node, "the rule has no attribute saying what it is about"))
            }
        }
    }
}

fn message_field(
    m: &mut MessageMatch,
    field: &str,
    value: &str,
    any: impl Fn(&str) -> Option<String>,
    boolean: impl Fn() -> Result<bool, String>,
    err: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    match field {
        "interface" => m.interface = any(value),
        "member" => m.member = any(value),
        "error" => m.error = any(value),
        "path" => m.path = any(value),
        "requested_reply" => m.requested_reply = Some(boolean()?),
        "type" => {
            m.kind = match value {
                "*" => None,
                "method_call" => Some(Kind::MethodCall),
                "method_return" => Some(Kind::MethodReturn),
                "signal" => Some(Kind::Signal),
                "error" => Some(Kind::Error),
                _ => {
                    return Err(err(
                        "not a message type (method_call, method_return, signal, error or *)",
                    ))
                }
            }
        }
        _ => return Err(err("unknown attribute")),
    }
    Ok(())
}

/// The element as the AccessDenied text shows it.
fn rule_text(node: Node<'_, '_>) -> String {
    let mut text = format!("<{}", node.tag_name().name());
    for a in node.attributes() {
        text.push_str(&format!(" {}=\"{}\"", a.name(), a.value()));
    }
    text.push_str("/>");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        Users::parse(
            "root:x:0:0::/:/bin/sh\nsvc:x:900:900::/:/bin/sh\n",
            "svc:x:900:\n",
        )
    }

    fn parse(text: &str) -> (Result<Vec<Item>, String>, Vec<String>) {
        let mut warnings = Vec::new();
        let r = parse_text(
            text,
            &"t.conf".into(),
            Path::new("/etc"),
            &users(),
            &mut warnings,
        );
        (r, warnings)
    }

    fn sections(text: &str) -> Vec<Section> {
        parse(text)
            .0
            .unwrap()
            .into_iter()
            .filter_map(|i| match i {
                Item::Section(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rules_and_contexts() {
        let s = sections(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy context="default">
    <deny own="*"/>
    <allow send_destination="org.x" send_interface="*" send_type="method_call"/>
    <deny receive_sender="org.y" receive_member="M" eavesdrop="true"/>
  </policy>
  <policy user="svc"><allow own_prefix="org.svc"/></policy>
  <policy group="svc"><allow own="org.g"/></policy>
</busconfig>"#,
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].context, Context::Default);
        assert_eq!(s[1].context, Context::User(900));
        assert_eq!(s[2].context, Context::Group(900));
        assert_eq!(s[0].rules[0].action, Action::Own(NameMatch::Any));
        assert_eq!(
            s[0].rules[1].action,
            Action::Send(MessageMatch {
                peer: Some(NameMatch::Exact("org.x".into())),
                kind: Some(Kind::MethodCall),
                ..Default::default()
            })
        );
        assert_eq!(
            s[0].rules[2].action,
            Action::Receive(MessageMatch {
                peer: Some(NameMatch::Exact("org.y".into())),
                member: Some("M".into()),
                eavesdrop: Some(true),
                ..Default::default()
            })
        );
        assert_eq!(s[0].rules[1].origin.line, 6);
        assert_eq!(
            s[0].rules[1].text,
            r#"<allow send_destination="org.x" send_interface="*" send_type="method_call"/>"#
        );
    }

    #[test]
    fn bad_rules_reject_the_file() {
        for bad in [
            r#"<busconfig><policy context="default"><allow send_type="x"/></policy></busconfig>"#,
            r#"<busconfig><policy context="default"><allow send_member="a" receive_member="b"/></policy></busconfig>"#,
            r#"<busconfig><policy context="default"><allow own="a" send_member="b"/></policy></busconfig>"#,
            r#"<busconfig><policy context="default"><allow frobnicate="a"/></policy></busconfig>"#,
            r#"<busconfig><policy context="default"><allow/></policy></busconfig>"#,
            r#"<busconfig><policy context="sometimes"/></busconfig>"#,
            r#"<busconfig><policy context="default"><allow own="a"></policy></busconfig>"#,
            r#"<notbusconfig/>"#,
        ] {
            let (r, _) = parse(bad);
            let e = r.err().unwrap_or_else(|| panic!("accepted {bad}"));
            assert!(e.starts_with("t.conf"), "{e}");
        }
    }

    #[test]
    fn unknown_things_are_left_out_with_a_warning() {
        let (r, w) = parse(
            r#"<busconfig><frob/><policy user="nobody-such"><allow own="a"/></policy>
               <policy context="default"><allow user="nobody-such"/><allow own="b"/></policy>
               <limit name="max_fun">3</limit><limit name="max_message_size">100</limit></busconfig>"#,
        );
        let items = r.unwrap();
        assert_eq!(w.len(), 4, "{w:?}");
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[0], Item::Section(s) if s.rules.len() == 1));
        assert!(
            matches!(&items[1], Item::Limit(l) if l.name == "max_message_size" && l.value == 100)
        );
    }

    #[test]
    fn includes() {
        let dir = std::env::temp_dir().join(format!("kdbus-policy-test-{}", std::process::id()));
        let d = dir.join("conf.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            dir.join("main.conf"),
            r#"<busconfig><policy context="default"><deny own="*"/></policy>
               <includedir>conf.d</includedir>
               <include ignore_missing="yes">missing.conf</include>
               <include>main.conf</include>
               <policy context="mandatory"><deny own="z"/></policy></busconfig>"#,
        )
        .unwrap();
        std::fs::write(
            d.join("a.conf"),
            r#"<busconfig><policy context="default"><allow own="a"/></policy></busconfig>"#,
        )
        .unwrap();
        std::fs::write(d.join("b.conf"), "<busconfig><policy").unwrap();
        std::fs::write(
            d.join("c.conf"),
            r#"<busconfig><policy context="default"><allow own="c"/></policy></busconfig>"#,
        )
        .unwrap();
        std::fs::write(d.join("c.conf.orig"), "junk").unwrap();
        let config = load(&dir.join("main.conf"), &users()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let owns: Vec<_> = config
            .sections
            .iter()
            .flat_map(|s| &s.rules)
            .map(|r| r.text.clone())
            .collect();
        assert_eq!(
            owns,
            [
                r#"<deny own="*"/>"#,
                r#"<allow own="a"/>"#,
                r#"<allow own="c"/>"#,
                r#"<deny own="z"/>"#
            ]
        );
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("b.conf"));
        assert!(config.warnings[1].contains("main.conf"));
        assert!(load(Path::new("/nonexistent/x.conf"), &users()).is_err());
    }
}
