//! The `org.freedesktop.DBus` driver. Names, their queues and activation
//! live in the kernel, so most methods are one kdbus command each.

use std::collections::HashMap;

use kdbus::{AttachFlags, Errno, ListFlags, NameFlags};
use zvariant::Value;

use crate::bus::errors::BusError;
use crate::bus::matchrule::{is_valid_bus_name, MatchRule};
use crate::bus::peer::{
    parse_unique, unique_name, ClientCreds, InstalledRule, Peer, PeerError, DRIVER_INTERFACE,
    DRIVER_NAME, DRIVER_PATH,
};
use crate::protocol::{Header, Message};

/// RequestName flags and replies (D-Bus specification).
const NAME_FLAG_ALLOW_REPLACEMENT: u32 = 0x1;
const NAME_FLAG_REPLACE_EXISTING: u32 = 0x2;
const NAME_FLAG_DO_NOT_QUEUE: u32 = 0x4;
const REQUEST_PRIMARY_OWNER: u32 = 1;
const REQUEST_IN_QUEUE: u32 = 2;
const REQUEST_EXISTS: u32 = 3;
const REQUEST_ALREADY_OWNER: u32 = 4;
const RELEASE_RELEASED: u32 = 1;
const RELEASE_NON_EXISTENT: u32 = 2;
const RELEASE_NOT_OWNER: u32 = 3;
const START_SUCCESS: u32 = 1;
const START_ALREADY_RUNNING: u32 = 2;

/// Most match rules a client may add.
const MAX_RULES: usize = 512;

const INTROSPECTION: &str = r#"<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="org.freedesktop.DBus">
    <method name="Hello"><arg direction="out" type="s"/></method>
    <method name="RequestName"><arg direction="in" type="s"/><arg direction="in" type="u"/><arg direction="out" type="u"/></method>
    <method name="ReleaseName"><arg direction="in" type="s"/><arg direction="out" type="u"/></method>
    <method name="StartServiceByName"><arg direction="in" type="s"/><arg direction="in" type="u"/><arg direction="out" type="u"/></method>
    <method name="UpdateActivationEnvironment"><arg direction="in" type="a{ss}"/></method>
    <method name="NameHasOwner"><arg direction="in" type="s"/><arg direction="out" type="b"/></method>
    <method name="ListNames"><arg direction="out" type="as"/></method>
    <method name="ListActivatableNames"><arg direction="out" type="as"/></method>
    <method name="AddMatch"><arg direction="in" type="s"/></method>
    <method name="RemoveMatch"><arg direction="in" type="s"/></method>
    <method name="GetNameOwner"><arg direction="in" type="s"/><arg direction="out" type="s"/></method>
    <method name="ListQueuedOwners"><arg direction="in" type="s"/><arg direction="out" type="as"/></method>
    <method name="GetConnectionUnixUser"><arg direction="in" type="s"/><arg direction="out" type="u"/></method>
    <method name="GetConnectionUnixProcessID"><arg direction="in" type="s"/><arg direction="out" type="u"/></method>
    <method name="GetAdtAuditSessionData"><arg direction="in" type="s"/><arg direction="out" type="ay"/></method>
    <method name="GetConnectionSELinuxSecurityContext"><arg direction="in" type="s"/><arg direction="out" type="ay"/></method>
    <method name="GetConnectionCredentials"><arg direction="in" type="s"/><arg direction="out" type="a{sv}"/></method>
    <method name="ReloadConfig"/>
    <method name="GetId"><arg direction="out" type="s"/></method>
    <signal name="NameOwnerChanged"><arg type="s"/><arg type="s"/><arg type="s"/></signal>
    <signal name="NameLost"><arg type="s"/></signal>
    <signal name="NameAcquired"><arg type="s"/></signal>
    <property name="Features" type="as" access="read"/>
    <property name="Interfaces" type="as" access="read"/>
  </interface>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect"><arg direction="out" type="s"/></method>
  </interface>
  <interface name="org.freedesktop.DBus.Peer">
    <method name="Ping"/>
    <method name="GetMachineId"><arg direction="out" type="s"/></method>
  </interface>
  <interface name="org.freedesktop.DBus.Properties">
    <method name="Get"><arg direction="in" type="s"/><arg direction="in" type="s"/><arg direction="out" type="v"/></method>
    <method name="GetAll"><arg direction="in" type="s"/><arg direction="out" type="a{sv}"/></method>
    <method name="Set"><arg direction="in" type="s"/><arg direction="in" type="s"/><arg direction="in" type="v"/></method>
  </interface>
