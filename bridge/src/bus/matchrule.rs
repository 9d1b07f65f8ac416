//! D-Bus match rules (`AddMatch`): parsing the rule grammar, deciding
//! exactly whether a message matches, and the bloom mask that lets the
//! kernel filter broadcasts before the bridge sees them.

use kdbus::{BloomFilter, BloomParams};

use crate::bus::bloom;
use crate::protocol::message::Arg;
use crate::protocol::Kind;

/// Highest argument index a rule may name.
pub const MAX_ARG: usize = 63;

/// What a rule says about argument N.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgRule {
    /// `argN='v'`: a string equal to v.
    Equals(String),
    /// `argNpath='v'`: a string or object path that is v, a path below v
    /// (if v ends in '/'), or above v (if the argument ends in '/').
    Path(String),
    /// `arg0namespace='v'`: a string that is v or a name below it.
    Namespace(String),
}

/// A parsed match rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchRule {
    pub kind: Option<Kind>,
    pub sender: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub path: Option<String>,
    pub path_namespace: Option<String>,
    pub destination: Option<String>,
    /// Sorted by index, at most one per index.
    pub args: Vec<(usize, ArgRule)>,
    pub eavesdrop: bool,
}

/// What a message offers to a match rule.
pub struct Candidate<'a> {
    pub kind: Kind,
    /// The sender's unique name (`org.freedesktop.DBus` for the driver).
    pub sender: &'a str,
    /// Well-known names the sender owns as primary owner.
    pub sender_names: &'a [String],
    pub interface: Option<&'a str>,
    pub member: Option<&'a str>,
    pub path: Option<&'a str>,
    pub destination: Option<&'a str>,
    /// Leading arguments; `None` if the body could not be read.
    pub args: Option<&'a [Arg]>,
}

/// A rule string the grammar does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid match rule: {0}")]
pub struct RuleError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError(msg.into()))
}

