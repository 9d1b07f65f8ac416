//! Bulk payloads (1 MiB, 16 MiB) handed from a client to a server, which
//! answers with an empty reply once it holds the data in memory it can
//! read: passed as a sealed memfd (zero copy), copied into the server's
//! pool (in messages of at most 2 MiB, the inline payload limit), or — the
//! baseline, [`crate::unicast::SocketPair`] answering with one byte —
//! copied through an AF_UNIX socketpair (into the socket buffer and out
//! again). The server does not read the data beyond what receiving it
//! takes.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::{ensure, Context, Result};
use kdbus::{Connection, MessageBuilder};

use crate::env::BenchBus;
use crate::measure::Case;
use crate::unicast::{payload, EchoServer, Reply, CALL_TIMEOUT};

/// Inline payload of one message at most (`KDBUS_MSG_MAX_PAYLOAD_VEC_SIZE`).
const MAX_INLINE: usize = 2 << 20;

/// The payload inline, in as many messages as the inline limit needs, the
/// last one a synchronous call: the kernel copies it into the server's
/// pool.
pub struct KdbusPoolCopy {
    client: Connection,
    server: EchoServer,
    data: Vec<u8>,
}

impl KdbusPoolCopy {
    pub fn new(bus: &BenchBus, size: usize) -> Result<KdbusPoolCopy> {
        Ok(KdbusPoolCopy {
            server: EchoServer::start(bus, Reply::Empty)?,
            client: bus.connect("bench-client")?,
            data: payload(size),
        })
    }
}

impl Case for KdbusPoolCopy {
    fn name(&self) -> String {
        "kdbus pool copy".into()
    }

    fn run_once(&mut self) -> Result<()> {
        let mut chunks = self.data.chunks(MAX_INLINE).peekable();
        while let Some(chunk) = chunks.next() {
            let msg = MessageBuilder::to_id(self.server.id).payload(chunk);
            if chunks.peek().is_some() {
                self.client.send(&msg)?;
                continue;
            }
            let reply = self.client.call(&msg.expect_reply(CALL_TIMEOUT))?;
            ensure!(reply.payload_len() == 0, "unexpected reply payload");
        }
        Ok(())
    }
}

/// A synchronous call carrying the payload as a sealed memfd: the server
/// gets a new fd for the same pages.
pub struct KdbusMemfd {
    client: Connection,
    server: EchoServer,
    memfd: OwnedFd,
    size: u64,
}

impl KdbusMemfd {
    pub fn new(bus: &BenchBus, size: usize) -> Result<KdbusMemfd> {
        // The sender's data already lives in a sealed memfd; filling one
        // is the sender's business, like filling a buffer.
        let memfd = kdbus::sealed_memfd("bench-bulk", &payload(size)).context("memfd")?;
        Ok(KdbusMemfd {
            server: EchoServer::start(bus, Reply::Empty)?,
            client: bus.connect("bench-client")?,
            memfd,
            size: size as u64,
        })
    }
}

impl Case for KdbusMemfd {
    fn name(&self) -> String {
        "kdbus memfd".into()
    }

    fn run_once(&mut self) -> Result<()> {
        let reply = self.client.call(
            &MessageBuilder::to_id(self.server.id)
                .memfd(self.memfd.as_fd(), 0, self.size)
                .expect_reply(CALL_TIMEOUT),
        )?;
        ensure!(reply.payload_len() == 0, "unexpected reply payload");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unicast::SocketPair;

    #[test]
    fn socketpair_copy_is_acknowledged() {
        let mut case = SocketPair::with_reply(1 << 20, Reply::Empty).unwrap();
        for _ in 0..3 {
            case.run_once().unwrap();
        }
    }
}