</node>
"#;

type Reply = Result<Message, BusError>;

fn args<T: serde::de::DeserializeOwned + zvariant::Type>(call: &Message) -> Result<T, BusError> {
    call.body_as::<T>()
        .map_err(|e| BusError::invalid_args(e.to_string()))
}

fn ok<T: serde::Serialize + zvariant::Type>(call: &Header, body: &T) -> Reply {
    Message::method_return(call, body).map_err(|e| BusError::failed(e.to_string()))
}

impl Peer {
    /// A method call to the driver. The reply (unless the caller wants
    /// none) and any signals go to `out`.
    pub(crate) fn driver_call(
        &mut self,
        call: Message,
        out: &mut Vec<Message>,
    ) -> Result<(), PeerError> {
        let header = call.header().clone();
        let mut signals = Vec::new();
        let reply = self.dispatch(&call, &mut signals);
        if matches!(&reply, Err(e) if e.is_deferred()) {
            return Ok(()); // answered later
        }
        if let Err(err) = &reply {
            tracing::debug!(
                client = %self.unique,
                method = header.member.as_deref().unwrap_or_default(),
                error = err.name,
                "{}",
                err.text
            );
        }
        if header.expects_reply() {
            let reply = match reply {
                Ok(reply) => reply,
                Err(err) => Message::error(&header, err.name, &err.text)?,
            };
            out.push(self.driver_message(reply)?);
        }
        for signal in signals {
            out.push(self.directed_signal(signal)?);
        }
        Ok(())
    }

