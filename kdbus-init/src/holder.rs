//! The holder: where no service manager supervises kdbus-init (dracut's
//! shell init, the shutdown root after systemd-shutdown), a second,
//! minimal process keeps duplicates of the bus handles. It receives them
//! the way systemd's fd store does (see `crate::store`) and, when
//! kdbus-init dies, becomes the new kdbus-init: it executes it with the
//! handles as `$LISTEN_FDS`. The new kdbus-init then starts a new holder.
//!
//! It does nothing else: no bus calls, no logging but a last word on
//! stderr, so that there is little in it that could fail.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use rustix::event::{PollFd, PollFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::process::{Pid, PidfdFlags};

use crate::fds;
use crate::store::{self, HOLDER_DIR, HOLDER_EXIT};

/// A running holder, as kdbus-init sees it.
pub struct Holder {
    pub child: Child,
    /// Its socket (kdbus-init's `$NOTIFY_SOCKET` while it holds).
    pub socket: PathBuf,
}

/// Starts a holder for this process and hands it `handles`.
pub fn spawn(handles: &[(String, BorrowedFd<'_>)]) -> std::io::Result<Holder> {
    std::fs::create_dir_all(HOLDER_DIR)?;
    let me = std::process::id();
    let socket =
        Path::new(HOLDER_DIR).join(format!("holder-{me}-{}.sock", crate::state::monotonic_us()));
    let _ = std::fs::remove_file(&socket);
    let sock = UnixDatagram::bind(&socket)?;
    // The holder inherits the bound socket: nothing sent before it runs is
    // lost. A duplicate without close-on-exec, for the child only.
    let inherit = sock.as_fd().try_clone_to_owned()?;
    fds::clear_cloexec(inherit.as_fd())?;
    let child = Command::new("/proc/self/exe")
        .arg0("@kdbus-init-holder")
        .args(["hold", "--daemon-pid", &me.to_string(), "--socket-fd"])
        .arg(inherit.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn();
    drop(inherit);
    drop(sock);
    let child = child?;
    for (name, fd) in handles {
        store::put(&socket, name, *fd)?;
    }
    Ok(Holder { child, socket })
}

/// Tells a holder that is no longer needed to exit (its handles are held
/// elsewhere by now).
pub fn dismiss(socket: &Path) {
    if socket.starts_with(HOLDER_DIR) {
        let _ = store::send(socket, HOLDER_EXIT, &[]);
    }
}

/// Receives one message: its text and fds.
pub fn receive(sock: &UnixDatagram) -> std::io::Result<(String, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 4096];
    // SCM_MAX_FD: the most fds one message can carry.
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(253))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            fds.extend(rights);
        }
    }
    buf.truncate(got.bytes);
    Ok((String::from_utf8_lossy(&buf).into_owned(), fds))
}

/// What a message asks of the holder.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Store(String),
    Remove(String),
    Exit,
    /// READY=1 and the like: nothing for the holder.
    Ignore,
}

pub fn parse(text: &str) -> Request {
    let mut name = None;
    let (mut store, mut remove) = (false, false);
    for line in text.lines() {
        match line.split_once('=') {
            Some(("FDSTORE", "1")) => store = true,
            Some(("FDSTOREREMOVE", "1")) => remove = true,
            Some(("FDNAME", n)) => name = Some(n.to_owned()),
            _ if line == HOLDER_EXIT => return Request::Exit,
            _ => {}
        }
    }
    match (store, remove, name) {
        (true, _, Some(n)) => Request::Store(n),
        (_, true, Some(n)) => Request::Remove(n),
        _ => Request::Ignore,
    }
}

/// The held handles: one per name (a name stored again replaces the old
/// handle; kdbus-init names every handle once).
#[derive(Default)]
pub struct Held(Vec<(String, OwnedFd)>);

impl Held {
    /// Applies a request; false when the holder is to exit.
    pub fn apply(&mut self, req: Request, fds: Vec<OwnedFd>) -> bool {
        match req {
            Request::Store(name) => {
                if let Some(fd) = fds.into_iter().next() {
                    self.0.retain(|(n, _)| *n != name);
                    self.0.push((name, fd));
                }
            }
            Request::Remove(name) => self.0.retain(|(n, _)| *n != name),
            Request::Exit => return false,
            Request::Ignore => {}
        }
        true
    }

