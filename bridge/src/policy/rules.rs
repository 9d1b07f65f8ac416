//! The rule model and the decisions: which rules apply to a client, in
//! which order, and what the last matching one says.

use std::fmt;
use std::sync::Arc;

use crate::protocol::Kind;

/// Where a rule was written, for the AccessDenied text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u32,
}

/// A name in `own`, `send_destination` or `receive_sender`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    Any,
    Exact(String),
    /// `*_prefix`: the name itself or names below it ("a.b" covers
    /// "a.b.c", not "a.bc").
    Prefix(String),
}

impl NameMatch {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Any => true,
            NameMatch::Exact(n) => n == name,
            NameMatch::Prefix(p) => {
                name == p || (name.starts_with(p.as_str()) && name.as_bytes()[p.len()] == b'.')
            }
        }
    }
}

/// The message fields a send or receive rule tests; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMatch {
    /// send_destination(_prefix) or receive_sender.
    pub peer: Option<NameMatch>,
    pub kind: Option<Kind>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error: Option<String>,
    /// send_broadcast: true matches only signals without destination,
    /// false only messages with one.
    pub broadcast: Option<bool>,
    pub requested_reply: Option<bool>,
    pub eavesdrop: Option<bool>,
    pub min_fds: Option<u32>,
    pub max_fds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Own(NameMatch),
    Send(MessageMatch),
    Receive(MessageMatch),
    /// `user=`/`group=` rules: may a client of this uid connect at all.
    ConnectUser(Option<u32>),
    ConnectGroup(Option<u32>),
}

/// One `<allow>` or `<deny>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub action: Action,
    /// The element as written (attributes in their order).
    pub text: String,
    pub origin: Origin,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {} line {}",
            self.text, self.origin.file, self.origin.line
        )
    }
}

/// Whom a `<policy>` applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    Default,
    Group(u32),
    User(u32),
    Console(bool),
    Mandatory,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub context: Context,
    pub rules: Vec<Arc<Rule>>,
}

/// A message as the policy sees it. The peer's names (the destination's
/// owner when sending, the sender when receiving) are asked for only if a
/// rule needs them: that costs a kernel call.
pub struct Candidate<'a> {
    pub kind: Kind,
    pub path: Option<&'a str>,
    pub interface: Option<&'a str>,
    pub member: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The destination field (sending) or the sender (receiving).
    pub peer: Option<&'a str>,
    pub requested_reply: bool,
    pub fds: u32,
}

/// The outcome of a check: allowed, or the rule that denied (`None`: no
/// rule allows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Option<Arc<Rule>>),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        *self == Decision::Allow
    }

    /// Why it was denied, for the error text.
    pub fn reason(&self) -> String {
        match self {
            Decision::Allow => "allowed".into(),
            Decision::Deny(Some(rule)) => format!("denied by {rule}"),
            Decision::Deny(None) => "no rule of the bus policy allows it".into(),
        }
    }
}

/// The rules that apply to one client, in the order they override each
/// other: context="default", its groups, its user, at_console, then
/// context="mandatory"; within each, the order of the files.
#[derive(Debug, Clone, Default)]
pub struct ClientRules {
    rules: Vec<Arc<Rule>>,
    /// Some send rule names a destination: the destination's names are
    /// needed.
    pub needs_destination_names: bool,
    pub needs_sender_names: bool,
}

impl ClientRules {
    pub fn new(sections: &[Section], uid: u32, groups: &[u32], at_console: bool) -> ClientRules {
        let mut rules = Vec::new();
        let applies = |c: &Context, pass: u8| match (c, pass) {
            (Context::Default, 0) => true,
            (Context::Group(g), 1) => groups.contains(g),
            (Context::User(u), 2) => *u == uid,
            (Context::Console(c), 3) => *c == at_console,
            (Context::Mandatory, 4) => true,
            _ => false,
        };
        for pass in 0..5 {
            for s in sections.iter().filter(|s| applies(&s.context, pass)) {
                rules.extend(s.rules.iter().cloned());
            }
        }
        let named =
            |m: &MessageMatch| matches!(m.peer, Some(NameMatch::Exact(_) | NameMatch::Prefix(_)));
        ClientRules {
            needs_destination_names: rules
                .iter()
                .any(|r| matches!(&r.action, Action::Send(m) if named(m))),
            needs_sender_names: rules
                .iter()
                .any(|r| matches!(&r.action, Action::Receive(m) if named(m))),
            rules,
        }
    }