    fn dispatch(&mut self, call: &Message, signals: &mut Vec<Message>) -> Reply {
        let h = call.header();
        let member = h.member.as_deref().unwrap_or_default();
        let path = h.path.as_deref().unwrap_or_default();
        match h.interface.as_deref() {
            Some("org.freedesktop.DBus.Introspectable") if member == "Introspect" => {
                return ok(h, &(INTROSPECTION,))
            }
            Some("org.freedesktop.DBus.Peer") => return self.peer_method(call),
            Some("org.freedesktop.DBus.Properties") => return self.properties(call),
            Some("org.freedesktop.DBus.Monitoring") if member == "BecomeMonitor" => {
                return self.become_monitor(call, signals)
            }
            Some(DRIVER_INTERFACE) | None => {}
            Some(other) => {
                return Err(BusError::unknown_interface(format!(
                    "{DRIVER_NAME} has no interface {other}"
                )))
            }
        }
        if member == "Introspect" {
            return ok(h, &(INTROSPECTION,));
        }
        // Most driver methods work on any path; the bus is one object.
        let _ = path;
        match member {
            "Hello" => self.hello(call, signals),
            "RequestName" => self.request_name(call),
            "ReleaseName" => self.release_name(call),
            "NameHasOwner" => {
                let (name,): (String,) = args(call)?;
                let owned = name == DRIVER_NAME || self.owner_of(&name).is_ok();
                ok(h, &(owned,))
            }
            "GetNameOwner" => {
                let (name,): (String,) = args(call)?;
                if name == DRIVER_NAME {
                    return ok(h, &(DRIVER_NAME,));
                }
                let id = self.owner_of(&name)?;
                ok(h, &(unique_name(id),))
            }
            "ListNames" => self.list_names(call),
            "ListActivatableNames" => self.list_activatable(call),
            "ListQueuedOwners" => self.list_queued(call),
            "StartServiceByName" => match self.start_service(call) {
                Ok(Some(reply)) => Ok(reply),
                Ok(None) => Err(BusError::deferred()),
                Err(e) => Err(e),
            },
            "GetConnectionUnixUser" => {
                let creds = self.credentials(call)?;
                ok(h, &(creds.uid,))
            }
            "GetConnectionUnixProcessID" => {
                let creds = self.credentials(call)?;
                match creds.pid {
                    Some(pid) => ok(h, &(pid,)),
                    None => Err(BusError::unix_process_id_unknown(
                        "the process of this connection is not known",
                    )),
                }
            }
            "GetConnectionCredentials" => self.connection_credentials(call),
            "GetAdtAuditSessionData" => {
                let (name,): (String,) = args(call)?;
                self.owner_of_any(&name)?;
                Err(BusError::adt_audit_data_unknown(format!(
                    "no audit data is known for {name}"
                )))
            }
            "GetConnectionSELinuxSecurityContext" => {
                let creds = self.credentials(call)?;
                // The kernel's label is whichever LSM's; only SELinux's is
                // an SELinux context (GetConnectionCredentials has the rest).
                match creds.seclabel {
                    Some(label) if selinux_enabled() => ok(h, &(label.into_bytes(),)),
                    Some(_) => Err(BusError::selinux_security_context_unknown(
                        "SELinux is not enabled on this system",
                    )),
                    None => Err(BusError::selinux_security_context_unknown(
                        "no security label is known for this connection",
                    )),
                }
            }
            "AddMatch" => self.add_match(call),
            "RemoveMatch" => self.remove_match(call),
            "GetId" => ok(h, &(self.config.bus_id.as_str(),)),
            "ReloadConfig" => {
                let why = format!("ReloadConfig from {} (uid {})", self.unique, self.creds.uid);
                self.config.policy.reload_logged(&why).map_err(|e| {
                    BusError::failed(format!("the bus policy was not reloaded: {e}"))
                })?;
                self.refresh_policy();
                ok(h, &())
            }
            "UpdateActivationEnvironment" => Err(BusError::access_denied(
                "services are started by kdbus-init, with its environment",
            )),
            other => Err(BusError::unknown_method(format!(
                "{DRIVER_INTERFACE} has no method {other}"
            ))),
        }
    }

    fn hello(&mut self, call: &Message, signals: &mut Vec<Message>) -> Reply {
        if self.conn.is_some() {
            return Err(BusError::failed("Hello was already called"));
        }
        self.check_connect()?;
        self.connect()
            .map_err(|e| BusError::failed(format!("cannot connect to the kernel bus: {e}")))?;
        let name = self.unique.clone();
        signals.push(
            Message::signal(DRIVER_PATH, DRIVER_INTERFACE, "NameAcquired", &(&name,))
                .map_err(|e| BusError::failed(e.to_string()))?,
        );
        ok(call.header(), &(&name,))
    }

    fn request_name(&mut self, call: &Message) -> Reply {
        let (name, flags): (String, u32) = args(call)?;
        check_ownable(&name)?;
        self.check_own(&name)?;
        let mut kflags = NameFlags::empty();
        if flags & NAME_FLAG_ALLOW_REPLACEMENT != 0 {
            kflags |= NameFlags::ALLOW_REPLACEMENT;
        }
        if flags & NAME_FLAG_REPLACE_EXISTING != 0 {
            kflags |= NameFlags::REPLACE_EXISTING;
        }
        if flags & NAME_FLAG_DO_NOT_QUEUE == 0 {
            kflags |= NameFlags::QUEUE;
        }
        let result = match self.conn().acquire_name(&name, kflags) {
            Ok(got) if got.contains(NameFlags::PRIMARY) && got.contains(NameFlags::ACQUIRED) => {
                REQUEST_PRIMARY_OWNER
            }
            Ok(got) if got.contains(NameFlags::PRIMARY) => REQUEST_ALREADY_OWNER,
            Ok(got) if got.contains(NameFlags::IN_QUEUE) => REQUEST_IN_QUEUE,
            // Left the queue (asked again without queueing), or refused.
            Ok(_) => REQUEST_EXISTS,
            Err(e) if e.is(Errno::EXIST) => REQUEST_EXISTS,
            Err(e) if e.is(Errno::PERM) => {
                return Err(BusError::access_denied(format!(
                    "the bus policy does not allow uid {} to own {name}",
                    self.creds.uid
                )))
            }
            Err(e) if e.is(Errno::TOOBIG) => {
                return Err(BusError::limits_exceeded(format!(
                    "{} owns or waits for too many names",
                    self.unique
                )))
            }
            Err(e) => return Err(BusError::failed(format!("cannot request {name}: {e}"))),
        };
        ok(call.header(), &(result,))
    }

