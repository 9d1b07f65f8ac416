//! Bloom filters for broadcast matching (spec §11).
//!
//! The kernel never hashes: it only checks `mask ⊆ filter` bit by bit. How
//! properties become bits is a userspace convention; this is systemd's
//! (sd-bus `bus-bloom.c`, PORTING-DBUS1; keys as written down from that
//! source, which systemd 252 no longer has): a 64-byte filter, 8 hash
//! functions, each bit index taken from SipHash-2-4 output under a fixed set
//! of keys. Senders put a message's properties (`"interface:org.foo"`,
//! `"member:Bar"`...) into a filter; receivers put the properties their
//! match requires into a mask of the same geometry.

use siphasher::sip::SipHasher24;
use std::hash::Hasher;

use crate::abi::kdbus_bloom_parameter;

/// Bloom geometry of a bus: filter size in bytes and number of hash
/// functions. Set at BUS_MAKE, reported to every connection at HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BloomParams {
    /// Filter size in bytes: 8…4096, a multiple of 8.
    pub size: u64,
    pub n_hash: u64,
}

impl BloomParams {
    /// systemd's choice for its buses.
    pub const DEFAULT: BloomParams = BloomParams {
        size: 64,
        n_hash: 8,
    };
}

impl Default for BloomParams {
    fn default() -> Self {
        BloomParams::DEFAULT
    }
}

impl From<kdbus_bloom_parameter> for BloomParams {
    fn from(p: kdbus_bloom_parameter) -> Self {
        BloomParams {
            size: p.size,
            n_hash: p.n_hash,
        }
    }
}

impl From<BloomParams> for kdbus_bloom_parameter {
    fn from(p: BloomParams) -> Self {
        kdbus_bloom_parameter {
            size: p.size,
            n_hash: p.n_hash,
        }
    }
}

/// The SipHash keys of sd-bus, in the order it uses them.
const HASH_KEYS: [[u8; 16]; 8] = [
    [
        0xb9, 0x66, 0x0b, 0xf0, 0x46, 0x70, 0x47, 0xc1, 0x88, 0x75, 0xc4, 0x9c, 0x54, 0xb9, 0xbd,
        0x15,
    ],
    [
        0xaa, 0xa1, 0x54, 0xa2, 0xe0, 0x71, 0x4b, 0x39, 0xbf, 0xe1, 0xdd, 0x2e, 0x9f, 0xc5, 0x4a,
        0x3b,
    ],
    [
        0x63, 0xfd, 0xae, 0xbe, 0xcd, 0x82, 0x48, 0x12, 0xa1, 0x6e, 0x41, 0x26, 0xcb, 0xfa, 0xa0,
        0xc8,
    ],
    [
        0x23, 0xbe, 0x45, 0x29, 0x32, 0xd2, 0x46, 0x2d, 0x82, 0x03, 0x52, 0x28, 0xfe, 0x37, 0x17,
        0xf5,
    ],
    [
        0x56, 0x3b, 0xbf, 0xee, 0x5a, 0x4f, 0x43, 0x39, 0xaf, 0xaa, 0x94, 0x08, 0xdf, 0xf0, 0xfc,
        0x10,
    ],
    [
        0x31, 0x80, 0xc8, 0x73, 0xc7, 0xea, 0x46, 0xd3, 0xaa, 0x25, 0x75, 0x0f, 0x9e, 0x4c, 0x09,
        0x29,
    ],
    [
        0x7d, 0xf7, 0x18, 0x4b, 0x7b, 0xa4, 0x44, 0xd5, 0x85, 0x3c, 0x06, 0xe0, 0x65, 0x53, 0x96,
        0x6d,
    ],
    [
        0xf2, 0x77, 0xe9, 0x6f, 0x93, 0xb5, 0x4e, 0x71, 0x9a, 0x0c, 0x34, 0x88, 0x39, 0x25, 0xbf,
        0x35,
    ],
];

