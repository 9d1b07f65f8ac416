//! Boot logging: `/dev/kmsg` until journald answers, journald's native
//! protocol while it does, `/dev/kmsg` again once it is gone.
//!
//! Every record goes to exactly one place. Records written to kmsg before
//! journald ran are imported by journald from the kernel ring (it does that
//! by itself, tracking the last sequence number in /run across switch-root),
//! so they are never sent to journald a second time; that is what keeps each
//! record exactly once in `journalctl -b`. Records over the kmsg rate limit
//! wait in the [`Kmsg`] queue and are written later (also across a re-exec,
//! see [`LogState`]) rather than being dropped by the kernel.
//!
//! Whether journald answers is probed before every record (tracing-journald
//! ignores send errors, so it cannot tell us itself): journald must accept a
//! connection on its own Varlink socket, which it binds itself when it runs
//! (the datagram socket is held by PID 1 from early on, so a datagram
//! would be accepted, and queued unread, long before journald starts), and
//! its datagram socket must take an empty probe datagram. The journald path hands the event to `tracing-journald`,
//! which writes structured fields (`PRIORITY`, `CODE_FILE`, `TARGET`, the
//! event's fields...). Events inside spans always take the kmsg path:
//! tracing-journald needs to have seen a span's creation to format it.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::kmsg::{self, Kmsg};

pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// Bound by journald itself while it runs (v245+).
pub const JOURNAL_VARLINK: &str = "/run/systemd/journal/io.systemd.journal";

/// Where records go right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sink {
    Kmsg,
    Journal,
    /// Neither works (no /dev/kmsg, e.g. a unit test): stderr only.
    Stderr,
}

impl Sink {
    pub fn as_str(self) -> &'static str {
        match self {
            Sink::Kmsg => "kmsg",
            Sink::Journal => "journal",
            Sink::Stderr => "stderr",
        }
    }
}

/// How many of the last records the log keeps for status output.
pub const RECENT_MAX: usize = 32;

/// One record as status output shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// CLOCK_MONOTONIC, microseconds (the kernel log's clock).
    pub at_us: u64,
    /// "error", "warn", "info" or "debug".
    pub level: String,
    /// The message followed by its fields, as written to kmsg.
    pub text: String,
}

/// What the log has done so far; kept across re-execs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogState {
    /// Records written to /dev/kmsg (journald imports them from the ring).
    pub to_kmsg: u64,
    /// Records handed to journald directly.
    pub to_journal: u64,
    /// Records lost for good (kmsg queue overflow, printk.devkmsg=off).
    pub dropped: u64,
    /// Records that waited for the kmsg budget when the state was saved.
    #[serde(default)]
    pub pending_kmsg: Vec<String>,
    /// Switches between kmsg and journald, in order ("kmsg->journal" ...).
    #[serde(default)]
    pub switches: Vec<String>,
    /// The last [`RECENT_MAX`] records, oldest first, wherever they went.
    #[serde(default)]
    pub recent: Vec<LogLine>,
}

impl LogState {
    fn remember(&mut self, level: &Level, text: &str) {
        if self.recent.len() >= RECENT_MAX {
            self.recent.remove(0);
        }
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        self.recent.push(LogLine {
            at_us: t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000,
            level: level.as_str().to_ascii_lowercase(),
            text: text.to_owned(),
        });
    }
}

/// Bytes sent on `sock` that no receiver has read yet: a Unix datagram
/// stays charged to its sender until read.
fn unread(sock: &UnixDatagram) -> usize {
    // SAFETY: SIOCOUTQ (0x5411) writes one int, the type given here.
    let n = unsafe {
        rustix::ioctl::ioctl(
            sock,
            rustix::ioctl::Getter::<0x5411, std::ffi::c_int>::new(),
        )
    };
    n.map_or(0, |n| n.max(0) as usize)
}

struct Router {
    ident: String,
    pid: u32,
    kmsg: Option<Kmsg>,
    journal: Option<tracing_journald::Layer>,
    journal_socket: PathBuf,
    journal_varlink: PathBuf,
    probe: Option<UnixDatagram>,
    also_stderr: bool,
    max_level: Level,
    state: LogState,
    sink: Sink,
}

