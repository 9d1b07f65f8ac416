//! The fd store: where the handles that keep the bus alive are kept while
//! kdbus-init itself may die. Under systemd it is the service's fd store
//! (`FileDescriptorStoreMax=` in the unit); where no service manager
//! supervises kdbus-init, it is its holder process (`crate::holder`), which
//! speaks the same protocol: a datagram of `KEY=VALUE` lines on
//! `$NOTIFY_SOCKET`, with the fds as `SCM_RIGHTS`. A restarted kdbus-init
//! gets them back as `$LISTEN_FDS`/`$LISTEN_FDNAMES`.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use bootenv::status::RootKind;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use crate::fds;

/// The handle that created the bus.
pub const BUS_OWNER: &str = "bus-owner";
/// The O_PATH handle of the kdbusfs mount.
pub const BUS_DOMAIN: &str = "bus-domain";
/// Where holder sockets live (below /run, which every root shares).
pub const HOLDER_DIR: &str = "/run/kdbus";
/// Sent to a holder that is no longer needed.
pub const HOLDER_EXIT: &str = "KDBUS_HOLDER=exit";

/// The store name of an activator connection.
pub fn activator_name(conn_id: u64) -> String {
    format!("activator-{conn_id}")
}

/// The store name of the `n`th handle kept only to keep messages alive.
pub fn kept_name(n: usize) -> String {
    format!("kept-{n}")
}

/// Who keeps the handles while kdbus-init may die.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keeper {
    /// systemd supervises kdbus-init.service: its fd store.
    Systemd(PathBuf),
    /// Our holder process (no service manager here).
    Holder,
}

/// Who keeps the handles in `root`, given `$NOTIFY_SOCKET`. systemd does
/// while it supervises us; not in the shutdown root (systemd-shutdown
/// closed its store), and not when the socket is a holder's.
pub fn keeper(root: RootKind, notify_socket: Option<&str>) -> Keeper {
    match notify_socket {
        Some(s) if root != RootKind::ShutdownRoot && !Path::new(s).starts_with(HOLDER_DIR) => {
            Keeper::Systemd(PathBuf::from(s))
        }
        _ => Keeper::Holder,
    }
}

/// Sends `text` with `fds` to the store at `socket`.
pub fn send(socket: &Path, text: &str, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(socket)?;
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("too many fds for one message"));
    }
    rustix::net::sendmsg(
        &sock,
        &[IoSlice::new(text.as_bytes())],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Stores `fd` under `name`. FDPOLL=0: systemd must not drop a kdbus
/// handle because poll() reports an error on it (owner and activator
/// handles are not for reading).
pub fn put(socket: &Path, name: &str, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    send(
        socket,
        &format!("FDSTORE=1\nFDNAME={name}\nFDPOLL=0\n"),
        &[fd],
    )
}

/// Drops every fd stored under `name`.
pub fn remove(socket: &Path, name: &str) -> std::io::Result<()> {
    send(socket, &format!("FDSTOREREMOVE=1\nFDNAME={name}\n"), &[])
}

/// The fds a service manager (or our holder) handed to this process, by
/// name; the environment that described them is removed, so that children
/// do not see it.
pub fn inherited() -> Vec<(String, OwnedFd)> {
    let Ok(fds) = sd_notify::listen_fds_with_names(true) else {
        return Vec::new();
    };
    fds.filter_map(|(raw, name)| Some((name, fds::adopt(raw)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_keeps_the_handles_only_while_it_supervises() {
        let sd = Some("/run/systemd/notify");
        assert_eq!(
            keeper(RootKind::Initramfs, sd),
            Keeper::Systemd("/run/systemd/notify".into())
        );
        assert_eq!(
            keeper(RootKind::RealRoot, sd),
            Keeper::Systemd("/run/systemd/notify".into())
        );
        // systemd-shutdown closed the store before the shutdown root.
        assert_eq!(keeper(RootKind::ShutdownRoot, sd), Keeper::Holder);
        // dracut's shell init: nobody.
        assert_eq!(keeper(RootKind::Initramfs, None), Keeper::Holder);
        // Our own holder, after a re-exec.
        assert_eq!(
            keeper(RootKind::RealRoot, Some("/run/kdbus/holder-120-1.sock")),
            Keeper::Holder
        );
    }

    #[test]
    fn names_are_valid_store_names() {
        assert_eq!(activator_name(42), "activator-42");
        // systemd refuses ':' in names (LISTEN_FDNAMES separates by it).
        for n in [BUS_OWNER, BUS_DOMAIN, &activator_name(7), &kept_name(0)] {
            assert!(!n.contains(':') && n.len() < 256);
        }
    }

    #[test]
    fn a_store_receives_names_and_fds() {
        let dir = std::env::temp_dir().join(format!("kdbus-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        use std::os::fd::AsFd;
        put(&path, "activator-3", file.as_fd()).unwrap();
        let (text, got) = crate::holder::receive(&server).unwrap();
        assert_eq!(text, "FDSTORE=1\nFDNAME=activator-3\nFDPOLL=0\n");
        assert_eq!(got.len(), 1);
        remove(&path, "activator-3").unwrap();
        let (text, got) = crate::holder::receive(&server).unwrap();
        assert!(text.starts_with("FDSTOREREMOVE=1\n"), "{text}");
        assert!(got.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
