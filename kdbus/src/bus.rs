//! Buses and custom endpoints (spec §2, §4.1, §4.2): creating them, keeping
//! them alive, and finding their nodes.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::abi::*;
use crate::bloom::BloomParams;
use crate::conn::{cmd_header, command, open_node};
use crate::error::{Error, Result};
use crate::flags::{AttachFlags, MakeFlags};
use crate::message::check_string;
use crate::policy::Policy;
use crate::raw::{self, Buf};

/// Where kdbus.ko creates its mount point.
pub const KDBUSFS_MOUNT: &str = "/sys/fs/kdbus";
/// kdbusfs superblock magic ("DBus").
pub const KDBUS_SUPER_MAGIC: i64 = 0x4442_7573;
/// The system bus's name.
pub const SYSTEM_BUS_NAME: &str = "0-system";
/// The system bus's default endpoint.
pub const SYSTEM_BUS_PATH: &str = "/sys/fs/kdbus/0-system/bus";

/// `statfs.f_type` as a plain number (its C type differs across
/// architectures).
#[allow(clippy::unnecessary_cast)]
fn fs_magic(f_type: rustix::fs::FsWord) -> i64 {
    f_type as i64
}

/// Fails unless `fd` is a file on kdbusfs.
pub(crate) fn check_kdbus_handle(fd: BorrowedFd<'_>) -> Result<()> {
    let statfs = rustix::fs::fstatfs(fd).map_err(|e| Error::system("fstatfs", e))?;
    if fs_magic(statfs.f_type) != KDBUS_SUPER_MAGIC {
        return Err(Error::invalid_argument(format!(
            "fd {} is not a kdbus handle (file system magic {:#x})",
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            statfs.f_type
        )));
    }
    Ok(())
}

/// `"<uid>-<name>"`: bus and endpoint names must start with the creator's
/// effective uid.
pub fn prefixed_name(uid: u32, name: &str) -> String {
    format!("{uid}-{name}")
}

/// [`prefixed_name`] with the caller's effective uid.
pub fn own_name(name: &str) -> String {
    prefixed_name(rustix::process::geteuid().as_raw(), name)
}

