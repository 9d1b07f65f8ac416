//! The header field array (`a(yv)`) read and written field by field.
//!
//! zvariant represents a signature of several complete types ("ss") as
//! one structure, so a body signature would not survive a trip through
//! its `Value` ("ss" and "(ss)" become the same thing). The known fields
//! are therefore read and written here directly: each is a byte code and
//! a variant of type `o`, `s`, `u` or `g`. Fields of unknown codes are
//! skipped with zvariant's help, whatever their type.

use zvariant::serialized::{Context, Data};
use zvariant::{Endian, Value};

use super::Error;

/// A field value of one of the types the known fields use, borrowed from
/// the message (reading) or the header (writing): a message crosses the
/// bridge with no copy of its fields but the parsed header's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// `o`, `s` or `g`, with its type code.
    Text(u8, &'a str),
    /// `u`.
    U32(u32),
    /// Any other type (only in fields the bridge does not know).
    Other,
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

fn bad(what: impl Into<String>) -> Error {
    Error::Invalid(what.into())
}

/// Reads the fields that start at offset 16 and span `len` bytes, handing
/// each to `each` in order.
pub fn read_fields<'a>(
    bytes: &'a [u8],
    endian: Endian,
    len: usize,
    mut each: impl FnMut(u8, FieldValue<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    let end = 16usize
        .checked_add(len)
        .filter(|e| *e <= bytes.len())
        .ok_or_else(|| bad("header fields run past the message"))?;
    let u32_at = |at: usize| -> Result<u32, Error> {
        let b: [u8; 4] = bytes
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("truncated header field"))?;
        Ok(match endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    };
    // `n` bytes at `at` and the NUL after them.
    let raw_at = |at: usize, n: usize| -> Result<&'a [u8], Error> {
        bytes
            .get(at..at + n + 1)
            .filter(|r| r[n] == 0 && !r[..n].contains(&0))
            .map(|r| &r[..n])
            .ok_or_else(|| bad("header string without its NUL"))
    };
    let text_at = |at: usize, n: usize| -> Result<&'a str, Error> {
        std::str::from_utf8(raw_at(at, n)?).map_err(|_| bad("header string is not UTF-8"))
    };
    let mut pos = 16;
    while pos < end {
        pos = align(pos, 8);
        let code = *bytes.get(pos).ok_or_else(|| bad("truncated header"))?;
        let variant = pos + 1;
        let sig_len = *bytes.get(variant).ok_or_else(|| bad("truncated header"))? as usize;
        let sig = raw_at(variant + 1, sig_len)?;
        let value_at = variant + 2 + sig_len;
        let (value, next) = match sig {
            b"o" | b"s" => {
                let at = align(value_at, 4);
                let n = u32_at(at)? as usize;
                (
                    FieldValue::Text(sig[0], text_at(at + 4, n)?),
                    at + 4 + n + 1,
                )
            }
            b"g" => {
                let n = *bytes.get(value_at).ok_or_else(|| bad("truncated header"))? as usize;
                (
                    FieldValue::Text(b'g', text_at(value_at + 1, n)?),
                    value_at + 1 + n + 1,
                )
            }
            b"u" => {
                let at = align(value_at, 4);
                (FieldValue::U32(u32_at(at)?), at + 4)
            }
            _ => {
                let data = Data::new(&bytes[..end], Context::new_dbus(endian, 0));
                let (_, used): (Value<'_>, usize) = data
                    .slice(variant..)
                    .deserialize()
                    .map_err(|e| bad(format!("malformed header field {code}: {e}")))?;
                (FieldValue::Other, variant + used)
            }
        };
        if next > end {
            return Err(bad("a header field runs past the field array"));
        }
        each(code, value)?;
        pos = next;
    }
    Ok(())
}

/// Writes the fixed header and the fields; returns the bytes padded to 8.
pub fn write(
    fixed: [u8; 4],
    body_len: u32,
    serial: u32,
    endian: Endian,
    fields: &[(u8, FieldValue<'_>)],
) -> Vec<u8> {
    let u32_bytes = |v: u32| match endian {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    };
    // Each field at most: padding, code, signature, padding, length, text
    // and its NUL.
    let room: usize = fields
        .iter()
        .map(|(_, v)| match v {
            FieldValue::Text(_, t) => 20 + t.len(),
            _ => 20,
        })
        .sum();
    let mut out = Vec::with_capacity(16 + room + 8);
    out.extend_from_slice(&fixed);
    out.extend_from_slice(&u32_bytes(body_len));
    out.extend_from_slice(&u32_bytes(serial));
    out.extend_from_slice(&[0; 4]); // the array length, below
    for (code, value) in fields {
        out.resize(align(out.len(), 8), 0);
        out.push(*code);
        match value {
            FieldValue::Text(b'g', text) => {
                out.extend_from_slice(&[1, b'g', 0, text.len() as u8]);
                out.extend_from_slice(text.as_bytes());
                out.push(0);
            }
            FieldValue::Text(kind, text) => {
                out.extend_from_slice(&[1, *kind, 0]);
                out.resize(align(out.len(), 4), 0);
                out.extend_from_slice(&u32_bytes(text.len() as u32));
                out.extend_from_slice(text.as_bytes());
                out.push(0);
            }
            FieldValue::U32(v) => {
                out.extend_from_slice(&[1, b'u', 0]);
                out.resize(align(out.len(), 4), 0);
                out.extend_from_slice(&u32_bytes(*v));
            }
            FieldValue::Other => unreachable!("the bridge writes only known fields"),
        }
    }
    let fields_len = (out.len() - 16) as u32;
    out[12..16].copy_from_slice(&u32_bytes(fields_len));
    out.resize(align(out.len(), 8), 0);
    out
}
