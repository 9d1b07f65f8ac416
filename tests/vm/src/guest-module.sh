#!/bin/sh
# Runs inside the VM: load kdbus.ko, run the given commands one after the
# other, unload the module and leave the verdict in the results directory.
# usage: guest-module.sh RESULTS_DIR MODULE COMMAND_FILE...
results=$1
module=$2
shift 2

# Only the kernel log from here on is judged.
echo "kdbus-vmtest: loading $module" >/dev/kmsg
insmod "$module" || { echo 125 >"$results/status"; dmesg >"$results/dmesg"; exit 0; }

status=0
for cmd in "$@"; do
	sh "$cmd" || status=1
done

# Deferred work (reply timeouts, teardown) may still hold references.
sync
sleep 1
if ! rmmod kdbus; then
	echo "rmmod kdbus failed" >"$results/rmmod"
	lsmod | grep kdbus >>"$results/rmmod"
fi
dmesg | sed -n '/kdbus-vmtest: loading/,$p' >"$results/dmesg"
echo "$status" >"$results/status"
