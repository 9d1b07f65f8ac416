//! Info records: CONN_INFO, BUS_CREATOR_INFO and LIST results (spec §4.7–§4.9).

use zerocopy::FromBytes;

use crate::abi::*;
use crate::error::{Error, Result};
use crate::flags::{HelloFlags, MakeFlags, NameFlags};
use crate::item::{Item, Items};
use crate::meta::{Metadata, OwnedName};
use crate::raw::align8;

const INFO_LEN: usize = std::mem::size_of::<kdbus_info>();

/// Parses one `kdbus_info` record filling `bytes` (its `size` may leave
/// out the final padding).
pub fn parse_info(bytes: &[u8]) -> Result<(kdbus_info, Vec<Item<'_>>)> {
    let (info, _) = kdbus_info::read_from_prefix(bytes).map_err(|_| {
        Error::malformed(
            "info record",
            format!("{} bytes cannot hold a kdbus_info", bytes.len()),
        )
    })?;
    if info.size < INFO_LEN as u64 || info.size > bytes.len() as u64 {
        return Err(Error::malformed(
            "info record",
            format!("size {} outside {INFO_LEN}..={}", info.size, bytes.len()),
        ));
    }
    let items = Items::with_base(&bytes[INFO_LEN..info.size as usize], INFO_LEN).decode_all()?;
    Ok((info, items))
}

/// `KDBUS_CMD_CONN_INFO` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub id: u64,
    /// The connection's HELLO flags.
    pub flags: HelloFlags,
    pub metadata: Metadata,
}

impl ConnInfo {
    pub fn new(record: kdbus_info, items: &[Item<'_>]) -> ConnInfo {
        ConnInfo {
            id: record.id,
            flags: HelloFlags::from_bits_retain(record.flags),
            metadata: Metadata::from_items(items),
        }
    }
}

/// `KDBUS_CMD_BUS_CREATOR_INFO` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusCreatorInfo {
    /// The bus id (domain-unique).
    pub id: u64,
    /// The bus's access flags.
    pub flags: MakeFlags,
    /// The bus name (`<uid>-<name>`).
    pub name: String,
    /// The creator's metadata, collected at BUS_MAKE.
    pub metadata: Metadata,
}

impl BusCreatorInfo {
    pub fn new(record: kdbus_info, items: &[Item<'_>]) -> Result<BusCreatorInfo> {
        let name = items
            .iter()
            .find_map(|item| match item {
                Item::MakeName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .ok_or_else(|| Error::malformed("bus creator info", "no MAKE_NAME item"))?;
        Ok(BusCreatorInfo {
            id: record.id,
            flags: MakeFlags::from_bits_retain(record.flags),
            name,
            metadata: Metadata::from_items(items),
        })
    }
}

/// One `KDBUS_CMD_LIST` record: a connection, and one of its names (a
/// connection with several names appears once per name; with none, once
/// without a name if `KDBUS_LIST_UNIQUE` was asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub id: u64,
    /// The connection's HELLO flags.
    pub flags: HelloFlags,
    pub name: Option<OwnedName>,
}

/// Parses the concatenated records of a LIST slice.
pub fn parse_list(bytes: &[u8]) -> Result<Vec<ListEntry>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let size = kdbus_info::read_from_prefix(rest)
            .map(|(info, _)| info.size)
            .map_err(|_| {
                Error::malformed(
                    "list",
                    format!("{} trailing bytes at offset {pos}", rest.len()),
                )
            })?;
        if size < INFO_LEN as u64 || size > rest.len() as u64 {
            return Err(Error::malformed(
                "list",
                format!(
                    "record at offset {pos} has size {size}, {} bytes remain",
                    rest.len()
                ),
            ));
        }
        let (info, items) = parse_info(&rest[..size as usize])?;
        let name = items.iter().find_map(|item| match item {
            Item::OwnedName { flags, name } => Some(OwnedName {
                name: (*name).to_owned(),
                flags: NameFlags::from_bits_retain(*flags),
            }),
            _ => None,
        });
        out.push(ListEntry {
            id: info.id,
            flags: HelloFlags::from_bits_retain(info.flags),
            name,
        });
        pos = (pos + align8(size as usize)).min(bytes.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Buf;

    fn record(id: u64, flags: u64, name: Option<(u64, &str)>) -> Buf {
        let mut buf = Buf::with_header(&kdbus_info { size: 0, id, flags });
        if let Some((name_flags, name)) = name {
            buf.push_item_parts(
                KDBUS_ITEM_OWNED_NAME,
                &[&name_flags.to_ne_bytes(), name.as_bytes(), b"\0"],
            );
        }
        buf.finish();
        buf
    }

    #[test]
    fn parses_list_records() {
        let mut list = Buf::new();
        list.extend(record(1, 0, None).as_bytes());
        list.extend(
            record(
                2,
                KDBUS_HELLO_ACCEPT_FD,
                Some((KDBUS_NAME_PRIMARY, "org.a.B")),
            )
            .as_bytes(),
        );
        list.extend(
            record(
                3,
                KDBUS_HELLO_ACTIVATOR,
                Some((KDBUS_NAME_ACTIVATOR | KDBUS_NAME_IN_QUEUE, "org.c.D")),
            )
            .as_bytes(),
        );
        let entries = parse_list(list.as_bytes()).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0],
            ListEntry {
                id: 1,
                flags: HelloFlags::empty(),
                name: None
            }
        );
        assert_eq!(entries[1].name.as_ref().unwrap().name, "org.a.B");
        assert_eq!(entries[1].flags, HelloFlags::ACCEPT_FD);
        assert_eq!(
            entries[2].name.as_ref().unwrap().flags,
            NameFlags::ACTIVATOR | NameFlags::IN_QUEUE
        );
        assert_eq!(parse_list(&[]).unwrap(), []);
    }

