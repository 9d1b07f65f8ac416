//! The kernel command line: `kdbus=` and the `rd.kdbus.*` options.
//!
//! `kdbus=` takes the boolean words systemd historically accepted
//! (`1/0/yes/no/on/off/true/false`, case-insensitive). A bare `kdbus` means
//! on, as in systemd's `is_kdbus_wanted()` of the kdbus era. Absent means off.
//! Any other value is reported and treated as off: a typo must never turn a
//! boot into something the user did not ask for. As with every kernel
//! option, the last occurrence wins.

use std::fmt;

/// One `key` or `key=value` word of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub key: String,
    pub value: Option<String>,
}

/// Splits a command line into words the way the kernel does: whitespace
/// separates words except inside double quotes, and the quotes are removed.
pub fn split(line: &str) -> Vec<Arg> {
    let mut args = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    args.push(to_arg(&word));
                    word.clear();
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        args.push(to_arg(&word));
    }
    args
}

fn to_arg(word: &str) -> Arg {
    match word.split_once('=') {
        Some((k, v)) => Arg {
            key: k.to_owned(),
            value: Some(v.to_owned()),
        },
        None => Arg {
            key: word.to_owned(),
            value: None,
        },
    }
}

/// Parses a systemd-style boolean.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "on" | "true" => Some(true),
        "0" | "no" | "n" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// What `kdbus=` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KdbusSwitch {
    /// No `kdbus` word at all: off, and nothing to say about it.
    Absent,
    On,
    Off,
    /// A value that is not a boolean: off, with a warning.
    Invalid(String),
}

impl KdbusSwitch {
    pub fn enabled(&self) -> bool {
        matches!(self, KdbusSwitch::On)
    }
}

impl fmt::Display for KdbusSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KdbusSwitch::Absent => write!(f, "absent (off)"),
            KdbusSwitch::On => write!(f, "on"),
            KdbusSwitch::Off => write!(f, "off"),
            KdbusSwitch::Invalid(v) => write!(f, "invalid value '{v}' (off)"),
        }
    }
}

/// Where `rd.kdbus.shell=` opens the debugging shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShellStage {
    /// In the shutdown root, before the real root is unmounted.
    Shutdown,
}

/// Everything the boot tools read from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOptions {
    pub kdbus: KdbusSwitch,
    /// `rd.kdbus.shell=shutdown`: a shell with kdbusctl in the shutdown root.
    pub shell: Option<ShellStage>,
    /// Problems with `rd.kdbus.*` words, reported like a bad `kdbus=`.
    pub warnings: Vec<String>,
    /// `rd.kdbus.debug`: log debug records too.
    pub debug: bool,
    /// `rd.kdbus.services=DIR`: read service files from DIR instead of the
    /// D-Bus system services directory (tests, custom layouts).
    pub services_dir: Option<String>,
}

impl BootOptions {
    pub fn parse(line: &str) -> BootOptions {
        let mut opts = BootOptions {
            kdbus: KdbusSwitch::Absent,
            shell: None,
            warnings: Vec::new(),
            debug: false,
            services_dir: None,
        };
        for arg in split(line) {
            match arg.key.as_str() {
                "kdbus" => {
                    opts.kdbus = match arg.value.as_deref() {
                        None => KdbusSwitch::On,
                        Some(v) => match parse_bool(v) {
                            Some(true) => KdbusSwitch::On,
                            Some(false) => KdbusSwitch::Off,
                            None => KdbusSwitch::Invalid(v.to_owned()),
                        },
                    }
                }
                "rd.kdbus.shell" => match arg.value.as_deref() {
                    Some("shutdown") | None => opts.shell = Some(ShellStage::Shutdown),
                    Some(v) if parse_bool(v) == Some(false) => opts.shell = None,
                    Some(v) => opts.warnings.push(format!(
                        "rd.kdbus.shell={v} is not understood (known: rd.kdbus.shell=shutdown); no shell"
                    )),
                },
                "rd.kdbus.debug" => {
                    opts.debug = arg.value.as_deref().map_or(true, |v| parse_bool(v) == Some(true))
                }
                "rd.kdbus.services" => opts.services_dir = arg.value.filter(|v| !v.is_empty()),
                k if k.starts_with("rd.kdbus.") => opts.warnings.push(format!(
                    "unknown option {k} ignored (known: rd.kdbus.shell, rd.kdbus.debug, rd.kdbus.services)"
                )),
                _ => {}
            }
        }
        opts
    }