    fn release_name(&mut self, call: &Message) -> Reply {
        let (name,): (String,) = args(call)?;
        check_ownable(&name)?;
        let result = match self.conn().release_name(&name) {
            Ok(()) => RELEASE_RELEASED,
            Err(e) if e.is(Errno::SRCH) => RELEASE_NON_EXISTENT,
            Err(e) if e.is(Errno::ADDRINUSE) => RELEASE_NOT_OWNER,
            Err(e) => return Err(BusError::failed(format!("cannot release {name}: {e}"))),
        };
        ok(call.header(), &(result,))
    }

    fn list_names(&mut self, call: &Message) -> Reply {
        let entries = self
            .conn()
            .list(ListFlags::UNIQUE | ListFlags::NAMES)
            .map_err(|e| BusError::failed(format!("cannot list the bus: {e}")))?;
        let mut names = vec![DRIVER_NAME.to_owned()];
        let mut ids: Vec<u64> = Vec::new();
        for entry in &entries {
            if entry.flags.contains(kdbus::HelloFlags::ACTIVATOR) {
                continue;
            }
            if !ids.contains(&entry.id) {
                ids.push(entry.id);
            }
            if let Some(owned) = &entry.name {
                if owned.flags.contains(NameFlags::PRIMARY)
                    || !owned.flags.contains(NameFlags::IN_QUEUE)
                {
                    names.push(owned.name.clone());
                }
            }
        }
        names.extend(ids.into_iter().map(unique_name));
        names.sort();
        names.dedup();
        ok(call.header(), &(names,))
    }

    fn list_activatable(&mut self, call: &Message) -> Reply {
        let entries = self
            .conn()
            .list(ListFlags::ACTIVATORS)
            .map_err(|e| BusError::failed(format!("cannot list the bus: {e}")))?;
        let mut names = vec![DRIVER_NAME.to_owned()];
        names.extend(
            entries
                .into_iter()
                .filter(|e| e.flags.contains(kdbus::HelloFlags::ACTIVATOR))
                .filter_map(|e| e.name.map(|n| n.name)),
        );
        names.sort();
        names.dedup();
        ok(call.header(), &(names,))
    }

    fn list_queued(&mut self, call: &Message) -> Reply {
        let (name,): (String,) = args(call)?;
        if name == DRIVER_NAME {
            return ok(call.header(), &(vec![DRIVER_NAME],));
        }
        if let Some(id) = parse_unique(&name) {
            self.owner_of(&name)?;
            return ok(call.header(), &(vec![unique_name(id)],));
        }
        let entries = self
            .conn()
            .list(ListFlags::NAMES | ListFlags::QUEUED)
            .map_err(|e| BusError::failed(format!("cannot list the bus: {e}")))?;
        let mut primary = Vec::new();
        let mut queued = Vec::new();
        for entry in entries {
            let Some(owned) = entry.name else { continue };
            if owned.name != name || entry.flags.contains(kdbus::HelloFlags::ACTIVATOR) {
                continue;
            }
            if owned.flags.contains(NameFlags::IN_QUEUE) {
                queued.push(unique_name(entry.id));
            } else {
                primary.push(unique_name(entry.id));
            }
        }
        if primary.is_empty() {
            return Err(BusError::name_has_no_owner(format!(
                "Could not get owners of name '{name}': no such name"
            )));
        }
        primary.extend(queued);
        ok(call.header(), &(primary,))
    }

