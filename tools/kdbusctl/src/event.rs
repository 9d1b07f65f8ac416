//! One message as kdbusctl prints it (`monitor`, `call`).

use kdbus::abi::{KDBUS_DST_ID_BROADCAST, KDBUS_DST_ID_NAME};
use kdbus::flags::names as flag_names;
use kdbus::{MessageView, Notification};
use serde::Serialize;

use crate::report::Process;

/// Payload bytes shown in text mode.
const PREVIEW: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The bus's message sequence number, when a timestamp was attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seqnum: Option<u64>,
    pub kind: &'static str,
    /// Sender id (0 = the kernel).
    pub src: u64,
    /// Destination id (`null` for broadcasts, 0 when sent to a name).
    pub dst: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_name: Option<String>,
    pub cookie: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_reply: Option<u64>,
    pub flags: Vec<String>,
    pub priority: i64,
    pub payload_size: usize,
    /// The payload as text, if it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The payload in hex, if it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_hex: Option<String>,
    pub fds: usize,
    pub memfds: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
    #[serde(skip_serializing_if = "Process::is_empty")]
    pub sender: Process,
}

pub fn describe_notification(n: &Notification) -> String {
    match n {
        Notification::IdAdd { id, flags } => {
            format!("connection {id} appeared ({})", crate::report::kind(*flags))
        }
        Notification::IdRemove { id, .. } => format!("connection {id} went away"),
        Notification::NameAdd { name, new_owner } => {
            format!("{name} acquired by {}", new_owner.id)
        }
        Notification::NameRemove { name, old_owner } => {
            format!("{name} released by {}", old_owner.id)
        }
        Notification::NameChange {
            name,
            old_owner,
            new_owner,
        } => format!("{name} moved from {} to {}", old_owner.id, new_owner.id),
        Notification::ReplyTimeout { cookie } => format!("call {cookie} timed out"),
        Notification::ReplyDead { cookie } => {
            format!("call {cookie} will not be answered (peer gone)")
        }
    }
}

impl Event {
    pub fn from_message(msg: &MessageView<'_>) -> Event {
        let payload = msg.payload_to_vec();
        let (text, hex) = match String::from_utf8(payload.clone()) {
            Ok(s) => (Some(s), None),
            Err(_) => (
                None,
                Some(payload.iter().map(|b| format!("{b:02x}")).collect()),
            ),
        };
        let notification = msg.notification();
        let kind = if notification.is_some() {
            "notification"
        } else if msg.is_call() {
            "call"
        } else if msg.cookie_reply() != 0 {
            "reply"
        } else if msg.is_signal() {
            "signal"
        } else {
            "message"
        };
        let meta = msg.metadata();
        Event {
            seqnum: meta.timestamp.map(|t| t.seqnum),
            kind,
            src: msg.src_id(),
            dst: (msg.dst_id() != KDBUS_DST_ID_BROADCAST).then_some(msg.dst_id()),
            dst_name: msg.dst_name().map(str::to_owned),
            cookie: msg.cookie(),
            cookie_reply: (msg.cookie_reply() != 0).then_some(msg.cookie_reply()),
            flags: flag_names(msg.flags()),
            priority: msg.priority(),
            payload_size: payload.len(),
            payload: text,
            payload_hex: hex,
            fds: msg.fd_numbers().len(),
            memfds: msg.memfd_items().len(),
            notification: notification.as_ref().map(describe_notification),
            sender: Process::from(&meta),
        }
    }

