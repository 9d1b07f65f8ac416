//! Boots of an initramfs-tools image (mkinitramfs with our hook and boot
//! scripts) on the same Debian root as the dracut boots.

use super::initramfs::Flavour;
use super::scenarios::{
    activation_across_the_switch, bus_id, kdbus_off, module_and_mount, user_activation, Checks,
    Scenario,
};

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "initramfs-tools",
            about: "kdbus=1, initramfs-tools image: the bus from init-top through run-init into the real root, activation across the switch",
            flavour: Flavour::InitramfsTools,
            cmdline: "kdbus=1",
            shell: false,
            evaluate: kdbus_on,
        },
        Scenario {
            name: "initramfs-tools-0",
            about: "kdbus=0, initramfs-tools image: nothing loaded or mounted, boot unchanged",
            flavour: Flavour::InitramfsTools,
            cmdline: "kdbus=0",
            shell: false,
            evaluate: |c| kdbus_off(c, None),
        },
    ]
}

fn kdbus_on(c: &mut Checks) {
    for p in ["initrd", "root"] {
        c.base(
            &format!("the {p} phase reported"),
            c.m.seen(p),
            format!("no '@@T {p} end' marker"),
        );
    }
    module_and_mount(c, "initrd");
    // init-top starts kdbus-init; the root is mounted later.
    let ready = c.console_index("bus 0-system ready");
    let mounting = c.console_index("Mounting root file system");
    c.bus(
        "initrd: the bus was up before the root file system was mounted",
        matches!((ready, mounting), (Some(a), Some(b)) if a < b),
        format!("'bus 0-system ready' at console line {ready:?}, root mount at {mounting:?}"),
    );
    let id = bus_id(c, "initrd");
    c.bus(
        "initrd: bus 0-system created, owner handle held",
        id.is_some() && c.is("initrd", "owner_held", "yes"),
        c.describe("initrd", &["status", "bus_id", "owner_held"]),
    );
    c.bus(
        "initrd: kdbus-init marked itself a root storage daemon ('@' argv[0])",
        c.m.get("initrd", "argv0")
            .is_some_and(|a| a.starts_with('@')),
        c.describe("initrd", &["argv0"]),
    );
    c.bus(
        "real root: the same bus id as in the initramfs",
        id.is_some() && bus_id(c, "root") == id,
        format!("initrd {:?}, root {:?}", id, bus_id(c, "root")),
    );
    let moved = c.is("root", "root", "real-root")
        && c.is("root", "exe_here", "yes")
        && c.is("root", "root_link", "/")
        && c.is("root", "deleted_maps", "0");
    c.bus(
        "real root: kdbus-init followed run-init, runs from the real root's binary and maps \
         nothing of the initramfs",
        moved,
        c.describe(
            "root",
            &["root", "exe_here", "exe_link", "root_link", "deleted_maps"],
        ),
    );
    c.bus(
        "real root: no failed units",
        c.is("root", "failed_units", "0"),
        format!("{:?}", c.m.all("root", "failed_unit")),
    );
    activation_across_the_switch(c);
    user_activation(c);
    // No shutdown root: kdbus-init, spared by systemd-shutdown, holds the
    // bus to the end from the real root, which is still remounted
    // read-only; dracut (installed in this root) is not asked to unpack
    // the initramfs-tools image.
    let spared = c.console_index("(kdbus-init) has been marked to be excluded from killing");
    let unmounted = c.console_index("All filesystems unmounted");
    c.bus(
        "poweroff: kdbus-init kept the bus to the end, the real root was remounted read-only",
        matches!((spared, unmounted), (Some(a), Some(b)) if a < b),
        format!("kdbus-init spared at console line {spared:?}, file systems done at {unmounted:?}"),
    );
    c.base(
        "poweroff: dracut was not asked for a shutdown root",
        c.console_index("dracut-shutdown-o").is_none(),
        "dracut-shutdown tried to unpack the initramfs-tools image into /run/initramfs",
    );
}
