//! Reading an initramfs image: zero or more uncompressed cpio archives
//! (early microcode, firmware) followed by one archive that may be
//! compressed with zstd, gzip or xz, as the kernel unpacks it.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

/// A file, directory or symlink of the image.
#[derive(Debug, Clone)]
pub struct Member {
    /// The path inside the image, without a leading `/` or `./`.
    pub path: String,
    pub mode: u32,
    /// File contents, or the target of a symlink.
    pub data: Vec<u8>,
}

impl Member {
    pub fn is_file(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & 0o170000 == 0o120000
    }

    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }

    pub fn is_executable(&self) -> bool {
        self.is_file() && self.mode & 0o111 != 0
    }

    /// A symlink's target.
    pub fn link_target(&self) -> Option<&str> {
        self.is_symlink()
            .then(|| std::str::from_utf8(&self.data).ok())
            .flatten()
    }
}

/// How one segment of the image was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Zstd,
    Gzip,
    Xz,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
        })
    }
}

/// One cpio archive of the image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Segment {
    pub offset: u64,
    pub compression: Compression,
    pub entries: usize,
}

/// Everything in the image, later segments overriding earlier ones.
#[derive(Debug, Default)]
pub struct Archive {
    pub segments: Vec<Segment>,
    pub members: Vec<Member>,
}

/// Why an image could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Empty,
    NotInitramfs { offset: u64, magic: Vec<u8> },
    Corrupt { offset: u64, what: String },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "cannot read the image: {e}"),
            ReadError::Empty => write!(f, "the file is empty: not an initramfs image"),
            ReadError::NotInitramfs { offset: 0, magic } => write!(
                f,
                "not an initramfs image: it starts with {} (expected a cpio archive, \
                 or one compressed with zstd, gzip or xz)",
                hex(magic)
            ),
            ReadError::NotInitramfs { offset, magic } => write!(
                f,
                "unknown data at byte {offset} after the first archive: {} \
                 (expected a cpio archive, or one compressed with zstd, gzip or xz)",
                hex(magic)
            ),
            ReadError::Corrupt { offset, what } => write!(
                f,
                "the archive at byte {offset} is truncated or corrupt: {what}; \
                 rebuild the image (dracut -f, update-initramfs -u)"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const CPIO_NEWC: &[u8] = b"07070";
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const GZIP: &[u8] = &[0x1f, 0x8b];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// Files larger than this are listed but their contents are not kept:
/// the checks only read modules, scripts, units and service files.
const KEEP_MAX: u32 = 64 << 20;

/// Reads the image at `path`.
pub fn read(path: &Path) -> Result<Archive, ReadError> {
    let bytes = std::fs::read(path).map_err(ReadError::Io)?;
    parse(&bytes)
}

/// Reads an image held in memory.
pub fn parse(bytes: &[u8]) -> Result<Archive, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    let mut archive = Archive::default();
    let mut offset = 0usize;
    loop {
        // the kernel skips zero padding between segments
        while offset < bytes.len() && bytes[offset] == 0 {
            offset += 1;
        }
        if offset >= bytes.len() {
            break;
        }
        let rest = &bytes[offset..];
        let at = offset as u64;
        if rest.starts_with(CPIO_NEWC) {
            let mut cursor = io::Cursor::new(rest);
            let n = read_cpio(&mut cursor, &mut archive.members, at)?;
            archive.segments.push(Segment {
                offset: at,
                compression: Compression::None,
                entries: n,
            });
            offset += cursor.position() as usize;
            continue;
        }
        let compression = if rest.starts_with(ZSTD) {
            Compression::Zstd
        } else if rest.starts_with(GZIP) {
            Compression::Gzip
        } else if rest.starts_with(XZ) {
            Compression::Xz
        } else {
            return Err(ReadError::NotInitramfs {
                offset: at,
                magic: rest[..rest.len().min(8)].to_vec(),
            });
        };
        let n = read_compressed(rest, compression, &mut archive.members, at)?;
        archive.segments.push(Segment {
            offset: at,
            compression,
            entries: n,
        });
        // the compressed archive is the last thing the kernel reads
        break;
    }
    Ok(archive)
}

fn read_compressed(
    data: &[u8],
    compression: Compression,
    members: &mut Vec<Member>,
    at: u64,
) -> Result<usize, ReadError> {
    let corrupt = |e: io::Error| ReadError::Corrupt {
        offset: at,
        what: format!("{compression} stream: {e}"),
    };
    let stream: Box<dyn Read + '_> = match compression {
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(data).map_err(corrupt)?),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(data)),
        Compression::None => unreachable!("uncompressed archives are read directly"),
    };
    let mut reader = io::BufReader::new(stream);
    let mut n = 0;
    // one compressed stream may hold several archives back to back
    loop {
        n += read_cpio(&mut reader, members, at)?;
        if !skip_zeros(&mut reader).map_err(corrupt)? {
            return Ok(n);
        }
    }
}

