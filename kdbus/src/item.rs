//! Reading item chains (spec §5).
//!
//! Everything the kernel hands back — messages, info records, the HELLO
//! slice — is a fixed struct followed by items. [`Items`] walks such a chain
//! without trusting a single size, and [`Item`] decodes one item into its
//! typed payload. (Items are written with [`crate::raw::Buf`].)

use zerocopy::FromBytes;

use crate::abi::*;
use crate::error::{Error, Result};
use crate::raw::align8;

const HEADER: usize = KDBUS_ITEM_HEADER_SIZE as usize;

/// One item as found in a chain: type and payload bytes (without padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawItem<'a> {
    pub type_: u64,
    pub payload: &'a [u8],
    /// Byte offset of the item header within the walked region.
    pub offset: usize,
}

impl<'a> RawItem<'a> {
    /// Decodes the payload according to the item type.
    pub fn decode(&self) -> Result<Item<'a>> {
        Item::decode(self.type_, self.payload)
    }
}

/// A validating walk over an item chain.
///
/// Each item's `size` must be at least 16 and stay inside the region; the
/// walk must end exactly at the end of the region (the last item's padding
/// may be missing). The first violation is returned as an error and ends
/// the walk.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data` within the enclosing structure, for error messages.
    base: usize,
    failed: bool,
}

impl<'a> Items<'a> {
    /// Walks the items filling all of `data`.
    pub fn new(data: &'a [u8]) -> Items<'a> {
        Items::with_base(data, 0)
    }

    /// Walks `data`, reporting offsets relative to `base`.
    pub fn with_base(data: &'a [u8], base: usize) -> Items<'a> {
        Items {
            data,
            pos: 0,
            base,
            failed: false,
        }
    }

    /// Collects the whole chain, failing on the first malformed item.
    pub fn collect_raw(self) -> Result<Vec<RawItem<'a>>> {
        self.collect()
    }

    /// Decodes the whole chain into typed items.
    pub fn decode_all(self) -> Result<Vec<Item<'a>>> {
        self.map(|raw| raw.and_then(|raw| raw.decode())).collect()
    }

    fn fail(&mut self, detail: String) -> Option<Result<RawItem<'a>>> {
        self.failed = true;
        Some(Err(Error::malformed("item chain", detail)))
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<RawItem<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let remaining = self.data.len() - self.pos;
        if remaining == 0 {
            return None;
        }
        let at = self.base + self.pos;
        if remaining < HEADER {
            return self.fail(format!(
                "{remaining} trailing bytes at offset {at}, too short for an item header"
            ));
        }
        let word = |i: usize| {
            let start = self.pos + 8 * i;
            u64::from_ne_bytes(self.data[start..start + 8].try_into().unwrap())
        };
        let size = word(0);
        let type_ = word(1);
        if size < HEADER as u64 {
            return self.fail(format!(
                "item at offset {at} (type {type_:#x}) has size {size}, less than its header"
            ));
        }
        if size > remaining as u64 {
            return self.fail(format!(
                "item at offset {at} (type {type_:#x}) has size {size} but only {remaining} bytes remain"
            ));
        }
        let size = size as usize;
        let payload = &self.data[self.pos + HEADER..self.pos + size];
        let offset = self.pos;
        // The last item may omit its trailing padding.
        self.pos = (self.pos + align8(size)).min(self.data.len());
        Some(Ok(RawItem {
            type_,
            payload,
            offset: self.base + offset,
        }))
    }
}

