//! The system bus's bridge for the whole boot: started in the initramfs, it
//! is never restarted (its clients' connections would go with it), and
//! enters each root PID 1 switches to — the real root, then the shutdown
//! root — so that what it opens later (the bus endpoint for new clients,
//! the policy files, the user database) is that root's.
//!
//! A bridge that started in the initramfs puts its pid into [`PID_FILE`],
//! for the real root's generator, which lets such a bridge stay to the end
//! (one that the real root started is stopped at shutdown: its program
//! would keep that root busy), and for the shutdown root's hook, which
//! waits for it to leave the old root before dracut kills what is left
//! there.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bootenv::mounts;
use tracing::{info, warn};

use crate::policy::PolicyStore;

/// Where a bridge that started in the initramfs says who it is.
pub const PID_FILE: &str = "/run/kdbus/kdbus-bridge.pid";

/// How often PID 1's root is compared with ours. A client that connects in
/// between is served in the old root, which still has the bus mounted
/// until the new root's own mount takes its place.
const INTERVAL: Duration = Duration::from_millis(100);

/// Starts the thread that follows PID 1's root (after each move the bus
/// policy is read again from the new root); in the initramfs, writes the
/// pid file first.
pub fn start(policy: Arc<PolicyStore>) -> Result<()> {
    // /proc is opened once: after a switch it may be mounted elsewhere.
    let proc = mounts::open_path(Path::new("/proc")).context("opening /proc")?;
    if mounts::in_initramfs() {
        let pid_dir = Path::new(PID_FILE).parent().expect("an absolute path");
        std::fs::create_dir_all(pid_dir)
            .and_then(|()| std::fs::write(PID_FILE, format!("{}\n", std::process::id())))
            .with_context(|| format!("writing {PID_FILE}"))?;
    }
    std::thread::Builder::new()
        .name("follow-root".into())
        .spawn(move || loop {
            std::thread::sleep(INTERVAL);
            match mounts::pid1_root_if_elsewhere(&proc) {
                Ok(Some(root)) => enter(&root, &policy),
                Ok(None) => {}
                Err(e) => {
                    warn!("cannot compare PID 1's root with ours ({e}); no longer following it");
                    return;
                }
            }
        })
        .context("starting the thread that follows the root")?;
    Ok(())
}

/// Makes `root` ours (for every thread: they share the root) and reads the
/// policy that root has.
fn enter(root: &OwnedFd, policy: &PolicyStore) {
    let entered = rustix::process::fchdir(root.as_fd())
        .and_then(|()| rustix::process::chroot("."))
        .and_then(|()| rustix::process::chdir("/"));
    match entered {
        Ok(()) => {
            info!("PID 1 changed its root: following it, the bus and its clients stay");
            let _ = policy.reload_logged("new root");
        }
        Err(e) => warn!("cannot enter PID 1's new root: {e}; serving from the old one"),
    }
}
