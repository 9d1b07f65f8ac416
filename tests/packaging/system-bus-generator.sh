#!/bin/bash
# kdbus-system-bus-generator on the host: which kernel command lines make
# the bridge the system bus, and where it finds the units make install
# put in place (PREFIX=/usr or /usr/local).
set -euo pipefail
gen="$(dirname "$0")/../../systemd/kdbus-system-bus-generator"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/usr/lib" "$tmp/usr/local/lib"
touch "$tmp/usr/local/lib/kdbus-bridge.service" "$tmp/usr/local/lib/kdbus-bridge.socket"
dirs="$tmp/etc $tmp/usr/local/lib $tmp/usr/lib"
failed=0

# $1: command line, $2: expected target of dbus.service ("" for none)
check() {
	local early="$tmp/early" got=""
	rm -rf "$early" && mkdir -p "$early"
	KDBUS_CMDLINE="$1" KDBUS_UNIT_DIRS="$dirs" "$gen" "$tmp/normal" "$early" "$tmp/late" \
		2>"$tmp/stderr"
	[ -L "$early/dbus.service" ] && got=$(readlink "$early/dbus.service")
	if [ "$got" != "$2" ]; then
		echo "FAIL: cmdline '$1': dbus.service -> '$got', expected '$2'" >&2
		cat "$tmp/stderr" >&2
		failed=1
	elif [ -n "$2" ] && [ ! -L "$early/sockets.target.wants/kdbus-bridge.socket" ]; then
		echo "FAIL: cmdline '$1': kdbus-bridge.socket not wanted by sockets.target" >&2
		failed=1
	fi
}

# $1: pid file contents ("" for none), $2: whether the bridge must be
# stopped at shutdown (yes/no): only a bridge from the initramfs stays.
check_shutdown() {
	local early="$tmp/early" dropin got=no
	dropin="$early/kdbus-bridge.service.d/50-real-root.conf"
	rm -rf "$early" && mkdir -p "$early"
	printf '%s' "$1" >"$tmp/bridge.pid"
	KDBUS_CMDLINE=kdbus=1 KDBUS_UNIT_DIRS="$dirs" KDBUS_BRIDGE_PID_FILE="$tmp/bridge.pid" \
		"$gen" "$tmp/normal" "$early" "$tmp/late" 2>"$tmp/stderr"
	grep -qx "Conflicts=shutdown.target" "$dropin" 2>/dev/null && got=yes
	if [ "$got" != "$2" ]; then
		echo "FAIL: bridge pid '$1': stopped at shutdown: $got, expected $2" >&2
		failed=1
	fi
}

local_unit="$tmp/usr/local/lib/kdbus-bridge.service"
check_shutdown "" yes
check_shutdown "$$" no
check_shutdown "999999999" yes
check "root=/dev/vda kdbus=1 quiet" "$local_unit"
check "kdbus" "$local_unit"
check "kdbus=yes" "$local_unit"
check "kdbus=0" ""
check "kdbus=1 kdbus=0" ""
check "kdbus=banana" ""
check "root=/dev/vda" ""
# The first directory that has both units wins.
touch "$tmp/usr/lib/kdbus-bridge.service" "$tmp/usr/lib/kdbus-bridge.socket"
rm "$tmp/usr/local/lib/kdbus-bridge.socket"
check "kdbus=1" "$tmp/usr/lib/kdbus-bridge.service"
# No units anywhere: the distro's bus stays, and the journal says why.
rm "$tmp/usr/lib/kdbus-bridge.socket"
check "kdbus=1" ""
grep -q "the distro's bus stays" "$tmp/stderr" || {
	echo "FAIL: no message when the units are missing" >&2
	failed=1
}
[ "$failed" = 0 ] && echo "kdbus-system-bus-generator: all cases pass"
exit "$failed"
