#!/bin/bash
# dracut module "kdbus": the kernel IPC bus in the initramfs.
# Opt-in only: `dracut --add kdbus`.

# shellcheck disable=SC2317  # functions are called by dracut

check() {
    return 255
}

depends() {
    echo base
}

installkernel() {
    # Not host-only: the bus is wanted whether or not the module is loaded now.
    hostonly='' instmods kdbus
}

install() {
    inst_multiple kdbus-init kdbusctl
    inst /usr/lib/kdbus/switch-root
}
