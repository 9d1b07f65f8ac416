//! kdbus-init's published state, shown by `kdbusctl status`.
//!
//! kdbus-init writes its status as JSON (atomically) to [`STATUS_FILE`].
//! kdbusctl does not depend on kdbus-init's types: it reads the file as
//! generic JSON, shows a few well-known fields in text mode and passes the
//! whole document through with `--json`. This is the one place to extend
//! when kdbus-init's status grows.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

/// Where kdbus-init publishes its status.
pub const STATUS_FILE: &str = "/run/kdbus/kdbus-init.json";

/// The status document, `None` if kdbus-init has not published one here
/// (not running, or not in this root). A present but unreadable file is
/// reported in the document itself, so `status` still shows the bus.
pub fn load(path: &Path) -> Option<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(problem(path, &e.to_string())),
    };
    match serde_json::from_str(&text) {
        Ok(value) => Some(value),
        Err(e) => Some(problem(path, &format!("not valid JSON: {e}"))),
    }
}

fn problem(path: &Path, what: &str) -> Value {
    serde_json::json!({ "error": format!("{}: {what}", path.display()) })
}

/// Text lines for `kdbusctl status`.
pub fn render(state: &Value) -> String {
    let mut out = String::new();
    if let Some(err) = state.get("error").and_then(Value::as_str) {
        let _ = writeln!(out, "kdbus-init:    status unreadable ({err})");
        return out;
    }
    let field = |key: &str| match state.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut head = Vec::new();
    if let Some(pid) = field("pid") {
        head.push(format!("pid {pid}"));
    }
    if let Some(root) = field("root") {
        head.push(format!("in the {root}"));
    }
    if let Some(exe) = field("exe") {
        head.push(format!("running {exe}"));
    }
    if let Some(sink) = field("log_sink") {
        head.push(format!("logging to {sink}"));
    }
    let _ = writeln!(
        out,
        "kdbus-init:    {}",
        if head.is_empty() {
            "status published".to_owned()
        } else {
            head.join(", ")
        }
    );
    if let Some(activators) = state.get("activators").and_then(Value::as_array) {
        for a in activators {
            let name = a.get("name").and_then(Value::as_str).unwrap_or("?");
            let how = a
                .pointer("/activation/state")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let _ = writeln!(out, "  activator    {name}: {how}");
        }
    }
    if let Some(problems) = state.get("problems").and_then(Value::as_array) {
        for p in problems.iter().filter_map(Value::as_str) {
            let _ = writeln!(out, "  problem      {p}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_means_no_kdbus_init() {
        assert_eq!(load(Path::new("/nonexistent/kdbus-init.json")), None);
    }

    #[test]
    fn corrupt_file_is_reported_not_fatal() {
        let dir = std::env::temp_dir().join(format!("kdbusctl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("status.json");
        std::fs::write(&path, "{ not json").unwrap();
        let state = load(&path).unwrap();
        assert!(render(&state).contains("status unreadable"));
        std::fs::write(&path, r#"{"pid": 7}"#).unwrap();
        assert_eq!(load(&path).unwrap()["pid"], 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renders_known_fields() {
        let state = serde_json::json!({
            "pid": 312,
            "root": "real-root",
            "exe": "/usr/sbin/kdbus-init",
            "log_sink": "journal",
            "activators": [
                {"name": "org.example.Svc", "activation": {"state": "idle"}}
            ],
            "problems": ["broken.service: no Name="]
        });
        let text = render(&state);
        assert!(
            text.contains(
                "pid 312, in the real-root, running /usr/sbin/kdbus-init, logging to journal"
            ),
            "{text}"
        );
        assert!(text.contains("org.example.Svc: idle"), "{text}");
        assert!(text.contains("broken.service: no Name="), "{text}");
    }
}
