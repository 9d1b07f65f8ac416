//! The server side of the D-Bus authentication conversation: one NUL
//! byte, then CRLF-terminated ASCII lines until `BEGIN`. Only `EXTERNAL`
//! is offered, and the uid a client claims must be the one the kernel
//! reports for its socket (`SO_PEERCRED`).

use super::ProtocolError;

/// Longest line a client may send while authenticating.
pub const MAX_LINE: usize = 16 * 1024;
/// Failed or cancelled attempts before the client is dropped.
pub const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The NUL byte has not arrived yet.
    Nul,
    /// Waiting for `AUTH`.
    Auth,
    /// `AUTH EXTERNAL` came without a uid: waiting for `DATA`.
    Data,
    /// Authenticated: waiting for `BEGIN` (or `NEGOTIATE_UNIX_FD`).
    Begin,
    /// `BEGIN` seen: the rest of the stream is messages.
    Done,
}

/// One client's authentication conversation.
#[derive(Debug)]
pub struct Auth {
    peer_uid: u32,
    guid: String,
    fds_allowed: bool,
    fds_agreed: bool,
    state: State,
    attempts: u32,
}

/// What [`Auth::feed`] made of the bytes so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// What to send back, in order.
    pub reply: Vec<u8>,
    /// `BEGIN` was received: the bytes left in the buffer are messages.
    pub done: bool,
}

impl Auth {
    /// `peer_uid` from `SO_PEERCRED`; `guid` the 32 hex digits of the bus
    /// id; `fds_allowed` whether this socket can pass fds.
    pub fn new(peer_uid: u32, guid: impl Into<String>, fds_allowed: bool) -> Auth {
        Auth {
            peer_uid,
            guid: guid.into(),
            fds_allowed,
            fds_agreed: false,
            state: State::Nul,
            attempts: 0,
        }
    }

    /// Did the client negotiate fd passing?
    pub fn fds_agreed(&self) -> bool {
        self.fds_agreed
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes complete lines from the front of `input` (leaving any
    /// partial line, and everything after `BEGIN`, in place).
    pub fn feed(&mut self, input: &mut Vec<u8>) -> Result<Progress, ProtocolError> {
        let mut progress = Progress::default();
        let mut used = 0;
        if self.state == State::Nul && !input.is_empty() {
            if input[0] != 0 {
                return Err(ProtocolError::Auth("the first byte must be NUL".into()));
            }
            self.state = State::Auth;
            used = 1;
        }
        while self.state != State::Done {
            let rest = &input[used..];
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                if rest.len() > MAX_LINE {
                    return Err(ProtocolError::Auth("authentication line too long".into()));
                }
                break;
            };
            if end > MAX_LINE {
                return Err(ProtocolError::Auth("authentication line too long".into()));
            }
            let line = std::str::from_utf8(&rest[..end])
                .map_err(|_| ProtocolError::Auth("authentication line is not ASCII".into()))?
                .to_owned();
            used += end + 2;
            if let Some(reply) = self.line(&line)? {
                progress.reply.extend_from_slice(reply.as_bytes());
                progress.reply.extend_from_slice(b"\r\n");
            }
        }
        input.drain(..used);
        progress.done = self.state == State::Done;
        Ok(progress)
    }

    fn line(&mut self, line: &str) -> Result<Option<String>, ProtocolError> {
        let (command, arg) = match line.split_once(' ') {
            Some((c, a)) => (c, Some(a)),
            None => (line, None),
        };
        Ok(Some(match (self.state, command) {
            (State::Auth, "AUTH") => self.auth(arg)?,
            (State::Data, "DATA") => self.external(arg.unwrap_or(""))?,
            (State::Data | State::Begin, "CANCEL" | "ERROR") => self.reject()?,
            (State::Begin, "BEGIN") => {
                self.state = State::Done;
                return Ok(None);
            }
            (State::Begin, "NEGOTIATE_UNIX_FD") if self.fds_allowed => {
                self.fds_agreed = true;
                "AGREE_UNIX_FD".into()
            }
            (State::Begin, "NEGOTIATE_UNIX_FD") => {
                "ERROR \"this socket cannot pass file descriptors\"".into()
            }
            (State::Auth, "ERROR") => "REJECTED EXTERNAL".into(),
            _ => format!("ERROR \"unexpected command {command}\""),
        }))
    }

    fn auth(&mut self, arg: Option<&str>) -> Result<String, ProtocolError> {
        let (mechanism, response) = match arg.map(|a| a.split_once(' ')) {
            Some(Some((m, r))) => (m, Some(r)),
            Some(None) => (arg.unwrap_or(""), None),
            None => ("", None),
        };
        match (mechanism, response) {
            ("EXTERNAL", Some(response)) => self.external(response),
            ("EXTERNAL", None) => {
                self.state = State::Data;
                Ok("DATA".into())
            }
            _ => self.reject(),
        }
    }

    /// Checks the hex-encoded decimal uid (empty: "whatever the socket
    /// says").
    fn external(&mut self, hex: &str) -> Result<String, ProtocolError> {
        let claimed = decode_hex(hex.trim()).and_then(|text| {
            if text.is_empty() {
                Some(self.peer_uid)
            } else {
                text.parse::<u32>().ok()
            }
        });
        if claimed == Some(self.peer_uid) {
            self.state = State::Begin;
            Ok(format!("OK {}", self.guid))
        } else {
            self.reject()
        }
    }

    fn reject(&mut self) -> Result<String, ProtocolError> {
        self.attempts += 1;
        if self.attempts >= MAX_ATTEMPTS {
            return Err(ProtocolError::Auth("too many failed attempts".into()));
        }
        self.state = State::Auth;
        Ok("REJECTED EXTERNAL".into())
    }
}

fn decode_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Hex encoding of `text`, as clients send their uid.
pub fn encode_hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "0123456789abcdef0123456789abcdef";