    #[test]
    fn rejects_broken_list_records() {
        let mut list = Buf::new();
        list.extend(record(1, 0, Some((0, "a.b"))).as_bytes());
        let good = list.clone();
        list.set_u64(0, 16);
        assert!(
            parse_list(list.as_bytes()).is_err(),
            "size below the header"
        );
        list.set_u64(0, 1000);
        assert!(parse_list(list.as_bytes()).is_err(), "size past the slice");
        let mut trailing = good.clone();
        trailing.extend(&[1, 2, 3]);
        assert!(parse_list(trailing.as_bytes()).is_err(), "trailing bytes");
        let mut bad_item = good;
        bad_item.set_u64(24, 8);
        assert!(parse_list(bad_item.as_bytes()).is_err(), "bad item inside");
    }

    #[test]
    fn parses_conn_and_creator_info() {
        let mut buf = Buf::with_header(&kdbus_info {
            size: 0,
            id: 7,
            flags: KDBUS_MAKE_ACCESS_WORLD,
        });
        buf.push_str_item(KDBUS_ITEM_MAKE_NAME, "0-system");
        buf.push_str_item(KDBUS_ITEM_PID_COMM, "kdbus-init");
        buf.finish();
        let (record, items) = parse_info(buf.as_bytes()).unwrap();
        let bus = BusCreatorInfo::new(record, &items).unwrap();
        assert_eq!(bus.id, 7);
        assert_eq!(bus.name, "0-system");
        assert_eq!(bus.flags, MakeFlags::ACCESS_WORLD);
        assert_eq!(bus.metadata.pid_comm.as_deref(), Some("kdbus-init"));
        let conn = ConnInfo::new(record, &items);
        assert_eq!(conn.metadata.pid_comm.as_deref(), Some("kdbus-init"));

        let nameless = record_bytes(5);
        let (record, items) = parse_info(nameless.as_bytes()).unwrap();
        assert!(BusCreatorInfo::new(record, &items).is_err(), "needs a name");
    }

    fn record_bytes(id: u64) -> Buf {
        record(id, 0, None)
    }

    #[test]
    fn info_size_is_checked() {
        let mut buf = record_bytes(1);
        buf.set_u64(0, 100);
        assert!(parse_info(buf.as_bytes()).is_err());
        assert!(parse_info(&[0; 8]).is_err());
    }
}
