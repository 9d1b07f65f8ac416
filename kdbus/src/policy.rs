//! Policy entries (spec §12): who may SEE, TALK to or OWN a name.

use crate::abi::*;
use crate::raw::Buf;

/// Whom an access record applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// Connections whose effective uid is this.
    User(u32),
    /// Connections whose effective or any supplementary gid is this.
    Group(u32),
    /// Everybody.
    World,
}

/// Access levels, ordered: `Own` implies `Talk` implies `See`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    See,
    Talk,
    Own,
}

/// One `KDBUS_ITEM_POLICY_ACCESS` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyAccess {
    pub subject: Subject,
    pub access: Access,
}

impl PolicyAccess {
    pub fn new(subject: Subject, access: Access) -> PolicyAccess {
        PolicyAccess { subject, access }
    }

    pub fn user(uid: u32, access: Access) -> PolicyAccess {
        PolicyAccess::new(Subject::User(uid), access)
    }

    pub fn group(gid: u32, access: Access) -> PolicyAccess {
        PolicyAccess::new(Subject::Group(gid), access)
    }

    pub fn world(access: Access) -> PolicyAccess {
        PolicyAccess::new(Subject::World, access)
    }

    /// The ABI record.
    pub fn to_abi(self) -> kdbus_policy_access {
        let (type_, id) = match self.subject {
            Subject::User(uid) => (KDBUS_POLICY_ACCESS_USER, uid as u64),
            Subject::Group(gid) => (KDBUS_POLICY_ACCESS_GROUP, gid as u64),
            Subject::World => (KDBUS_POLICY_ACCESS_WORLD, 0),
        };
        let access = match self.access {
            Access::See => KDBUS_POLICY_SEE,
            Access::Talk => KDBUS_POLICY_TALK,
            Access::Own => KDBUS_POLICY_OWN,
        };
        kdbus_policy_access { type_, access, id }
    }
}

/// A policy entry: a name (exact, or `a.b.*` for the names one element
/// below `a.b`) and the access records that apply to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    pub name: String,
    pub access: Vec<PolicyAccess>,
}

impl Policy {
    pub fn new(name: impl Into<String>, access: impl IntoIterator<Item = PolicyAccess>) -> Policy {
        Policy {
            name: name.into(),
            access: access.into_iter().collect(),
        }
    }

    /// Appends the entry as items: `KDBUS_ITEM_NAME`, then one
    /// `KDBUS_ITEM_POLICY_ACCESS` per record.
    pub fn push_items(&self, buf: &mut Buf) {
        buf.push_str_item(KDBUS_ITEM_NAME, &self.name);
        for access in &self.access {
            buf.push_struct_item(KDBUS_ITEM_POLICY_ACCESS, &access.to_abi());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Item, Items};

    #[test]
    fn encodes_name_then_access_records() {
        let policy = Policy::new(
            "org.example.Service",
            [
                PolicyAccess::user(0, Access::Own),
                PolicyAccess::group(100, Access::Talk),
                PolicyAccess::world(Access::See),
            ],
        );
        let mut buf = Buf::new();
        policy.push_items(&mut buf);
        let items = Items::new(buf.as_bytes()).decode_all().unwrap();
        assert_eq!(
            items,
            vec![
                Item::Name("org.example.Service"),
                Item::PolicyAccess(kdbus_policy_access {
                    type_: KDBUS_POLICY_ACCESS_USER,
                    access: KDBUS_POLICY_OWN,
                    id: 0
                }),
                Item::PolicyAccess(kdbus_policy_access {
                    type_: KDBUS_POLICY_ACCESS_GROUP,
                    access: KDBUS_POLICY_TALK,
                    id: 100
                }),
                Item::PolicyAccess(kdbus_policy_access {
                    type_: KDBUS_POLICY_ACCESS_WORLD,
                    access: KDBUS_POLICY_SEE,
                    id: 0
                }),
            ]
        );
    }

    #[test]
    fn access_levels_are_ordered() {
        assert!(Access::Own > Access::Talk && Access::Talk > Access::See);
    }
}