    fn run(auth: &mut Auth, input: &[u8]) -> (String, Vec<u8>, bool) {
        let mut buf = input.to_vec();
        let progress = auth.feed(&mut buf).unwrap();
        (
            String::from_utf8(progress.reply).unwrap(),
            buf,
            progress.done,
        )
    }

    #[test]
    fn external_with_the_socket_uid_succeeds() {
        let mut auth = Auth::new(1000, GUID, true);
        let input = format!(
            "\0AUTH EXTERNAL {}\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\nl\x01",
            encode_hex("1000")
        );
        let (reply, rest, done) = run(&mut auth, input.as_bytes());
        assert_eq!(reply, format!("OK {GUID}\r\nAGREE_UNIX_FD\r\n"));
        assert!(done && auth.fds_agreed());
        assert_eq!(rest, b"l\x01", "message bytes after BEGIN stay");
    }

    #[test]
    fn another_uid_is_rejected() {
        let mut auth = Auth::new(1000, GUID, true);
        let input = format!("\0AUTH EXTERNAL {}\r\nBEGIN\r\n", encode_hex("0"));
        let (reply, _, done) = run(&mut auth, input.as_bytes());
        assert_eq!(
            reply,
            "REJECTED EXTERNAL\r\nERROR \"unexpected command BEGIN\"\r\n"
        );
        assert!(!done);
    }

    #[test]
    fn external_without_initial_response_asks_for_data() {
        let mut auth = Auth::new(0, GUID, false);
        let (reply, _, _) = run(&mut auth, b"\0AUTH EXTERNAL\r\n");
        assert_eq!(reply, "DATA\r\n");
        // An empty DATA means "take the uid from the socket".
        let (reply, _, _) = run(&mut auth, b"DATA\r\n");
        assert_eq!(reply, format!("OK {GUID}\r\n"));
        let (reply, _, done) = run(&mut auth, b"NEGOTIATE_UNIX_FD\r\nBEGIN\r\n");
        assert!(reply.starts_with("ERROR"), "{reply}");
        assert!(done && !auth.fds_agreed());
    }

    #[test]
    fn other_mechanisms_are_rejected_and_cancel_restarts() {
        let mut auth = Auth::new(5, GUID, true);
        let (reply, _, _) = run(&mut auth, b"\0AUTH\r\nAUTH ANONYMOUS\r\n");
        assert_eq!(reply, "REJECTED EXTERNAL\r\nREJECTED EXTERNAL\r\n");
        let (reply, _, _) = run(
            &mut auth,
            format!("AUTH EXTERNAL {}\r\n", encode_hex("5")).as_bytes(),
        );
        assert!(reply.starts_with("OK "));
        let (reply, _, _) = run(&mut auth, b"CANCEL\r\n");
        assert_eq!(reply, "REJECTED EXTERNAL\r\n");
    }

    #[test]
    fn partial_lines_wait_for_more() {
        let mut auth = Auth::new(5, GUID, true);
        let (reply, rest, _) = run(&mut auth, b"\0AUTH EXTE");
        assert_eq!(reply, "");
        assert_eq!(rest, b"AUTH EXTE");
    }

    #[test]
    fn bad_clients_are_dropped() {
        let mut auth = Auth::new(5, GUID, true);
        assert!(
            auth.feed(&mut b"AUTH EXTERNAL\r\n".to_vec()).is_err(),
            "no NUL"
        );
        let mut auth = Auth::new(5, GUID, true);
        let mut long = vec![0u8];
        long.extend(std::iter::repeat_n(b'A', MAX_LINE + 10));
        assert!(auth.feed(&mut long).is_err(), "endless line");
        let mut auth = Auth::new(5, GUID, true);
        let mut spam = b"\0".to_vec();
        for _ in 0..MAX_ATTEMPTS {
            spam.extend_from_slice(b"AUTH KERBEROS\r\n");
        }
        assert!(auth.feed(&mut spam).is_err(), "endless attempts");
    }
}