    #[cfg(test)]
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// `kdbus-init hold`: hold until kdbus-init dies, then become it.
pub fn run(daemon_pid: i32, socket_fd: RawFd) -> ExitCode {
    let Some(sock) = fds::adopt(socket_fd).map(UnixDatagram::from) else {
        eprintln!("kdbus-init-holder: no socket at fd {socket_fd}");
        return ExitCode::from(2);
    };
    let pidfd = match Pid::from_raw(daemon_pid)
        .ok_or(rustix::io::Errno::SRCH)
        .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()))
    {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("kdbus-init-holder: cannot watch pid {daemon_pid}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut held = Held::default();
    loop {
        let mut fds = [
            PollFd::new(&sock, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        if rustix::event::poll(&mut fds, None).is_err() {
            continue;
        }
        let died = !fds[1].revents().is_empty();
        // What kdbus-init sent before it died counts: read it all first.
        let _ = sock.set_nonblocking(true);
        while let Ok((text, got)) = receive(&sock) {
            if !held.apply(parse(&text), got) {
                return ExitCode::SUCCESS;
            }
        }
        let _ = sock.set_nonblocking(false);
        if died {
            drop(sock);
            drop(pidfd);
            let err = become_kdbus_init(held);
            eprintln!("kdbus-init-holder: cannot restart kdbus-init ({err}); the bus is lost");
            return ExitCode::from(1);
        }
    }
}

/// Executes kdbus-init with the held handles as fds 3, 4, ... (the
/// `$LISTEN_FDS` convention). Returns only on failure.
fn become_kdbus_init(held: Held) -> std::io::Error {
    let n = held.0.len();
    let names: Vec<String> = held.0.iter().map(|(name, _)| name.clone()).collect();
    // Out of the way first, then down to 3.. in order: each lands on the
    // lowest free number, which is its place once nothing else is open.
    let mut high = Vec::with_capacity(n);
    for (_, fd) in held.0 {
        match rustix::io::fcntl_dupfd_cloexec(&fd, 1000) {
            Ok(h) => high.push(h),
            Err(e) => return e.into(),
        }
    }
    let mut placed = Vec::with_capacity(n);
    for (i, fd) in high.iter().enumerate() {
        match rustix::io::fcntl_dupfd_cloexec(fd, 3 + i as RawFd) {
            Ok(p) if p.as_raw_fd() == 3 + i as RawFd => {
                if let Err(e) = fds::clear_cloexec(p.as_fd()) {
                    return e;
                }
                placed.push(p);
            }
            Ok(p) => {
                return std::io::Error::other(format!(
                    "fd {} is taken, the handles cannot be placed ({} instead)",
                    3 + i,
                    p.as_raw_fd()
                ))
            }
            Err(e) => return e.into(),
        }
    }
    drop(high);
    let err = Command::new("/proc/self/exe")
        .arg0("@kdbus-init")
        .arg("run")
        .env("LISTEN_FDS", n.to_string())
        .env("LISTEN_FDNAMES", names.join(":"))
        .env("LISTEN_PID", std::process::id().to_string())
        .env_remove("NOTIFY_SOCKET")
        .exec();
    drop(placed);
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_like_systemd_does() {
        assert_eq!(
            parse("FDSTORE=1\nFDNAME=bus-owner\nFDPOLL=0\n"),
            Request::Store("bus-owner".into())
        );
        assert_eq!(
            parse("FDSTOREREMOVE=1\nFDNAME=activator-4\n"),
            Request::Remove("activator-4".into())
        );
        assert_eq!(parse("READY=1\n"), Request::Ignore);
        assert_eq!(parse("FDSTORE=1\n"), Request::Ignore);
        assert_eq!(parse(HOLDER_EXIT), Request::Exit);
    }

    #[test]
    fn held_handles_follow_store_and_remove() {
        let fd = || std::fs::File::open("/proc/self/exe").unwrap().into();
        let mut held = Held::default();
        assert!(held.apply(Request::Store("bus-owner".into()), vec![fd()]));
        assert!(held.apply(Request::Store("activator-3".into()), vec![fd()]));
        assert!(held.apply(Request::Store("activator-3".into()), vec![fd()]));
        assert_eq!(held.names(), ["bus-owner", "activator-3"]);
        assert!(held.apply(Request::Remove("activator-3".into()), vec![]));
        assert_eq!(held.names(), ["bus-owner"]);
        // A store without an fd changes nothing.
        assert!(held.apply(Request::Store("x".into()), vec![]));
        assert_eq!(held.names(), ["bus-owner"]);
        assert!(!held.apply(Request::Exit, vec![]));
    }
}