/// A decoded item. Variants borrow from the buffer the item was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    Negotiate(Vec<u64>),
    /// Sender side: `address` of the data.
    PayloadVec {
        size: u64,
        address: u64,
    },
    /// Receiver side: data at `offset` from the start of the message;
    /// `offset == !0` marks a padding vec (zeros, not addressable).
    PayloadOff {
        size: u64,
        offset: u64,
    },
    PayloadMemfd(kdbus_memfd),
    Fds(Vec<i32>),
    CancelFd(i32),
    BloomParameter(kdbus_bloom_parameter),
    BloomFilter {
        generation: u64,
        words: Vec<u64>,
    },
    BloomMask(Vec<u64>),
    DstName(&'a str),
    MakeName(&'a str),
    AttachFlagsSend(u64),
    AttachFlagsRecv(u64),
    Id(u64),
    Name(&'a str),
    DstId(u64),
    Timestamp(kdbus_timestamp),
    Creds(kdbus_creds),
    Pids(kdbus_pids),
    Auxgroups(Vec<u64>),
    OwnedName {
        flags: u64,
        name: &'a str,
    },
    TidComm(&'a [u8]),
    PidComm(&'a [u8]),
    Exe(&'a [u8]),
    /// The NUL-separated argument vector, final NUL removed.
    Cmdline(&'a [u8]),
    Cgroup(&'a [u8]),
    Caps(CapsItem),
    Seclabel(&'a [u8]),
    Audit(kdbus_audit),
    ConnDescription(&'a str),
    PolicyAccess(kdbus_policy_access),
    NameAdd(NameChangeItem<'a>),
    NameRemove(NameChangeItem<'a>),
    NameChange(NameChangeItem<'a>),
    IdAdd(kdbus_notify_id_change),
    IdRemove(kdbus_notify_id_change),
    ReplyTimeout,
    ReplyDead,
    /// A type this library does not know (kept, not rejected: the kernel
    /// may be newer).
    Unknown {
        type_: u64,
        payload: &'a [u8],
    },
}

/// Payload of `KDBUS_ITEM_CAPS`: `last_cap`, then four sets (inheritable,
/// permitted, effective, bounding) of 32-bit words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapsItem {
    pub last_cap: u32,
    /// The four sets, each `words_per_set` long, back to back.
    pub words: Vec<u32>,
    pub words_per_set: usize,
}

/// Payload of a `NAME_ADD`/`NAME_REMOVE`/`NAME_CHANGE` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameChangeItem<'a> {
    pub old_id: kdbus_notify_id_change,
    pub new_id: kdbus_notify_id_change,
    /// Absent in match rules that do not filter on a name.
    pub name: Option<&'a str>,
}

impl<'a> Item<'a> {
    /// Decodes a payload of the given item type, checking its size and
    /// content rules (spec §5.3).
    pub fn decode(type_: u64, p: &'a [u8]) -> Result<Item<'a>> {
        let item = match type_ {
            KDBUS_ITEM_NEGOTIATE => Item::Negotiate(u64s(type_, p)?),
            KDBUS_ITEM_PAYLOAD_VEC => {
                let v: kdbus_vec = exact(type_, p)?;
                Item::PayloadVec {
                    size: v.size,
                    address: v.address_or_offset,
                }
            }
            KDBUS_ITEM_PAYLOAD_OFF => {
                let v: kdbus_vec = exact(type_, p)?;
                Item::PayloadOff {
                    size: v.size,
                    offset: v.address_or_offset,
                }
            }
            KDBUS_ITEM_PAYLOAD_MEMFD => Item::PayloadMemfd(exact(type_, p)?),
            KDBUS_ITEM_FDS => {
                if p.len() % 4 != 0 {
                    return Err(bad_size(type_, p.len(), "a multiple of 4"));
                }
                Item::Fds(
                    p.chunks_exact(4)
                        .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
                        .collect(),
                )
            }
            KDBUS_ITEM_CANCEL_FD => {
                if p.len() != 4 {
                    return Err(bad_size(type_, p.len(), "4"));
                }
                Item::CancelFd(i32::from_ne_bytes(p.try_into().unwrap()))
            }
            KDBUS_ITEM_BLOOM_PARAMETER => Item::BloomParameter(exact(type_, p)?),
            KDBUS_ITEM_BLOOM_FILTER => {
                if p.len() < 8 {
                    return Err(bad_size(type_, p.len(), "at least 8"));
                }
                let words = u64s(type_, p)?;
                Item::BloomFilter {
                    generation: words[0],
                    words: words[1..].to_vec(),
                }
            }
            KDBUS_ITEM_BLOOM_MASK => Item::BloomMask(u64s(type_, p)?),
            KDBUS_ITEM_DST_NAME => Item::DstName(utf8(type_, c_string(type_, p)?)?),
            KDBUS_ITEM_MAKE_NAME => Item::MakeName(utf8(type_, c_string(type_, p)?)?),
            KDBUS_ITEM_ATTACH_FLAGS_SEND => Item::AttachFlagsSend(one_u64(type_, p)?),
            KDBUS_ITEM_ATTACH_FLAGS_RECV => Item::AttachFlagsRecv(one_u64(type_, p)?),
            KDBUS_ITEM_ID => Item::Id(one_u64(type_, p)?),
            KDBUS_ITEM_NAME => Item::Name(utf8(type_, c_string(type_, p)?)?),
            KDBUS_ITEM_DST_ID => Item::DstId(one_u64(type_, p)?),
            KDBUS_ITEM_TIMESTAMP => Item::Timestamp(at_least(type_, p)?),
            KDBUS_ITEM_CREDS => Item::Creds(at_least(type_, p)?),
            KDBUS_ITEM_PIDS => Item::Pids(at_least(type_, p)?),
            KDBUS_ITEM_AUXGROUPS => Item::Auxgroups(u64s(type_, p)?),
            KDBUS_ITEM_OWNED_NAME => {
                if p.len() < 8 {
                    return Err(bad_size(type_, p.len(), "at least 8"));
                }
                let flags = u64::from_ne_bytes(p[..8].try_into().unwrap());
                Item::OwnedName {
                    flags,
                    name: utf8(type_, c_string(type_, &p[8..])?)?,
                }
            }
            KDBUS_ITEM_TID_COMM => Item::TidComm(c_string(type_, p)?),
            KDBUS_ITEM_PID_COMM => Item::PidComm(c_string(type_, p)?),
            KDBUS_ITEM_EXE => Item::Exe(c_string(type_, p)?),
            KDBUS_ITEM_CMDLINE => Item::Cmdline(nul_terminated(type_, p)?),
            KDBUS_ITEM_CGROUP => Item::Cgroup(c_string(type_, p)?),
            KDBUS_ITEM_CAPS => Item::Caps(caps(p)?),
            KDBUS_ITEM_SECLABEL => Item::Seclabel(c_string(type_, p)?),
            KDBUS_ITEM_AUDIT => Item::Audit(exact(type_, p)?),
            KDBUS_ITEM_CONN_DESCRIPTION => Item::ConnDescription(utf8(type_, c_string(type_, p)?)?),
            KDBUS_ITEM_POLICY_ACCESS => Item::PolicyAccess(exact(type_, p)?),
            KDBUS_ITEM_NAME_ADD => Item::NameAdd(name_change(type_, p)?),
            KDBUS_ITEM_NAME_REMOVE => Item::NameRemove(name_change(type_, p)?),
            KDBUS_ITEM_NAME_CHANGE => Item::NameChange(name_change(type_, p)?),
            KDBUS_ITEM_ID_ADD => Item::IdAdd(exact(type_, p)?),
            KDBUS_ITEM_ID_REMOVE => Item::IdRemove(exact(type_, p)?),
            KDBUS_ITEM_REPLY_TIMEOUT | KDBUS_ITEM_REPLY_DEAD => {
                if !p.is_empty() {
                    return Err(bad_size(type_, p.len(), "0"));
                }
                if type_ == KDBUS_ITEM_REPLY_TIMEOUT {
                    Item::ReplyTimeout
                } else {
                    Item::ReplyDead
                }
            }
            _ => Item::Unknown { type_, payload: p },
        };
        Ok(item)
    }
}

/// The name of an item type, for messages.
pub fn type_name(type_: u64) -> &'static str {
    match type_ {
        KDBUS_ITEM_NEGOTIATE => "NEGOTIATE",
        KDBUS_ITEM_PAYLOAD_VEC => "PAYLOAD_VEC",
        KDBUS_ITEM_PAYLOAD_OFF => "PAYLOAD_OFF",
        KDBUS_ITEM_PAYLOAD_MEMFD => "PAYLOAD_MEMFD",
        KDBUS_ITEM_FDS => "FDS",
        KDBUS_ITEM_CANCEL_FD => "CANCEL_FD",
        KDBUS_ITEM_BLOOM_PARAMETER => "BLOOM_PARAMETER",
        KDBUS_ITEM_BLOOM_FILTER => "BLOOM_FILTER",
        KDBUS_ITEM_BLOOM_MASK => "BLOOM_MASK",
        KDBUS_ITEM_DST_NAME => "DST_NAME",
        KDBUS_ITEM_MAKE_NAME => "MAKE_NAME",
        KDBUS_ITEM_ATTACH_FLAGS_SEND => "ATTACH_FLAGS_SEND",
        KDBUS_ITEM_ATTACH_FLAGS_RECV => "ATTACH_FLAGS_RECV",
        KDBUS_ITEM_ID => "ID",
        KDBUS_ITEM_NAME => "NAME",
        KDBUS_ITEM_DST_ID => "DST_ID",
        KDBUS_ITEM_TIMESTAMP => "TIMESTAMP",
        KDBUS_ITEM_CREDS => "CREDS",
        KDBUS_ITEM_PIDS => "PIDS",
        KDBUS_ITEM_AUXGROUPS => "AUXGROUPS",
        KDBUS_ITEM_OWNED_NAME => "OWNED_NAME",
        KDBUS_ITEM_TID_COMM => "TID_COMM",
        KDBUS_ITEM_PID_COMM => "PID_COMM",
        KDBUS_ITEM_EXE => "EXE",
        KDBUS_ITEM_CMDLINE => "CMDLINE",
        KDBUS_ITEM_CGROUP => "CGROUP",
        KDBUS_ITEM_CAPS => "CAPS",
        KDBUS_ITEM_SECLABEL => "SECLABEL",
        KDBUS_ITEM_AUDIT => "AUDIT",
        KDBUS_ITEM_CONN_DESCRIPTION => "CONN_DESCRIPTION",
        KDBUS_ITEM_POLICY_ACCESS => "POLICY_ACCESS",
        KDBUS_ITEM_NAME_ADD => "NAME_ADD",
        KDBUS_ITEM_NAME_REMOVE => "NAME_REMOVE",
        KDBUS_ITEM_NAME_CHANGE => "NAME_CHANGE",
        KDBUS_ITEM_ID_ADD => "ID_ADD",
        KDBUS_ITEM_ID_REMOVE => "ID_REMOVE",
        KDBUS_ITEM_REPLY_TIMEOUT => "REPLY_TIMEOUT",
        KDBUS_ITEM_REPLY_DEAD => "REPLY_DEAD",
        _ => "unknown",
    }
}

fn bad_size(type_: u64, len: usize, expected: &str) -> Error {
    Error::malformed(
        "item",
        format!(
            "{} item (type {type_:#x}) has a {len}-byte payload, expected {expected}",
            type_name(type_)
        ),
    )
}

/// A payload that must be exactly one struct.
fn exact<T: FromBytes>(type_: u64, p: &[u8]) -> Result<T> {
    T::read_from_bytes(p)
        .map_err(|_| bad_size(type_, p.len(), &std::mem::size_of::<T>().to_string()))
}

/// A payload that starts with a struct (newer kernels may append fields).
fn at_least<T: FromBytes>(type_: u64, p: &[u8]) -> Result<T> {
    T::read_from_prefix(p).map(|(v, _)| v).map_err(|_| {
        bad_size(
            type_,
            p.len(),
            &format!("at least {}", std::mem::size_of::<T>()),
        )
    })
}

fn one_u64(type_: u64, p: &[u8]) -> Result<u64> {
    exact::<u64>(type_, p)
}

fn u64s(type_: u64, p: &[u8]) -> Result<Vec<u64>> {
    if p.len() % 8 != 0 {
        return Err(bad_size(type_, p.len(), "a multiple of 8"));
    }
    Ok(p.chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect())
}

/// A string payload: exactly one NUL, as the last byte. Returns the bytes
/// before it.
fn c_string(type_: u64, p: &[u8]) -> Result<&[u8]> {
    let s = nul_terminated(type_, p)?;
    if s.contains(&0) {
        return Err(Error::malformed(
            "item",
            format!("{} string contains a NUL before its end", type_name(type_)),
        ));
    }
    Ok(s)
}

/// A payload ending in NUL (possibly holding more NULs, like CMDLINE).
fn nul_terminated(type_: u64, p: &[u8]) -> Result<&[u8]> {
    match p.split_last() {
        Some((0, s)) => Ok(s),
        _ => Err(Error::malformed(
            "item",
            format!("{} string is not NUL-terminated", type_name(type_)),
        )),
    }
}

fn utf8(type_: u64, s: &[u8]) -> Result<&str> {
    std::str::from_utf8(s)
        .map_err(|_| Error::malformed("item", format!("{} is not valid UTF-8", type_name(type_))))
}

fn caps(p: &[u8]) -> Result<CapsItem> {
    if p.len() < 4 || (p.len() - 4) % 16 != 0 {
        return Err(bad_size(
            KDBUS_ITEM_CAPS,
            p.len(),
            "4 + four sets of 32-bit words",
        ));
    }
    let last_cap = u32::from_ne_bytes(p[..4].try_into().unwrap());
    let words: Vec<u32> = p[4..]
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    let words_per_set = words.len() / 4;
    if words_per_set < (last_cap as usize / 32) + 1 {
        return Err(Error::malformed(
            "item",
            format!("CAPS item: {words_per_set} words per set cannot hold capability {last_cap}"),
        ));
    }
    Ok(CapsItem {
        last_cap,
        words,
        words_per_set,
    })
}

fn name_change(type_: u64, p: &[u8]) -> Result<NameChangeItem<'_>> {
    let (change, rest) = kdbus_notify_name_change::read_from_prefix(p)
        .map_err(|_| bad_size(type_, p.len(), "at least 32"))?;
    let name = if rest.is_empty() {
        None
    } else {
        Some(utf8(type_, c_string(type_, rest)?)?)
    };
    Ok(NameChangeItem {
        old_id: change.old_id,
        new_id: change.new_id,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Buf;

    fn items(buf: &Buf) -> Result<Vec<Item<'_>>> {
        Items::new(buf.as_bytes()).decode_all()
    }

    #[test]
    fn walks_a_well_formed_chain() {
        let mut buf = Buf::new();
        buf.push_str_item(KDBUS_ITEM_NAME, "org.example.A");
        buf.push_u64_item(KDBUS_ITEM_ID, 7);
        buf.push_item(
            KDBUS_ITEM_FDS,
            &[3i32.to_ne_bytes(), (-1i32).to_ne_bytes()].concat(),
        );
        buf.push_item(KDBUS_ITEM_REPLY_DEAD, &[]);
        assert_eq!(
            items(&buf).unwrap(),
            vec![
                Item::Name("org.example.A"),
                Item::Id(7),
                Item::Fds(vec![3, -1]),
                Item::ReplyDead,
            ]
        );
    }

    #[test]
    fn last_item_may_omit_its_padding() {
        let mut buf = Buf::new();
        buf.push_str_item(KDBUS_ITEM_NAME, "a.b"); // size 20
        buf.resize(20);
        assert_eq!(items(&buf).unwrap(), vec![Item::Name("a.b")]);
    }

    #[test]
    fn rejects_an_item_smaller_than_its_header() {
        let mut buf = Buf::new();
        buf.push_u64_item(KDBUS_ITEM_ID, 1);
        buf.set_u64(0, 8);
        let err = items(&buf).unwrap_err();
        assert!(err.is_malformed());
        assert!(err.to_string().contains("size 8"), "{err}");
    }

    #[test]
    fn rejects_an_item_running_past_the_region() {
        let mut buf = Buf::new();
        buf.push_u64_item(KDBUS_ITEM_ID, 1);
        buf.set_u64(0, 25);
        assert!(items(&buf).unwrap_err().to_string().contains("only 24"));
        buf.set_u64(0, u64::MAX);
        assert!(items(&buf).is_err(), "no overflow on a huge size");
    }

    #[test]
    fn rejects_trailing_garbage() {
        let mut buf = Buf::new();
        buf.push_u64_item(KDBUS_ITEM_ID, 1);
        buf.extend(&[0; 8]);
        let mut walk = Items::with_base(buf.as_bytes(), 64);
        assert!(walk.next().unwrap().is_ok());
        let err = walk.next().unwrap().unwrap_err();
        assert!(err.to_string().contains("offset 88"), "{err}");
        assert!(walk.next().is_none(), "the walk stops at the first error");
    }

    #[test]
    fn an_empty_region_has_no_items() {
        assert_eq!(Items::new(&[]).count(), 0);
    }

    #[test]
    fn strings_must_be_terminated_exactly_once() {
        assert!(Item::decode(KDBUS_ITEM_NAME, b"a.b").is_err());
        assert!(Item::decode(KDBUS_ITEM_NAME, b"a\0b\0").is_err());
        assert!(Item::decode(KDBUS_ITEM_NAME, b"").is_err());
        assert_eq!(
            Item::decode(KDBUS_ITEM_NAME, b"a.b\0").unwrap(),
            Item::Name("a.b")
        );
        assert!(Item::decode(KDBUS_ITEM_DST_NAME, b"\xff.b\0").is_err());
        // CMDLINE keeps its argument separators.
        assert_eq!(
            Item::decode(KDBUS_ITEM_CMDLINE, b"ls\0-l\0").unwrap(),
            Item::Cmdline(b"ls\0-l")
        );
    }

    #[test]
    fn fixed_payloads_are_size_checked() {
        assert!(Item::decode(KDBUS_ITEM_ID, &[0; 7]).is_err());
        assert!(Item::decode(KDBUS_ITEM_ID, &[0; 16]).is_err());
        assert!(Item::decode(KDBUS_ITEM_PAYLOAD_OFF, &[0; 8]).is_err());
        assert!(Item::decode(KDBUS_ITEM_CREDS, &[0; 63]).is_err());
        assert!(Item::decode(KDBUS_ITEM_CREDS, &[0; 72]).is_ok(), "may grow");
        assert!(Item::decode(KDBUS_ITEM_FDS, &[0; 6]).is_err());
        assert!(Item::decode(KDBUS_ITEM_REPLY_TIMEOUT, &[0; 8]).is_err());
        assert!(Item::decode(KDBUS_ITEM_BLOOM_FILTER, &[0; 4]).is_err());
        assert!(Item::decode(KDBUS_ITEM_NAME_ADD, &[0; 31]).is_err());
    }

    #[test]
    fn decodes_name_changes_with_and_without_a_name() {
        let change = kdbus_notify_name_change {
            old_id: kdbus_notify_id_change { id: 1, flags: 2 },
            new_id: kdbus_notify_id_change { id: 3, flags: 4 },
        };
        let mut buf = Buf::new();
        buf.push_item_parts(
            KDBUS_ITEM_NAME_CHANGE,
            &[zerocopy::IntoBytes::as_bytes(&change), b"org.x.Y\0"],
        );
        buf.push_struct_item(KDBUS_ITEM_NAME_ADD, &change);
        let got = items(&buf).unwrap();
        assert_eq!(
            got[0],
            Item::NameChange(NameChangeItem {
                old_id: change.old_id,
                new_id: change.new_id,
                name: Some("org.x.Y"),
            })
        );
        assert!(matches!(&got[1], Item::NameAdd(n) if n.name.is_none()));
    }

    #[test]
    fn decodes_caps_sets() {
        let mut p = 40u32.to_ne_bytes().to_vec();
        for w in 0..8u32 {
            p.extend(w.to_ne_bytes());
        }
        let Item::Caps(caps) = Item::decode(KDBUS_ITEM_CAPS, &p).unwrap() else {
            panic!()
        };
        assert_eq!(caps.last_cap, 40);
        assert_eq!(caps.words_per_set, 2);
        // last_cap 70 needs 3 words per set.
        p[..4].copy_from_slice(&70u32.to_ne_bytes());
        assert!(Item::decode(KDBUS_ITEM_CAPS, &p).is_err());
        assert!(Item::decode(KDBUS_ITEM_CAPS, &p[..10]).is_err());
    }

    #[test]
    fn unknown_types_are_kept() {
        let got = Item::decode(0x7777, b"xyz").unwrap();
        assert_eq!(
            got,
            Item::Unknown {
                type_: 0x7777,
                payload: b"xyz"
            }
        );
    }

    #[test]
    fn bloom_filter_splits_generation_and_bits() {
        let mut p = Vec::new();
        for w in [5u64, 0xff, 0x100] {
            p.extend(w.to_ne_bytes());
        }
        assert_eq!(
            Item::decode(KDBUS_ITEM_BLOOM_FILTER, &p).unwrap(),
            Item::BloomFilter {
                generation: 5,
                words: vec![0xff, 0x100]
            }
        );
    }
}