    /// Starts an activatable service by calling it: a ping to the name
    /// queues on its activator, whose owner (kdbus-init) starts the
    /// service; the kernel hands the ping over once the service owns the
    /// name, and its answer completes StartServiceByName (see
    /// [`start_reply`]).
    fn start_service(&mut self, call: &Message) -> Result<Option<Message>, BusError> {
        let (name, _flags): (String, u32) = args(call)?;
        if name == DRIVER_NAME || self.owner_of(&name).is_ok() {
            return ok(call.header(), &(START_ALREADY_RUNNING,)).map(Some);
        }
        let unknown = || {
            BusError::service_unknown(format!(
                "The name {name} was not provided by any activatable service"
            ))
        };
        let activatable = self
            .conn()
            .conn_info(kdbus::Peer::Name(&name), AttachFlags::empty())
            .is_ok_and(|info| info.flags.contains(kdbus::HelloFlags::ACTIVATOR));
        if !activatable {
            return Err(unknown());
        }
        let serial = self.own_serial;
        self.own_serial -= 1;
        let mut ping = Message::method_call(
            Some(&name),
            "/",
            Some("org.freedesktop.DBus.Peer"),
            "Ping",
            &(),
        )
        .map_err(|e| BusError::failed(e.to_string()))?;
        ping.stamp(serial, Some(&self.unique))
            .map_err(|e| BusError::failed(e.to_string()))?;
        let sent = self.conn().send(
            &kdbus::MessageBuilder::to_name(name.clone())
                .payload_type(crate::bus::peer::PAYLOAD_TYPE)
                .cookie(serial as u64)
                .expect_reply(self.config.reply_timeout)
                .payload(ping.bytes()),
        );
        if let Err(e) = sent {
            return Err(crate::bus::errors::send_failure(e.errno(), &name));
        }
        self.starting.push((serial, call.header().clone()));
        Ok(None)
    }

    /// Turns the client into a monitor: its ordinary connection leaves the
    /// bus (and with it its names), a kdbus monitor connection takes its
    /// place and every message on the bus reaches the client, filtered only
    /// by the given rules. The driver's own traffic (Hello, AddMatch...)
    /// never crosses kdbus: the driver hands it to the monitor through the
    /// bridge's [`Monitors`](crate::bus::monitors::Monitors). As on every D-Bus bus, the
    /// client gets NameLost for each name it had, its unique name last:
    /// sd-bus's monitors wait for that before they show anything.
    fn become_monitor(&mut self, call: &Message, signals: &mut Vec<Message>) -> Reply {
        let (texts, flags): (Vec<String>, u32) = args(call)?;
        if flags != 0 {
            return Err(BusError::invalid_args("BecomeMonitor takes no flags"));
        }
        if self.creds.uid != 0 && self.creds.uid != rustix::process::geteuid().as_raw() {
            return Err(BusError::access_denied(
                "only root or the bus's owner may monitor the bus",
            ));
        }
        let rules = texts
            .iter()
            .map(|t| MatchRule::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BusError::match_rule_invalid(e.to_string()))?;
        let ClientCreds { uid, gid, pid } = self.creds;
        let monitor = kdbus::HelloBuilder::new()
            .monitor()
            .pool_size(self.config.pool_size)
            .attach_recv(AttachFlags::NAMES)
            .creds(kdbus::Creds {
                uid: uid.into(),
                euid: uid.into(),
                suid: uid.into(),
                fsuid: uid.into(),
                gid: gid.into(),
                egid: gid.into(),
                sgid: gid.into(),
                fsgid: gid.into(),
            })
            .pids(kdbus::Pids {
                pid: pid.into(),
                tid: pid.into(),
                ppid: 0,
            })
            .connect(&self.config.bus_path)
            .map_err(|e| BusError::failed(format!("the kernel refused a monitor: {e}")))?;
        let mut lost = self.own_names();
        lost.push(self.unique.clone());
        for name in lost {
            let signal = Message::signal(DRIVER_PATH, DRIVER_INTERFACE, "NameLost", &(&name,))
                .map_err(|e| BusError::failed(format!("cannot marshal NameLost: {e}")))?;
            signals.push(signal);
        }
        let subscription = self
            .config
            .monitors
            .subscribe(rules)
            .map_err(|e| BusError::failed(format!("cannot watch the driver's traffic: {e}")))?;
        self.conn = Some(monitor);
        self.rules.clear();
        self.monitor = Some(subscription);
        ok(call.header(), &())
    }

