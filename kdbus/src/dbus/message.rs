//! D-Bus messages: framing (how long is the message at the front of a
//! buffer?), the header and its fields, and building messages. Bodies are
//! marshalled by zvariant; the layout of the fixed header and the field
//! codes are the D-Bus specification's.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use serde::de::DeserializeOwned;
use serde::Serialize;
use zvariant::serialized::{Context, Data};
use zvariant::{Endian, Structure, Type, Value};

use super::header::{self, FieldValue};

use super::Error;

/// The fixed part of every header, including the length of the field
/// array that follows it.
pub const FIXED_HEADER_LEN: usize = 16;
/// The specification's limit on a whole message.
pub const MAX_MESSAGE_LEN: usize = 128 * 1024 * 1024;
/// The specification's limit on an array (the header field array is one).
const MAX_ARRAY_LEN: usize = 64 * 1024 * 1024;

/// Message types (the second header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MethodCall = 1,
    MethodReturn = 2,
    Error = 3,
    Signal = 4,
}

/// Header flags.
pub const NO_REPLY_EXPECTED: u8 = 0x1;
pub const NO_AUTO_START: u8 = 0x2;
pub const ALLOW_INTERACTIVE_AUTHORIZATION: u8 = 0x4;

mod field {
    pub const PATH: u8 = 1;
    pub const INTERFACE: u8 = 2;
    pub const MEMBER: u8 = 3;
    pub const ERROR_NAME: u8 = 4;
    pub const REPLY_SERIAL: u8 = 5;
    pub const DESTINATION: u8 = 6;
    pub const SENDER: u8 = 7;
    pub const SIGNATURE: u8 = 8;
    pub const UNIX_FDS: u8 = 9;
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

fn endian_of(byte: u8) -> Result<Endian, Error> {
    match byte {
        b'l' => Ok(Endian::Little),
        b'B' => Ok(Endian::Big),
        other => Err(Error::Invalid(format!(
            "byte order mark {other:#04x} is neither 'l' nor 'B'"
        ))),
    }
}

fn read_u32(endian: Endian, bytes: &[u8]) -> u32 {
    let b: [u8; 4] = bytes[..4].try_into().expect("four bytes");
    match endian {
        Endian::Little => u32::from_le_bytes(b),
        Endian::Big => u32::from_be_bytes(b),
    }
}

/// The total length of the message starting at `buf[0]`, once its fixed
/// header is there (`None` until then). Fails on anything that cannot be
/// the start of a message or would exceed `max_len`.
pub fn message_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, Error> {
    if buf.len() < FIXED_HEADER_LEN {
        return Ok(None);
    }
    let endian = endian_of(buf[0])?;
    if buf[3] != 1 {
        return Err(Error::Invalid(format!(
            "protocol version {} (only 1 exists)",
            buf[3]
        )));
    }
    let body_len = read_u32(endian, &buf[4..]) as usize;
    let fields_len = read_u32(endian, &buf[12..]) as usize;
    if fields_len > MAX_ARRAY_LEN {
        return Err(Error::Invalid(format!(
            "header field array of {fields_len} bytes"
        )));
    }
    let total = align8(FIXED_HEADER_LEN + fields_len) + body_len;
    if total > max_len.min(MAX_MESSAGE_LEN) {
        return Err(Error::TooLarge {
            len: total,
            max: max_len.min(MAX_MESSAGE_LEN),
        });
    }
    Ok(Some(total))
}

/// The parsed header of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub endian: Endian,
    pub kind: Kind,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    /// The body signature ("" for no body).
    pub signature: String,
    pub unix_fds: u32,
}

impl Header {
    pub fn new(kind: Kind) -> Header {
        Header {
            endian: Endian::Little,
            kind,
            flags: 0,
            serial: 0,
            path: None,
            interface: None,
            member: None,
            error_name: None,
            reply_serial: None,
            destination: None,
            sender: None,
            signature: String::new(),
            unix_fds: 0,
        }
    }

    pub fn expects_reply(&self) -> bool {
        self.kind == Kind::MethodCall && self.flags & NO_REPLY_EXPECTED == 0
    }

    /// Marshals the header, padded to 8 so that the body can follow.
    pub fn marshal(&self, body_len: usize) -> Result<Vec<u8>, Error> {
        self.marshal_as(self.sender.as_deref(), body_len)
    }

    /// Marshals the header with `sender` as its SENDER: how the bridge
    /// stamps a client's message without a copy of its header.
    pub fn marshal_with_sender(&self, sender: &str, body_len: usize) -> Result<Vec<u8>, Error> {
        self.marshal_as(Some(sender), body_len)
    }