    /// May the client own `name`?
    pub fn can_own(&self, name: &str) -> Decision {
        self.last(|r| match &r.action {
            Action::Own(m) => m.matches(name),
            _ => false,
        })
    }

    /// May the client send this message? `names` gives the names the
    /// destination's owner has.
    pub fn can_send(
        &self,
        msg: &Candidate<'_>,
        names: &mut dyn FnMut() -> Vec<String>,
    ) -> Decision {
        self.message_rule(true, msg, names)
    }

    /// May the client receive this message? `names` gives the sender's.
    pub fn can_receive(
        &self,
        msg: &Candidate<'_>,
        names: &mut dyn FnMut() -> Vec<String>,
    ) -> Decision {
        self.message_rule(false, msg, names)
    }

    /// The last send (`sending`) or receive rule that matches decides.
    fn message_rule(
        &self,
        sending: bool,
        msg: &Candidate<'_>,
        names: &mut dyn FnMut() -> Vec<String>,
    ) -> Decision {
        let mut cache: Option<Vec<String>> = None;
        self.last(|r| match (&r.action, sending) {
            (Action::Send(m), true) | (Action::Receive(m), false) => {
                message_matches(r.allow, m, msg, sending, &mut cache, names)
            }
            _ => false,
        })
    }

    /// The last matching rule decides; none: denied.
    fn last(&self, mut matches: impl FnMut(&Rule) -> bool) -> Decision {
        match self.rules.iter().rev().find(|r| matches(r)) {
            Some(r) if r.allow => Decision::Allow,
            Some(r) => Decision::Deny(Some(r.clone())),
            None => Decision::Deny(None),
        }
    }
}

/// May a client of `uid` connect? Only default and mandatory `user=` and
/// `group=` rules count; without any, only the bus's own uid may.
pub fn can_connect(sections: &[Section], uid: u32, groups: &[u32], bus_uid: u32) -> Decision {
    let mut decision = None;
    for pass in [Context::Default, Context::Mandatory] {
        for s in sections.iter().filter(|s| s.context == pass) {
            for r in &s.rules {
                let hit = match r.action {
                    Action::ConnectUser(u) => u.is_none_or(|u| u == uid),
                    Action::ConnectGroup(g) => g.is_none_or(|g| groups.contains(&g)),
                    _ => continue,
                };
                if hit {
                    decision = Some(r.clone());
                }
            }
        }
    }
    let any_rules = sections
        .iter()
        .flat_map(|s| &s.rules)
        .any(|r| matches!(r.action, Action::ConnectUser(_) | Action::ConnectGroup(_)));
    match decision {
        Some(r) if r.allow => Decision::Allow,
        Some(r) => Decision::Deny(Some(r)),
        None if !any_rules && uid == bus_uid => Decision::Allow,
        None => Decision::Deny(None),
    }
}

