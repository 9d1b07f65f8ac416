//! What kdbus-init hands to its next process image across exec: the
//! published status's parts plus the inherited fd numbers and the
//! connection parameters the library needs to adopt them. (The published
//! status itself is `bootenv::status`, shared with its readers.)
//!
//! The same state is kept in [`STATE_FILE`] on every change, for a
//! kdbus-init restarted after it died: its handles then come from the fd
//! store by name (the fd numbers in the file mean nothing to it).

use std::path::Path;

use serde::{Deserialize, Serialize};

use bootenv::log::LogState;
use bootenv::status::{
    Activation, ActivationRecord, ActivatorStatus, BusStatus, OwnerPolicy, Phase, Service,
};
use kdbus::ConnectionParams;

use crate::error::{Error, Result};

/// The format this build hands over. Bump when it changes incompatibly,
/// and change the marker in `crate::handover` with it.
pub const VERSION: u32 = 2;
/// The oldest format this build still takes over.
pub const OLDEST_READ: u32 = 2;

/// An activator connection handed over: its fd, what `Connection::adopt`
/// needs, and its status (whose fields sit beside `fd` and `conn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ActivatorWire", into = "ActivatorWire")]
pub struct SavedActivator {
    pub fd: i32,
    pub conn: ConnectionParams,
    pub status: ActivatorStatus,
}

/// [`SavedActivator`] as JSON: the status's fields spelled out rather
/// than `#[serde(flatten)]`, which reads through a buffer of every value
/// and cost 20 KB of code in every initramfs. The JSON is the same. A
/// field added to `ActivatorStatus` does not compile until it is here.
#[derive(Serialize, Deserialize)]
struct ActivatorWire {
    fd: i32,
    conn: ConnectionParams,
    name: String,
    conn_id: u64,
    service: Service,
    activation: Activation,
    owner: OwnerPolicy,
}

impl From<ActivatorWire> for SavedActivator {
    fn from(w: ActivatorWire) -> Self {
        SavedActivator {
            fd: w.fd,
            conn: w.conn,
            status: ActivatorStatus {
                name: w.name,
                conn_id: w.conn_id,
                service: w.service,
                activation: w.activation,
                owner: w.owner,
            },
        }
    }
}

impl From<SavedActivator> for ActivatorWire {
    fn from(a: SavedActivator) -> Self {
        let ActivatorStatus {
            name,
            conn_id,
            service,
            activation,
            owner,
        } = a.status;
        ActivatorWire {
            fd: a.fd,
            conn: a.conn,
            name,
            conn_id,
            service,
            activation,
            owner,
        }
    }
}

/// Everything handed to the next process image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub version: u32,
    pub exe_path: String,
    pub bus: Option<BusStatus>,
    /// The handle that created the bus.
    pub owner_fd: Option<i32>,
    /// O_PATH handle on the kdbusfs mount (the domain), to re-attach it
    /// where a new root lacks it.
    pub domain_fd: Option<i32>,
    pub activators: Vec<SavedActivator>,
    /// kdbus handles kept open only so that the bus and the messages
    /// queued on them survive (their state was lost).
    #[serde(default)]
    pub orphan_fds: Vec<i32>,
    pub history: Vec<Phase>,
    pub activations: Vec<ActivationRecord>,
    pub log: LogState,
    pub problems: Vec<String>,
    pub foreground: bool,
    pub debug: bool,
    /// Restarts after kdbus-init died (or was stopped), this boot.
    #[serde(default)]
    pub restarts: u32,
    /// CLOCK_MONOTONIC, microseconds.
    #[serde(default)]
    pub last_restart_us: Option<u64>,
}

/// Where the state waits for a restarted kdbus-init (below /run, which
/// every root shares).
pub const STATE_FILE: &str = "/run/kdbus/kdbus-init.state";

/// Writes `saved` to `path` atomically: a reader sees the old state or the
/// new one, never half of one.
pub fn store(saved: &Saved, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let json = serde_json::to_vec(saved).map_err(std::io::Error::other)?;
    if let Err(e) = std::fs::write(&tmp, json) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(tmp, path)
}

