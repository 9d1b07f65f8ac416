//! The listening socket: bound from a D-Bus address, or handed over by
//! systemd socket activation; one thread per accepted client.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tracing::{info, warn};

use crate::bus::BusConfig;
use crate::launcher::client::{self, Limits};

/// The socket path of a `unix:path=...` D-Bus address (the first one, if
/// several are given, separated by ';').
pub fn socket_path(address: &str) -> Result<PathBuf> {
    for one in address.split(';').filter(|a| !a.is_empty()) {
        let Some(params) = one.strip_prefix("unix:") else {
            continue;
        };
        for param in params.split(',') {
            if let Some(path) = param.strip_prefix("path=") {
                if !path.starts_with('/') {
                    bail!("the socket path in {address:?} must be absolute");
                }
                return Ok(PathBuf::from(unescape(path)?));
            }
        }
    }
    bail!("{address:?} has no unix:path= address; give --address unix:path=/some/socket")
}

/// D-Bus addresses escape bytes as %XX.
fn unescape(value: &str) -> Result<String> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| anyhow!("bad %-escape in address value {value:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("the socket path is not UTF-8")
}

/// Binds `path` (replacing a stale socket left by an earlier run) with
/// permissions for everyone, as the system bus socket has.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!(
                "{} exists and is not a socket; remove it or choose another --address",
                path.display()
            );
        }
        if UnixStream::connect(path).is_ok() {
            bail!(
                "{} is in use by another bus (dbus-daemon or dbus-broker?); stop it or choose another --address",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("making {} accessible to everyone", path.display()))?;
    Ok(listener)
}

/// The listening socket systemd passed (`LISTEN_FDS`/`LISTEN_PID`), if any.
pub fn from_systemd() -> Result<Option<UnixListener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    if count != "1" {
        bail!("systemd passed {count} sockets; the bridge serves exactly one (ListenStream= once)");
    }
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    const SD_LISTEN_FDS_START: i32 = 3;
    // SAFETY: the socket activation protocol hands us fd 3, open and
    // owned by nobody else in this process; we take it exactly once (the
    // variables that announce it are removed above).
    let fd = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START) };
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
        .context("the socket from systemd (fd 3) is not open")?;
    Ok(Some(UnixListener::from(fd)))
}

/// Most clients served at once.
const MAX_CLIENTS: usize = 16384;

/// Accepts clients forever.
pub fn serve(listener: UnixListener, config: Arc<BusConfig>, limits: Arc<Limits>) -> Result<()> {
    let clients = Arc::new(AtomicUsize::new(0));
    info!(bus = %config.bus_path.display(), "serving D-Bus clients");
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of fds or memory: refuse this one, keep serving.
                warn!("accepting a client failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
            warn!("{MAX_CLIENTS} clients connected; refusing another");
            continue;
        }
        clients.fetch_add(1, Ordering::Relaxed);
        let (config, limits, clients) = (config.clone(), limits.clone(), clients.clone());
        let spawned = std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                client::serve(stream, config, limits);
                clients.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            warn!("cannot start a thread for a client: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            socket_path("unix:path=/run/dbus/system_bus_socket").unwrap(),
            PathBuf::from("/run/dbus/system_bus_socket")
        );
        assert_eq!(
            socket_path("tcp:host=x;unix:guid=1,path=/a%20b").unwrap(),
            PathBuf::from("/a b")
        );
        assert!(socket_path("unix:abstract=foo").is_err());
        assert!(socket_path("unix:path=relative").is_err());
    }
}
