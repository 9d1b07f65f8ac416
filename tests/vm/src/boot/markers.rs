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
        let mut lines = lines.iter().peekable();
        while let Some(line) = lines.next() {
            let Some(pos) = line.find("@@T ") else {
                continue;
            };
            let mut text = line[pos + 4..].to_owned();
            // A kernel line printed into the marker before its key ended
            // pushed the rest of the marker onto the next line.
            let cut = without_kernel_line(&text).len();
            if cut < text.len() && text[..cut].matches(' ').count() < 2 {
                if let Some(rest) = lines.next_if(|l| !l.contains("@@T ") && !starts_with_stamp(l))
                {
                    text.truncate(cut);
                    text.push_str(rest);
                }
            }
            let mut parts = text.splitn(3, ' ');
            let (Some(phase), Some(key)) = (parts.next(), parts.next()) else {
                continue;
            };
            let value = without_kernel_line(parts.next().unwrap_or(""))
                .trim()
                .to_owned();
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

/// `value` up to a kernel log line that the serial console printed into
/// the middle of the marker's line (`[    7.707029] ACPI: ...`): its
/// timestamp, `[`, spaces, digits, `.`, digits, `]`, is never part of a
/// marker's value.
fn without_kernel_line(value: &str) -> &str {
    value
        .match_indices('[')
        .map(|(at, _)| at)
        .find(|&at| starts_with_stamp(&value[at..]))
        .map_or(value, |at| &value[..at])
}

/// Does `s` start with a kernel log line's timestamp?
fn starts_with_stamp(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.split(']').next()) else {
        return false;
    };
    let (secs, frac) = inner.trim_start().split_once('.').unwrap_or(("", ""));
    !secs.is_empty()
        && !frac.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Console lines as the boot log hands them to the parser.
    fn console(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_kernel_line_inside_a_marker_is_not_its_value() {
        let m = Markers::parse(&console(&[
            "@@T initrd kdbusfs_mounts 0[    7.707029] ACPI: \\_SB_.GSIA: Enabled at IRQ 16",
            "@@T root activations [1, 2][  12.5] virtio_blk",
            "@@T root list [a] [b]",
        ]));
        assert_eq!(m.get("initrd", "kdbusfs_mounts"), Some("0"));
        assert_eq!(m.get("root", "activations"), Some("[1, 2]"));
        assert_eq!(m.get("root", "list"), Some("[a] [b]"));
    }

    #[test]
    fn a_marker_cut_before_its_key_ended_is_joined_again() {
        let m = Markers::parse(&console(&[
            "@@T restart-shut[   33.228066] kdbus-init[319]: the bus handles are held (shutdown-root)",
            "down serving_again_ms 62",
            "@@T root ac[  12.5] virtio_blk",
            "[  12.6] another kernel line",
            "@@T root cut [1, [  12.7] virtio_blk",
            "2]",
        ]));
        assert_eq!(m.num("restart-shutdown", "serving_again_ms"), Some(62));
        // The rest never came as a line of its own: nothing is made up.
        assert_eq!(m.get("root", "ac"), None);
        // A value already begun keeps what came before the kernel line.
        assert_eq!(m.get("root", "cut"), Some("[1,"));
    }

    #[test]
    fn markers_survive_console_noise() {
        let m = Markers::parse(&console(&[
            "[   3.1] kdbus-init[88]: bus ready",
            "@@T initrd module yes",
            "garbage @@T initrd problem two words here",
            "@@T initrd problem another",
            "@@T initrd end initrd",
            "@@T root",
        ]));
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