    fn add_match(&mut self, call: &Message) -> Reply {
        let (text,): (String,) = args(call)?;
        let rule =
            MatchRule::parse(&text).map_err(|e| BusError::match_rule_invalid(e.to_string()))?;
        if self.rules.len() >= MAX_RULES {
            return Err(BusError::limits_exceeded(format!(
                "{} has {MAX_RULES} match rules already",
                self.unique
            )));
        }
        let cookie = self.next_rule_cookie;
        self.next_rule_cookie += 1;
        if let Err(e) = self.install(&rule, cookie) {
            let _ = self.conn().remove_match(cookie);
            return Err(if e.is(Errno::MFILE) {
                BusError::limits_exceeded("the kernel's limit of match entries is reached")
            } else {
                BusError::failed(format!("cannot install the match rule: {e}"))
            });
        }
        tracing::debug!(client = %self.unique, rule = %rule.canonical(), "match rule added");
        self.rules.push(InstalledRule { rule, cookie });
        ok(call.header(), &())
    }

    /// The kernel entries for a rule, all under `cookie`: a bloom entry for
    /// peers' messages, and notification entries for the driver's signals.
    fn install(&self, rule: &MatchRule, cookie: u64) -> Result<(), kdbus::Error> {
        use kdbus::matches::Rule;
        let conn = self.conn();
        if rule.may_match_peer_messages() {
            let mut entry =
                kdbus::MatchRule::new(cookie).bloom(&rule.bloom_mask(conn.bloom_params()));
            match rule.sender.as_deref() {
                Some(s) if s.starts_with(':') => {
                    entry = entry.sender(parse_unique(s).unwrap_or(u64::MAX - 1));
                }
                Some(s) => entry = entry.sender_name(s),
                None => {}
            }
            conn.add_match(&entry)?;
        }
        if rule.may_match_name_owner_changed() {
            // Name notifications stand for NameOwnerChanged; arg0 narrows
            // them to one name.
            let arg0 = rule.args.iter().find_map(|(n, a)| match (n, a) {
                (0, crate::bus::matchrule::ArgRule::Equals(v)) => Some(v.as_str()),
                _ => None,
            });
            let unique_arg0 = arg0.and_then(parse_unique);
            if arg0.is_none_or(|a| !a.starts_with(':')) {
                for entry in kdbus::MatchRule::name_changes(cookie, arg0) {
                    conn.add_match(&entry)?;
                }
            }
            if arg0.is_none() || unique_arg0.is_some() {
                conn.add_match(&kdbus::MatchRule::new(cookie).rule(Rule::IdAdd(unique_arg0)))?;
                conn.add_match(&kdbus::MatchRule::new(cookie).rule(Rule::IdRemove(unique_arg0)))?;
            }
        }
        Ok(())
    }

