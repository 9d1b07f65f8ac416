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
# Uninstalled builds (tests): KDBUS_BINDIR=DIR takes kdbus-init, kdbusctl
# and switch-root from DIR, KDBUS_KO=FILE takes the module from FILE.

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
    esac
    [[ -n $KDBUS_BINDIR ]] && src=$KDBUS_BINDIR/$1
    inst_binary "$src" "$2" || dfatal "kdbus: $src is missing (run \`make install\`, or build it first)"
    # dracut's own stripping keeps symbol tables (strip -g); ours are not
    # needed in an initramfs. --nostrip (do_strip=no) leaves them.
    if [[ $do_strip != no ]] && command -v strip > /dev/null; then
        strip --strip-all "${initdir}$2" 2> /dev/null || :
    fi
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
