//! Broadcast fan-out: one message reaches N subscribers. Sender and
//! subscribers live on one thread — the sender emits the message, then
//! every subscriber receives it — so the figure is the kernel work of a
//! fan-out, not the scheduling of N threads. The baseline does the same
//! over N socketpairs, one write per subscriber.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use anyhow::{ensure, Context, Result};
use kdbus::{BloomFilter, Connection, HelloBuilder, MatchRule, MessageBuilder};

use crate::env::BenchBus;
use crate::measure::Case;

/// The signal's payload: a small D-Bus signal body.
pub const SIGNAL_BYTES: usize = 64;

/// Subscribers only hold a few small messages at a time.
const SUBSCRIBER_POOL: u64 = 256 * 1024;

fn signal_filter(conn: &Connection) -> BloomFilter {
    let mut filter = BloomFilter::new(conn.bloom_params());
    filter
        .add_pair("message-type", "signal")
        .add_pair("interface", "org.example.Bench")
        .add_pair("member", "Tick");
    filter
}

/// One `KDBUS_DST_ID_BROADCAST` signal, received by every subscriber
/// whose bloom mask matches.
pub struct KdbusBroadcast {
    sender: Connection,
    subscribers: Vec<Connection>,
    filter: BloomFilter,
    data: Vec<u8>,
}

impl KdbusBroadcast {
    pub fn new(bus: &BenchBus, subscribers: usize) -> Result<KdbusBroadcast> {
        let sender = bus.connect("bench-signal")?;
        let filter = signal_filter(&sender);
        let mut mask = BloomFilter::new(sender.bloom_params());
        mask.add_pair("interface", "org.example.Bench")
            .add_pair("member", "Tick");
        let subscribers = (0..subscribers)
            .map(|_| {
                let conn = bus.connect_with(
                    HelloBuilder::new()
                        .pool_size(SUBSCRIBER_POOL)
                        .description("bench-subscriber"),
                )?;
                conn.add_match(&MatchRule::new(1).bloom(&mask))
                    .context("subscribing")?;
                Ok(conn)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KdbusBroadcast {
            sender,
            subscribers,
            filter,
            data: vec![0x5a; SIGNAL_BYTES],
        })
    }
}

impl Case for KdbusBroadcast {
    fn name(&self) -> String {
        "kdbus broadcast".into()
    }

    fn run_once(&mut self) -> Result<()> {
        self.sender.send(
            &MessageBuilder::broadcast()
                .payload(&self.data)
                .bloom_ref(&self.filter),
        )?;
        for sub in &self.subscribers {
            let msg = sub.recv()?.message.context("a subscriber got no signal")?;
            ensure!(msg.payload_len() == SIGNAL_BYTES, "short signal");
        }
        Ok(())
    }
}

/// The baseline: the signal written to each of N socketpairs and read
/// from the other end.
pub struct SocketPairFanOut {
    pairs: Vec<(UnixStream, UnixStream)>,
    data: Vec<u8>,
    buf: Vec<u8>,
}

impl SocketPairFanOut {
    pub fn new(subscribers: usize) -> Result<SocketPairFanOut> {
        Ok(SocketPairFanOut {
            pairs: (0..subscribers)
                .map(|_| UnixStream::pair())
                .collect::<std::io::Result<_>>()?,
            data: vec![0x5a; SIGNAL_BYTES],
            buf: vec![0; SIGNAL_BYTES],
        })
    }
}

impl Case for SocketPairFanOut {
    fn name(&self) -> String {
        "socketpairs".into()
    }

    fn run_once(&mut self) -> Result<()> {
        for (tx, _) in &mut self.pairs {
            tx.write_all(&self.data)?;
        }
        for (_, rx) in &mut self.pairs {
            rx.read_exact(&mut self.buf)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socketpair_fan_out_reaches_everyone() {
        let mut case = SocketPairFanOut::new(10).unwrap();
        for _ in 0..3 {
            case.run_once().unwrap();
            assert_eq!(case.buf, case.data);
        }
    }
}