impl Router {
    /// Does journald take datagrams right now? Also when it just died
    /// (crashed, its socket held by PID 1) with records of ours unread in
    /// its socket: the next journald reads those after importing the kernel
    /// log, so later records queue behind them to keep the order, as long
    /// as the socket takes them (the probe does not wait).
    fn journal_answers(&mut self) -> bool {
        if self.probe.is_none() {
            self.probe = UnixDatagram::unbound()
                .ok()
                .filter(|s| s.set_nonblocking(true).is_ok());
        }
        let Some(probe) = &self.probe else {
            return false;
        };
        let up = std::os::unix::net::UnixStream::connect(&self.journal_varlink).is_ok();
        let behind = self.sink == Sink::Journal && unread(probe) > 0;
        (up || behind) && probe.send_to(&[], &self.journal_socket).is_ok()
    }

    /// After a record handed to journald: a probe behind it, so that an
    /// unread probe tells that the record may be unread too.
    fn mark_sent(&self) {
        if let Some(p) = &self.probe {
            let _ = p.send_to(&[], &self.journal_socket);
        }
    }

    fn pick_sink(&mut self, in_span: bool) -> Sink {
        let journal = !in_span && self.journal_answers();
        let sink = if journal {
            if self.journal.is_none() {
                self.journal = tracing_journald::Layer::new().ok().map(|l| {
                    l.with_syslog_identifier(self.ident.clone())
                        .with_priority_mappings(tracing_journald::PriorityMappings {
                            info: tracing_journald::Priority::Informational,
                            debug: tracing_journald::Priority::Debug,
                            ..Default::default()
                        })
                });
            }
            if self.journal.is_some() {
                Sink::Journal
            } else {
                self.fallback_sink()
            }
        } else {
            if !in_span {
                self.journal = None;
            }
            self.fallback_sink()
        };
        if sink != self.sink && !(in_span && sink == Sink::Kmsg) {
            self.state
                .switches
                .push(format!("{}->{}", self.sink.as_str(), sink.as_str()));
            self.sink = sink;
        }
        sink
    }

    fn fallback_sink(&self) -> Sink {
        if self.kmsg.is_some() {
            Sink::Kmsg
        } else {
            Sink::Stderr
        }
    }
}

/// A handle on the log, shared by the tracing layer and the program (to
/// flush the kmsg queue, save the state before a re-exec...).
#[derive(Clone)]
pub struct BootLog {
    router: Arc<Mutex<Router>>,
}

/// Options of [`BootLog::new`].
pub struct LogConfig {
    pub ident: String,
    /// Copy every record to stderr (foreground/debug mode).
    pub also_stderr: bool,
    /// Most verbose level logged.
    pub max_level: Level,
    /// Journald's datagram socket (tests use their own).
    pub journal_socket: PathBuf,
    /// The socket journald binds itself while it runs.
    pub journal_varlink: PathBuf,
    /// Use /dev/kmsg (false in tests).
    pub use_kmsg: bool,
}

impl LogConfig {
    pub fn new(ident: &str) -> LogConfig {
        LogConfig {
            ident: ident.to_owned(),
            also_stderr: false,
            max_level: Level::INFO,
            journal_socket: PathBuf::from(JOURNAL_SOCKET),
            journal_varlink: PathBuf::from(JOURNAL_VARLINK),
            use_kmsg: true,
        }
    }
}

impl BootLog {
    /// Starts a log, continuing `previous` (the state a former process
    /// image saved) if there is one.
    pub fn new(config: LogConfig, previous: Option<LogState>) -> BootLog {
        let mut kmsg = if config.use_kmsg {
            Kmsg::open().ok()
        } else {
            None
        };
        let mut state = previous.unwrap_or_default();
        if let Some(k) = kmsg.as_mut() {
            for rec in std::mem::take(&mut state.pending_kmsg) {
                k.write_record(rec.into_bytes());
            }
        }
        let sink = if kmsg.is_some() {
            Sink::Kmsg
        } else {
            Sink::Stderr
        };
        BootLog {
            router: Arc::new(Mutex::new(Router {
                ident: config.ident,
                pid: std::process::id(),
                kmsg,
                journal: None,
                journal_socket: config.journal_socket,
                journal_varlink: config.journal_varlink,
                probe: None,
                also_stderr: config.also_stderr,
                max_level: config.max_level,
                state,
                sink,
            })),
        }
    }

    /// Installs this log as the global tracing subscriber.
    pub fn install(&self) {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(self.clone());
        let _ = tracing::subscriber::set_global_default(subscriber);
    }