    /// Reads `/proc/cmdline`.
    pub fn from_proc() -> std::io::Result<BootOptions> {
        Ok(BootOptions::parse(&std::fs::read_to_string(
            "/proc/cmdline",
        )?))
    }

    /// The warning a user must see on the console for a bad `kdbus=`.
    pub fn kdbus_warning(&self) -> Option<String> {
        match &self.kdbus {
            KdbusSwitch::Invalid(v) => Some(format!(
                "kdbus={v} is not a boolean (use kdbus=1 or kdbus=0); booting without kdbus"
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kdbus(line: &str) -> KdbusSwitch {
        BootOptions::parse(line).kdbus
    }

    #[test]
    fn booleans() {
        for v in ["1", "yes", "on", "true", "TRUE", "Yes"] {
            assert_eq!(kdbus(&format!("quiet kdbus={v}")), KdbusSwitch::On, "{v}");
        }
        for v in ["0", "no", "off", "false", "OFF"] {
            assert_eq!(kdbus(&format!("kdbus={v} ro")), KdbusSwitch::Off, "{v}");
        }
    }

    #[test]
    fn absent_bare_and_invalid() {
        assert_eq!(kdbus("root=/dev/vda rw"), KdbusSwitch::Absent);
        assert!(!kdbus("root=/dev/vda").enabled());
        assert_eq!(kdbus("root=/dev/vda kdbus"), KdbusSwitch::On);
        let bad = BootOptions::parse("kdbus=banana");
        assert_eq!(bad.kdbus, KdbusSwitch::Invalid("banana".into()));
        assert!(!bad.kdbus.enabled());
        assert!(bad.kdbus_warning().unwrap().contains("kdbus=banana"));
        assert_eq!(kdbus("kdbus="), KdbusSwitch::Invalid(String::new()));
        // Similar names are not ours.
        assert_eq!(kdbus("kdbusx=1 rd.kdbus=1"), KdbusSwitch::Absent);
    }

    #[test]
    fn last_occurrence_wins() {
        assert_eq!(kdbus("kdbus=1 kdbus=0"), KdbusSwitch::Off);
        assert_eq!(kdbus("kdbus=banana kdbus=1"), KdbusSwitch::On);
    }

    #[test]
    fn quotes_group_words() {
        let args = split(r#"a="b c" d  "e=f g""#);
        assert_eq!(args.len(), 3);
        assert_eq!(args[0].value.as_deref(), Some("b c"));
        assert_eq!(args[1].key, "d");
        assert_eq!(args[2].key, "e");
        assert_eq!(args[2].value.as_deref(), Some("f g"));
        assert!(split("  \n").is_empty());
    }

    #[test]
    fn rd_options() {
        let o = BootOptions::parse("kdbus=1 rd.kdbus.shell=shutdown rd.kdbus.debug");
        assert_eq!(o.shell, Some(ShellStage::Shutdown));
        assert!(o.debug);
        assert!(o.warnings.is_empty());
        let o = BootOptions::parse("rd.kdbus.shell=later rd.kdbus.frobnicate=1");
        assert_eq!(o.shell, None);
        assert_eq!(o.warnings.len(), 2);
        let o = BootOptions::parse("rd.kdbus.services=/x/y");
        assert_eq!(o.services_dir.as_deref(), Some("/x/y"));
    }
}
