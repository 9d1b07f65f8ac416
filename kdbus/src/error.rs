//! One error type for the whole library.
//!
//! A failed kdbus command carries the command name and the errno, so that
//! `Display` reads like `KDBUS_CMD_NAME_ACQUIRE: File exists (EEXIST)` and
//! callers can match on [`Error::errno`]. Where kdbus gives an errno a
//! specific meaning, a short hint follows.

use std::fmt;
use std::path::{Path, PathBuf};

pub use rustix::io::Errno;

/// Result of every fallible library call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, and where.
pub struct Error {
    kind: Kind,
}

/// `unwrap()` and `{:?}` show the same sentence as `Display`.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Error").field(&self.to_string()).finish()
    }
}

#[derive(Debug)]
enum Kind {
    /// A kdbus ioctl failed.
    Command {
        command: &'static str,
        errno: Errno,
        hint: Option<&'static str>,
    },
    /// A system call around kdbus (open, mmap, memfd, poll...) failed.
    System {
        operation: &'static str,
        path: Option<PathBuf>,
        errno: Errno,
    },
    /// The kernel (or a pool image) produced data that does not follow the
    /// ABI: never trusted, always reported.
    Malformed { what: &'static str, detail: String },
    /// The caller asked for something that cannot be encoded.
    InvalidArgument(String),
}

impl Error {
    /// A failed kdbus command (`command` is the `KDBUS_CMD_*` name).
    pub fn command(command: &'static str, errno: Errno) -> Error {
        Error {
            kind: Kind::Command {
                command,
                errno,
                hint: hint(command, errno),
            },
        }
    }

    /// A failed system call that is not a kdbus command.
    pub fn system(operation: &'static str, errno: Errno) -> Error {
        Error {
            kind: Kind::System {
                operation,
                path: None,
                errno,
            },
        }
    }

    /// A failed system call on a file.
    pub fn at_path(operation: &'static str, path: &Path, errno: Errno) -> Error {
        Error {
            kind: Kind::System {
                operation,
                path: Some(path.to_owned()),
                errno,
            },
        }
    }

    /// Data that violates the ABI (bad item chain, out-of-bounds offset...).
    pub fn malformed(what: &'static str, detail: impl Into<String>) -> Error {
        Error {
            kind: Kind::Malformed {
                what,
                detail: detail.into(),
            },
        }
    }

    /// An argument the library cannot encode.
    pub fn invalid_argument(detail: impl Into<String>) -> Error {
        Error {
            kind: Kind::InvalidArgument(detail.into()),
        }
    }

    /// The errno, for failed commands and system calls.
    pub fn errno(&self) -> Option<Errno> {
        match self.kind {
            Kind::Command { errno, .. } | Kind::System { errno, .. } => Some(errno),
            _ => None,
        }
    }

    /// True if this error carries `errno`.
    pub fn is(&self, errno: Errno) -> bool {
        self.errno() == Some(errno)
    }

    /// The `KDBUS_CMD_*` name of a failed command.
    pub fn command_name(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Command { command, .. } => Some(command),
            _ => None,
        }
    }