    /// Writes queued kmsg records that the rate limit now allows, and
    /// says when to call again.
    pub fn flush(&self) -> Option<Instant> {
        let mut r = self.router.lock().unwrap();
        let r = &mut *r;
        let k = r.kmsg.as_mut()?;
        let before = k.queued();
        k.flush(Instant::now());
        r.state.to_kmsg += (before - k.queued()) as u64;
        k.next_flush()
    }

    /// The state to hand to the next process image, with copies of the
    /// records still waiting for kmsg (if the exec fails, they are still
    /// ours to write).
    pub fn save(&self) -> LogState {
        let r = self.router.lock().unwrap();
        let mut state = r.state.clone();
        if let Some(k) = r.kmsg.as_ref() {
            state.dropped += k.dropped();
            state.pending_kmsg = k
                .queue()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
        }
        state
    }

    /// A snapshot for status output.
    pub fn snapshot(&self) -> (Sink, LogState) {
        let r = self.router.lock().unwrap();
        let mut s = r.state.clone();
        if let Some(k) = &r.kmsg {
            s.dropped += k.dropped();
            s.pending_kmsg = vec![String::new(); k.queued()];
        }
        (r.sink, s)
    }

    /// Re-opens /dev/kmsg (after a root change the old fd would keep the
    /// previous root's /dev busy). Queued records move to the new fd.
    pub fn reopen_kmsg(&self) {
        let mut r = self.router.lock().unwrap();
        if let Ok(mut new) = Kmsg::open() {
            if let Some(old) = r.kmsg.as_mut() {
                for rec in old.take_queue() {
                    new.write_record(rec);
                }
            }
            r.kmsg = Some(new);
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for BootLog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.router.lock().unwrap().max_level
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut r = self.router.lock().unwrap();
        let in_span = ctx.lookup_current().is_some();
        let sink = r.pick_sink(in_span);
        let text = render(event);
        r.state.remember(event.metadata().level(), &text);
        if r.also_stderr || sink == Sink::Stderr {
            eprintln!("{}: {}", r.ident, text);
        }
        match sink {
            Sink::Journal => {
                if let Some(j) = &r.journal {
                    tracing_subscriber::Layer::<S>::on_event(j, event, ctx);
                    r.state.to_journal += 1;
                    r.mark_sent();
                }
            }
            Sink::Kmsg => {
                let level = syslog_level(event.metadata().level());
                let (ident, pid) = (r.ident.clone(), r.pid);
                let r = &mut *r;
                if let Some(k) = r.kmsg.as_mut() {
                    for rec in kmsg::records(level, &ident, pid, &text) {
                        let before = k.queued();
                        k.write_record(rec);
                        r.state.to_kmsg += (before + 1 - k.queued()) as u64;
                    }
                }
            }
            Sink::Stderr => {}
        }
    }
}

pub fn syslog_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The event's message followed by its other fields as `key=value`.
pub fn render(event: &Event<'_>) -> String {
    struct V {
        msg: String,
        fields: String,
    }
    impl Visit for V {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.msg, "{value:?}");
            } else {
                let _ = write!(self.fields, " {}={:?}", field.name(), value);
            }
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.msg.push_str(value);
            } else if value.contains(char::is_whitespace) || value.is_empty() {
                let _ = write!(self.fields, " {}={:?}", field.name(), value);
            } else {
                let _ = write!(self.fields, " {}={}", field.name(), value);
            }
        }
    }
    let mut v = V {
        msg: String::new(),
        fields: String::new(),
    };
    event.record(&mut v);
    v.msg + &v.fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use tracing_subscriber::layer::SubscriberExt;

    fn test_log(socket: PathBuf, varlink: PathBuf) -> BootLog {
        let mut c = LogConfig::new("bootenv-test");
        c.use_kmsg = false;
        c.journal_socket = socket;
        c.journal_varlink = varlink;
        BootLog::new(c, None)
    }

    #[test]
    fn follows_journald_coming_and_going() {
        let dir = std::env::temp_dir().join(format!("bootenv-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("socket");
        let varlink = dir.join("varlink");
        let log = test_log(sock.clone(), varlink.clone());
        let sub = tracing_subscriber::registry().with(log.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::info!("before journald");
            assert_eq!(log.snapshot().0, Sink::Stderr);

            // The datagram socket alone (held by PID 1 before journald
            // runs) does not count as journald answering.
            let server = UnixDatagram::bind(&sock).unwrap();
            server.set_nonblocking(true).unwrap();
            tracing::info!("socket there, journald not running");
            let mut buf = [0u8; 64];
            assert!(server.recv(&mut buf).is_err(), "no probe without journald");

            let _journald = std::os::unix::net::UnixListener::bind(&varlink).unwrap();
            // A listener on our path is not journald's, so the tracing-journald
            // layer (hard-wired to the system path) may not come up on a
            // host without journald; what we check is that the probe follows
            // the socket.
            tracing::info!("journald up");
            assert_eq!(server.recv(&mut buf).unwrap(), 0, "probe datagram");
            drop(server);
            std::fs::remove_file(&sock).unwrap();
            tracing::warn!(code = 7, "journald gone");
        });
        let (sink, state) = log.snapshot();
        assert_eq!(sink, Sink::Stderr);
        assert_eq!(state.to_kmsg, 0);
        // Every record is remembered for status output, wherever it went.
        let recent: Vec<(&str, &str)> = state
            .recent
            .iter()
            .map(|l| (l.level.as_str(), l.text.as_str()))
            .collect();
        assert_eq!(
            recent,
            [
                ("info", "before journald"),
                ("info", "socket there, journald not running"),
                ("info", "journald up"),
                ("warn", "journald gone code=7"),
            ]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn stays_behind_its_unread_records_when_journald_dies() {
        let dir = std::env::temp_dir().join(format!("bootenv-behind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (sock, varlink) = (dir.join("socket"), dir.join("varlink"));
        let server = UnixDatagram::bind(&sock).unwrap();
        server.set_nonblocking(true).unwrap();
        let journald = std::os::unix::net::UnixListener::bind(&varlink).unwrap();
        let log = test_log(sock.clone(), varlink.clone());
        let mut r = log.router.lock().unwrap();
        assert!(r.journal_answers(), "journald up");
        // A record went to journald; then it dies, its socket held by PID 1.
        r.sink = Sink::Journal;
        r.mark_sent();
        drop(journald);
        std::fs::remove_file(&varlink).unwrap();
        let probe = r.probe.as_ref().unwrap();
        assert!(unread(probe) > 0, "our datagrams wait in the socket");
        assert!(r.journal_answers(), "records queue behind the unread ones");
        // The next journald read them all (and is gone again): now the
        // kernel log.
        let mut buf = [0u8; 16];
        while server.recv(&mut buf).is_ok() {}
        assert_eq!(unread(r.probe.as_ref().unwrap()), 0);
        assert!(!r.journal_answers(), "nothing unread: not journald");
        // Never behind a socket that is gone.
        r.mark_sent();
        drop(server);
        assert!(!r.journal_answers());
        drop(r);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn state_round_trips() {
        let s = LogState {
            to_kmsg: 3,
            to_journal: 4,
            dropped: 0,
            pending_kmsg: vec!["<30>x[1]: y\n".into()],
            switches: vec!["kmsg->journal".into()],
            recent: vec![LogLine {
                at_us: 5,
                level: "info".into(),
                text: "y".into(),
            }],
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<LogState>(&json).unwrap(), s);
    }

    #[test]
    fn keeps_only_the_last_records() {
        let mut s = LogState::default();
        for i in 0..RECENT_MAX + 3 {
            s.remember(&Level::DEBUG, &format!("r{i}"));
        }
        assert_eq!(s.recent.len(), RECENT_MAX);
        assert_eq!(s.recent[0].text, "r3");
        assert_eq!(s.recent.last().unwrap().level, "debug");
        assert!(s.recent.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    }

    #[test]
    fn render_puts_fields_after_the_message() {
        struct Capture(Arc<Mutex<String>>);
        impl<S: Subscriber> tracing_subscriber::Layer<S> for Capture {
            fn on_event(&self, e: &Event<'_>, _: Context<'_, S>) {
                *self.0.lock().unwrap() = render(e);
            }
        }
        let out = Arc::new(Mutex::new(String::new()));
        let sub = tracing_subscriber::registry().with(Capture(out.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::info!(
                name = "org.example.Foo",
                n = 2,
                why = "two words",
                "activator ready"
            )
        });
        assert_eq!(
            *out.lock().unwrap(),
            "activator ready name=org.example.Foo n=2 why=\"two words\""
        );
    }
}