    fn marshal_as(&self, sender: Option<&str>, body_len: usize) -> Result<Vec<u8>, Error> {
        let body_len =
            u32::try_from(body_len).map_err(|_| Error::Invalid("body longer than 4 GiB".into()))?;
        if self.signature.len() > 255 {
            return Err(Error::Invalid("signature longer than 255".into()));
        }
        fn text_field(kind: u8, v: Option<&str>) -> Option<FieldValue<'_>> {
            v.map(|v| FieldValue::Text(kind, v))
        }
        let mut fields = [(0, FieldValue::Other); 9];
        let mut n = 0;
        for (code, value) in [
            (field::PATH, text_field(b'o', self.path.as_deref())),
            (
                field::INTERFACE,
                text_field(b's', self.interface.as_deref()),
            ),
            (field::MEMBER, text_field(b's', self.member.as_deref())),
            (
                field::ERROR_NAME,
                text_field(b's', self.error_name.as_deref()),
            ),
            (field::REPLY_SERIAL, self.reply_serial.map(FieldValue::U32)),
            (
                field::DESTINATION,
                text_field(b's', self.destination.as_deref()),
            ),
            (field::SENDER, text_field(b's', sender)),
            (
                field::SIGNATURE,
                text_field(
                    b'g',
                    Some(self.signature.as_str()).filter(|s| !s.is_empty()),
                ),
            ),
            (
                field::UNIX_FDS,
                (self.unix_fds > 0).then_some(FieldValue::U32(self.unix_fds)),
            ),
        ] {
            if let Some(value) = value {
                fields[n] = (code, value);
                n += 1;
            }
        }
        let mark = match self.endian {
            Endian::Little => b'l',
            Endian::Big => b'B',
        };
        Ok(header::write(
            [mark, self.kind as u8, self.flags, 1],
            body_len,
            self.serial,
            self.endian,
            &fields[..n],
        ))
    }
}

fn text(value: FieldValue<'_>, kind: u8, what: &str) -> Result<String, Error> {
    match value {
        FieldValue::Text(k, s) if k == kind => Ok(s.to_owned()),
        _ => Err(Error::Invalid(format!(
            "header field {what} is not of type '{}'",
            kind as char
        ))),
    }
}

fn number(value: FieldValue<'_>, what: &str) -> Result<u32, Error> {
    match value {
        FieldValue::U32(n) => Ok(n),
        _ => Err(Error::Invalid(format!(
            "header field {what} is not of type 'u'"
        ))),
    }
}

/// A complete message: its bytes as received (or built), the parsed
/// header, and the fds that came with it.
#[derive(Debug)]
pub struct Message {
    bytes: Vec<u8>,
    header: Header,
    body_offset: usize,
    pub fds: Vec<OwnedFd>,
}

