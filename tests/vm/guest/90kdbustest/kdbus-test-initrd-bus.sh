#!/bin/sh
# See kdbus-test-initrd-bus.service.
say() { echo "@@T initrd $1 $2"; }
say dbus_service "$(systemctl show -P Id dbus.service)"
say dbus_state "$(systemctl show -P ActiveState dbus.service)"
owner=$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
    GetNameOwner s org.kdbus.test.Early 2>&1)
say early_owner "$owner"
say early_pid "$(systemctl show -P MainPID kdbus-test-early-client.service)"
