//! Match rules (spec §11): which signals and kernel notifications a
//! connection receives.

use zerocopy::IntoBytes;

use crate::abi::*;
use crate::bloom::BloomFilter;
use crate::error::Result;
use crate::message::check_string;
use crate::raw::Buf;

/// One rule of a match entry; an entry matches when all its rules do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Bloom masks, one per generation (all of the bus's size).
    BloomMask(Vec<BloomFilter>),
    /// The sender currently owns this name.
    SenderName(String),
    /// The sender has this id (`KDBUS_MATCH_ID_ANY` = any).
    SenderId(u64),
    /// The message's destination id (e.g. `KDBUS_DST_ID_BROADCAST`).
    DstId(u64),
    /// `NAME_ADD` notifications; `None` = any name / any owner.
    NameAdd {
        name: Option<String>,
        old_id: Option<u64>,
        new_id: Option<u64>,
    },
    NameRemove {
        name: Option<String>,
        old_id: Option<u64>,
        new_id: Option<u64>,
    },
    NameChange {
        name: Option<String>,
        old_id: Option<u64>,
        new_id: Option<u64>,
    },
    /// `ID_ADD` notifications for `id` (`None` = any).
    IdAdd(Option<u64>),
    IdRemove(Option<u64>),
}

/// A match entry for `KDBUS_CMD_MATCH_ADD`, tagged with a cookie (the
/// handle to remove it). No rules at all = match every signal and every
/// notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRule {
    cookie: u64,
    replace: bool,
    rules: Vec<Rule>,
}