    /// The file a failed system call was about.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::System { path, .. } => path.as_deref(),
            _ => None,
        }
    }

    /// The kdbus-specific meaning of the errno, if there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Command { hint, .. } => hint,
            _ => None,
        }
    }

    /// True for data that violated the ABI.
    pub fn is_malformed(&self) -> bool {
        matches!(self.kind, Kind::Malformed { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Command {
                command,
                errno,
                hint,
            } => {
                write!(f, "{command}: {}", describe(*errno))?;
                if let Some(hint) = hint {
                    write!(f, " — {hint}")?;
                }
                Ok(())
            }
            Kind::System {
                operation,
                path: Some(path),
                errno,
            } => write!(f, "{operation} {}: {}", path.display(), describe(*errno)),
            Kind::System {
                operation,
                path: None,
                errno,
            } => write!(f, "{operation}: {}", describe(*errno)),
            Kind::Malformed { what, detail } => write!(f, "malformed {what}: {detail}"),
            Kind::InvalidArgument(detail) => write!(f, "invalid argument: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> std::io::Error {
        match err.errno() {
            Some(errno) => std::io::Error::new(std::io::Error::from(errno).kind(), err),
            None => std::io::Error::new(std::io::ErrorKind::InvalidData, err),
        }
    }
}

/// `File exists (EEXIST)`: the C library's message and the symbolic name.
pub fn describe(errno: Errno) -> String {
    let message = std::io::Error::from(errno).to_string();
    // std appends " (os error N)"; the symbolic name says more.
    let message = match message.rfind(" (os error") {
        Some(at) => &message[..at],
        None => &message,
    };
    match errno_name(errno) {
        Some(name) => format!("{message} ({name})"),
        None => format!("{message} (errno {})", errno.raw_os_error()),
    }
}

/// The symbolic name (`"EEXIST"`) of an errno, for the ones Linux defines.
pub fn errno_name(errno: Errno) -> Option<&'static str> {
    ERRNO_NAMES
        .iter()
        .find(|(e, _)| *e == errno)
        .map(|(_, name)| *name)
}

const ERRNO_NAMES: &[(Errno, &str)] = &[
    (Errno::PERM, "EPERM"),
    (Errno::NOENT, "ENOENT"),
    (Errno::SRCH, "ESRCH"),
    (Errno::INTR, "EINTR"),
    (Errno::IO, "EIO"),
    (Errno::NXIO, "ENXIO"),
    (Errno::TOOBIG, "E2BIG"),
    (Errno::NOEXEC, "ENOEXEC"),
    (Errno::BADF, "EBADF"),
    (Errno::CHILD, "ECHILD"),
    (Errno::AGAIN, "EAGAIN"),
    (Errno::NOMEM, "ENOMEM"),
    (Errno::ACCESS, "EACCES"),
    (Errno::FAULT, "EFAULT"),
    (Errno::BUSY, "EBUSY"),
    (Errno::EXIST, "EEXIST"),
    (Errno::XDEV, "EXDEV"),
    (Errno::NODEV, "ENODEV"),
    (Errno::NOTDIR, "ENOTDIR"),
    (Errno::ISDIR, "EISDIR"),
    (Errno::INVAL, "EINVAL"),
    (Errno::NFILE, "ENFILE"),
    (Errno::MFILE, "EMFILE"),
    (Errno::NOTTY, "ENOTTY"),
    (Errno::TXTBSY, "ETXTBSY"),
    (Errno::FBIG, "EFBIG"),
    (Errno::NOSPC, "ENOSPC"),
    (Errno::SPIPE, "ESPIPE"),
    (Errno::ROFS, "EROFS"),
    (Errno::MLINK, "EMLINK"),
    (Errno::PIPE, "EPIPE"),
    (Errno::DOM, "EDOM"),
    (Errno::RANGE, "ERANGE"),
    (Errno::DEADLK, "EDEADLK"),
    (Errno::NAMETOOLONG, "ENAMETOOLONG"),
    (Errno::NOSYS, "ENOSYS"),
    (Errno::NOTEMPTY, "ENOTEMPTY"),
    (Errno::LOOP, "ELOOP"),
    (Errno::NOMSG, "ENOMSG"),
    (Errno::BADSLT, "EBADSLT"),
    (Errno::NODATA, "ENODATA"),
    (Errno::TIME, "ETIME"),
    (Errno::COMM, "ECOMM"),
    (Errno::PROTO, "EPROTO"),
    (Errno::BADMSG, "EBADMSG"),
    (Errno::OVERFLOW, "EOVERFLOW"),
    (Errno::NOTUNIQ, "ENOTUNIQ"),
    (Errno::BADFD, "EBADFD"),
    (Errno::REMCHG, "EREMCHG"),
    (Errno::NOTSOCK, "ENOTSOCK"),
    (Errno::DESTADDRREQ, "EDESTADDRREQ"),
    (Errno::MSGSIZE, "EMSGSIZE"),
    (Errno::PROTOTYPE, "EPROTOTYPE"),
    (Errno::NOPROTOOPT, "ENOPROTOOPT"),
    (Errno::PROTONOSUPPORT, "EPROTONOSUPPORT"),
    (Errno::OPNOTSUPP, "EOPNOTSUPP"),
    (Errno::ADDRINUSE, "EADDRINUSE"),
    (Errno::ADDRNOTAVAIL, "EADDRNOTAVAIL"),
    (Errno::NETDOWN, "ENETDOWN"),
    (Errno::CONNABORTED, "ECONNABORTED"),
    (Errno::CONNRESET, "ECONNRESET"),
    (Errno::NOBUFS, "ENOBUFS"),
    (Errno::ISCONN, "EISCONN"),
    (Errno::NOTCONN, "ENOTCONN"),
    (Errno::SHUTDOWN, "ESHUTDOWN"),
    (Errno::TIMEDOUT, "ETIMEDOUT"),
    (Errno::CONNREFUSED, "ECONNREFUSED"),
    (Errno::ALREADY, "EALREADY"),
    (Errno::INPROGRESS, "EINPROGRESS"),
    (Errno::STALE, "ESTALE"),
    (Errno::REMOTEIO, "EREMOTEIO"),
    (Errno::MEDIUMTYPE, "EMEDIUMTYPE"),
    (Errno::CANCELED, "ECANCELED"),
    (Errno::XFULL, "EXFULL"),
];

/// What an errno means for a given kdbus command (spec §17), where that is
/// more than the C library's generic message.
fn hint(command: &str, errno: Errno) -> Option<&'static str> {
    let hint = match (command, errno) {
        (_, Errno::BADFD) => "the handle is in the wrong state for this command (already set up, or not a connection)",
        (_, Errno::NOTTY) => "not a kdbus handle, or the kernel does not know this command",
        (_, Errno::CONNRESET) => "the connection is shut down (BYEBYE, close or bus teardown)",
        (_, Errno::SHUTDOWN) => "the domain, bus or endpoint is being torn down",
        (_, Errno::MSGSIZE) => "command or inline payload too large (32 KiB per command, 2 MiB of PAYLOAD_VEC data)",
        ("KDBUS_CMD_BUS_MAKE", Errno::EXIST) => "a bus with this name already exists",
        ("KDBUS_CMD_BUS_MAKE", Errno::MFILE) => "this user already owns the maximum of 16 buses in the domain",
        ("KDBUS_CMD_BUS_MAKE", Errno::INVAL) => {
            "bad bus name (it must start with \"<euid>-\"), bloom parameters or flags"
        }
        ("KDBUS_CMD_HELLO", Errno::PERM) => {
            "activators, policy holders, monitors and faked metadata need the bus owner or CAP_IPC_OWNER"
        }
        ("KDBUS_CMD_HELLO", Errno::INVAL) => {
            "bad flags, attach flags, pool size (non-zero multiple of the page size) or items"
        }
        ("KDBUS_CMD_HELLO", Errno::EXIST) => "the name already has an activator or a policy",
        ("KDBUS_CMD_HELLO", Errno::MFILE) => "this user has too many connections in the domain",
        ("KDBUS_CMD_HELLO", Errno::OPNOTSUPP) => "monitors only connect through the default endpoint",
        ("KDBUS_CMD_BYEBYE", Errno::BUSY) => "messages are still queued: receive them first",
        ("KDBUS_CMD_FREE", Errno::NXIO) => "no slice was published at this offset",
        ("KDBUS_CMD_CONN_INFO", Errno::NXIO) => "no such connection id",
        ("KDBUS_CMD_CONN_INFO", Errno::SRCH) => "nobody owns this name",
        ("KDBUS_CMD_SEND", Errno::NXIO) => "no such connection id, or the peer is not addressable",
        ("KDBUS_CMD_SEND", Errno::SRCH) => "nobody owns the destination name",
        ("KDBUS_CMD_SEND", Errno::ADDRNOTAVAIL) => {
            "the destination is an activator and NO_AUTO_START was set"
        }
        ("KDBUS_CMD_SEND", Errno::PERM) => "the policy does not allow talking to the destination",
        ("KDBUS_CMD_SEND", Errno::BADSLT) => "no pending call matches this reply cookie",
        ("KDBUS_CMD_SEND", Errno::MLINK) => "too many calls waiting for a reply (128)",
        ("KDBUS_CMD_SEND", Errno::NOBUFS) => "the receiver's queue or pool quota for this user is exhausted",
        ("KDBUS_CMD_SEND", Errno::XFULL) => "the receiver's pool is full",
        ("KDBUS_CMD_SEND", Errno::COMM) => "the receiver does not accept file descriptors",
        ("KDBUS_CMD_SEND", Errno::TIMEDOUT) => "no reply before the deadline",
        ("KDBUS_CMD_SEND", Errno::PIPE) => "the peer went away or dropped the call without replying",
        ("KDBUS_CMD_SEND", Errno::CANCELED) => "the cancel fd became readable",
        ("KDBUS_CMD_SEND", Errno::REMOTEIO) => "the reply carried fds this connection does not accept",
        ("KDBUS_CMD_SEND", Errno::DESTADDRREQ) => "no destination: give an id or a name",
        ("KDBUS_CMD_SEND", Errno::TXTBSY) => "memfds must be sealed (shrink, grow, write and seal)",
        ("KDBUS_CMD_SEND", Errno::MEDIUMTYPE) => "a memfd item does not refer to a memfd",
        ("KDBUS_CMD_RECV", Errno::AGAIN) => "nothing queued",
        ("KDBUS_CMD_NAME_ACQUIRE", Errno::EXIST) => {
            "the name is owned by another connection (use QUEUE or REPLACE_EXISTING)"
        }
        ("KDBUS_CMD_NAME_ACQUIRE", Errno::PERM) => "the policy does not allow owning this name",
        ("KDBUS_CMD_NAME_ACQUIRE", Errno::TOOBIG) => "this connection owns or queues for too many names (256)",
        ("KDBUS_CMD_NAME_ACQUIRE" | "KDBUS_CMD_NAME_RELEASE", Errno::INVAL) => {
            "invalid well-known name (at least two dot-separated elements of [A-Za-z0-9_-])"
        }
        ("KDBUS_CMD_NAME_RELEASE", Errno::SRCH) => "nobody owns this name",
        ("KDBUS_CMD_NAME_RELEASE", Errno::ADDRINUSE) => "the name is owned by another connection",
        ("KDBUS_CMD_MATCH_ADD", Errno::MFILE) => "too many match rules on this connection",
        ("KDBUS_CMD_MATCH_ADD", Errno::DOM) => "the bloom mask size does not fit the bus bloom size",
        ("KDBUS_CMD_MATCH_REMOVE", Errno::BADSLT) => "no match rule has this cookie",
        (_, Errno::OPNOTSUPP) => "not allowed for this kind of connection (monitor, activator, policy holder)",
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_read_like_the_kernel_said_them() {
        let err = Error::command("KDBUS_CMD_NAME_ACQUIRE", Errno::EXIST);
        let text = err.to_string();
        assert!(
            text.starts_with("KDBUS_CMD_NAME_ACQUIRE: File exists (EEXIST)"),
            "{text}"
        );
        assert!(text.contains("QUEUE"), "hint expected: {text}");
        assert_eq!(err.errno(), Some(Errno::EXIST));
        assert!(err.is(Errno::EXIST));
        assert_eq!(err.command_name(), Some("KDBUS_CMD_NAME_ACQUIRE"));
    }

    #[test]
    fn debug_shows_the_sentence() {
        let err = Error::command("KDBUS_CMD_BUS_MAKE", Errno::NOTTY);
        assert!(format!("{err:?}").starts_with("Error(\"KDBUS_CMD_BUS_MAKE: Inappropriate ioctl"));
    }

    #[test]
    fn no_hint_leaves_the_plain_message() {
        let err = Error::command("KDBUS_CMD_LIST", Errno::NOMEM);
        assert_eq!(
            err.to_string(),
            "KDBUS_CMD_LIST: Cannot allocate memory (ENOMEM)"
        );
        assert_eq!(err.hint(), None);
    }

    #[test]
    fn kdbus_specific_errnos_have_names() {
        for (errno, name) in [
            (Errno::BADFD, "EBADFD"),
            (Errno::BADSLT, "EBADSLT"),
            (Errno::XFULL, "EXFULL"),
            (Errno::REMCHG, "EREMCHG"),
            (Errno::NOTUNIQ, "ENOTUNIQ"),
            (Errno::MEDIUMTYPE, "EMEDIUMTYPE"),
            (Errno::REMOTEIO, "EREMOTEIO"),
            (Errno::CANCELED, "ECANCELED"),
            (Errno::SHUTDOWN, "ESHUTDOWN"),
        ] {
            assert_eq!(errno_name(errno), Some(name));
            assert!(describe(errno).ends_with(&format!("({name})")));
        }
        assert!(describe(Errno::from_raw_os_error(4000)).contains("4000"));
    }

    #[test]
    fn system_errors_name_the_file() {
        let err = Error::at_path(
            "open",
            Path::new("/sys/fs/kdbus/0-system/bus"),
            Errno::NOENT,
        );
        assert_eq!(
            err.to_string(),
            "open /sys/fs/kdbus/0-system/bus: No such file or directory (ENOENT)"
        );
        assert_eq!(err.path(), Some(Path::new("/sys/fs/kdbus/0-system/bus")));
    }

    #[test]
    fn io_error_conversion_keeps_the_kind() {
        let io: std::io::Error = Error::command("KDBUS_CMD_RECV", Errno::AGAIN).into();
        assert_eq!(io.kind(), std::io::ErrorKind::WouldBlock);
        let io: std::io::Error = Error::malformed("item", "size 3").into();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
    }
}
