//! kdbus-init's published state, shown by `kdbusctl status`.
//!
//! kdbus-init writes its status (atomically) to [`STATUS_FILE`]; the
//! schema is `bootenv::status::Status`, the one definition that kdbus-init
//! writes and every reader parses. kdbusctl shows it under the bus it
//! looked at and says whether kdbus-init holds that very bus.

use std::fmt::Write;
use std::path::Path;

use bootenv::status::{Status, StatusError};
use serde::Serialize;

pub use bootenv::status::STATUS_FILE;

/// How many of kdbus-init's recent log records `kdbusctl status` shows
/// (`--json` has all that kdbus-init keeps).
pub const RECENT_LINES: usize = 10;

/// kdbus-init's state as `kdbusctl status` found it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum InitState {
    Running(Box<Status>),
    /// A status file is there but cannot be used (reported, not fatal:
    /// `status` still shows the bus).
    Unreadable {
        error: String,
    },
}

/// The status, `None` if kdbus-init has not published one here (not
/// running, or not in this root).
pub fn load(path: &Path) -> Option<InitState> {
    match Status::read(path) {
        Ok(s) => Some(InitState::Running(Box::new(s))),
        Err(StatusError::Missing) => None,
        Err(e) => Some(InitState::Unreadable {
            error: format!("{}: {e}", path.display()),
        }),
    }
}

/// Text lines for `kdbusctl status`; `bus_id128` is the id of the bus
/// kdbusctl looked at.
pub fn render(state: &InitState, bus_id128: &str) -> String {
    let s = match state {
        InitState::Unreadable { error } => {
            return format!("kdbus-init:    status unreadable ({error})\n");
        }
        InitState::Running(s) => s,
    };
    let mut out = s.render(RECENT_LINES);
    let held = s.bus.as_ref().and_then(|b| b.id.as_deref());
    let _ = writeln!(
        out,
        "  this bus     {}",
        match held {
            Some(id) if id == bus_id128 => "is the bus kdbus-init holds".to_owned(),
            Some(id) => format!("is NOT the bus kdbus-init holds ({id})"),
            None => "unknown to kdbus-init (it holds no bus it knows the id of)".to_owned(),
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        let mut s = Status::example();
        if let Some(bus) = s.bus.as_mut() {
            bus.id = Some("ab".repeat(16));
        }
        s
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kdbusctl-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("status.json")
    }

    #[test]
    fn missing_file_means_no_kdbus_init() {
        assert!(load(Path::new("/nonexistent/kdbus-init.json")).is_none());
    }

    #[test]
    fn corrupt_or_foreign_file_is_reported_not_fatal() {
        let path = temp("corrupt");
        std::fs::write(&path, "{ not json").unwrap();
        let state = load(&path).unwrap();
        assert!(render(&state, "").contains("status unreadable"));
        std::fs::write(&path, r#"{"schema": 1, "pid": 7}"#).unwrap();
        let text = render(&load(&path).unwrap(), "");
        assert!(
            text.contains("schema 1, this program reads schema"),
            "{text}"
        );
        let json = serde_json::to_value(load(&path).unwrap()).unwrap();
        assert!(json["error"].as_str().unwrap().contains("schema 1"));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn shows_the_phase_and_whether_it_is_the_same_bus() {
        let path = temp("running");
        status().publish_to(&path).unwrap();
        let state = load(&path).unwrap();
        let same = render(&state, &"ab".repeat(16));
        assert!(
            same.contains("pid 125 (@kdbus-init), phase shutdown-root"),
            "{same}"
        );
        assert!(
            same.contains("this bus     is the bus kdbus-init holds"),
            "{same}"
        );
        assert!(same.contains("broken.service skipped: no Name="), "{same}");
        let other = render(&state, &"cd".repeat(16));
        assert!(
            other.contains("is NOT the bus kdbus-init holds (abab"),
            "{other}"
        );
        // --json: the document itself, as kdbus-init wrote it.
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["root"], "shutdown-root");
        assert_eq!(json["bus"]["id"], "ab".repeat(16));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
