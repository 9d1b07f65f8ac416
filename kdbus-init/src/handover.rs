//! The hand-over handshake: which state formats a kdbus-init binary takes
//! over, told by a marker in the file itself. A running kdbus-init reads it
//! from a new root's binary before the exec, without running that binary
//! (it may not even run there yet), and execs it only if it reads the state
//! it is about to hand over.
//!
//! The marker is one static byte string: a magic word, then `;KEY=VALUE`
//! fields, then a NUL. `writes=N` is the state format this binary hands
//! over, `reads=A-B` the formats it takes over. Readers skip fields they do
//! not know, so a later build may add some. The numbers have four digits so
//! that a test can patch them in place.
//!
//! Keeping it in the binary: the static is read at run time (`kdbus-init
//! --version`, through `black_box`), so neither LTO nor the linker's
//! section GC can drop it, and `strip` removes symbols, not data. The
//! magic word exists once in the file: the search takes it from the marker
//! itself instead of from a second literal.

use std::ops::RangeInclusive;
use std::path::Path;

use crate::error::{Error, Result};
use crate::state::{OLDEST_READ, VERSION};

/// The magic word's length (the word itself is only in [`MARKER`]).
const MAGIC_LEN: usize = 26;

/// What this build hands over and takes over; a unit test keeps it equal to
/// [`VERSION`] and [`OLDEST_READ`].
#[used]
static MARKER: [u8; 56] = *b"KDBUS-INIT-HANDOVER-MARKER;writes=0002;reads=0002-0002;\0";

/// The longest marker a reader looks at (fields it does not know included).
const MAX_MARKER: usize = 512;

/// The state formats a kdbus-init binary writes and reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub writes: u32,
    pub reads: RangeInclusive<u32>,
}

impl Handover {
    /// What the running build hands over and takes over.
    pub fn ours() -> Handover {
        Handover {
            writes: VERSION,
            reads: OLDEST_READ..=VERSION,
        }
    }
}

impl std::fmt::Display for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hands over state format {}, takes over {}-{}",
            self.writes,
            self.reads.start(),
            self.reads.end()
        )
    }
}

/// The marker's bytes as the binary holds them (read at run time).
fn marker() -> &'static [u8] {
    std::hint::black_box(&MARKER[..])
}

/// The marker of this very binary, parsed (what `--version` shows).
pub fn own() -> Result<Handover> {
    parse_fields(&marker()[MAGIC_LEN..])
}

/// Finds and parses the marker in a binary's bytes.
pub fn find(bytes: &[u8]) -> Result<Handover> {
    let magic = &marker()[..MAGIC_LEN];
    let at = bytes
        .windows(MAGIC_LEN)
        .position(|w| w == magic)
        .ok_or(Error::HandoverMissing)?;
    parse_fields(&bytes[at + MAGIC_LEN..])
}

/// Parses `;KEY=VALUE` fields up to the NUL.
fn parse_fields(rest: &[u8]) -> Result<Handover> {
    let bad = |why: &str| Error::HandoverMalformed(why.to_owned());
    let window = &rest[..rest.len().min(MAX_MARKER)];
    let end = window
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| bad("it does not end (a truncated file?)"))?;
    let text = std::str::from_utf8(&window[..end]).map_err(|_| bad("not text"))?;
    let (mut writes, mut reads) = (None, None);
    for field in text.split(';').filter(|f| !f.is_empty()) {
        match field.split_once('=') {
            Some(("writes", v)) => writes = Some(number(v).ok_or_else(|| bad(field))?),
            Some(("reads", v)) => {
                let (a, b) = v.split_once('-').ok_or_else(|| bad(field))?;
                let (a, b) = number(a).zip(number(b)).ok_or_else(|| bad(field))?;
                if a > b {
                    return Err(bad(field));
                }
                reads = Some(a..=b);
            }
            Some(_) => {} // a field of a later build
            None => return Err(bad(field)),
        }
    }
    Ok(Handover {
        writes: writes.ok_or_else(|| bad("no writes= field"))?,
        reads: reads.ok_or_else(|| bad("no reads= field"))?,
    })
}