/// Reads the state a previous kdbus-init left in `path`.
pub fn load(path: &Path) -> Result<Saved> {
    let bad = |why: String| Error::StateFile {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    decode(&text, |e| bad(e.to_string()))
}

/// Just the format number of a state.
#[derive(Deserialize)]
struct Format {
    version: u32,
}

/// Takes a handed-over state apart, its format number first: a format this
/// build does not take over is reported as that (the fields of another
/// format may not parse), whatever else it holds. `bad` makes the error of
/// a state that does not parse.
///
/// Both passes parse the JSON text itself: going through a
/// `serde_json::Value` would add a second deserializer of every type in
/// the state to the binary (about 40 KB, in every initramfs).
pub fn decode(json: &[u8], bad: impl Fn(serde_json::Error) -> Error) -> Result<Saved> {
    let Format { version } = serde_json::from_slice(json).map_err(&bad)?;
    if !(OLDEST_READ..=VERSION).contains(&version) {
        return Err(Error::StateVersion(version));
    }
    serde_json::from_slice(json).map_err(bad)
}

pub fn monotonic_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> Saved {
        Saved {
            version: VERSION,
            exe_path: "/usr/sbin/kdbus-init".into(),
            bus: None,
            owner_fd: None,
            domain_fd: None,
            activators: Vec::new(),
            orphan_fds: Vec::new(),
            history: Vec::new(),
            activations: Vec::new(),
            log: LogState::default(),
            problems: vec!["kept".into()],
            foreground: false,
            debug: false,
            restarts: 2,
            last_restart_us: Some(5),
        }
    }

    #[test]
    fn the_state_file_round_trips_and_refuses_what_it_cannot_use() {
        let dir = std::env::temp_dir().join(format!("kdbus-init-state-{}", std::process::id()));
        let path = dir.join("kdbus-init.state");
        assert!(load(&path).unwrap_err().to_string().contains("unusable"));
        store(&saved(), &path).unwrap();
        assert_eq!(load(&path).unwrap(), saved());
        std::fs::write(&path, b"{\"version\": 2, \"exe_pa").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        let mut old = serde_json::to_value(saved()).unwrap();
        old["version"] = 1.into();
        std::fs::write(&path, old.to_string()).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("has format 1") && err.contains("takes over formats 2-2"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_state_of_a_format_not_taken_over_is_named_as_such() {
        let corrupt = |e: serde_json::Error| Error::StateFile {
            path: "blob".into(),
            why: e.to_string(),
        };
        assert_eq!(
            decode(&serde_json::to_vec(&saved()).unwrap(), corrupt).unwrap(),
            saved()
        );
        // A newer build's state: other fields, other types. Its format is
        // what is reported, not a parse error of its fields.
        let newer = serde_json::json!({
            "version": VERSION + 1,
            "bus": {"handles": [3, 4]},
            "activators": "elsewhere",
        });
        let err = decode(newer.to_string().as_bytes(), corrupt).unwrap_err();
        assert!(
            matches!(err, Error::StateVersion(v) if v == VERSION + 1),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("has format {}", VERSION + 1))
                && text.contains("install the same kdbus-init in every root"),
            "{text}"
        );
        // No format number at all: corrupt.
        let err = decode(br#"{"exe_path": "x"}"#, corrupt).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
        // The right format with a broken field: corrupt, not a format error.
        let mut broken = serde_json::to_value(saved()).unwrap();
        broken["activators"] = "none".into();
        assert!(matches!(
            decode(broken.to_string().as_bytes(), corrupt),
            Err(Error::StateFile { .. })
        ));
    }

    #[test]
    fn an_activator_reads_and_writes_as_with_its_status_flattened() {
        use kdbus::{AttachFlags, BloomParams, HelloFlags};
        /// How the state wrote activators before the fields were spelled
        /// out: a state of an older build must still read, and ours must
        /// read there.
        #[derive(Serialize, Deserialize)]
        struct Flattened {
            fd: i32,
            conn: ConnectionParams,
            #[serde(flatten)]
            status: ActivatorStatus,
        }
        let conn = ConnectionParams {
            id: 7,
            id128: [3; 16],
            bus_flags: 0,
            bloom: BloomParams::default(),
            flags: HelloFlags::ACTIVATOR,
            attach_send: AttachFlags::empty(),
            attach_recv: AttachFlags::empty(),
            pool_size: 1 << 20,
            next_cookie: 9,
        };
        for status in bootenv::status::Status::example().activators {
            let ours = SavedActivator {
                fd: 5,
                conn,
                status: status.clone(),
            };
            let old = Flattened {
                fd: 5,
                conn,
                status,
            };
            let (ours_json, old_json) = (
                serde_json::to_value(&ours).unwrap(),
                serde_json::to_value(&old).unwrap(),
            );
            assert_eq!(ours_json, old_json);
            assert_eq!(
                serde_json::from_value::<SavedActivator>(old_json).unwrap(),
                ours
            );
            let back: Flattened = serde_json::from_value(ours_json).unwrap();
            assert_eq!((back.fd, back.status), (5, ours.status));
        }
    }

    #[test]
    fn a_blob_of_an_older_build_still_reads() {
        let mut v = serde_json::to_value(saved()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("restarts");
        o.remove("last_restart_us");
        let s: Saved = serde_json::from_value(v).unwrap();
        assert_eq!((s.restarts, s.last_restart_us), (0, None));
    }
}
