#!/bin/bash
# dracut module "kdbus": the kernel IPC bus from the initramfs to the
# shutdown root. Opt-in only: `dracut --add kdbus`.
#
# With systemd in the initramfs, kdbus-init.service starts the bus before
# journald; with dracut's shell init, a cmdline hook does, and our
# switch-root replaces util-linux's so that kdbus-init is told to follow.
# Both call for the shutdown root (kdbus-init touches .need_shutdown) and
# install a pre-shutdown hook that waits until kdbus-init runs from it and
# opens the debugging shell on rd.kdbus.shell=shutdown.
#
# The debugging shell's tools (kdbusctl, setsid) cost more than the rest of
# the module together, so they go in only when asked for at build time:
# kdbus_shell=yes in a dracut configuration file (for example
# /etc/dracut.conf.d/kdbus.conf); the shell itself is then opened at
# shutdown with rd.kdbus.shell=shutdown.
#
# With systemd, an image that has D-Bus (dracut's dbus, dbus-broker or
# dbus-daemon module, or kdbus_bridge=yes) gets kdbus-bridge too: with
# kdbus=1 it is the initramfs's D-Bus, in place of the distro's daemon
# (kdbus-system-bus-generator makes it dbus.service there, as in the real
# root), and it stays to the shutdown root; with kdbus=0 the daemon runs.
#
# Uninstalled builds (tests): KDBUS_BINDIR=DIR takes kdbus-init, kdbusctl
# and switch-root from DIR, KDBUS_BRIDGE=FILE the bridge from FILE,
# KDBUS_KO=FILE the module from FILE.

# shellcheck disable=SC2317  # functions are called by dracut

check() {
    return 255
}

depends() {
    # shutdown: the exitrd the bus moves into at poweroff.
    echo base shutdown
}

installkernel() {
    if [[ -n $KDBUS_KO ]]; then
        inst_simple "$KDBUS_KO" "/lib/modules/$kernel/extra/kdbus.ko" \
            || dfatal "kdbus: cannot install $KDBUS_KO"
    else
        # Not host-only: the bus is wanted whether or not the module is loaded now.
        hostonly='' instmods kdbus
    fi
}

_kdbus_bin() {
    # $1: name, $2: installed path
    local src
    case $1 in
        kdbus-init) src=/usr/sbin/kdbus-init ;;
        kdbusctl) src=/usr/bin/kdbusctl ;;
        switch-root) src=/usr/lib/kdbus/switch-root ;;
        kdbus-bridge) src=${KDBUS_BRIDGE:-/usr/bin/kdbus-bridge} ;;
    esac
    [[ -n $KDBUS_BINDIR && $1 != kdbus-bridge ]] && src=$KDBUS_BINDIR/$1
    inst_binary "$src" "$2" || dfatal "kdbus: $src is missing (run \`make install\`, or build it first)"
    # dracut's own stripping keeps symbol tables (strip -g); ours are not
    # needed in an initramfs. --nostrip (do_strip=no) leaves them.
    if [[ $do_strip != no ]] && command -v strip > /dev/null; then
        strip --strip-all "${initdir}$2" 2> /dev/null || :
    fi
}

_kdbus_wants_bridge() {
    dracut_module_included "systemd" || return 1
    [[ $kdbus_bridge == yes ]] && return 0
    local m
    for m in dbus dbus-broker dbus-daemon; do
        dracut_module_included "$m" && return 0
    done
    return 1
}

# Where make install put a bridge file (PREFIX=/usr or /usr/local);
# KDBUS_UNITS=DIR (tests) has them all. $1: file, $2: directory under PREFIX.
_kdbus_bridge_file() {
    local prefix
    if [[ -n $KDBUS_UNITS ]]; then
        echo "$KDBUS_UNITS/$1"
        return
    fi
    for prefix in /usr /usr/local; do
        [[ -e $prefix/$2/$1 ]] && echo "$prefix/$2/$1" && return
    done
    echo "$1 (not installed: run \`make install\`)"
}

# The bridge, its units and the generator that makes them dbus.service and
# dbus.socket with kdbus=1; the bus configuration it reads its policy from.
_kdbus_install_bridge() {
    local unit
    _kdbus_bin kdbus-bridge /usr/bin/kdbus-bridge
    for unit in kdbus-bridge.service kdbus-bridge.socket; do
        inst_simple "$(_kdbus_bridge_file $unit lib/systemd/system)" "$systemdsystemunitdir/$unit" \
            || dfatal "kdbus: $unit is missing (run \`make install\`)"
    done
    inst_script "$(_kdbus_bridge_file kdbus-system-bus-generator lib/systemd/system-generators)" \
        "$systemdutildir/system-generators/kdbus-system-bus-generator" \
        || dfatal "kdbus: kdbus-system-bus-generator is missing (run \`make install\`)"
    inst_multiple -o /usr/share/dbus-1/system.conf /usr/share/dbus-1/system.d/*.conf \
        /etc/dbus-1/system.conf /etc/dbus-1/system.d/*.conf /etc/dbus-1/system-local.conf
}

install() {
    _kdbus_bin kdbus-init /usr/sbin/kdbus-init
    inst_multiple modprobe
    if [[ $kdbus_shell == yes ]]; then
        _kdbus_bin kdbusctl /usr/bin/kdbusctl
        inst_multiple setsid
    fi

    # Names that may be activated before the real root is there: queued on
    # their activators and started once their programs exist.
    inst_dir /usr/share/dbus-1/system-services
    local f
    for f in "${dbussystemservices:-/usr/share/dbus-1/system-services}"/*.service; do
        [[ -e $f ]] && inst_simple "$f" "/usr/share/dbus-1/system-services/${f##*/}"
    done

    if dracut_module_included "systemd"; then
        inst_simple "$moddir/kdbus-init.service" "$systemdsystemunitdir/kdbus-init.service"
        $SYSTEMCTL -q --root "$initdir" add-wants initrd.target kdbus-init.service
        _kdbus_wants_bridge && _kdbus_install_bridge
    else
        inst_hook cmdline 01 "$moddir/kdbus-start.sh"
        # Ours first, as switch_root: 99base's `inst_multiple switch_root`
        # then finds it installed and keeps it. (With systemd, PID 1 does
        # the switch itself.)
        local sr
        sr=$(command -v switch_root)
        _kdbus_bin switch-root "${sr:-/usr/sbin/switch_root}"
    fi
    inst_hook pre-shutdown 10 "$moddir/kdbus-shutdown.sh"
}