fn number(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Reads the marker of the binary at `path`.
pub fn read(path: &Path) -> Result<Handover> {
    let bytes = std::fs::read(path).map_err(|source| Error::HandoverRead {
        path: path.display().to_string(),
        source,
    })?;
    find(&bytes)
}

/// Can the binary at `path` take over the state we hand over? `None` if it
/// can; otherwise why not, for the record.
pub fn refusal(path: &Path) -> Option<String> {
    let ours = Handover::ours();
    match read(path) {
        Ok(theirs) if theirs.reads.contains(&ours.writes) => None,
        Ok(theirs) if *theirs.reads.end() < ours.writes => Some(format!(
            "it is older: it {theirs}, the running one hands over {}",
            ours.writes
        )),
        Ok(theirs) => Some(format!(
            "it no longer takes over state format {}: it {theirs}",
            ours.writes
        )),
        Err(e) => Some(format!("{e}: taken as older")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A marker with other numbers, built at run time: a literal one would
    /// put a second magic word into this test binary.
    fn marker_with(fields: impl AsRef<[u8]>) -> Vec<u8> {
        let mut m = marker()[..MAGIC_LEN].to_vec();
        m.extend_from_slice(fields.as_ref());
        m
    }

    #[test]
    fn the_marker_says_what_this_build_reads_and_writes() {
        assert_eq!(own().unwrap(), Handover::ours());
        assert_eq!(Handover::ours().writes, VERSION);
    }

    #[test]
    fn the_marker_is_found_in_this_binary_once() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(find(&exe).unwrap(), Handover::ours());
        let magic = &marker()[..MAGIC_LEN];
        let count = exe.windows(MAGIC_LEN).filter(|w| *w == magic).count();
        assert_eq!(count, 1, "the magic word must be unique in the binary");
    }

    #[test]
    fn a_marker_among_other_bytes_is_parsed_with_unknown_fields_skipped() {
        let mut file = vec![0x7f, b'E', b'L', b'F', 0, 1, 2];
        file.extend(marker_with(";future=yes;writes=0003;reads=0002-0003;\0"));
        file.extend([0xff; 64]);
        let h = find(&file).unwrap();
        assert_eq!(
            h,
            Handover {
                writes: 3,
                reads: 2..=3
            }
        );
    }

    #[test]
    fn garbage_truncated_and_malformed_files_are_refused() {
        // No marker at all (a build before it, or not kdbus-init).
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        assert!(matches!(find(&garbage), Err(Error::HandoverMissing)));
        assert!(matches!(find(b""), Err(Error::HandoverMissing)));
        // Cut inside the magic word, and after it before the NUL.
        let whole = marker_with(";writes=0002;reads=0002-0002;\0");
        assert!(matches!(
            find(&whole[..MAGIC_LEN - 3]),
            Err(Error::HandoverMissing)
        ));
        let err = find(&whole[..whole.len() - 8]).unwrap_err().to_string();
        assert!(err.contains("does not end"), "{err}");
        for fields in [
            &b";writes=0002;\0"[..],
            b";reads=0002-0002;\0",
            b";writes=two;reads=0002-0002;\0",
            b";writes=0002;reads=0003-0002;\0",
            b";writes=0002;reads=0002;\0",
            b";writes=0002;noequals;reads=0002-0002;\0",
            b";writes=0002;reads=0002-\xff;\0",
        ] {
            let err = find(&marker_with(fields)).unwrap_err();
            let shown = String::from_utf8_lossy(fields);
            assert!(matches!(err, Error::HandoverMalformed(_)), "{shown}: {err}");
        }
        // A NUL that never comes within the marker's room.
        let mut long = marker_with(";writes=0002;reads=0002-0002;");
        long.extend(std::iter::repeat(b'x').take(MAX_MARKER));
        assert!(find(&long).is_err());
    }

    #[test]
    fn only_a_binary_that_reads_our_format_is_accepted() {
        let dir = std::env::temp_dir().join(format!("kdbus-handover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, fields: &str| {
            let p = dir.join(name);
            std::fs::write(&p, marker_with(fields)).unwrap();
            p
        };
        let v = VERSION;
        let same = write("same", &format!(";writes={v:04};reads={v:04}-{v:04};\0"));
        assert_eq!(refusal(&same), None);
        let newer = write(
            "newer",
            &format!(";writes={:04};reads={v:04}-{:04};\0", v + 1, v + 1),
        );
        assert_eq!(refusal(&newer), None);
        let older = write(
            "older",
            &format!(";writes={:04};reads=0001-{:04};\0", v - 1, v - 1),
        );
        let why = refusal(&older).unwrap();
        assert!(why.starts_with("it is older"), "{why}");
        let dropped = write(
            "dropped",
            &format!(";writes={:04};reads={:04}-{:04};\0", v + 2, v + 1, v + 2),
        );
        let why = refusal(&dropped).unwrap();
        assert!(why.contains("no longer takes over"), "{why}");
        std::fs::write(dir.join("garbage"), b"#!/bin/sh\necho hi\n").unwrap();
        let why = refusal(&dir.join("garbage")).unwrap();
        assert!(why.contains("no hand-over marker"), "{why}");
        let why = refusal(&dir.join("missing")).unwrap();
        assert!(why.contains("cannot read"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
