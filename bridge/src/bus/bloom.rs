//! How a D-Bus message's properties become bloom bits, so that a match
//! rule's mask (see [`super::matchrule::MatchRule::bloom_mask`]) is a
//! subset of the filter of every message the rule matches. The keys are
//! sd-bus's convention, so that native peers following it interoperate.

use kdbus::{BloomFilter, BloomParams};

use crate::bus::matchrule::{Candidate, MAX_ARG};
use crate::protocol::message::Arg;
use crate::protocol::Kind;

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::MethodCall => "method_call",
        Kind::MethodReturn => "method_return",
        Kind::Error => "error",
        Kind::Signal => "signal",
    }
}

/// The filter a signal is sent with.
pub fn message_filter(params: BloomParams, msg: &Candidate<'_>) -> BloomFilter {
    let mut filter = BloomFilter::new(params);
    filter.add_pair("message-type", kind_name(msg.kind));
    for (key, value) in [("interface", msg.interface), ("member", msg.member)] {
        if let Some(value) = value {
            filter.add_pair(key, value);
        }
    }
    if let Some(path) = msg.path {
        filter.add_pair("path", path);
        filter.add_prefixes("path-slash-prefix", path, '/');
    }
    for (n, arg) in msg
        .args
        .unwrap_or_default()
        .iter()
        .enumerate()
        .take(MAX_ARG + 1)
    {
        match arg {
            Arg::Str(s) => {
                filter.add_pair(&format!("arg{n}"), s);
                filter.add_prefixes(&format!("arg{n}-dot-prefix"), s, '.');
                filter.add_prefixes(&format!("arg{n}-slash-prefix"), s, '/');
            }
            Arg::Path(p) => {
                filter.add_prefixes(&format!("arg{n}-slash-prefix"), p, '/');
            }
            Arg::Other => {}
        }
    }
    filter
}
