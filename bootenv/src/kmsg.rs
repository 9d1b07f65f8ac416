//! Writing log records to the kernel ring through `/dev/kmsg`.
//!
//! One `write()` is one record of at most 992 bytes (`LOG_LINE_MAX`), with a
//! `<N>` prefix (N = facility * 8 + level) and the syslog-style
//! `ident[pid]: ` that journald parses into `SYSLOG_IDENTIFIER=`/`SYSLOG_PID=`
//! when it imports the ring. Unless `printk.devkmsg=on`, the kernel drops
//! (silently) everything past 10 records per 5 s on one open file; records
//! over that budget wait in a queue here instead of being lost, and go out
//! when the budget refills (or to journald, see [`crate::log`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

/// `LOG_LINE_MAX` of kernel/printk/printk.c: larger writes fail with EINVAL.
pub const MAX_RECORD: usize = 992;
/// syslog facility "daemon".
pub const FACILITY_DAEMON: u8 = 3;
/// The kernel's default per-file rate limit for /dev/kmsg writers.
const BURST: u32 = 10;
const INTERVAL: Duration = Duration::from_secs(5);
/// Records kept while the kernel would drop them; past this the oldest go.
const QUEUE_MAX: usize = 4096;

/// Formats `msg` as kmsg records: one per line of the message, each cut
/// to [`MAX_RECORD`] bytes on a character boundary.
pub fn records(level: u8, ident: &str, pid: u32, msg: &str) -> Vec<Vec<u8>> {
    let prefix = format!("<{}>{ident}[{pid}]: ", FACILITY_DAEMON * 8 + (level & 7));
    msg.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut rec = prefix.clone();
            let room = MAX_RECORD - 1 - prefix.len().min(MAX_RECORD - 1);
            let mut end = line.len().min(room);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            rec.push_str(&line[..end]);
            rec.push('\n');
            rec.into_bytes()
        })
        .collect()
}

/// How the kernel treats our writes (`/proc/sys/kernel/printk_devkmsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevkmsgMode {
    /// `printk.devkmsg=on`: no limit.
    On,
    /// The default: 10 records per 5 s per open file.
    Ratelimit,
    /// `printk.devkmsg=off`: every write is dropped.
    Off,
}

impl DevkmsgMode {
    pub fn current() -> DevkmsgMode {
        match std::fs::read_to_string("/proc/sys/kernel/printk_devkmsg")
            .unwrap_or_default()
            .trim()
        {
            "on" => DevkmsgMode::On,
            "off" => DevkmsgMode::Off,
            _ => DevkmsgMode::Ratelimit,
        }
    }
}

/// The kernel's ratelimit (a window of `BURST` records every `INTERVAL`),
/// mirrored so we know which writes it would drop.
#[derive(Debug)]
struct Budget {
    window: Option<Instant>,
    used: u32,
}

impl Budget {
    fn take(&mut self, now: Instant) -> bool {
        match self.window {
            Some(start) if now.duration_since(start) < INTERVAL => {}
            _ => {
                // The kernel opens a new window at the first write after
                // the old one expired. Stay one record under its limit so
                // clock skew between us and it never costs a record.
                self.window = Some(now);
                self.used = 0;
            }
        }
        if self.used + 1 < BURST {
            self.used += 1;
            true
        } else {
            false
        }
    }

    fn next_refill(&self) -> Option<Instant> {
        self.window.map(|s| s + INTERVAL)
    }
}

/// A long-lived `/dev/kmsg` writer (one fd, so one rate-limit state).
pub struct Kmsg {
    out: Box<dyn Write + Send>,
    mode: DevkmsgMode,
    budget: Budget,
    queue: VecDeque<Vec<u8>>,
    dropped: u64,
}

impl Kmsg {
    pub fn open() -> std::io::Result<Kmsg> {
        let file = File::options().write(true).open("/dev/kmsg")?;
        Ok(Kmsg::with_writer(Box::new(file), DevkmsgMode::current()))
    }

