//! The driver's own traffic, for monitors. Calls to `org.freedesktop.DBus`,
//! the driver's replies and the signals it sends one client never cross
//! kdbus, so a monitor's kdbus connection cannot see them; the driver hands
//! a copy of each to the monitors registered here, which see them as on
//! any D-Bus bus.
//!
//! Locks: [`Monitors::list`] guards the registry, held to register, to
//! unregister and to hand a message out; a [`Mailbox`]'s lock only to push
//! or take its messages. The order is list, then mailbox.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustix::event::{eventfd, EventfdFlags};

use crate::bus::forward::monitor_sees;
use crate::bus::matchrule::MatchRule;
use crate::protocol::Message;

/// Messages a monitor that does not read may have waiting; later ones are
/// dropped (and counted) rather than kept without bound.
const MAILBOX_MAX: usize = 4096;

/// The monitors of one bridge.
#[derive(Debug, Default)]
pub struct Monitors {
    list: Mutex<Vec<Registered>>,
    /// How many are registered: the driver copies nothing while none is.
    count: AtomicUsize,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Registered {
    id: u64,
    rules: Arc<[MatchRule]>,
    mailbox: Arc<Mailbox>,
}

/// What waits for one monitor.
#[derive(Debug)]
struct Mailbox {
    messages: Mutex<Vec<Message>>,
    /// Messages that did not fit.
    dropped: AtomicU64,
    /// Readable while messages wait: the monitor's thread polls it.
    wake: OwnedFd,
}

/// A monitor's registration; dropping it unregisters the monitor.
#[derive(Debug)]
pub struct Subscription {
    monitors: Arc<Monitors>,
    id: u64,
    rules: Arc<[MatchRule]>,
    mailbox: Arc<Mailbox>,
}

impl Monitors {
    /// Is any monitor registered?
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Registers a monitor that sees what its `rules` match (none: all).
    pub fn subscribe(self: &Arc<Self>, rules: Vec<MatchRule>) -> std::io::Result<Subscription> {
        let mailbox = Arc::new(Mailbox {
            messages: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            wake: eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?,
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rules: Arc<[MatchRule]> = rules.into();
        let mut list = self.list.lock().expect("monitor list poisoned");
        list.push(Registered {
            id,
            rules: rules.clone(),
            mailbox: mailbox.clone(),
        });
        self.count.store(list.len(), Ordering::Relaxed);
        Ok(Subscription {
            monitors: self.clone(),
            id,
            rules,
            mailbox,
        })
    }

    /// Hands a copy of `msg`, sent by `sender`, to every monitor whose
    /// rules see it. Messages with fds are not copied (the driver's never
    /// carry any).
    pub fn publish(&self, msg: &Message, sender: &str) {
        let list = self.list.lock().expect("monitor list poisoned");
        for m in list
            .iter()
            .filter(|m| monitor_sees(&m.rules, msg, sender, &[]))
        {
            let Ok(copy) = Message::parse(msg.bytes().to_vec()) else {
                continue;
            };
            m.mailbox.push(copy);
        }
    }
}

impl Mailbox {
    fn push(&self, msg: Message) {
        let mut messages = self.messages.lock().expect("mailbox poisoned");
        if messages.len() >= MAILBOX_MAX {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        messages.push(msg);
        // Cannot fail short of the counter's overflow, which a drained
        // counter never reaches.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

impl Subscription {
    /// The monitor's rules (none: it sees everything).
    pub fn rules(&self) -> &[MatchRule] {
        &self.rules
    }

    /// Polled for the monitor's messages.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.mailbox.wake.as_fd()
    }

    /// The messages waiting, oldest first, and how many were dropped
    /// since the last call.
    pub fn take(&self) -> (Vec<Message>, u64) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.mailbox.wake, &mut count);
        let messages =
            std::mem::take(&mut *self.mailbox.messages.lock().expect("mailbox poisoned"));
        (messages, self.mailbox.dropped.swap(0, Ordering::Relaxed))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut list = self.monitors.list.lock().expect("monitor list poisoned");
        list.retain(|m| m.id != self.id);
        self.monitors.count.store(list.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(member: &str) -> Message {
        let mut msg = Message::method_call(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            member,
            &(),
        )
        .unwrap();
        // As on the wire: serial 0 is not a message.
        msg.edit_header(|h| h.serial = 7).unwrap();
        msg
    }

    fn readable(fd: BorrowedFd<'_>) -> bool {
        let mut fds = [rustix::event::PollFd::from_borrowed_fd(
            fd,
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(&mut fds, Some(&rustix::time::Timespec::default())).unwrap() == 1
    }

    #[test]
    fn monitors_get_what_their_rules_match_until_they_go() {
        let monitors = Arc::new(Monitors::default());
        assert!(!monitors.any());
        let all = monitors.subscribe(Vec::new()).unwrap();
        let get_id = monitors
            .subscribe(vec![MatchRule::parse("member='GetId'").unwrap()])
            .unwrap();
        assert!(monitors.any());
        monitors.publish(&call("GetId"), ":1.5");
        monitors.publish(&call("ListNames"), ":1.5");
        assert!(readable(all.fd()));
        let (seen, dropped) = all.take();
        assert_eq!(seen.len(), 2);
        assert_eq!(dropped, 0);
        assert!(!readable(all.fd()), "taking drains the wake-up");
        let (seen, _) = get_id.take();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header().member.as_deref(), Some("GetId"));
        drop(all);
        drop(get_id);
        assert!(!monitors.any());
    }

    #[test]
    fn a_monitor_that_does_not_read_loses_the_excess_not_the_bridge() {
        let monitors = Arc::new(Monitors::default());
        let slow = monitors.subscribe(Vec::new()).unwrap();
        for _ in 0..MAILBOX_MAX + 10 {
            monitors.publish(&call("GetId"), ":1.5");
        }
        let (seen, dropped) = slow.take();
        assert_eq!((seen.len(), dropped), (MAILBOX_MAX, 10));
    }
}
