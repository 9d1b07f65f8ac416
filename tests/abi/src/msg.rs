//! Messages: building `kdbus_msg` arguments and parsing what the kernel
//! writes into the receive pool.

use std::marker::PhantomData;
use std::os::fd::RawFd;

use kdbus::abi::*;

use crate::raw::{item, item_str, read_struct, struct_bytes, Buf};

/// Builds a `kdbus_msg`. Payload vectors keep pointing at the caller's
/// data, which must outlive the SEND (the lifetime enforces it).
#[derive(Clone)]
pub struct MsgBuilder<'a> {
    pub hdr: kdbus_msg,
    pub items: Vec<u8>,
    _data: PhantomData<&'a [u8]>,
}

impl<'a> MsgBuilder<'a> {
    /// A message to `dst_id` with a fresh cookie and D-Bus payload type.
    pub fn new(dst_id: u64) -> MsgBuilder<'a> {
        MsgBuilder {
            hdr: kdbus_msg {
                dst_id,
                payload_type: KDBUS_PAYLOAD_DBUS,
                cookie: crate::next_cookie(),
                ..Default::default()
            },
            items: Vec::new(),
            _data: PhantomData,
        }
    }

    /// A message to a well-known name.
    pub fn to_name(name: &str) -> MsgBuilder<'a> {
        MsgBuilder::new(KDBUS_DST_ID_NAME).dst_name(name)
    }

    /// A signal (broadcast unless `dst_id` names a peer) with an empty
    /// bloom filter of `bloom_size` bytes.
    pub fn signal(dst_id: u64, bloom_size: usize) -> MsgBuilder<'a> {
        MsgBuilder::new(dst_id)
            .flags(KDBUS_MSG_SIGNAL)
            .bloom(0, &vec![0u64; bloom_size / 8])
    }

    pub fn flags(mut self, flags: u64) -> Self {
        self.hdr.flags = flags;
        self
    }

    pub fn cookie(mut self, cookie: u64) -> Self {
        self.hdr.cookie = cookie;
        self
    }

    pub fn priority(mut self, priority: i64) -> Self {
        self.hdr.priority = priority;
        self
    }

    pub fn src_id(mut self, id: u64) -> Self {
        self.hdr.src_id = id;
        self
    }

    pub fn payload_type(mut self, t: u64) -> Self {
        self.hdr.payload_type = t;
        self
    }

    /// A method call expecting a reply before the absolute deadline.
    pub fn expect_reply(mut self, deadline_ns: u64) -> Self {
        self.hdr.flags |= KDBUS_MSG_EXPECT_REPLY;
        self.hdr.timeout_ns_or_cookie_reply = deadline_ns;
        self
    }

    /// A reply to the call with `cookie`.
    pub fn reply_to(mut self, cookie: u64) -> Self {
        self.hdr.timeout_ns_or_cookie_reply = cookie;
        self
    }

    pub fn timeout_raw(mut self, v: u64) -> Self {
        self.hdr.timeout_ns_or_cookie_reply = v;
        self
    }

    pub fn vec(mut self, data: &'a [u8]) -> Self {
        let v = kdbus_vec {
            size: data.len() as u64,
            address_or_offset: data.as_ptr() as u64,
        };
        self.items
            .extend(item(KDBUS_ITEM_PAYLOAD_VEC, struct_bytes(&v)));
        self
    }

    /// A vector without data: `size` of padding.
    pub fn vec_padding(mut self, size: u64) -> Self {
        let v = kdbus_vec {
            size,
            address_or_offset: 0,
        };
        self.items
            .extend(item(KDBUS_ITEM_PAYLOAD_VEC, struct_bytes(&v)));
        self
    }

    /// A vector with an arbitrary address (for fault tests).
    pub fn vec_raw(mut self, address: u64, size: u64) -> Self {
        let v = kdbus_vec {
            size,
            address_or_offset: address,
        };
        self.items
            .extend(item(KDBUS_ITEM_PAYLOAD_VEC, struct_bytes(&v)));
        self
    }

    pub fn dst_name(mut self, name: &str) -> Self {
        self.items.extend(item_str(KDBUS_ITEM_DST_NAME, name));
        self
    }

    pub fn bloom(mut self, generation: u64, words: &[u64]) -> Self {
        let mut p = generation.to_ne_bytes().to_vec();
        for w in words {
            p.extend_from_slice(&w.to_ne_bytes());
        }
        self.items.extend(item(KDBUS_ITEM_BLOOM_FILTER, &p));
        self
    }

    pub fn fds(mut self, fds: &[RawFd]) -> Self {
        let p: Vec<u8> = fds.iter().flat_map(|f| f.to_ne_bytes()).collect();
        self.items.extend(item(KDBUS_ITEM_FDS, &p));
        self
    }

    pub fn memfd(mut self, fd: RawFd, start: u64, size: u64) -> Self {
        let m = kdbus_memfd {
            start,
            size,
            fd,
            __pad: 0,
        };
        self.items
            .extend(item(KDBUS_ITEM_PAYLOAD_MEMFD, struct_bytes(&m)));
        self
    }

    /// Appends an arbitrary, already framed item.
    pub fn raw_item(mut self, bytes: &[u8]) -> Self {
        self.items.extend_from_slice(bytes);
        self
    }

    pub fn build(&self) -> Buf {
        crate::raw::cmd(&self.hdr, std::slice::from_ref(&self.items))
    }
}