impl MatchRule {
    pub fn new(cookie: u64) -> MatchRule {
        MatchRule {
            cookie,
            replace: false,
            rules: Vec::new(),
        }
    }

    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// `KDBUS_MATCH_REPLACE`: first remove the entries with this cookie.
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }

    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Signals whose bloom filter contains `mask`.
    pub fn bloom(self, mask: &BloomFilter) -> Self {
        self.rule(Rule::BloomMask(vec![mask.clone()]))
    }

    /// Signals from the owner of `name`.
    pub fn sender_name(self, name: impl Into<String>) -> Self {
        self.rule(Rule::SenderName(name.into()))
    }

    /// Signals from connection `id`.
    pub fn sender(self, id: u64) -> Self {
        self.rule(Rule::SenderId(id))
    }

    /// Messages to `id` (`KDBUS_DST_ID_BROADCAST` for broadcasts only).
    pub fn destination(self, id: u64) -> Self {
        self.rule(Rule::DstId(id))
    }

    /// Every `NAME_ADD`, `NAME_REMOVE` and `NAME_CHANGE` about `name`
    /// (`None`: any name) — three entries' worth of rules cannot share one
    /// entry (all rules must match), so use this on separate MatchRules, or
    /// see [`MatchRule::name_changes`].
    pub fn name_added(self, name: Option<&str>) -> Self {
        self.rule(Rule::NameAdd {
            name: name.map(str::to_owned),
            old_id: None,
            new_id: None,
        })
    }

    pub fn name_removed(self, name: Option<&str>) -> Self {
        self.rule(Rule::NameRemove {
            name: name.map(str::to_owned),
            old_id: None,
            new_id: None,
        })
    }

    pub fn name_changed(self, name: Option<&str>) -> Self {
        self.rule(Rule::NameChange {
            name: name.map(str::to_owned),
            old_id: None,
            new_id: None,
        })
    }

    /// `ID_ADD` of `id` (`None`: any connection).
    pub fn id_added(self, id: Option<u64>) -> Self {
        self.rule(Rule::IdAdd(id))
    }

    pub fn id_removed(self, id: Option<u64>) -> Self {
        self.rule(Rule::IdRemove(id))
    }

    /// Three entries with `cookie`, for all name notifications about
    /// `name` (add them all; remove them together by cookie).
    pub fn name_changes(cookie: u64, name: Option<&str>) -> [MatchRule; 3] {
        [
            MatchRule::new(cookie).name_added(name),
            MatchRule::new(cookie).name_removed(name),
            MatchRule::new(cookie).name_changed(name),
        ]
    }

    /// The `kdbus_cmd_match` blob with its items.
    pub fn encode(&self) -> Result<Buf> {
        let mut buf = Buf::with_header(&kdbus_cmd_match {
            size: 0,
            flags: if self.replace { KDBUS_MATCH_REPLACE } else { 0 },
            return_flags: 0,
            cookie: self.cookie,
        });
        let any = |id: Option<u64>| id.unwrap_or(KDBUS_MATCH_ID_ANY);
        for rule in &self.rules {
            match rule {
                Rule::BloomMask(masks) => {
                    let payload: Vec<u8> = masks
                        .iter()
                        .flat_map(|m| m.words().iter().flat_map(|w| w.to_ne_bytes()))
                        .collect();
                    buf.push_item(KDBUS_ITEM_BLOOM_MASK, &payload);
                }
                Rule::SenderName(name) => {
                    check_string("name", name)?;
                    buf.push_str_item(KDBUS_ITEM_NAME, name);
                }
                Rule::SenderId(id) => buf.push_u64_item(KDBUS_ITEM_ID, *id),
                Rule::DstId(id) => buf.push_u64_item(KDBUS_ITEM_DST_ID, *id),
                Rule::NameAdd {
                    name,
                    old_id,
                    new_id,
                }
                | Rule::NameRemove {
                    name,
                    old_id,
                    new_id,
                }
                | Rule::NameChange {
                    name,
                    old_id,
                    new_id,
                } => {
                    let type_ = match rule {
                        Rule::NameAdd { .. } => KDBUS_ITEM_NAME_ADD,
                        Rule::NameRemove { .. } => KDBUS_ITEM_NAME_REMOVE,
                        _ => KDBUS_ITEM_NAME_CHANGE,
                    };
                    let change = kdbus_notify_name_change {
                        old_id: kdbus_notify_id_change {
                            id: any(*old_id),
                            flags: 0,
                        },
                        new_id: kdbus_notify_id_change {
                            id: any(*new_id),
                            flags: 0,
                        },
                    };
                    match name {
                        Some(name) => {
                            check_string("name", name)?;
                            buf.push_item_parts(type_, &[change.as_bytes(), name.as_bytes(), b"\0"])
                        }
                        None => buf.push_struct_item(type_, &change),
                    }
                }
                Rule::IdAdd(id) | Rule::IdRemove(id) => {
                    let type_ = if matches!(rule, Rule::IdAdd(_)) {
                        KDBUS_ITEM_ID_ADD
                    } else {
                        KDBUS_ITEM_ID_REMOVE
                    };
                    buf.push_struct_item(
                        type_,
                        &kdbus_notify_id_change {
                            id: any(*id),
                            flags: 0,
                        },
                    );
                }
            }
        }
        buf.finish();
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bloom::BloomParams;
    use crate::item::{Item, Items, NameChangeItem};

    #[test]
    fn encodes_every_rule() {
        let mut mask = BloomFilter::new(BloomParams::DEFAULT);
        mask.add_pair("member", "Changed");
        let rule = MatchRule::new(77)
            .replace()
            .bloom(&mask)
            .sender_name("org.example.A")
            .sender(5)
            .destination(KDBUS_DST_ID_BROADCAST)
            .name_changed(Some("org.example.B"))
            .name_added(None)
            .id_removed(Some(9))
            .id_added(None);
        let buf = rule.encode().unwrap();
        let header: kdbus_cmd_match = buf.read(0);
        assert_eq!(header.size, buf.len() as u64);
        assert_eq!(header.flags, KDBUS_MATCH_REPLACE);
        assert_eq!(header.cookie, 77);
        let items = Items::new(&buf.as_bytes()[32..]).decode_all().unwrap();
        assert_eq!(items[0], Item::BloomMask(mask.words().to_vec()));
        assert_eq!(items[1], Item::Name("org.example.A"));
        assert_eq!(items[2], Item::Id(5));
        assert_eq!(items[3], Item::DstId(KDBUS_DST_ID_BROADCAST));
        let wildcard = kdbus_notify_id_change {
            id: KDBUS_MATCH_ID_ANY,
            flags: 0,
        };
        assert_eq!(
            items[4],
            Item::NameChange(NameChangeItem {
                old_id: wildcard,
                new_id: wildcard,
                name: Some("org.example.B")
            })
        );
        assert_eq!(
            items[5],
            Item::NameAdd(NameChangeItem {
                old_id: wildcard,
                new_id: wildcard,
                name: None
            })
        );
        assert_eq!(
            items[6],
            Item::IdRemove(kdbus_notify_id_change { id: 9, flags: 0 })
        );
        assert_eq!(items[7], Item::IdAdd(wildcard));
    }

    #[test]
    fn an_empty_rule_matches_everything() {
        let buf = MatchRule::new(1).encode().unwrap();
        assert_eq!(buf.len(), 32);
        assert_eq!(buf.u64_at(8), 0, "no REPLACE unless asked");
    }

    #[test]
    fn multiple_generations_are_concatenated() {
        let a = BloomFilter::new(BloomParams::DEFAULT);
        let mut b = BloomFilter::new(BloomParams::DEFAULT);
        b.add(b"x");
        let buf = MatchRule::new(1)
            .rule(Rule::BloomMask(vec![a, b.clone()]))
            .encode()
            .unwrap();
        let items = Items::new(&buf.as_bytes()[32..]).decode_all().unwrap();
        let Item::BloomMask(words) = &items[0] else {
            panic!()
        };
        assert_eq!(words.len(), 16);
        assert_eq!(&words[8..], b.words());
    }

    #[test]
    fn name_changes_makes_three_entries() {
        let rules = MatchRule::name_changes(4, Some("a.b"));
        assert!(rules.iter().all(|r| r.cookie() == 4));
    }
}