/// Splits a rule into key/value pairs. Values may be quoted with `'`;
/// outside quotes `\'` is a literal apostrophe; inside quotes a backslash
/// is an ordinary character.
fn tokenize(rule: &str) -> Result<Vec<(String, String)>, RuleError> {
    let mut pairs = Vec::new();
    let mut chars = rule.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        let mut has_value = false;
        for c in chars.by_ref() {
            if c == '=' {
                has_value = true;
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_owned();
        if key.is_empty() {
            return err("a key is missing before '='");
        }
        if !has_value {
            return err(format!("{key} has no value"));
        }
        let mut value = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '\'' => quoted = !quoted,
                '\\' if !quoted && chars.peek() == Some(&'\'') => {
                    chars.next();
                    value.push('\'');
                }
                ',' if !quoted => break,
                c => value.push(c),
            }
        }
        if quoted {
            return err(format!("the value of {key} has no closing quote"));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn is_valid_path(p: &str) -> bool {
    p == "/"
        || (p.starts_with('/')
            && !p.ends_with('/')
            && p[1..].split('/').all(|e| {
                !e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }))
}

fn is_valid_member(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 255
        && !m.as_bytes()[0].is_ascii_digit()
        && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_valid_interface(i: &str) -> bool {
    i.len() <= 255 && i.split('.').count() >= 2 && i.split('.').all(is_valid_member)
}

/// A unique (`:1.5`) or well-known bus name.
pub fn is_valid_bus_name(n: &str) -> bool {
    if n.len() > 255 {
        return false;
    }
    let (unique, rest) = match n.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, n),
    };
    let elements: Vec<&str> = rest.split('.').collect();
    elements.len() >= 2
        && elements.iter().all(|e| {
            !e.is_empty()
                && (unique || !e.as_bytes()[0].is_ascii_digit())
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

impl MatchRule {
    pub fn parse(rule: &str) -> Result<MatchRule, RuleError> {
        if rule.len() > 1024 {
            return err("longer than 1024 bytes");
        }
        let mut out = MatchRule::default();
        let mut seen = std::collections::HashSet::new();
        for (key, value) in tokenize(rule)? {
            if !seen.insert(key.clone()) {
                return err(format!("{key} appears twice"));
            }
            out.set(&key, value)?;
        }
        if out.path.is_some() && out.path_namespace.is_some() {
            return err("path and path_namespace cannot both be given");
        }
        out.args.sort_by_key(|(n, _)| *n);
        Ok(out)
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), RuleError> {
        type Valid = fn(&str) -> bool;
        let (slot, valid, what): (&mut Option<String>, Valid, &str) = match key {
            "type" => {
                self.kind = Some(match value.as_str() {
                    "signal" => Kind::Signal,
                    "method_call" => Kind::MethodCall,
                    "method_return" => Kind::MethodReturn,
                    "error" => Kind::Error,
                    _ => return err(format!("unknown message type {value:?}")),
                });
                return Ok(());
            }
            "eavesdrop" => {
                self.eavesdrop = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return err("eavesdrop must be 'true' or 'false'"),
                };
                return Ok(());
            }
            "sender" => (&mut self.sender, is_valid_bus_name, "bus name"),
            "destination" => (&mut self.destination, is_valid_bus_name, "bus name"),
            "interface" => (&mut self.interface, is_valid_interface, "interface name"),
            "member" => (&mut self.member, is_valid_member, "member name"),
            "path" => (&mut self.path, is_valid_path, "object path"),
            "path_namespace" => (&mut self.path_namespace, is_valid_path, "object path"),
            _ => return self.set_arg(key, value),
        };
        if !valid(&value) {
            return err(format!("{value:?} is not a valid {what}"));
        }
        *slot = Some(value);
        Ok(())
    }

    fn set_arg(&mut self, key: &str, value: String) -> Result<(), RuleError> {
        let Some(rest) = key.strip_prefix("arg") else {
            return err(format!("unknown key {key:?}"));
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, suffix) = rest.split_at(digits);
        let n: usize = match number.parse() {
            Ok(n) if n <= MAX_ARG && (number == "0" || !number.starts_with('0')) => n,
            _ => return err(format!("unknown key {key:?} (arguments are arg0 to arg63)")),
        };
        let rule = match suffix {
            "" => ArgRule::Equals(value),
            "path" => ArgRule::Path(value),
            "namespace" if n == 0 => {
                let valid =
                    is_valid_interface(&value) || (!value.contains('.') && is_valid_member(&value));
                if !valid {
                    return err(format!(
                        "{value:?} is not a valid namespace for arg0namespace"
                    ));
                }
                ArgRule::Namespace(value)
            }
            _ => return err(format!("unknown key {key:?}")),
        };
        if self.args.iter().any(|(m, _)| *m == n) {
            return err(format!("argument {n} is constrained twice"));
        }
        self.args.push((n, rule));
        Ok(())
    }

    /// Does `msg` match? Exact: this is the check after the kernel's bloom
    /// pre-selection.
    pub fn matches(&self, msg: &Candidate<'_>) -> bool {
        if self.kind.is_some_and(|k| k != msg.kind) {
            return false;
        }
        if let Some(sender) = &self.sender {
            let ok = if sender.starts_with(':') || sender == "org.freedesktop.DBus" {
                sender == msg.sender
            } else {
                msg.sender_names.iter().any(|n| n == sender)
            };
            if !ok {
                return false;
            }
        }
        let eq = |rule: &Option<String>, value: Option<&str>| {
            rule.as_deref().is_none_or(|r| Some(r) == value)
        };
        if !eq(&self.interface, msg.interface)
            || !eq(&self.member, msg.member)
            || !eq(&self.path, msg.path)
            || !eq(&self.destination, msg.destination)
        {
            return false;
        }
        if let Some(ns) = &self.path_namespace {
            let Some(path) = msg.path else { return false };
            let below = ns == "/"
                || path == ns
                || (path.starts_with(ns.as_str()) && path.as_bytes().get(ns.len()) == Some(&b'/'));
            if !below {
                return false;
            }
        }
        if self.args.is_empty() {
            return true;
        }
        let Some(args) = msg.args else { return false };
        self.args.iter().all(|(n, rule)| {
            let arg = args.get(*n);
            match (rule, arg) {
                (ArgRule::Equals(v), Some(Arg::Str(s))) => v == s,
                (ArgRule::Path(v), Some(Arg::Str(s) | Arg::Path(s))) => path_arg_matches(v, s),
                (ArgRule::Namespace(ns), Some(Arg::Str(s))) => {
                    s == ns
                        || (s.starts_with(ns.as_str()) && s.as_bytes().get(ns.len()) == Some(&b'.'))
                }
                _ => false,
            }
        })
    }

    /// Could this rule match the driver's NameOwnerChanged? (NameAcquired
    /// and NameLost are addressed to their receiver and need no rule.)
    pub fn may_match_name_owner_changed(&self) -> bool {
        self.kind.is_none_or(|k| k == Kind::Signal)
            && self
                .member
                .as_deref()
                .is_none_or(|m| m == "NameOwnerChanged")
            && self
                .sender
                .as_deref()
                .is_none_or(|s| s == "org.freedesktop.DBus")
            && self
                .interface
                .as_deref()
                .is_none_or(|i| i == "org.freedesktop.DBus")
            && self
                .path
                .as_deref()
                .is_none_or(|p| p == "/org/freedesktop/DBus")
            && self
                .path_namespace
                .as_deref()
                .is_none_or(|ns| ns == "/" || "/org/freedesktop/DBus".starts_with(ns))
    }

    /// Could this rule match messages from peers (not from the driver)?
    pub fn may_match_peer_messages(&self) -> bool {
        self.sender.as_deref() != Some("org.freedesktop.DBus")
    }

    /// The bloom mask for the kernel's broadcast filter: every property the
    /// rule requires and the sender's filter is sure to contain. Anything
    /// that could give a false negative is left out (the exact check
    /// catches what the mask lets through).
    pub fn bloom_mask(&self, params: BloomParams) -> BloomFilter {
        let mut mask = BloomFilter::new(params);
        if let Some(kind) = self.kind {
            mask.add_pair("message-type", bloom::kind_name(kind));
        }
        for (key, value) in [
            ("interface", &self.interface),
            ("member", &self.member),
            ("path", &self.path),
        ] {
            if let Some(value) = value {
                mask.add_pair(key, value);
            }
        }
        if let Some(ns) = &self.path_namespace {
            mask.add_pair("path-slash-prefix", ns);
        }
        for (n, rule) in &self.args {
            match rule {
                ArgRule::Equals(v) => mask.add_pair(&format!("arg{n}"), v),
                ArgRule::Namespace(ns) => mask.add_pair(&format!("arg{n}-dot-prefix"), ns),
                // Matches above and below the value: no single key is
                // certain to be in the filter.
                ArgRule::Path(_) => &mut mask,
            };
        }
        mask
    }

    /// The rule in canonical form (for RemoveMatch and for logs).
    pub fn canonical(&self) -> String {
        let mut parts = Vec::new();
        let mut push =
            |k: String, v: &str| parts.push(format!("{k}='{}'", v.replace('\'', "'\\''")));
        if let Some(kind) = self.kind {
            push("type".into(), bloom::kind_name(kind));
        }
        for (k, v) in [
            ("sender", &self.sender),
            ("interface", &self.interface),
            ("member", &self.member),
            ("path", &self.path),
            ("path_namespace", &self.path_namespace),
            ("destination", &self.destination),
        ] {
            if let Some(v) = v {
                push(k.into(), v);
            }
        }
        for (n, rule) in &self.args {
            match rule {
                ArgRule::Equals(v) => push(format!("arg{n}"), v),
                ArgRule::Path(v) => push(format!("arg{n}path"), v),
                ArgRule::Namespace(v) => push(format!("arg{n}namespace"), v),
            }
        }
        if self.eavesdrop {
            push("eavesdrop".into(), "true");
        }
        parts.join(",")
    }
}

fn path_arg_matches(rule: &str, arg: &str) -> bool {
    rule == arg
        || (rule.ends_with('/') && arg.starts_with(rule))
        || (arg.ends_with('/') && rule.starts_with(arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal<'a>(path: &'a str, member: &'a str, args: &'a [Arg]) -> Candidate<'a> {
        Candidate {
            kind: Kind::Signal,
            sender: ":1.7",
            sender_names: &[],
            interface: Some("org.example.Iface"),
            member: Some(member),
            path: Some(path),
            destination: None,
            args: Some(args),
        }
    }

    fn s(v: &str) -> Arg {
        Arg::Str(v.into())
    }

    #[test]
    fn parses_the_grammar() {
        let rule = MatchRule::parse(
            " type='signal', sender='org.example.Svc',interface='org.example.Iface',\
             member=Changed,path_namespace='/org/example',arg0='it'\\''s',arg3path='/a/',\
             arg2='x,y'",
        )
        .unwrap();
        assert_eq!(rule.kind, Some(Kind::Signal));
        assert_eq!(rule.sender.as_deref(), Some("org.example.Svc"));
        assert_eq!(rule.member.as_deref(), Some("Changed"));
        assert_eq!(
            rule.args,
            vec![
                (0, ArgRule::Equals("it's".into())),
                (2, ArgRule::Equals("x,y".into())),
                (3, ArgRule::Path("/a/".into()))
            ]
        );
        assert_eq!(MatchRule::parse(&rule.canonical()).unwrap(), rule);
        assert_eq!(MatchRule::parse("").unwrap(), MatchRule::default());
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        for bad in [
            "type='bogus'",
            "member='a',member='b'",
            "path='/a',path_namespace='/b'",
            "path='a/b'",
            "arg64='x'",
            "arg1namespace='a.b'",
            "arg01='x'",
            "frobnicate='x'",
            "interface='noperiod'",
            "sender='1bad.name'",
            "destination='a..b'",
            "member='1x'",
            "path_namespace='/a/'",
            "eavesdrop='maybe'",
            "arg0='unterminated",
            "=value",
        ] {
            assert!(MatchRule::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn matches_exactly() {
        let args = [s("org.example.Foo.Bar"), Arg::Path("/a/b/c".into()), s("x")];
        let msg = signal("/org/example/sub", "Changed", &args);
        let yes = [
            "",
            "type='signal'",
            "member='Changed',interface='org.example.Iface'",
            "path_namespace='/org/example'",
            "path_namespace='/'",
            "path='/org/example/sub'",
            "arg0namespace='org.example'",
            "arg0namespace='org.example.Foo.Bar'",
            "arg0='org.example.Foo.Bar'",
            "arg1path='/a/b/'",
            "arg1path='/a/b/c'",
            "arg2='x'",
            "sender=':1.7'",
        ];
        for rule in yes {
            assert!(MatchRule::parse(rule).unwrap().matches(&msg), "{rule}");
        }
        let no = [
            "type='method_call'",
            "member='Other'",
            "path_namespace='/org/ex'",
            "path='/org/example'",
            "arg0namespace='org.examp'",
            "arg0='org.example'",
            "arg1='/a/b/c'", // argN only matches strings
            "arg1path='/a/b'",
            "arg5='x'",
            "sender=':1.8'",
            "sender='org.example.Svc'",
            "destination=':1.1'",
        ];
        for rule in no {
            assert!(!MatchRule::parse(rule).unwrap().matches(&msg), "{rule}");
        }
        let arg_above = [s("/a/")];
        let msg = signal("/", "M", &arg_above);
        assert!(MatchRule::parse("arg0path='/a/b/c'").unwrap().matches(&msg));
    }

    #[test]
    fn well_known_senders_match_by_ownership() {
        let names = ["org.example.Svc".to_string()];
        let mut msg = signal("/", "M", &[]);
        msg.sender_names = &names;
        assert!(MatchRule::parse("sender='org.example.Svc'")
            .unwrap()
            .matches(&msg));
    }

    #[test]
    fn bloom_masks_never_reject_what_matches() {
        let params = BloomParams::DEFAULT;
        let args = [s("org.example.Foo"), Arg::Path("/a/b".into())];
        let msg = signal("/org/example/sub", "Changed", &args);
        let filter = bloom::message_filter(params, &msg);
        for rule in [
            "type='signal',member='Changed'",
            "path_namespace='/org/example'",
            "path_namespace='/'",
            "path='/org/example/sub'",
            "arg0namespace='org.example'",
            "arg0='org.example.Foo'",
            "arg1path='/a/'",
            "interface='org.example.Iface'",
        ] {
            let rule = MatchRule::parse(rule).unwrap();
            assert!(rule.matches(&msg));
            assert!(filter.contains(&rule.bloom_mask(params)), "{rule:?}");
        }
        let other = MatchRule::parse("member='Unrelated'").unwrap();
        assert!(!filter.contains(&other.bloom_mask(params)));
    }
}
