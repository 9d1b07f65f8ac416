#!/bin/sh
# Shutdown root, last hook (after /oldroot was unmounted): report.
/usr/lib/kdbus-test/kdbus-boot-probe check final >/dev/console 2>&1
return 0