/// One item of a received message or reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub ty: u64,
    /// Payload (without the 16-byte header, without padding).
    pub data: Vec<u8>,
}

impl Item {
    pub fn u64s(&self) -> Vec<u64> {
        self.data
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    pub fn u64(&self) -> u64 {
        self.u64s()[0]
    }

    /// The payload as a string, without the terminating NUL.
    pub fn str(&self) -> &str {
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.data.len());
        std::str::from_utf8(&self.data[..end]).expect("utf-8 string item")
    }

    pub fn as_struct<T: Copy + Default>(&self) -> T {
        read_struct(&self.data)
    }

    /// kdbus_name {flags, name}: (flags, name).
    pub fn name(&self) -> (u64, String) {
        let flags = u64::from_ne_bytes(self.data[..8].try_into().unwrap());
        let rest = &self.data[8..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        (flags, String::from_utf8(rest[..end].to_vec()).unwrap())
    }

    /// kdbus_notify_name_change: (old id, old flags, new id, new flags, name).
    pub fn name_change(&self) -> (u64, u64, u64, u64, String) {
        let v: kdbus_notify_name_change = read_struct(&self.data);
        let rest = &self.data[32..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        (
            v.old_id.id,
            v.old_id.flags,
            v.new_id.id,
            v.new_id.flags,
            String::from_utf8(rest[..end].to_vec()).unwrap(),
        )
    }
}

/// Parses an item stream.
pub fn parse_items(bytes: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos + 16 <= bytes.len() {
        let size = u64::from_ne_bytes(bytes[pos..pos + 8].try_into().unwrap()) as usize;
        let ty = u64::from_ne_bytes(bytes[pos + 8..pos + 16].try_into().unwrap());
        assert!(
            size >= 16 && pos + size <= bytes.len(),
            "malformed item at {pos}: size {size}, stream {}",
            bytes.len()
        );
        items.push(Item {
            ty,
            data: bytes[pos + 16..pos + size].to_vec(),
        });
        pos += size.div_ceil(8) * 8;
    }
    items
}

/// A message as the kernel wrote it into the pool.
#[derive(Clone, Debug)]
pub struct Msg {
    pub hdr: kdbus_msg,
    pub items: Vec<Item>,
    /// The whole slice (header, items, metadata, payload).
    pub slice: Vec<u8>,
}

impl Msg {
    pub fn parse(slice: Vec<u8>) -> Msg {
        let hdr: kdbus_msg = read_struct(&slice);
        let end = (hdr.size as usize).min(slice.len());
        let items = parse_items(&slice[64..end]);
        Msg { hdr, items, slice }
    }

    pub fn item(&self, ty: u64) -> Option<&Item> {
        self.items.iter().find(|i| i.ty == ty)
    }

    pub fn items_of(&self, ty: u64) -> Vec<&Item> {
        self.items.iter().filter(|i| i.ty == ty).collect()
    }

    pub fn has(&self, ty: u64) -> bool {
        self.item(ty).is_some()
    }

    /// The inline payload: the data of every PAYLOAD_OFF with an offset,
    /// concatenated.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for i in self.items_of(KDBUS_ITEM_PAYLOAD_OFF) {
            let v: kdbus_vec = i.as_struct();
            if v.address_or_offset == !0 {
                continue;
            }
            let off = v.address_or_offset as usize;
            out.extend_from_slice(&self.slice[off..off + v.size as usize]);
        }
        out
    }

    /// The notification item of a kernel message.
    pub fn notification(&self) -> &Item {
        assert_eq!(self.hdr.src_id, KDBUS_SRC_ID_KERNEL, "not a kernel message");
        &self.items[0]
    }

    pub fn cookie_reply(&self) -> u64 {
        self.hdr.timeout_ns_or_cookie_reply
    }
}

/// A `kdbus_info` record (CONN_INFO, BUS_CREATOR_INFO, LIST).
#[derive(Clone, Debug)]
pub struct Info {
    pub size: u64,
    pub id: u64,
    pub flags: u64,
    pub items: Vec<Item>,
}

impl Info {
    pub fn parse(bytes: &[u8]) -> Info {
        let hdr: kdbus_info = read_struct(bytes);
        let end = (hdr.size as usize).min(bytes.len());
        Info {
            size: hdr.size,
            id: hdr.id,
            flags: hdr.flags,
            items: parse_items(&bytes[24..end]),
        }
    }

    /// All records of a LIST result.
    pub fn parse_list(bytes: &[u8]) -> Vec<Info> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let info = Info::parse(&bytes[pos..]);
            assert!(
                info.size >= 24 && info.size % 8 == 0,
                "bad record size {}",
                info.size
            );
            pos += info.size as usize;
            out.push(info);
        }
        out
    }

    pub fn item(&self, ty: u64) -> Option<&Item> {
        self.items.iter().find(|i| i.ty == ty)
    }

    pub fn items_of(&self, ty: u64) -> Vec<&Item> {
        self.items.iter().filter(|i| i.ty == ty).collect()
    }
}
