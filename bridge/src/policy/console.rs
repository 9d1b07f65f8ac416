//! `at_console`: is a user logged in at a seat (a local screen and
//! keyboard)? systemd-logind says so in its runtime files: `/run/systemd/
//! seats/` exists where logind runs, and `/run/systemd/users/UID` lists
//! the seats on which that user has a session (`ONLINE_SEATS=`). These are
//! logind's private files, not an API; they are what `sd_uid_get_seats()`
//! reads, which the bridge cannot link.
//!
//! Without logind nobody is at the console: only `at_console="false"`
//! policies apply, as with dbus-daemon on such a system.

use std::path::Path;

/// Is `uid` at the console now?
pub fn at_console(uid: u32) -> bool {
    at_console_in(Path::new("/run/systemd"), uid)
}

/// [`at_console`] with logind's runtime directory at `run`.
fn at_console_in(run: &Path, uid: u32) -> bool {
    if !run.join("seats").is_dir() {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(run.join("users").join(uid.to_string())) else {
        return false;
    };
    text.lines()
        .filter_map(|line| line.strip_prefix("ONLINE_SEATS="))
        .any(|seats| !seats.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A logind runtime directory for test `name` with uid 1000's record.
    fn logind(name: &str, user: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kdbus-bridge-console-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("seats")).unwrap();
        std::fs::create_dir_all(dir.join("users")).unwrap();
        std::fs::write(dir.join("users/1000"), user).unwrap();
        dir
    }

    #[test]
    fn a_user_with_a_session_on_a_seat_is_at_the_console() {
        let dir = logind(
            "seated",
            "# This is private data. Do not parse.\nNAME=alice\nSTATE=active\n\
             SESSIONS=2\nSEATS=seat0\nACTIVE_SEATS=seat0\nONLINE_SEATS=seat0\n",
        );
        assert!(at_console_in(&dir, 1000));
        // another user has no record
        assert!(!at_console_in(&dir, 1001));
        // nor is anyone without logind
        std::fs::remove_dir(dir.join("seats")).unwrap();
        assert!(!at_console_in(&dir, 1000));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_user_logged_in_only_remotely_is_not() {
        // ssh or a serial console: sessions, but no seat
        let dir = logind(
            "remote",
            "NAME=bob\nSTATE=online\nSESSIONS=4\nSEATS=\nONLINE_SEATS=\n",
        );
        assert!(!at_console_in(&dir, 1000));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
