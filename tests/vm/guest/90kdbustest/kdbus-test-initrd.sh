#!/bin/sh
# dracut shell init, pre-pivot: report the initramfs phase (with
# kdbus.test.restart: after killing kdbus-init and checking what survives).
/usr/lib/kdbus-test/kdbus-boot-probe restart initrd >/dev/console 2>&1
/usr/lib/kdbus-test/kdbus-boot-probe check initrd >/dev/console 2>&1