    fn remove_match(&mut self, call: &Message) -> Reply {
        let (text,): (String,) = args(call)?;
        let rule =
            MatchRule::parse(&text).map_err(|e| BusError::match_rule_invalid(e.to_string()))?;
        let Some(index) = self.rules.iter().position(|r| r.rule == rule) else {
            return Err(BusError::match_rule_not_found(format!(
                "{} has no match rule {text:?}",
                self.unique
            )));
        };
        let installed = self.rules.remove(index);
        // EBADSLT: the rule installed no kernel entry of its own.
        match self.conn().remove_match(installed.cookie) {
            Ok(()) => {}
            Err(e) if e.is(Errno::BADSLT) => {}
            Err(e) => return Err(BusError::failed(format!("cannot remove the rule: {e}"))),
        }
        ok(call.header(), &())
    }

    fn peer_method(&mut self, call: &Message) -> Reply {
        match call.header().member.as_deref() {
            Some("Ping") => ok(call.header(), &()),
            Some("GetMachineId") => {
                let id = std::fs::read_to_string("/etc/machine-id")
                    .map(|s| s.trim().to_owned())
                    .map_err(|e| BusError::failed(format!("cannot read /etc/machine-id: {e}")))?;
                ok(call.header(), &(id,))
            }
            other => Err(BusError::unknown_method(format!(
                "org.freedesktop.DBus.Peer has no method {}",
                other.unwrap_or_default()
            ))),
        }
    }

    fn properties(&mut self, call: &Message) -> Reply {
        let h = call.header();
        let features: Vec<&str> = Vec::new();
        let interfaces = vec!["org.freedesktop.DBus.Monitoring"];
        match h.member.as_deref() {
            Some("Get") => {
                let (iface, prop): (String, String) = args(call)?;
                if iface != DRIVER_INTERFACE {
                    return Err(BusError::unknown_interface(format!("no interface {iface}")));
                }
                let value = match prop.as_str() {
                    "Features" => Value::from(features),
                    "Interfaces" => Value::from(interfaces),
                    _ => return Err(BusError::unknown_property(format!("no property {prop}"))),
                };
                ok(h, &(value,))
            }
            Some("GetAll") => {
                let (iface,): (String,) = args(call)?;
                let mut all: HashMap<&str, Value<'_>> = HashMap::new();
                if iface == DRIVER_INTERFACE || iface.is_empty() {
                    all.insert("Features", Value::from(features));
                    all.insert("Interfaces", Value::from(interfaces));
                }
                ok(h, &(all,))
            }
            Some("Set") => Err(BusError::property_read_only(
                "the bus's properties are read-only",
            )),
            other => Err(BusError::unknown_method(format!(
                "org.freedesktop.DBus.Properties has no method {}",
                other.unwrap_or_default()
            ))),
        }
    }

    fn connection_credentials(&mut self, call: &Message) -> Reply {
        let creds = self.credentials(call)?;
        let mut dict: HashMap<&str, Value<'_>> = HashMap::new();
        dict.insert("UnixUserID", Value::U32(creds.uid));
        if let Some(pid) = creds.pid {
            dict.insert("ProcessID", Value::U32(pid));
        }
        if let Some(groups) = &creds.groups {
            dict.insert("UnixGroupIDs", Value::from(groups.clone()));
        }
        if let Some(label) = &creds.seclabel {
            let mut bytes = label.as_bytes().to_vec();
            bytes.push(0);
            dict.insert("LinuxSecurityLabel", Value::from(bytes));
        }
        ok(call.header(), &(dict,))
    }