impl Message {
    /// Parses one complete message (exactly [`message_len`] bytes).
    pub fn parse(bytes: Vec<u8>) -> Result<Message, Error> {
        if bytes.len() < FIXED_HEADER_LEN {
            return Err(Error::Invalid("shorter than a header".into()));
        }
        let endian = endian_of(bytes[0])?;
        let body_len = read_u32(endian, &bytes[4..]) as usize;
        let serial = read_u32(endian, &bytes[8..]);
        let fields_len = read_u32(endian, &bytes[12..]) as usize;
        let body_offset = align8(FIXED_HEADER_LEN + fields_len);
        if body_offset.checked_add(body_len) != Some(bytes.len()) {
            return Err(Error::Invalid(format!(
                "header says {body_len} body bytes, {} follow it",
                bytes.len().saturating_sub(body_offset)
            )));
        }
        let kind = match bytes[1] {
            1 => Kind::MethodCall,
            2 => Kind::MethodReturn,
            3 => Kind::Error,
            4 => Kind::Signal,
            other => return Err(Error::Invalid(format!("message type {other}"))),
        };
        if serial == 0 {
            return Err(Error::Invalid("serial 0".into()));
        }
        let mut header = Header::new(kind);
        header.endian = endian;
        header.flags = bytes[2];
        header.serial = serial;
        header::read_fields(&bytes, endian, fields_len, |code, value| {
            match code {
                field::PATH => header.path = Some(text(value, b'o', "PATH")?),
                field::INTERFACE => header.interface = Some(text(value, b's', "INTERFACE")?),
                field::MEMBER => header.member = Some(text(value, b's', "MEMBER")?),
                field::ERROR_NAME => header.error_name = Some(text(value, b's', "ERROR_NAME")?),
                field::REPLY_SERIAL => header.reply_serial = Some(number(value, "REPLY_SERIAL")?),
                field::DESTINATION => header.destination = Some(text(value, b's', "DESTINATION")?),
                field::SENDER => header.sender = Some(text(value, b's', "SENDER")?),
                field::SIGNATURE => header.signature = text(value, b'g', "SIGNATURE")?,
                field::UNIX_FDS => header.unix_fds = number(value, "UNIX_FDS")?,
                _ => {} // unknown fields are ignored, as the spec says
            }
            Ok(())
        })?;
        let missing = |what: &str| Error::Invalid(format!("{kind:?} without {what}"));
        match kind {
            Kind::MethodCall if header.path.is_none() => return Err(missing("PATH")),
            Kind::MethodCall if header.member.is_none() => return Err(missing("MEMBER")),
            Kind::Signal
                if header.path.is_none()
                    || header.interface.is_none()
                    || header.member.is_none() =>
            {
                return Err(missing("PATH, INTERFACE and MEMBER"))
            }
            Kind::Error if header.error_name.is_none() => return Err(missing("ERROR_NAME")),
            Kind::Error | Kind::MethodReturn if header.reply_serial.is_none() => {
                return Err(missing("REPLY_SERIAL"))
            }
            _ => {}
        }
        Ok(Message {
            bytes,
            header,
            body_offset,
            fds: Vec::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The whole message as marshalled.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn body(&self) -> &[u8] {
        &self.bytes[self.body_offset..]
    }

    pub fn into_parts(self) -> (Vec<u8>, Vec<OwnedFd>) {
        (self.bytes, self.fds)
    }

    /// Rewrites the header with `edit` applied; the body bytes stay as
    /// they are (same byte order, so nothing in them changes).
    pub fn edit_header(&mut self, edit: impl FnOnce(&mut Header)) -> Result<(), Error> {
        let mut header = self.header.clone();
        edit(&mut header);
        let body_len = self.bytes.len() - self.body_offset;
        let mut bytes = header.marshal(body_len)?;
        let body_offset = bytes.len();
        bytes.extend_from_slice(&self.bytes[self.body_offset..]);
        self.bytes = bytes;
        self.header = header;
        self.body_offset = body_offset;
        Ok(())
    }

    /// The leading string-like arguments, for match rules (`argN`,
    /// `argNpath`): the body decoded generically; `None` if it cannot be.
    pub fn string_args(&self) -> Option<Vec<Arg>> {
        if self.header.signature.is_empty() {
            return Some(Vec::new());
        }
        let ctxt = Context::new_dbus(self.header.endian, 0);
        let data = Data::new(self.body(), ctxt);
        let signature = format!("({})", self.header.signature);
        let (values, _): (Structure<'_>, usize) = data
            .deserialize_for_dynamic_signature(signature.as_str())
            .ok()?;
        Some(
            values
                .fields()
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Arg::Str(s.to_string()),
                    Value::ObjectPath(p) => Arg::Path(p.to_string()),
                    _ => Arg::Other,
                })
                .collect(),
        )
    }

    /// The body as `T` (a tuple of the arguments), checked against the
    /// signature.
    pub fn body_as<T>(&self) -> Result<T, Error>
    where
        T: DeserializeOwned + Type,
    {
        let want = T::SIGNATURE.to_string_no_parens();
        if want != self.header.signature {
            return Err(Error::Invalid(format!(
                "arguments have signature \"{}\", expected \"{want}\"",
                self.header.signature
            )));
        }
        let ctxt = Context::new_dbus(self.header.endian, 0);
        let data = Data::new(self.body(), ctxt);
        data.deserialize_for_signature(T::SIGNATURE)
            .map(|(v, _)| v)
            .map_err(|e| Error::Invalid(format!("malformed arguments: {e}")))
    }

    /// Builds a message from a header and a body (a tuple of arguments, or
    /// `()` for none). The serial, reply serial and addresses are the
    /// caller's to set in `header`.
    pub fn build<T: Serialize + Type>(header: Header, body: &T) -> Result<Message, Error> {
        let sig = T::SIGNATURE.to_string_no_parens();
        if sig.is_empty() {
            return Message::assemble(header, sig, &[]);
        }
        let ctxt = Context::new_dbus(header.endian, 0);
        let body_bytes = zvariant::to_bytes(ctxt, body)
            .map_err(|e| Error::Invalid(format!("cannot marshal body: {e}")))?;
        Message::assemble(header, sig, body_bytes.bytes())
    }

    /// The part of [`Message::build`] that does not depend on the body's
    /// type: kept out of line, it is there once instead of once per type.
    #[inline(never)]
    fn assemble(mut header: Header, signature: String, body: &[u8]) -> Result<Message, Error> {
        header.signature = signature;
        let mut bytes = header.marshal(body.len())?;
        let body_offset = bytes.len();
        bytes.extend_from_slice(body);
        Ok(Message {
            bytes,
            header,
            body_offset,
            fds: Vec::new(),
        })
    }

    /// A method return for `call` (addressed to the caller's unique name).
    pub fn method_return<T: Serialize + Type>(call: &Header, body: &T) -> Result<Message, Error> {
        let mut header = Header::new(Kind::MethodReturn);
        header.reply_serial = Some(call.serial);
        header.destination = call.sender.clone();
        Message::build(header, body)
    }

    /// An error reply to `call` with a human-readable message.
    pub fn error(call: &Header, name: &str, text: &str) -> Result<Message, Error> {
        let mut header = Header::new(Kind::Error);
        header.reply_serial = Some(call.serial);
        header.destination = call.sender.clone();
        header.error_name = Some(name.to_owned());
        Message::build(header, &(text,))
    }

    /// A signal.
    pub fn signal<T: Serialize + Type>(
        path: &str,
        interface: &str,
        member: &str,
        body: &T,
    ) -> Result<Message, Error> {
        let mut header = Header::new(Kind::Signal);
        header.path = Some(path.to_owned());
        header.interface = Some(interface.to_owned());
        header.member = Some(member.to_owned());
        Message::build(header, body)
    }

    /// A method call (for tests and for the bridge's own calls).
    pub fn method_call<T: Serialize + Type>(
        destination: Option<&str>,
        path: &str,
        interface: Option<&str>,
        member: &str,
        body: &T,
    ) -> Result<Message, Error> {
        let mut header = Header::new(Kind::MethodCall);
        header.destination = destination.map(str::to_owned);
        header.path = Some(path.to_owned());
        header.interface = interface.map(str::to_owned);
        header.member = Some(member.to_owned());
        Message::build(header, body)
    }

    /// Sets the serial (and sender) of a message the bridge built.
    pub fn stamp(&mut self, serial: u32, sender: Option<&str>) -> Result<(), Error> {
        self.edit_header(|h| {
            h.serial = serial;
            if let Some(sender) = sender {
                h.sender = Some(sender.to_owned());
            }
        })
    }
}

/// An argument as match rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Str(String),
    Path(String),
    Other,
}

/// The arguments of a dictionary of variants (`a{sv}`), as the driver's
/// `GetConnectionCredentials` returns them.
pub type VariantDict<'a> = HashMap<&'a str, Value<'a>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn call(endian: Endian) -> Message {
        let mut header = Header::new(Kind::MethodCall);
        header.endian = endian;
        header.serial = 7;
        header.path = Some("/org/example/Obj".into());
        header.interface = Some("org.example.Iface".into());
        header.member = Some("Do".into());
        header.destination = Some("org.example.Service".into());
        Message::build(header, &("text", 42u32, vec!["a", "b"])).unwrap()
    }

    #[test]
    fn round_trip_in_both_byte_orders() {
        for endian in [Endian::Little, Endian::Big] {
            let built = call(endian);
            let bytes = built.bytes().to_vec();
            assert_eq!(bytes[0], if endian == Endian::Little { b'l' } else { b'B' });
            assert_eq!(
                message_len(&bytes, MAX_MESSAGE_LEN).unwrap(),
                Some(bytes.len())
            );
            let parsed = Message::parse(bytes).unwrap();
            assert_eq!(parsed.header(), built.header());
            assert_eq!(parsed.header().signature, "suas");
            let (s, n, v): (String, u32, Vec<String>) = parsed.body_as().unwrap();
            assert_eq!(
                (s.as_str(), n, v),
                ("text", 42, vec!["a".into(), "b".into()])
            );
            let args = parsed.string_args().unwrap();
            assert_eq!(args, [Arg::Str("text".into()), Arg::Other, Arg::Other]);
        }
    }

    #[test]
    fn body_signatures_keep_their_shape() {
        // Two arguments and one structure argument are different bodies.
        let mut two = Message::signal("/", "a.b", "M", &("x", "y")).unwrap();
        let mut one = Message::signal("/", "a.b", "M", &(("x", "y"),)).unwrap();
        two.stamp(1, None).unwrap();
        one.stamp(1, None).unwrap();
        for (msg, sig) in [(two, "ss"), (one, "(ss)")] {
            let parsed = Message::parse(msg.bytes().to_vec()).unwrap();
            assert_eq!(parsed.header().signature, sig);
            assert_eq!(
                parsed.string_args().unwrap().len(),
                if sig == "ss" { 2 } else { 1 }
            );
        }
    }

    #[test]
    fn unknown_header_fields_are_skipped() {
        // A field of code 200 holding an `ai` between two known fields.
        let mut known = Message::signal("/p", "a.b", "M", &("x",)).unwrap();
        known.stamp(1, None).unwrap();
        let mut bytes = known.bytes()[..16].to_vec();
        let fields_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let mut fields = known.bytes()[16..16 + fields_len].to_vec();
        fields.resize(fields.len().div_ceil(8) * 8, 0);
        fields.extend_from_slice(&[
            200, 2, b'a', b'i', 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
        ]);
        bytes[12..16].copy_from_slice(&(fields.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&fields);
        bytes.resize(bytes.len().div_ceil(8) * 8, 0);
        bytes.extend_from_slice(known.body());
        let parsed = Message::parse(bytes).unwrap();
        assert_eq!(parsed.header(), known.header());
        assert_eq!(parsed.string_args().unwrap(), [Arg::Str("x".into())]);
    }

    #[test]
    fn editing_the_header_keeps_the_body() {
        let mut msg = Message::parse(call(Endian::Big).bytes().to_vec()).unwrap();
        let body = msg.body().to_vec();
        msg.edit_header(|h| h.sender = Some(":1.42".into()))
            .unwrap();
        let again = Message::parse(msg.bytes().to_vec()).unwrap();
        assert_eq!(again.header().sender.as_deref(), Some(":1.42"));
        assert_eq!(again.body(), &body[..]);
    }

    #[test]
    fn a_header_marshals_with_another_sender_as_an_edited_copy_would() {
        for endian in [Endian::Little, Endian::Big] {
            let msg = call(endian);
            let mut edited = msg.header().clone();
            edited.sender = Some(":1.7".into());
            let body_len = msg.body().len();
            let head = msg.header().marshal_with_sender(":1.7", body_len).unwrap();
            assert_eq!(head, edited.marshal(body_len).unwrap());
            let again = Message::parse([&head[..], msg.body()].concat()).unwrap();
            assert_eq!(again.header(), &edited);
        }
    }

    #[test]
    fn framing_waits_for_the_fixed_header_and_enforces_limits() {
        let bytes = call(Endian::Little).bytes().to_vec();
        assert_eq!(message_len(&bytes[..15], MAX_MESSAGE_LEN).unwrap(), None);
        assert!(matches!(
            message_len(&bytes, 64),
            Err(Error::TooLarge { .. })
        ));
        let mut bad = bytes.clone();
        bad[0] = b'x';
        assert!(message_len(&bad, MAX_MESSAGE_LEN).is_err());
        let mut bad = bytes.clone();
        bad[3] = 2;
        assert!(message_len(&bad, MAX_MESSAGE_LEN).is_err());
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = call(Endian::Little).bytes().to_vec();
        // Truncated body.
        assert!(Message::parse(good[..good.len() - 1].to_vec()).is_err());
        // Garbage after a valid fixed header.
        let mut garbage = good[..16].to_vec();
        garbage.extend(std::iter::repeat_n(0xffu8, 64));
        assert!(Message::parse(garbage).is_err());
        // A call without a member.
        let mut header = Header::new(Kind::MethodCall);
        header.serial = 1;
        header.path = Some("/".into());
        let msg = Message::build(header, &()).unwrap();
        assert!(Message::parse(msg.bytes().to_vec()).is_err());
    }

    #[test]
    fn replies_and_errors_address_the_caller() {
        let mut call = call(Endian::Little);
        call.stamp(9, Some(":1.5")).unwrap();
        let reply = Message::method_return(call.header(), &("ok",)).unwrap();
        assert_eq!(reply.header().reply_serial, Some(9));
        assert_eq!(reply.header().destination.as_deref(), Some(":1.5"));
        let err = Message::error(call.header(), "org.example.Error.Bad", "bad").unwrap();
        assert_eq!(
            err.header().error_name.as_deref(),
            Some("org.example.Error.Bad")
        );
        assert_eq!(err.header().signature, "s");
    }
}
