//! State handed to a re-executed process image: JSON in a sealed memfd.
//!
//! The writer seals the memfd (no write, grow, shrink, or further seals)
//! before the exec, so the reader can trust that what it parses is what was
//! written, and a half-written blob can never be mistaken for a whole one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{MemfdFlags, SealFlags};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Seals we require on a state blob.
const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// Why a state blob could not be used.
#[derive(Debug)]
pub enum StateError {
    Io(std::io::Error),
    /// The fd is not a fully sealed memfd.
    NotSealed,
    /// The content is not the expected JSON.
    Corrupt(serde_json::Error),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Io(e) => write!(f, "cannot read the state blob: {e}"),
            StateError::NotSealed => {
                write!(
                    f,
                    "the state fd is not a sealed memfd (refusing to trust it)"
                )
            }
            StateError::Corrupt(e) => write!(f, "the state blob is corrupt: {e}"),
        }
    }
}

impl std::error::Error for StateError {}

impl From<std::io::Error> for StateError {
    fn from(e: std::io::Error) -> Self {
        StateError::Io(e)
    }
}

/// Writes `value` as JSON into a new sealed memfd. The fd is close-on-exec:
/// the caller clears that flag on the one it hands over.
pub fn seal<T: Serialize>(name: &str, value: &T) -> std::io::Result<OwnedFd> {
    let json = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    seal_bytes(name, &json)
}

/// Writes raw bytes into a new sealed memfd (also used by tests to hand
/// over corrupt blobs).
pub fn seal_bytes(name: &str, bytes: &[u8]) -> std::io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    rustix::fs::fcntl_add_seals(&file, SEALS)?;
    Ok(file.into())
}

/// Reads a blob written by [`seal`]. The fd must carry all of our seals.
pub fn open<T: DeserializeOwned>(fd: OwnedFd) -> Result<T, StateError> {
    let seals = rustix::fs::fcntl_get_seals(fd.as_fd()).map_err(|_| StateError::NotSealed)?;
    if !seals.contains(SEALS) {
        return Err(StateError::NotSealed);
    }
    let mut file = File::from(fd);
    file.seek(SeekFrom::Start(0))?;
    let mut json = Vec::new();
    file.read_to_end(&mut json)?;
    serde_json::from_slice(&json).map_err(StateError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct S {
        bus_fd: i32,
        names: Vec<String>,
    }

    #[test]
    fn round_trip() {
        let s = S {
            bus_fd: 5,
            names: vec!["org.example.A".into()],
        };
        let fd = seal("test-state", &s).unwrap();
        assert_eq!(open::<S>(fd).unwrap(), s);
    }

    #[test]
    fn sealed_blob_cannot_be_changed() {
        let fd = seal("test-state", &1u32).unwrap();
        let mut f = File::from(fd);
        assert!(f.write_all(b"2").is_err());
        assert!(f.set_len(0).is_err());
    }

    #[test]
    fn corrupt_and_unsealed_blobs_are_refused() {
        let fd = seal_bytes("test-state", b"{\"bus_fd\": 5, \"na").unwrap();
        assert!(matches!(open::<S>(fd), Err(StateError::Corrupt(_))));

        let fd = rustix::fs::memfd_create("plain", MemfdFlags::CLOEXEC).unwrap();
        assert!(matches!(open::<S>(fd), Err(StateError::NotSealed)));

        let file = tempfile_in_target();
        assert!(matches!(open::<S>(file.into()), Err(StateError::NotSealed)));
    }

    fn tempfile_in_target() -> File {
        let p = std::env::temp_dir().join(format!("bootenv-state-{}", std::process::id()));
        let f = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        std::fs::remove_file(&p).unwrap();
        f
    }
}