fn message_matches(
    allow: bool,
    m: &MessageMatch,
    msg: &Candidate<'_>,
    sending: bool,
    cache: &mut Option<Vec<String>>,
    names: &mut dyn FnMut() -> Vec<String>,
) -> bool {
    if m.kind.is_some_and(|k| k != msg.kind) {
        return false;
    }
    let is_reply = matches!(msg.kind, Kind::MethodReturn | Kind::Error);
    if is_reply {
        // Allow rules match requested replies unless they say
        // requested_reply="false"; deny rules match unrequested replies
        // unless they say requested_reply="true".
        let matches = if allow {
            msg.requested_reply || m.requested_reply == Some(false)
        } else {
            !msg.requested_reply || m.requested_reply == Some(true)
        };
        if !matches {
            return false;
        }
    }
    // The bridge never lets a client eavesdrop: a deny that matches only
    // eavesdropping never applies.
    if !allow && m.eavesdrop == Some(true) {
        return false;
    }
    if let Some(want) = &m.interface {
        // The interface is optional: a message without one is caught by
        // deny rules and passed over by allow rules.
        match msg.interface {
            Some(i) if i == want => {}
            Some(_) => return false,
            None if allow => return false,
            None => {}
        }
    }
    if m.member
        .as_ref()
        .is_some_and(|w| msg.member != Some(w.as_str()))
        || m.path
            .as_ref()
            .is_some_and(|w| msg.path != Some(w.as_str()))
        || m.error
            .as_ref()
            .is_some_and(|w| msg.error != Some(w.as_str()))
        || m.min_fds.is_some_and(|n| msg.fds < n)
        || m.max_fds.is_some_and(|n| msg.fds > n)
    {
        return false;
    }
    if let Some(broadcast) = m.broadcast {
        let is_broadcast = msg.peer.is_none() && msg.kind == Kind::Signal;
        if sending && broadcast != is_broadcast {
            return false;
        }
    }
    match &m.peer {
        None | Some(NameMatch::Any) => true,
        Some(peer) => {
            let Some(field) = msg.peer else {
                // A broadcast has no destination owner to match.
                return false;
            };
            if !field.starts_with(':') && peer.matches(field) {
                return true;
            }
            cache
                .get_or_insert_with(names)
                .iter()
                .any(|n| peer.matches(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, action: Action, line: u32) -> Arc<Rule> {
        Arc::new(Rule {
            allow,
            action,
            text: format!("<rule {line}>"),
            origin: Origin {
                file: "test.conf".into(),
                line,
            },
        })
    }

    fn section(context: Context, rules: Vec<Arc<Rule>>) -> Section {
        Section { context, rules }
    }

    fn own(name: &str) -> Action {
        Action::Own(NameMatch::Exact(name.into()))
    }

    fn call<'a>(dest: &'a str, iface: &'a str, member: &'a str) -> Candidate<'a> {
        Candidate {
            kind: Kind::MethodCall,
            path: Some("/"),
            interface: Some(iface),
            member: Some(member),
            error: None,
            peer: Some(dest),
            requested_reply: false,
            fds: 0,
        }
    }

    fn no_names() -> Vec<String> {
        Vec::new()
    }

    #[test]
    fn contexts_override_in_order() {
        // Written in reverse of their precedence: the order of the file
        // does not matter across contexts.
        let sections = vec![
            section(Context::Mandatory, vec![rule(false, own("a.M"), 1)]),
            section(
                Context::Console(false),
                vec![rule(true, own("a.M"), 2), rule(false, own("a.C"), 3)],
            ),
            section(
                Context::User(1000),
                vec![rule(true, own("a.C"), 4), rule(false, own("a.U"), 5)],
            ),
            section(
                Context::Group(100),
                vec![rule(true, own("a.U"), 6), rule(false, own("a.G"), 7)],
            ),
            section(
                Context::Default,
                vec![rule(true, own("a.G"), 8), rule(true, own("a.D"), 9)],
            ),
        ];
        let c = ClientRules::new(&sections, 1000, &[100], false);
        assert_eq!(c.can_own("a.D"), Decision::Allow);
        // group beats default
        assert!(matches!(c.can_own("a.G"), Decision::Deny(Some(r)) if r.origin.line == 7));
        // user beats group
        assert!(matches!(c.can_own("a.U"), Decision::Deny(Some(r)) if r.origin.line == 5));
        // at_console="false" beats user
        assert!(matches!(c.can_own("a.C"), Decision::Deny(Some(r)) if r.origin.line == 3));
        // mandatory beats everything
        assert!(matches!(c.can_own("a.M"), Decision::Deny(Some(r)) if r.origin.line == 1));
        // Another user, not in the group: only default and the rest.
        let other = ClientRules::new(&sections, 1001, &[], false);
        assert_eq!(other.can_own("a.G"), Decision::Allow);
        assert_eq!(other.can_own("a.U"), Decision::Deny(None));
    }

    #[test]
    fn at_console_true_and_false_apply_by_where_the_user_is() {
        let sections = vec![
            section(Context::Console(true), vec![rule(true, own("a.Seat"), 1)]),
            section(Context::Console(false), vec![rule(true, own("a.Away"), 2)]),
            section(
                Context::User(1000),
                vec![rule(false, own("a.Seat"), 3), rule(false, own("a.Away"), 4)],
            ),
        ];
        // at_console beats user, and only the matching one applies
        let seated = ClientRules::new(&sections, 1000, &[], true);
        assert_eq!(seated.can_own("a.Seat"), Decision::Allow);
        assert!(matches!(seated.can_own("a.Away"), Decision::Deny(Some(r)) if r.origin.line == 4));
        let away = ClientRules::new(&sections, 1000, &[], false);
        assert!(matches!(away.can_own("a.Seat"), Decision::Deny(Some(r)) if r.origin.line == 3));
        assert_eq!(away.can_own("a.Away"), Decision::Allow);
    }

    #[test]
    fn later_rule_wins_within_a_context() {
        let sections = vec![
            section(
                Context::Default,
                vec![
                    rule(false, Action::Own(NameMatch::Any), 1),
                    rule(true, own("x.Y"), 2),
                ],
            ),
            section(Context::Default, vec![rule(false, own("x.Y"), 3)]),
        ];
        let c = ClientRules::new(&sections, 0, &[], false);
        assert!(matches!(c.can_own("x.Y"), Decision::Deny(Some(r)) if r.origin.line == 3));
        let sections = vec![section(
            Context::Default,
            vec![
                rule(true, own("x.Y"), 1),
                rule(false, Action::Own(NameMatch::Any), 2),
            ],
        )];
        let c = ClientRules::new(&sections, 0, &[], false);
        assert!(matches!(c.can_own("x.Y"), Decision::Deny(Some(r)) if r.origin.line == 2));
    }

    #[test]
    fn own_prefix() {
        let sections = vec![section(
            Context::Default,
            vec![rule(true, Action::Own(NameMatch::Prefix("a.b".into())), 1)],
        )];
        let c = ClientRules::new(&sections, 0, &[], false);
        assert!(c.can_own("a.b").allowed());
        assert!(c.can_own("a.b.c").allowed());
        assert!(c.can_own("a.b.c.d").allowed());
        assert!(!c.can_own("a.bc").allowed());
        assert!(!c.can_own("a.c").allowed());
    }

    #[test]
    fn send_and_receive_are_separate() {
        let send = MessageMatch {
            peer: Some(NameMatch::Exact("org.x.S".into())),
            ..Default::default()
        };
        let sections = vec![section(
            Context::Default,
            vec![
                rule(true, Action::Send(MessageMatch::default()), 1),
                rule(true, Action::Receive(MessageMatch::default()), 2),
                rule(false, Action::Send(send.clone()), 3),
            ],
        )];
        let c = ClientRules::new(&sections, 0, &[], false);
        let msg = call("org.x.S", "org.x.I", "M");
        assert!(!c.can_send(&msg, &mut no_names).allowed());
        // A deny on sending does not forbid receiving from that name.
        let mut from = call("org.x.S", "org.x.I", "M");
        from.peer = Some(":1.5");
        assert!(c
            .can_receive(&from, &mut || vec!["org.x.S".into()])
            .allowed());
        // Sending to the unique name of the owner of a denied name is
        // denied too.
        let to_unique = call(":1.5", "org.x.I", "M");
        assert!(!c
            .can_send(&to_unique, &mut || vec!["org.x.S".into()])
            .allowed());
        assert!(c
            .can_send(&to_unique, &mut || vec!["org.x.T".into()])
            .allowed());
        assert!(c.needs_destination_names && !c.needs_sender_names);
    }

    #[test]
    fn requested_reply() {
        let reply = |requested| Candidate {
            kind: Kind::MethodReturn,
            path: None,
            interface: None,
            member: None,
            error: None,
            peer: Some(":1.3"),
            requested_reply: requested,
            fds: 0,
        };
        let kind = |k| MessageMatch {
            kind: Some(k),
            ..Default::default()
        };
        // system.conf: deny calls, allow requested replies.
        let sections = vec![section(
            Context::Default,
            vec![
                rule(false, Action::Send(kind(Kind::MethodCall)), 1),
                rule(
                    true,
                    Action::Send(MessageMatch {
                        requested_reply: Some(true),
                        ..kind(Kind::MethodReturn)
                    }),
                    2,
                ),
            ],
        )];
        let c = ClientRules::new(&sections, 0, &[], false);
        assert!(c.can_send(&reply(true), &mut no_names).allowed());
        assert!(!c.can_send(&reply(false), &mut no_names).allowed());
        // An allow with requested_reply="false" allows unrequested ones.
        let sections = vec![section(
            Context::Default,
            vec![rule(
                true,
                Action::Send(MessageMatch {
                    requested_reply: Some(false),
                    ..kind(Kind::MethodReturn)
                }),
                1,
            )],
        )];
        let c = ClientRules::new(&sections, 0, &[], false);
        assert!(c.can_send(&reply(false), &mut no_names).allowed());
        assert!(c.can_send(&reply(true), &mut no_names).allowed());
        // A deny matches unrequested replies only, unless it says true.
        for (requested_reply, denies_requested) in [(None, false), (Some(true), true)] {
            let sections = vec![section(
                Context::Default,
                vec![
                    rule(
                        true,
                        Action::Send(MessageMatch {
                            requested_reply: Some(false),
                            ..Default::default()
                        }),
                        1,
                    ),
                    rule(
                        false,
                        Action::Send(MessageMatch {
                            requested_reply,
                            ..kind(Kind::MethodReturn)
                        }),
                        2,
                    ),
                ],
            )];
            let c = ClientRules::new(&sections, 0, &[], false);
            assert!(!c.can_send(&reply(false), &mut no_names).allowed());
            assert_eq!(
                !c.can_send(&reply(true), &mut no_names).allowed(),
                denies_requested
            );
        }
    }

    #[test]
    fn interface_is_optional() {
        let iface = MessageMatch {
            interface: Some("org.x.I".into()),
            ..Default::default()
        };
        let sections = vec![section(
            Context::Default,
            vec![rule(true, Action::Send(iface.clone()), 1)],
        )];
        let mut msg = call("org.x.S", "org.x.I", "M");
        msg.interface = None;
        let c = ClientRules::new(&sections, 0, &[], false);
        assert!(!c.can_send(&msg, &mut no_names).allowed());
        let sections = vec![section(
            Context::Default,
            vec![
                rule(true, Action::Send(MessageMatch::default()), 1),
                rule(false, Action::Send(iface), 2),
            ],
        )];
        let c = ClientRules::new(&sections, 0, &[], false);
        assert!(!c.can_send(&msg, &mut no_names).allowed());
    }

    #[test]
    fn broadcast() {
        let sections = vec![section(
            Context::Default,
            vec![
                rule(true, Action::Send(MessageMatch::default()), 1),
                rule(
                    false,
                    Action::Send(MessageMatch {
                        broadcast: Some(true),
                        ..Default::default()
                    }),
                    2,
                ),
            ],
        )];
        let c = ClientRules::new(&sections, 0, &[], false);
        let mut signal = call("org.x.S", "org.x.I", "M");
        signal.kind = Kind::Signal;
        assert!(c.can_send(&signal, &mut no_names).allowed());
        signal.peer = None;
        assert!(!c.can_send(&signal, &mut no_names).allowed());
    }

    #[test]
    fn names_are_looked_up_only_when_needed() {
        let sections = vec![section(
            Context::Default,
            vec![rule(
                true,
                Action::Send(MessageMatch {
                    peer: Some(NameMatch::Exact("org.x.S".into())),
                    ..Default::default()
                }),
                1,
            )],
        )];
        let c = ClientRules::new(&sections, 0, &[], false);
        let mut asked = 0;
        let msg = call("org.x.S", "org.x.I", "M");
        assert!(c
            .can_send(&msg, &mut || {
                asked += 1;
                vec![]
            })
            .allowed());
        assert_eq!(asked, 0);
        let msg = call(":1.9", "org.x.I", "M");
        assert!(c
            .can_send(&msg, &mut || {
                asked += 1;
                vec!["org.x.S".into()]
            })
            .allowed());
        assert_eq!(asked, 1);
    }

    #[test]
    fn connect_rules() {
        let sections = vec![section(
            Context::Default,
            vec![
                rule(true, Action::ConnectUser(None), 1),
                rule(false, Action::ConnectUser(Some(13)), 2),
            ],
        )];
        assert!(can_connect(&sections, 1000, &[], 0).allowed());
        assert!(!can_connect(&sections, 13, &[], 0).allowed());
        // No connect rules: only the bus's own uid.
        assert!(can_connect(&[], 0, &[], 0).allowed());
        assert!(!can_connect(&[], 1000, &[], 0).allowed());
    }
}