    /// The credentials of the connection named by the call's argument.
    fn credentials(&mut self, call: &Message) -> Result<PeerCreds, BusError> {
        let (name,): (String,) = args(call)?;
        if name == DRIVER_NAME {
            return Ok(PeerCreds {
                uid: rustix::process::geteuid().as_raw(),
                pid: Some(rustix::process::getpid().as_raw_nonzero().get() as u32),
                groups: None,
                seclabel: None,
            });
        }
        let id = self.owner_of(&name)?;
        let info = self
            .conn()
            .conn_info(
                kdbus::Peer::Id(id),
                AttachFlags::CREDS
                    | AttachFlags::PIDS
                    | AttachFlags::AUXGROUPS
                    | AttachFlags::SECLABEL,
            )
            .map_err(|_| name_has_no_owner(&name))?;
        let meta = info.metadata;
        let creds = meta.creds.ok_or_else(|| {
            BusError::failed(format!("the kernel reported no credentials for {name}"))
        })?;
        let mut groups = vec![creds.gid as u32];
        groups.extend(
            meta.auxgroups
                .unwrap_or_default()
                .into_iter()
                .map(|g| g as u32),
        );
        groups.dedup();
        Ok(PeerCreds {
            uid: creds.uid as u32,
            pid: meta.pids.map(|p| p.pid as u32).filter(|p| *p != 0),
            groups: Some(groups),
            seclabel: meta.seclabel,
        })
    }

    /// The well-known names the client's connection owns now.
    fn own_names(&self) -> Vec<String> {
        let conn = self.conn();
        conn.conn_info(kdbus::Peer::Id(conn.id()), AttachFlags::NAMES)
            .ok()
            .and_then(|info| info.metadata.names)
            .unwrap_or_default()
            .into_iter()
            .map(|n| n.name)
            .collect()
    }

    /// The id owning `name` (unique or well-known); activators own nothing.
    pub(crate) fn owner_of(&self, name: &str) -> Result<u64, BusError> {
        if let Some(id) = parse_unique(name) {
            return match self
                .conn()
                .conn_info(kdbus::Peer::Id(id), AttachFlags::empty())
            {
                Ok(_) => Ok(id),
                Err(_) => Err(name_has_no_owner(name)),
            };
        }
        if !is_valid_bus_name(name) {
            return Err(BusError::invalid_args(format!(
                "{name:?} is not a valid bus name"
            )));
        }
        self.name_owner(name).map_err(|_| name_has_no_owner(name))
    }

    fn owner_of_any(&self, name: &str) -> Result<u64, BusError> {
        if name == DRIVER_NAME {
            return Ok(0);
        }
        self.owner_of(name)
    }

    /// The current primary owner of a well-known name (not an activator).
    pub(crate) fn name_owner(&self, name: &str) -> Result<u64, ()> {
        let info = self
            .conn()
            .conn_info(kdbus::Peer::Name(name), AttachFlags::empty())
            .map_err(|_| ())?;
        if info.flags.contains(kdbus::HelloFlags::ACTIVATOR) {
            return Err(());
        }
        Ok(info.id)
    }

    pub(crate) fn conn(&self) -> &kdbus::Connection {
        self.conn.as_ref().expect("the driver runs after Hello")
    }
}

struct PeerCreds {
    uid: u32,
    pid: Option<u32>,
    groups: Option<Vec<u32>>,
    seclabel: Option<String>,
}

fn name_has_no_owner(name: &str) -> BusError {
    BusError::name_has_no_owner(format!(
        "Could not get owner of name '{name}': no such name"
    ))
}

/// Names a client may request or release.
fn check_ownable(name: &str) -> Result<(), BusError> {
    if name.starts_with(':') {
        return Err(BusError::invalid_args(format!(
            "Cannot acquire a service starting with ':' such as \"{name}\""
        )));
    }
    if name == DRIVER_NAME {
        return Err(BusError::invalid_args(format!(
            "Connection is not allowed to own the service \"{DRIVER_NAME}\" because it is reserved for the bus"
        )));
    }
    if !is_valid_bus_name(name) {
        return Err(BusError::invalid_args(format!(
            "{name:?} is not a valid bus name"
        )));
    }
    Ok(())
}

/// The answer to StartServiceByName once the started service answered
/// the bridge's ping (any answer, even an error, means it runs).
pub(crate) fn start_reply(call: &Header, _answer: &Message) -> Result<Message, PeerError> {
    Ok(Message::method_return(call, &(START_SUCCESS,))?)
}

/// Is SELinux the kernel's security module here? (selinuxfs is mounted.)
fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}