    /// A writer to anything (tests).
    pub fn with_writer(out: Box<dyn Write + Send>, mode: DevkmsgMode) -> Kmsg {
        Kmsg {
            out,
            mode,
            budget: Budget {
                window: None,
                used: 0,
            },
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    pub fn mode(&self) -> DevkmsgMode {
        self.mode
    }

    /// Writes `record` now if the kernel would keep it, else queues it.
    pub fn write_record(&mut self, record: Vec<u8>) {
        self.queue.push_back(record);
        if self.queue.len() > QUEUE_MAX {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.flush(Instant::now());
    }

    /// Writes queued records as far as the budget allows.
    pub fn flush(&mut self, now: Instant) {
        if self.mode == DevkmsgMode::Off {
            return;
        }
        while let Some(rec) = self.queue.front() {
            if self.mode == DevkmsgMode::Ratelimit && !self.budget.take(now) {
                break;
            }
            // A failed write (EINVAL on a malformed record) must not wedge
            // the queue: the record is dropped and counted.
            if self.out.write_all(rec).is_err() {
                self.dropped += 1;
            }
            self.queue.pop_front();
        }
    }

    /// When queued records can go out next (None: nothing waits).
    pub fn next_flush(&self) -> Option<Instant> {
        if self.queue.is_empty() || self.mode == DevkmsgMode::Off {
            None
        } else {
            self.budget.next_refill().or_else(|| Some(Instant::now()))
        }
    }

    /// Takes the records that are still waiting (to hand them to a
    /// re-executed process, or to another transport).
    pub fn take_queue(&mut self) -> Vec<Vec<u8>> {
        self.queue.drain(..).collect()
    }

    /// The records still waiting, oldest first.
    pub fn queue(&self) -> impl Iterator<Item = &[u8]> {
        self.queue.iter().map(Vec::as_slice)
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Records lost for good (queue overflow, write errors).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<Vec<u8>>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn record_format() {
        let r = records(6, "kdbus-init", 42, "bus created");
        assert_eq!(r, vec![b"<30>kdbus-init[42]: bus created\n".to_vec()]);
        let r = records(3, "x", 1, "one\ntwo\n\n");
        assert_eq!(r.len(), 2);
        assert!(r[0].starts_with(b"<27>x[1]: one"));
    }

    #[test]
    fn records_fit_the_kernel_limit() {
        let long = "é".repeat(2000);
        let r = records(6, "kdbus-init", 1, &long);
        assert_eq!(r.len(), 1);
        assert!(r[0].len() <= MAX_RECORD);
        assert!(std::str::from_utf8(&r[0]).is_ok());
        assert!(r[0].ends_with(b"\n"));
    }

    #[test]
    fn over_budget_records_wait_and_are_not_lost() {
        let sink = Sink::default();
        let mut k = Kmsg::with_writer(Box::new(sink.clone()), DevkmsgMode::Ratelimit);
        for i in 0..25 {
            k.write_record(format!("r{i}\n").into_bytes());
        }
        let written = sink.0.lock().unwrap().len();
        assert_eq!(written, (BURST - 1) as usize);
        assert_eq!(k.queued(), 25 - written);
        assert!(k.next_flush().is_some());
        // A new window lets the next batch through, in order.
        k.flush(Instant::now() + INTERVAL + Duration::from_millis(1));
        let out = sink.0.lock().unwrap().clone();
        assert_eq!(out.len(), 2 * written);
        assert_eq!(out[written], b"r9\n".to_vec());
        assert_eq!(k.take_queue().len(), 25 - 2 * written);
        assert_eq!(k.dropped(), 0);
    }

    #[test]
    fn devkmsg_on_has_no_budget() {
        let sink = Sink::default();
        let mut k = Kmsg::with_writer(Box::new(sink.clone()), DevkmsgMode::On);
        for _ in 0..100 {
            k.write_record(b"x\n".to_vec());
        }
        assert_eq!(sink.0.lock().unwrap().len(), 100);
        assert!(k.next_flush().is_none());
    }
}
