//! Users and groups from /etc/passwd and /etc/group: policies name them,
//! and a client's groups decide which group policies apply to it.

use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Users {
    by_name: HashMap<String, (u32, u32)>,
    by_uid: HashMap<u32, String>,
    groups: HashMap<String, u32>,
    /// gid -> the user names listed as its members.
    members: HashMap<u32, Vec<String>>,
}

impl Users {
    /// Reads the two files under `root` ("/" on a running system).
    pub fn read(root: &Path) -> Users {
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
        let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
        Users::parse(&passwd, &group)
    }

    pub fn parse(passwd: &str, group: &str) -> Users {
        let mut users = Users::default();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(uid), Some(gid)) = (f.first(), f.get(2), f.get(3)) {
                if let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) {
                    users.by_name.entry(name.to_string()).or_insert((uid, gid));
                    users.by_uid.entry(uid).or_insert_with(|| name.to_string());
                }
            }
        }
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(gid)) = (f.first(), f.get(2)) {
                if let Ok(gid) = gid.parse() {
                    users.groups.entry(name.to_string()).or_insert(gid);
                    let members = f.get(3).copied().unwrap_or_default();
                    users.members.entry(gid).or_default().extend(
                        members
                            .split(',')
                            .filter(|m| !m.is_empty())
                            .map(str::to_owned),
                    );
                }
            }
        }
        users
    }

    /// A user name or a numeric uid.
    pub fn uid(&self, user: &str) -> Option<u32> {
        self.by_name
            .get(user)
            .map(|(uid, _)| *uid)
            .or_else(|| user.parse().ok())
    }

    /// A group name or a numeric gid.
    pub fn gid(&self, group: &str) -> Option<u32> {
        self.groups
            .get(group)
            .copied()
            .or_else(|| group.parse().ok())
    }

    /// The groups of `uid`: the connection's gid, the user's primary
    /// group and those that list the user as a member.
    pub fn groups_of(&self, uid: u32, gid: u32) -> Vec<u32> {
        let mut groups = vec![gid];
        if let Some(name) = self.by_uid.get(&uid) {
            if let Some((_, primary)) = self.by_name.get(name) {
                groups.push(*primary);
            }
            for (g, members) in &self.members {
                if members.iter().any(|m| m == name) {
                    groups.push(*g);
                }
            }
        }
        groups.sort_unstable();
        groups.dedup();
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_groups() {
        let u = Users::parse(
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/a:/bin/sh\nbroken\n",
            "root:x:0:\nalice:x:1000:\nnetdev:x:108:alice,bob\n",
        );
        assert_eq!(u.uid("alice"), Some(1000));
        assert_eq!(u.uid("4242"), Some(4242));
        assert_eq!(u.uid("nobody-here"), None);
        assert_eq!(u.gid("netdev"), Some(108));
        assert_eq!(u.groups_of(1000, 1000), vec![108, 1000]);
        assert_eq!(u.groups_of(5, 7), vec![7]);
    }
}
