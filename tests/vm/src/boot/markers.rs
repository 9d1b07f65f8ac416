//! The `@@T <phase> <key> <value>` lines the guest probe prints.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Markers {
    /// phase -> [(key, value)] in console order.
    phases: BTreeMap<String, Vec<(String, String)>>,
}

impl Markers {
    pub fn parse(lines: &[String]) -> Markers {
        let mut m = Markers::default();
        for line in lines {
            let Some(pos) = line.find("@@T ") else {
                continue;
            };
            let mut parts = line[pos + 4..].splitn(3, ' ');
            let (Some(phase), Some(key)) = (parts.next(), parts.next()) else {
                continue;
            };
            let value = parts.next().unwrap_or("").trim().to_owned();
            m.phases
                .entry(phase.to_owned())
                .or_default()
                .push((key.to_owned(), value));
        }
        m
    }

    pub fn seen(&self, phase: &str) -> bool {
        self.get(phase, "end").is_some()
    }

    pub fn get(&self, phase: &str, key: &str) -> Option<&str> {
        self.phases
            .get(phase)?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, phase: &str, key: &str) -> Vec<&str> {
        self.phases
            .get(phase)
            .map(|v| {
                v.iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn num(&self, phase: &str, key: &str) -> Option<u64> {
        self.get(phase, key)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_survive_console_noise() {
        let lines: Vec<String> = [
            "[   3.1] kdbus-init[88]: bus ready",
            "@@T initrd module yes",
            "garbage @@T initrd problem two words here",
            "@@T initrd problem another",
            "@@T initrd end initrd",
            "@@T root",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let m = Markers::parse(&lines);
        assert_eq!(m.get("initrd", "module"), Some("yes"));
        assert_eq!(
            m.all("initrd", "problem"),
            vec!["two words here", "another"]
        );
        assert!(m.seen("initrd"));
        assert!(!m.seen("root"));
        assert_eq!(m.num("initrd", "module"), None);
    }
}