/// A bus id128 as 32 lowercase hex digits, the way systemd prints 128-bit
/// ids (`kdbusctl status`, kdbus-init's status).
pub fn id128_hex(id: [u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default endpoint of bus `bus_name` in the domain mounted at `mount`.
pub fn bus_path(mount: impl AsRef<Path>, bus_name: &str) -> PathBuf {
    mount.as_ref().join(bus_name).join("bus")
}

/// `KDBUS_CMD_BUS_MAKE` parameters.
#[derive(Debug, Clone)]
pub struct BusBuilder {
    name: String,
    bloom: BloomParams,
    flags: MakeFlags,
    attach: Option<AttachFlags>,
}

impl BusBuilder {
    /// A bus called `name`, which must be `"<euid>-…"` (see
    /// [`own_name`]); default bloom geometry, owner-only access.
    pub fn new(name: impl Into<String>) -> BusBuilder {
        BusBuilder {
            name: name.into(),
            bloom: BloomParams::DEFAULT,
            flags: MakeFlags::empty(),
            attach: None,
        }
    }

    pub fn bloom(mut self, params: BloomParams) -> Self {
        self.bloom = params;
        self
    }

    /// Replaces the `KDBUS_MAKE_ACCESS_*` flags.
    pub fn flags(mut self, flags: MakeFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Everyone may open the bus (as the system bus must be).
    pub fn world_accessible(mut self) -> Self {
        self.flags |= MakeFlags::ACCESS_WORLD;
        self
    }

    /// The creator's group may open the bus.
    pub fn group_accessible(mut self) -> Self {
        self.flags |= MakeFlags::ACCESS_GROUP;
        self
    }

    /// Creator metadata that connections may query with
    /// `BUS_CREATOR_INFO` (default: none).
    pub fn creator_attach_flags(mut self, flags: AttachFlags) -> Self {
        self.attach = Some(flags);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `kdbus_cmd` blob with its items.
    pub fn encode(&self) -> Result<Buf> {
        check_string("bus name", &self.name)?;
        let mut buf = cmd_header(self.flags.bits());
        buf.push_struct_item(
            KDBUS_ITEM_BLOOM_PARAMETER,
            &kdbus_bloom_parameter::from(self.bloom),
        );
        if let Some(flags) = self.attach {
            buf.push_u64_item(KDBUS_ITEM_ATTACH_FLAGS_SEND, flags.bits());
        }
        buf.push_str_item(KDBUS_ITEM_MAKE_NAME, &self.name);
        buf.finish();
        Ok(buf)
    }

    /// Creates the bus through the `control` node at `control`.
    pub fn create(&self, control: impl AsRef<Path>) -> Result<Bus> {
        let control = control.as_ref();
        let mut bus = self.create_on(open_node(control)?)?;
        bus.mount = control.parent().map(Path::to_path_buf);
        Ok(bus)
    }

    /// Creates the bus in the domain mounted at `mount`.
    pub fn create_in(&self, mount: impl AsRef<Path>) -> Result<Bus> {
        self.create(mount.as_ref().join("control"))
    }

    /// Creates the bus on an opened, unused control handle.
    pub fn create_on(&self, control: OwnedFd) -> Result<Bus> {
        let mut buf = self.encode()?;
        command(control.as_fd(), KDBUS_CMD_BUS_MAKE, &mut buf)?;
        Ok(Bus {
            fd: control,
            name: self.name.clone(),
            mount: None,
        })
    }
}

/// The owner handle of a bus: the bus lives exactly as long as this handle
/// (and its duplicates, e.g. inherited across exec). Dropping the last one
/// destroys the bus with all its endpoints and connections.
#[derive(Debug)]
pub struct Bus {
    fd: OwnedFd,
    name: String,
    mount: Option<PathBuf>,
}

impl Bus {
    /// Takes over an inherited bus owner handle (after a re-exec): `name` is
    /// the bus's name and `mount` the kdbusfs mount it lives in.
    ///
    /// Checks that `fd` is on kdbusfs and is set up as a bus owner, not a
    /// fresh handle or a connection, and that the bus is still there.
    pub fn adopt(fd: OwnedFd, mount: impl AsRef<Path>, name: &str) -> Result<Bus> {
        let mount = mount.as_ref();
        check_kdbus_handle(fd.as_fd())?;
        // Every setup or connection command fails with EBADFD on an owner
        // handle; success means the fd is something else.
        for (cmd, what) in [
            (KDBUS_CMD_BUS_MAKE, "an unused control handle"),
            (KDBUS_CMD_HELLO, "an unused endpoint handle"),
            (KDBUS_CMD_LIST, "a connection"),
            (KDBUS_CMD_ENDPOINT_UPDATE, "an endpoint owner"),
        ] {
            if raw::negotiate_flags(&fd, cmd).is_ok() {
                return Err(Error::invalid_argument(format!(
                    "the inherited kdbus handle is {what}, not a bus owner"
                )));
            }
        }
        let path = bus_path(mount, name);
        if let Err(e) = rustix::fs::access(&path, rustix::fs::Access::EXISTS) {
            return Err(Error::at_path("find adopted bus", &path, e));
        }
        Ok(Bus {
            fd,
            name: name.to_owned(),
            mount: Some(mount.to_owned()),
        })
    }

    /// The bus name (`<uid>-<name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kdbusfs mount the bus lives in, if known.
    pub fn mount(&self) -> Option<&Path> {
        self.mount.as_deref()
    }

    /// The path of the default endpoint, if the mount is known.
    pub fn endpoint(&self) -> Option<PathBuf> {
        self.mount.as_ref().map(|m| bus_path(m, &self.name))
    }

    /// Gives up ownership of the handle (to pass it across exec).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Bus {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Bus> for OwnedFd {
    fn from(bus: Bus) -> OwnedFd {
        bus.fd
    }
}

/// `KDBUS_CMD_ENDPOINT_MAKE`: a custom endpoint with its own policy (bus
/// owner only).
#[derive(Debug, Clone)]
pub struct EndpointBuilder {
    name: String,
    flags: MakeFlags,
}

impl EndpointBuilder {
    /// An endpoint called `name` (`"<euid>-…"`).
    pub fn new(name: impl Into<String>) -> EndpointBuilder {
        EndpointBuilder {
            name: name.into(),
            flags: MakeFlags::empty(),
        }
    }

    pub fn flags(mut self, flags: MakeFlags) -> Self {
        self.flags = flags;
        self
    }

    pub fn encode(&self) -> Result<Buf> {
        check_string("endpoint name", &self.name)?;
        let mut buf = cmd_header(self.flags.bits());
        buf.push_str_item(KDBUS_ITEM_MAKE_NAME, &self.name);
        buf.finish();
        Ok(buf)
    }

    /// Creates the endpoint through the bus's default endpoint at
    /// `bus_endpoint`.
    pub fn create(&self, bus_endpoint: impl AsRef<Path>) -> Result<Endpoint> {
        let path = bus_endpoint.as_ref();
        let fd = open_node(path)?;
        let mut buf = self.encode()?;
        command(fd.as_fd(), KDBUS_CMD_ENDPOINT_MAKE, &mut buf)?;
        Ok(Endpoint {
            fd,
            path: path
                .parent()
                .map(|bus| bus.join(&self.name))
                .unwrap_or_default(),
        })
    }
}

/// A custom endpoint's owner handle: the endpoint lives as long as this.
/// It starts with an empty policy (nobody sees or talks to anything).
#[derive(Debug)]
pub struct Endpoint {
    fd: OwnedFd,
    path: PathBuf,
}

impl Endpoint {
    /// The endpoint node, to connect to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `KDBUS_CMD_ENDPOINT_UPDATE`: replaces the endpoint's policy.
    pub fn set_policy(&self, policy: &[Policy]) -> Result<()> {
        let mut buf = cmd_header(0);
        for entry in policy {
            check_string("name", &entry.name)?;
            entry.push_items(&mut buf);
        }
        buf.finish();
        command(self.fd.as_fd(), KDBUS_CMD_ENDPOINT_UPDATE, &mut buf)
    }
}

impl AsFd for Endpoint {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Why a bus cannot be reached, in words a user can act on.
pub fn diagnose_missing_bus(endpoint: &Path) -> Option<String> {
    let bus_dir = endpoint.parent()?;
    let mount = bus_dir.parent()?;
    if !mount.exists() {
        return Some(format!(
            "{} does not exist: kdbus.ko is not loaded (modprobe kdbus)",
            mount.display()
        ));
    }
    let magic = rustix::fs::statfs(mount).map(|s| fs_magic(s.f_type)).ok();
    if magic != Some(KDBUS_SUPER_MAGIC) {
        return Some(format!(
            "kdbusfs is not mounted on {} (mount -t kdbusfs kdbusfs {})",
            mount.display(),
            mount.display()
        ));
    }
    if !bus_dir.exists() {
        let mut buses: Vec<String> = std::fs::read_dir(mount)
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        buses.sort();
        let existing = if buses.is_empty() {
            "no bus exists there".to_owned()
        } else {
            format!("existing buses: {}", buses.join(", "))
        };
        return Some(format!(
            "there is no bus {} in {} ({existing})",
            bus_dir.file_name()?.to_string_lossy(),
            mount.display()
        ));
    }
    match rustix::fs::access(
        endpoint,
        rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
    ) {
        Err(Errno::ACCESS) => Some(format!(
            "no permission to open {} (the bus is not accessible to this user)",
            endpoint.display()
        )),
        Err(e) => Some(format!(
            "{}: {}",
            endpoint.display(),
            crate::error::describe(e)
        )),
        Ok(()) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Item, Items};

    #[test]
    fn bus_make_encodes_bloom_attach_and_name() {
        let buf = BusBuilder::new("0-system")
            .world_accessible()
            .bloom(BloomParams {
                size: 128,
                n_hash: 4,
            })
            .creator_attach_flags(AttachFlags::ANY)
            .encode()
            .unwrap();
        let cmd: kdbus_cmd = buf.read(0);
        assert_eq!(cmd.size, buf.len() as u64);
        assert_eq!(cmd.flags, KDBUS_MAKE_ACCESS_WORLD);
        let items = Items::new(&buf.as_bytes()[24..]).decode_all().unwrap();
        assert_eq!(
            items,
            vec![
                Item::BloomParameter(kdbus_bloom_parameter {
                    size: 128,
                    n_hash: 4
                }),
                Item::AttachFlagsSend(!0),
                Item::MakeName("0-system"),
            ]
        );
    }

    #[test]
    fn names_carry_the_uid_prefix() {
        assert_eq!(prefixed_name(0, "system"), "0-system");
        assert!(own_name("x").ends_with("-x"));
        assert_eq!(
            bus_path(KDBUSFS_MOUNT, SYSTEM_BUS_NAME),
            Path::new(SYSTEM_BUS_PATH)
        );
    }

    #[test]
    fn id128_is_32_hex_digits() {
        let mut id = [0u8; 16];
        id[0] = 0xab;
        id[15] = 1;
        assert_eq!(id128_hex(id), "ab000000000000000000000000000001");
    }

    #[test]
    fn endpoint_make_encodes_name_only() {
        let buf = EndpointBuilder::new("0-ep")
            .flags(MakeFlags::ACCESS_GROUP)
            .encode()
            .unwrap();
        let items = Items::new(&buf.as_bytes()[24..]).decode_all().unwrap();
        assert_eq!(items, vec![Item::MakeName("0-ep")]);
        assert_eq!(buf.u64_at(8), KDBUS_MAKE_ACCESS_GROUP);
    }

    #[test]
    fn adopting_a_non_kdbus_fd_is_refused() {
        let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let err = Bus::adopt(fd, KDBUSFS_MOUNT, SYSTEM_BUS_NAME).unwrap_err();
        assert!(err.to_string().contains("not a kdbus handle"), "{err}");
    }

    #[test]
    fn diagnoses_a_missing_mount() {
        let why = diagnose_missing_bus(Path::new("/nonexistent/kdbus/0-system/bus")).unwrap();
        assert!(why.contains("not loaded"), "{why}");
        // An existing directory that is not kdbusfs.
        let dir = std::env::temp_dir();
        let why = diagnose_missing_bus(&dir.join("0-system/bus")).unwrap();
        assert!(why.contains("kdbusfs is not mounted"), "{why}");
    }
}
