//! The standard `org.freedesktop.DBus.Error.*` replies, and which one a
//! failed kdbus send becomes.

use kdbus::Errno;

/// An error reply the bus sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusError {
    pub name: &'static str,
    pub text: String,
}

macro_rules! errors {
    ($($fn:ident => $name:literal),* $(,)?) => {
        impl BusError {
            $(pub fn $fn(text: impl Into<String>) -> BusError {
                BusError { name: concat!("org.freedesktop.DBus.Error.", $name), text: text.into() }
            })*
        }
    };
}

errors! {
    failed => "Failed",
    no_memory => "NoMemory",
    service_unknown => "ServiceUnknown",
    name_has_no_owner => "NameHasNoOwner",
    no_reply => "NoReply",
    access_denied => "AccessDenied",
    limits_exceeded => "LimitsExceeded",
    invalid_args => "InvalidArgs",
    unknown_method => "UnknownMethod",
    unknown_interface => "UnknownInterface",
    unknown_object => "UnknownObject",
    unknown_property => "UnknownProperty",
    match_rule_not_found => "MatchRuleNotFound",
    match_rule_invalid => "MatchRuleInvalid",
    not_supported => "NotSupported",
    unix_process_id_unknown => "UnixProcessIdUnknown",
    adt_audit_data_unknown => "AdtAuditDataUnknown",
    selinux_security_context_unknown => "SELinuxSecurityContextUnknown",
    property_read_only => "PropertyReadOnly",
}

impl BusError {
    /// Not an error: the driver answers the call later.
    pub(crate) fn deferred() -> BusError {
        BusError {
            name: "",
            text: String::new(),
        }
    }

    pub(crate) fn is_deferred(&self) -> bool {
        self.name.is_empty()
    }
}

/// The reply for a call that the kernel refused to deliver to `dest`.
pub fn send_failure(errno: Option<Errno>, dest: &str) -> BusError {
    match errno {
        Some(Errno::SRCH | Errno::NXIO | Errno::ADDRNOTAVAIL) => {
            BusError::service_unknown(format!("The name {dest} is not owned by anyone"))
        }
        Some(Errno::CONNRESET | Errno::PIPE | Errno::SHUTDOWN) => {
            BusError::no_reply(format!("{dest} went away before the call was delivered"))
        }
        Some(Errno::PERM | Errno::ACCESS) => {
            BusError::access_denied(format!("The bus policy does not allow talking to {dest}"))
        }
        Some(Errno::NOBUFS | Errno::XFULL | Errno::MLINK | Errno::MFILE | Errno::MSGSIZE) => {
            BusError::limits_exceeded(format!(
                "{dest} has too many messages queued, or the message is too large, or too \
                 many calls are pending"
            ))
        }
        Some(Errno::COMM) => {
            BusError::not_supported(format!("{dest} does not accept file descriptors"))
        }
        Some(Errno::TIMEDOUT) => BusError::no_reply(format!("{dest} did not reply in time")),
        other => BusError::failed(format!(
            "the kernel bus refused the message to {dest}: {}",
            other.map_or_else(|| "unknown error".into(), kdbus::error::describe)
        )),
    }
}