    /// One line of text.
    pub fn render(&self) -> String {
        let mut line = String::new();
        if let Some(seq) = self.seqnum {
            line.push_str(&format!("#{seq} "));
        }
        let src = if self.src == 0 {
            "kernel".to_owned()
        } else {
            self.src.to_string()
        };
        let dst = match (self.dst, &self.dst_name) {
            (None, _) => "*".to_owned(),
            (Some(KDBUS_DST_ID_NAME), Some(name)) => name.clone(),
            (Some(id), Some(name)) => format!("{id} ({name})"),
            (Some(id), None) => id.to_string(),
        };
        line.push_str(&format!("{src} -> {dst} {}", self.kind));
        if let Some(n) = &self.notification {
            line.push_str(&format!(": {n}"));
            return line;
        }
        line.push_str(&format!(" cookie={}", self.cookie));
        if let Some(reply) = self.cookie_reply {
            line.push_str(&format!(" reply-to={reply}"));
        }
        if self.priority != 0 {
            line.push_str(&format!(" priority={}", self.priority));
        }
        line.push_str(&format!(" {} bytes", self.payload_size));
        if let Some(text) = &self.payload {
            let preview: String = text.chars().take(PREVIEW).collect();
            let more = if preview.len() < text.len() {
                "…"
            } else {
                ""
            };
            line.push_str(&format!(" {preview:?}{more}"));
        } else if let Some(hex) = &self.payload_hex {
            let more = if hex.len() > 2 * PREVIEW { "…" } else { "" };
            line.push_str(&format!(" 0x{}{more}", &hex[..hex.len().min(2 * PREVIEW)]));
        }
        if self.fds > 0 {
            line.push_str(&format!(" fds={}", self.fds));
        }
        if self.memfds > 0 {
            line.push_str(&format!(" memfds={}", self.memfds));
        }
        if !self.sender.is_empty() {
            line.push_str(&format!(" [{}]", self.sender.summary()));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdbus::abi::*;
    use kdbus::raw::Buf;
    use kdbus::HelloFlags;

    fn message(header: kdbus_msg, items: &Buf, payload: &[u8]) -> Buf {
        let size = 64 + items.len();
        let mut buf = Buf::with_header(&kdbus_msg {
            size: size as u64,
            ..header
        });
        buf.extend(items.as_bytes());
        buf.extend(payload);
        buf.pad8();
        buf
    }

    #[test]
    fn a_call_with_text_payload() {
        let mut items = Buf::new();
        items.push_struct_item(
            KDBUS_ITEM_PAYLOAD_OFF,
            &kdbus_vec {
                size: 4,
                address_or_offset: 0, // set below
            },
        );
        items.push_str_item(KDBUS_ITEM_DST_NAME, "org.example.Echo");
        items.push_struct_item(
            KDBUS_ITEM_PIDS,
            &kdbus_pids {
                pid: 9,
                tid: 9,
                ppid: 1,
            },
        );
        // The payload follows the header and the items.
        items.set_u64(24, 64 + items.len() as u64);
        let buf = message(
            kdbus_msg {
                flags: KDBUS_MSG_EXPECT_REPLY,
                src_id: 5,
                dst_id: 0,
                cookie: 3,
                timeout_ns_or_cookie_reply: 1,
                payload_type: KDBUS_PAYLOAD_DBUS,
                ..Default::default()
            },
            &items,
            b"ping",
        );
        let msg = MessageView::parse(buf.as_bytes()).unwrap();
        let ev = Event::from_message(&msg);
        assert_eq!(ev.kind, "call");
        assert_eq!(ev.payload.as_deref(), Some("ping"));
        assert_eq!(
            ev.render(),
            "5 -> org.example.Echo call cookie=3 4 bytes \"ping\" [pid 9]"
        );
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["dst"], 0);
        assert_eq!(json["flags"], serde_json::json!(["expect-reply"]));
        assert_eq!(json["sender"]["pid"], 9);
    }

    #[test]
    fn a_notification() {
        let mut items = Buf::new();
        items.push_struct_item(
            KDBUS_ITEM_ID_ADD,
            &kdbus_notify_id_change {
                id: 12,
                flags: HelloFlags::ACTIVATOR.bits(),
            },
        );
        items.push_struct_item(
            KDBUS_ITEM_TIMESTAMP,
            &kdbus_timestamp {
                seqnum: 40,
                ..Default::default()
            },
        );
        let buf = message(
            kdbus_msg {
                flags: KDBUS_MSG_SIGNAL,
                dst_id: KDBUS_DST_ID_BROADCAST,
                ..Default::default()
            },
            &items,
            b"",
        );
        let ev = Event::from_message(&MessageView::parse(buf.as_bytes()).unwrap());
        assert_eq!(ev.kind, "notification");
        assert_eq!(
            ev.render(),
            "#40 kernel -> * notification: connection 12 appeared (activator)"
        );
    }

    #[test]
    fn binary_payload_is_shown_in_hex() {
        let mut items = Buf::new();
        items.push_struct_item(
            KDBUS_ITEM_PAYLOAD_OFF,
            &kdbus_vec {
                size: 2,
                address_or_offset: 64 + 32,
            },
        );
        let buf = message(
            kdbus_msg {
                src_id: 2,
                dst_id: 3,
                cookie: 1,
                timeout_ns_or_cookie_reply: 8,
                ..Default::default()
            },
            &items,
            &[0xff, 0x00],
        );
        let ev = Event::from_message(&MessageView::parse(buf.as_bytes()).unwrap());
        assert_eq!(ev.kind, "reply");
        assert_eq!(ev.payload_hex.as_deref(), Some("ff00"));
        assert!(ev.render().ends_with("2 bytes 0xff00"), "{}", ev.render());
    }
}