/// Skips zero bytes; false at the end of the stream.
fn skip_zeros(reader: &mut impl io::BufRead) -> io::Result<bool> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        let zeros = buf.iter().take_while(|&&b| b == 0).count();
        let more = zeros < buf.len();
        reader.consume(zeros);
        if more {
            return Ok(true);
        }
    }
}

/// Reads one cpio archive up to its trailer; returns the number of entries.
fn read_cpio<R: Read>(
    reader: &mut R,
    members: &mut Vec<Member>,
    at: u64,
) -> Result<usize, ReadError> {
    let corrupt = |e: io::Error| ReadError::Corrupt {
        offset: at,
        what: e.to_string(),
    };
    let mut n = 0;
    loop {
        let mut entry = cpio::newc::Reader::new(&mut *reader).map_err(corrupt)?;
        if entry.entry().is_trailer() {
            entry.finish().map_err(corrupt)?;
            return Ok(n);
        }
        n += 1;
        let path = entry
            .entry()
            .name()
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_owned();
        let mode = entry.entry().mode();
        let size = entry.entry().file_size();
        let mut data = Vec::new();
        if size <= KEEP_MAX {
            entry.read_to_end(&mut data).map_err(corrupt)?;
            if data.len() != size as usize {
                return Err(ReadError::Corrupt {
                    offset: at,
                    what: format!("{path} ends after {} of {size} bytes", data.len()),
                });
            }
        }
        entry.finish().map_err(corrupt)?;
        if !path.is_empty() && path != "." {
            members.retain(|m| m.path != path);
            members.push(Member { path, mode, data });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A cpio archive of `(path, mode, data)` entries.
    pub fn cpio(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (path, mode, data)) in entries.iter().enumerate() {
            let mut w = cpio::newc::Builder::new(path)
                .ino(i as u32 + 1)
                .mode(*mode)
                .nlink(1)
                .write(&mut out, data.len() as u32);
            w.write_all(data).unwrap();
            w.finish().unwrap();
        }
        cpio::newc::trailer(&mut out).unwrap();
        out
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::encode_all(data, 3).unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn main_archive() -> Vec<u8> {
        cpio(&[
            ("usr", 0o040755, b""),
            ("usr/sbin/kdbus-init", 0o100755, b"\x7fELF"),
        ])
    }

    #[test]
    fn every_compressor_after_an_early_archive() {
        let early = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", 0o100644, b"ucode")]);
        for (compress, kind) in [
            (zstd as fn(&[u8]) -> Vec<u8>, Compression::Zstd),
            (gzip, Compression::Gzip),
            (xz, Compression::Xz),
            (|d: &[u8]| d.to_vec(), Compression::None),
        ] {
            let mut image = early.clone();
            image.extend_from_slice(&compress(&main_archive()));
            let a = parse(&image).unwrap();
            assert_eq!(a.segments.len(), 2, "{kind}");
            assert_eq!(a.segments[1].compression, kind);
            let init = a
                .members
                .iter()
                .find(|m| m.path == "usr/sbin/kdbus-init")
                .unwrap();
            assert!(init.is_executable());
            assert_eq!(init.data, b"\x7fELF");
            assert!(a
                .members
                .iter()
                .any(|m| m.path.ends_with("GenuineIntel.bin")));
        }
    }

    #[test]
    fn broken_images_are_errors_not_panics() {
        assert!(matches!(parse(b""), Err(ReadError::Empty)));
        let e = parse(b"MZ\x90\x00this is not an initramfs").unwrap_err();
        assert!(e.to_string().contains("not an initramfs image"), "{e}");
        let whole = zstd(&main_archive());
        for cut in [5, whole.len() / 2, whole.len() - 1] {
            let e = parse(&whole[..cut]).unwrap_err();
            assert!(matches!(e, ReadError::Corrupt { .. }), "cut at {cut}: {e}");
        }
        let plain = main_archive();
        let e = parse(&plain[..plain.len() - 40]).unwrap_err();
        assert!(e.to_string().contains("truncated or corrupt"), "{e}");
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let noise: Vec<u8> = (0..512)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect();
            let _ = parse(&noise);
            let mut bad = whole.clone();
            let i = (rng as usize) % bad.len();
            bad[i] ^= 0xff;
            let _ = parse(&bad);
        }
    }
}
