#!/bin/sh
# dracut shell init, pre-pivot: report the initramfs phase.
/usr/lib/kdbus-test/kdbus-boot-probe check initrd >/dev/console 2>&1
