#!/bin/sh
# Runs inside the VM: load kdbus.ko, run the given commands one after the
# other, unload the module and print the verdict on the console, framed by
# markers the host parses (files written by the guest may not reach the host:
# the guest overlays its own /tmp).
# usage: guest-module.sh MODULE COMMAND_FILE...
module=$1
shift

verdict() {
	echo "@@kdbus-vmtest status $1"
	echo "@@kdbus-vmtest dmesg-begin"
	dmesg | sed -n '/kdbus-vmtest: loading/,$p'
	echo "@@kdbus-vmtest dmesg-end"
}

# Only the kernel log from here on is judged.
echo "kdbus-vmtest: loading $module" >/dev/kmsg
insmod "$module" || { verdict 125; exit 0; }

status=0
for cmd in "$@"; do
	sh "$cmd" || status=1
done

# Deferred work (reply timeouts, teardown) may still hold references.
sync
sleep 1
if ! rmmod kdbus; then
	echo "@@kdbus-vmtest rmmod-failed $(lsmod | grep kdbus)"
fi
verdict "$status"
