#!/bin/sh
# dracut shell init, cmdline hook: start kdbus-init (it reads kdbus= itself
# and returns at once when the bus is not wanted) and wait for the bus.
command -v kdbus-init >/dev/null || return 0
kdbus-init run </dev/null >/dev/null 2>&1 &
kdbus-init wait-ready --pid $! --timeout 20 || warn "kdbus: the bus did not come up (see dmesg)"
