//! kdbus-init's one error type: every failure says what went wrong and, where
//! there is something to do about it, what.

use std::io;

use crate::daemon::{BUS_NAME, DOMAIN};
use crate::state::{OLDEST_READ, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "kdbus.ko is not available for kernel {kernel} (modprobe kdbus: {detail}): install it \
         (`make install`) and rebuild the initramfs with `dracut --add kdbus`"
    )]
    ModuleMissing { kernel: String, detail: String },
    #[error("cannot run modprobe to load kdbus.ko: {0}")]
    Modprobe(#[source] io::Error),
    #[error("mounting kdbusfs on {DOMAIN} failed: {0} (is kdbus.ko the project's module?)")]
    Mount(#[source] io::Error),
    #[error("cannot open {DOMAIN}: {0}")]
    OpenDomain(#[source] io::Error),
    #[error(
        "creating the bus {BUS_NAME} failed: this kdbus.ko does not implement BUS_MAKE \
         (ENOTTY); install a complete kdbus.ko"
    )]
    NoBusMake,
    #[error("creating the bus {BUS_NAME} failed: {0}")]
    BusMake(#[source] kdbus::Error),
    /// /proc, the signal pipe: what every process image needs.
    #[error("set-up failed: {0}")]
    Setup(#[from] io::Error),
    #[error("the state fd {0} handed over by the previous kdbus-init is missing")]
    StateFdMissing(i32),
    #[error(transparent)]
    StateBlob(#[from] bootenv::state::StateError),
    #[error(
        "the state handed over has format {0}, this kdbus-init takes over formats \
         {OLDEST_READ}-{VERSION} only (it came from a different kdbus-init build; install the \
         same kdbus-init in every root)"
    )]
    StateVersion(u32),
    #[error("the state file {path} is unusable: {why}")]
    StateFile { path: String, why: String },
    #[error("cannot register an activator for {name} ({file}): {source}")]
    Activator {
        name: String,
        file: String,
        #[source]
        source: kdbus::Error,
    },
    #[error("cannot take over {what}: {source}")]
    TakeOver {
        what: String,
        #[source]
        source: kdbus::Error,
    },
    #[error("cannot duplicate {what}: {source}")]
    Dup {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}: {source}")]
    HandoverRead {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "it carries no hand-over marker (a kdbus-init built before the marker, or not \
         kdbus-init at all)"
    )]
    HandoverMissing,
    #[error("its hand-over marker is malformed ({0})")]
    HandoverMalformed(String),
    #[error("cannot run systemctl: {0}")]
    Systemctl(#[source] io::Error),
    #[error("User={0} does not exist in this root")]
    UnknownUser(String),
    #[error("cannot execute {cmd}: {source}")]
    Exec {
        cmd: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read it: {0}")]
    ServiceRead(#[source] io::Error),
    #[error("line {line}: expected Key=Value, found '{found}'")]
    ServiceSyntax { line: usize, found: String },
    #[error("no [D-BUS Service] group")]
    ServiceNoGroup,
    #[error("no Name=")]
    ServiceNoName,
    #[error("Name={0} is not a valid D-Bus name")]
    ServiceBadName(String),
    #[error("{0} has neither Exec= nor SystemdService=: nothing to start")]
    ServiceNothingToStart(String),
    #[error("{name} is already provided by {first}")]
    ServiceDuplicate { name: String, first: String },
    #[error("cannot read {path}: {source}")]
    ModulesDep {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0} does not name kdbus.ko")]
    ModuleNotListed(String),
    #[error("{dep} names {entry}, but {file} is missing")]
    ModuleFileMissing {
        dep: String,
        entry: String,
        file: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;
