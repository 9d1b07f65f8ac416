//! Starting a service for its activator: through systemd when it runs and
//! has the service's unit, else its `Exec=` directly, as its `User=`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::activation::Launch;
use crate::error::Error;
use crate::services::{self, Service};
use std::os::unix::process::CommandExt;

fn unit_exists(unit: &str) -> bool {
    [
        "/etc/systemd/system",
        "/run/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ]
    .iter()
    .any(|d| Path::new(d).join(unit).exists())
}

fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Does PID 1 take requests? Right after switch-root it is re-executing
/// and its private socket is missing or not listening yet.
fn systemd_ready() -> bool {
    std::os::unix::net::UnixStream::connect("/run/systemd/private").is_ok()
}

/// Starts `svc`; the child (systemctl or the service) is returned to be
/// watched.
pub fn start(svc: &Service) -> (Launch, Option<Child>) {
    match try_start(svc) {
        Ok(started) => started,
        Err(e) => (
            Launch::Failed {
                error: e.to_string(),
            },
            None,
        ),
    }
}

/// systemd's own name: PID 1 takes it when it connects to the system bus,
/// and its service file's `Exec=` is `/bin/false`. Calls to it wait on the
/// activator until then (as dbus-daemon lets them wait).
const SYSTEMD_NAME: &str = "org.freedesktop.systemd1";

fn try_start(svc: &Service) -> Result<(Launch, Option<Child>), Error> {
    if systemd_runs() && svc.name == SYSTEMD_NAME {
        let reason = "systemd takes this name itself when it connects to the bus".to_owned();
        return Ok((Launch::NotHere { reason }, None));
    }
    if systemd_runs() {
        if let Some(unit) = svc.systemd_service.as_deref().filter(|u| unit_exists(u)) {
            if !systemd_ready() {
                let reason = format!("systemd is not ready to start {unit} yet");
                return Ok((Launch::NotHere { reason }, None));
            }
            // Not waited for here: right after switch-root PID 1 may still
            // be re-executing, and the event loop must not block on it.
            let child = Command::new("systemctl")
                .args(["start", "--no-block", unit])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(Error::Systemctl)?;
            let unit = unit.to_owned();
            return Ok((Launch::Systemd { unit }, Some(child)));
        }
    }
    let Some(exec) = svc.exec.as_deref() else {
        let reason = format!(
            "{} is not installed in this root and the service has no Exec=",
            svc.systemd_service.as_deref().unwrap_or("its unit")
        );
        return Ok((Launch::NotHere { reason }, None));
    };
    let words: Vec<&str> = exec.split_whitespace().collect();
    if words.is_empty() || !Path::new(words[0]).is_file() {
        let reason = format!(
            "{} is not in this root{}",
            words.first().unwrap_or(&"Exec="),
            svc.systemd_service
                .as_deref()
                .map(|u| format!(" and neither is {u}"))
                .unwrap_or_default()
        );
        return Ok((Launch::NotHere { reason }, None));
    }
    let mut cmd = Command::new(words[0]);
    cmd.args(&words[1..])
        .stdin(Stdio::null())
        .env("DBUS_STARTER_BUS_TYPE", "system")
        .process_group(0);
    if let Some(user) = svc.user.as_deref() {
        let (uid, gid) =
            services::lookup_user(user).ok_or_else(|| Error::UnknownUser(user.to_owned()))?;
        cmd.uid(uid).gid(gid);
    }
    let child = cmd.spawn().map_err(|source| Error::Exec {
        cmd: exec.to_owned(),
        source,
    })?;
    Ok((
        Launch::Direct {
            cmd: exec.to_owned(),
        },
        Some(child),
    ))
}