/// A bloom bit field of a bus's geometry: a message's filter
/// (`KDBUS_ITEM_BLOOM_FILTER`) or one generation of a match mask
/// (`KDBUS_ITEM_BLOOM_MASK`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BloomFilter {
    params: BloomParams,
    generation: u64,
    words: Vec<u64>,
}

impl BloomFilter {
    /// An empty filter (generation 0).
    ///
    /// # Panics
    /// If `params.size` is not a non-zero multiple of 8 or `n_hash` is 0:
    /// such a bus cannot exist (BUS_MAKE refuses it).
    pub fn new(params: BloomParams) -> BloomFilter {
        assert!(
            params.size >= 8 && params.size % 8 == 0 && params.n_hash > 0,
            "invalid bloom parameters {params:?}"
        );
        BloomFilter {
            params,
            generation: 0,
            words: vec![0; (params.size / 8) as usize],
        }
    }

    /// A filter from raw words (for instance one received in a message).
    /// `None` if the word count does not fit `params`.
    pub fn from_words(
        params: BloomParams,
        generation: u64,
        words: Vec<u64>,
    ) -> Option<BloomFilter> {
        (words.len() as u64 * 8 == params.size).then_some(BloomFilter {
            params,
            generation,
            words,
        })
    }

    pub fn params(&self) -> BloomParams {
        self.params
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Generation of the filter: receivers use their mask for
    /// `min(generation, masks - 1)`.
    pub fn set_generation(&mut self, generation: u64) -> &mut Self {
        self.generation = generation;
        self
    }

    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Adds `data`: sets `n_hash` bits.
    pub fn add(&mut self, data: &[u8]) -> &mut Self {
        let bits = self.params.size * 8;
        // Bytes of hash output per bit index: enough to address every bit.
        let bytes_per_index = (bits.ilog2() as u64).div_ceil(8).max(1);
        let mut key = 0;
        let mut hash = [0u8; 8];
        let mut left = 0usize;
        for _ in 0..self.params.n_hash {
            let mut index = 0u64;
            for _ in 0..bytes_per_index {
                if left == 0 {
                    // sd-bus asserts that 8 keys suffice (they do for its
                    // geometry); larger geometries reuse them cyclically.
                    let mut h = SipHasher24::new_with_key(&HASH_KEYS[key % HASH_KEYS.len()]);
                    key += 1;
                    h.write(data);
                    hash = h.finish().to_le_bytes();
                    left = 8;
                }
                index = index << 8 | hash[8 - left] as u64;
                left -= 1;
            }
            // Equals sd-bus's `& (bits - 1)` for its power-of-two sizes.
            let bit = index % bits;
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self
    }

    /// Adds `"a:b"` (sd-bus `bloom_add_pair`), e.g. `("member", "Changed")`.
    pub fn add_pair(&mut self, a: &str, b: &str) -> &mut Self {
        self.add(format!("{a}:{b}").as_bytes())
    }

    /// Adds `"a:b"` and every prefix of `b` cut at `sep`, both with and
    /// without the separator (sd-bus `bloom_add_prefixes`), e.g.
    /// `("path-slash-prefix", "/a/b", '/')` adds `…:/a/`, `…:/a`, `…:/`.
    pub fn add_prefixes(&mut self, a: &str, b: &str, sep: char) -> &mut Self {
        let full = format!("{a}:{b}");
        self.add(full.as_bytes());
        let start = a.len() + 1;
        let mut end = full.len();
        while let Some(at) = full[start..end].rfind(sep) {
            let e = start + at;
            self.add(&full.as_bytes()[..e + sep.len_utf8()]);
            if e == start {
                break;
            }
            self.add(&full.as_bytes()[..e]);
            end = e;
        }
        self
    }

    /// True if every bit of `mask` is set here — the kernel's match test.
    pub fn contains(&self, mask: &BloomFilter) -> bool {
        self.words.len() == mask.words.len()
            && self.words.iter().zip(&mask.words).all(|(f, m)| f & m == *m)
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    /// The payload of a `KDBUS_ITEM_BLOOM_FILTER` item.
    pub fn filter_item_payload(&self) -> Vec<u8> {
        let mut out = self.generation.to_ne_bytes().to_vec();
        for w in &self.words {
            out.extend(w.to_ne_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_is_siphash_2_4() {
        // Reference vector of the SipHash paper (appendix A).
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let msg: Vec<u8> = (0..15).collect();
        let mut h = SipHasher24::new_with_key(&key);
        h.write(&msg);
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn add_sets_at_most_n_hash_bits() {
        let mut f = BloomFilter::new(BloomParams::DEFAULT);
        f.add(b"member:Hello");
        let n = f.count_ones();
        assert!((1..=8).contains(&n), "{n} bits set");
        let before = f.clone();
        f.add(b"member:Hello");
        assert_eq!(f, before, "adding twice changes nothing");
    }

    #[test]
    fn a_filter_contains_the_mask_of_its_own_properties() {
        let mut filter = BloomFilter::new(BloomParams::DEFAULT);
        filter
            .add_pair("message-type", "signal")
            .add_pair("interface", "org.example.Iface")
            .add_pair("member", "Changed");
        let mut mask = BloomFilter::new(BloomParams::DEFAULT);
        mask.add_pair("interface", "org.example.Iface");
        assert!(filter.contains(&mask));
        mask.add_pair("member", "Changed");
        assert!(filter.contains(&mask));
        let mut other = BloomFilter::new(BloomParams::DEFAULT);
        other
            .add_pair("member", "SomethingElse")
            .add_pair("interface", "x.y");
        assert!(!filter.contains(&other), "unrelated mask (false positive?)");
        assert!(
            filter.contains(&BloomFilter::new(BloomParams::DEFAULT)),
            "empty mask matches all"
        );
    }

    #[test]
    fn prefixes_match_parent_paths() {
        let mut filter = BloomFilter::new(BloomParams::DEFAULT);
        filter.add_prefixes("path-slash-prefix", "/org/example/obj", '/');
        for prefix in [
            "/org/example/obj",
            "/org/example/",
            "/org/example",
            "/org/",
            "/org",
            "/",
        ] {
            let mut mask = BloomFilter::new(BloomParams::DEFAULT);
            mask.add_pair("path-slash-prefix", prefix);
            assert!(filter.contains(&mask), "prefix {prefix}");
        }
    }

    #[test]
    fn different_geometries_never_match() {
        let filter = BloomFilter::new(BloomParams::DEFAULT);
        let mask = BloomFilter::new(BloomParams {
            size: 128,
            n_hash: 8,
        });
        assert!(!filter.contains(&mask));
    }

    #[test]
    fn odd_geometries_stay_in_bounds() {
        for size in [8, 24, 4096] {
            for n_hash in [1, 3, 64] {
                let mut f = BloomFilter::new(BloomParams { size, n_hash });
                for i in 0..50 {
                    f.add(format!("k{i}").as_bytes());
                }
                assert_eq!(f.words().len() as u64 * 8, size);
            }
        }
    }

    #[test]
    fn item_payload_is_generation_then_words() {
        let mut f = BloomFilter::new(BloomParams {
            size: 16,
            n_hash: 1,
        });
        f.set_generation(3);
        let p = f.filter_item_payload();
        assert_eq!(p.len(), 24);
        assert_eq!(u64::from_ne_bytes(p[..8].try_into().unwrap()), 3);
        assert!(BloomFilter::from_words(f.params(), 0, vec![0; 3]).is_none());
    }

    #[test]
    #[should_panic(expected = "invalid bloom parameters")]
    fn rejects_impossible_geometry() {
        BloomFilter::new(BloomParams {
            size: 12,
            n_hash: 1,
        });
    }
}
