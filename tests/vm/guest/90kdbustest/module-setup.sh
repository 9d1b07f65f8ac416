#!/bin/bash
# Test-only dracut module of the boot tests (never installed on a system):
# the probe that reports what it sees in the initramfs and in the shutdown
# root, and D-Bus service files whose programs exist only in the real root;
# in images with D-Bus, a D-Bus client that stays from the initramfs to the
# shutdown root.
# KDBUS_TEST_PROBE=FILE is the probe binary.

# shellcheck disable=SC2317  # functions are called by dracut

check() {
    return 255
}

depends() {
    echo kdbus
}

install() {
    inst_binary "$KDBUS_TEST_PROBE" /usr/lib/kdbus-test/kdbus-boot-probe
    local svc unit
    for svc in org.kdbus.test.Late org.kdbus.test.LateUser org.kdbus.test.Restart; do
        inst_simple "$moddir/$svc.service" "/usr/share/dbus-1/system-services/$svc.service"
    done
    if dracut_module_included "systemd"; then
        inst_simple "$moddir/kdbus-test-initrd.service" "$systemdsystemunitdir/kdbus-test-initrd.service"
        $SYSTEMCTL -q --root "$initdir" add-wants initrd.target kdbus-test-initrd.service
        if dracut_module_included "dbus" || [[ $kdbus_bridge == yes ]]; then
            # The early D-Bus client and the programs that ask it.
            inst_multiple dbus-test-tool dbus-send busctl
            for unit in kdbus-test-early-client.service kdbus-test-initrd-bus.service; do
                inst_simple "$moddir/$unit" "$systemdsystemunitdir/$unit"
                $SYSTEMCTL -q --root "$initdir" add-wants initrd.target "$unit"
            done
            inst_script "$moddir/kdbus-test-initrd-bus.sh" /usr/lib/kdbus-test/kdbus-test-initrd-bus.sh
            inst_simple "$moddir/org.kdbus.test.Early.conf" /usr/share/dbus-1/system.d/org.kdbus.test.Early.conf
        fi
    else
        inst_hook pre-pivot 90 "$moddir/kdbus-test-initrd.sh"
    fi
    inst_hook pre-shutdown 50 "$moddir/kdbus-test-shutdown.sh"
    inst_hook shutdown 99 "$moddir/kdbus-test-final.sh"
}
