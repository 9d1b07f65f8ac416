#!/bin/sh
# PID 1 of a private PID + mount namespace (unshare -pmf): plays an
# initramfs with kdbus-init running (resumed from the state blob on fd 3,
# without a bus: the host kernel has no kdbus), then switches to a new root
# with switch-root, whose init checks that kdbus-init followed: it must run
# from the new root's binary, with the state carried over. Then it plays
# systemd-shutdown: pivot_root into /run/initramfs with the old root kept at
# /oldroot; kdbus-init must move to the shutdown root's binary and keep
# nothing of /oldroot.
# With MODE=no-binary the new root lacks kdbus-init: it must say so and
# go on with the binary it runs. With MODE=older the new root's kdbus-init is
# $KDBUS_INIT_OLDER (one whose hand-over marker says it cannot take the
# state over): kdbus-init must say so and run a copy of its own binary.
# usage: follow.sh KDBUS_INIT SWITCH_ROOT BUSYBOX WORKDIR [MODE]
set -eu
kdbus_init=$1 switch_root=$2 busybox=$3 work=$4 mode=${5:-}

mount --make-rprivate /
rm -rf "$work"
mkdir -p "$work/ird"
ird=$work/ird
mount -t tmpfs ird "$ird"

populate() { # root
	mkdir -p "$1/bin" "$1/usr/sbin" "$1/etc" "$1/dev" "$1/proc" "$1/sys" "$1/run"
	cp "$busybox" "$1/bin/busybox"
	for app in sh sleep cat grep ls echo test kill readlink mount sed tr cut mknod pivot_root cp mkdir; do ln -sf busybox "$1/bin/$app"; done
	cp "$kdbus_init" "$1/usr/sbin/kdbus-init"
	for lib in $(ldd "$kdbus_init" "$switch_root" | grep -v ':$' | grep -o '/[^ ]*' | sort -u); do
		mkdir -p "$1$(dirname "$lib")"
		cp -L "$lib" "$1$lib"
	done
}
populate "$ird"
touch "$ird/etc/initrd-release"
cp "$switch_root" "$ird/usr/sbin/switch-root"
mkdir -p "$ird/sysroot"
mount -t tmpfs newroot "$ird/sysroot"
populate "$ird/sysroot"
mkdir -p "$ird/sysroot/sbin" "$ird/sysroot/shutdown-root"
populate "$ird/sysroot/shutdown-root"
touch "$ird/sysroot/shutdown-root/etc/initrd-release"
if [ "$mode" = no-binary ]; then
	rm "$ird/sysroot/usr/sbin/kdbus-init"
	# The checks below use the shutdown root's copy to read the status.
	ln -s /shutdown-root/usr/sbin/kdbus-init "$ird/sysroot/usr/sbin/kdbus-init-reader"
fi

if [ "${mode%-garbled}" = older ]; then
	cp "$KDBUS_INIT_OLDER" "$ird/sysroot/usr/sbin/kdbus-init"
fi

cat >"$ird/stage1" <<'STAGE1'
#!/bin/sh
mount -t proc proc /proc
mount -t tmpfs run /run
# No /dev/kmsg: the host's kernel log stays out of it, records go to stderr.
mount -t tmpfs dev /dev && mknod -m 666 /dev/null c 1 3
# The daemon, resumed from the blob on fd 3.
/usr/sbin/kdbus-init run --state-fd 3 --services-dir /nonexistent 2>/run/kdbus-init.err &
i=0
while [ ! -e /run/kdbus/kdbus-init.json ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
echo "CHECK before $(grep -o '"root": "[a-z-]*"' /run/kdbus/kdbus-init.json | head -1)"
exec 3<&-
exec /usr/sbin/switch-root /sysroot /sbin/init
STAGE1
chmod 755 "$ird/stage1"

cat >"$ird/sysroot/sbin/init" <<'INIT'
#!/bin/sh
pid=$(cat /run/kdbus/kdbus-init.pid)
i=0
until grep -q '"root": "real-root"' /run/kdbus/kdbus-init.json 2>/dev/null || [ $i -ge 100 ]; do
	sleep 0.05; i=$((i+1))
done
echo "CHECK after $(grep -o '"root": "[a-z-]*"' /run/kdbus/kdbus-init.json | head -1)"
[ /proc/$pid/exe -ef /usr/sbin/kdbus-init ] && echo "CHECK exe is the new root's binary"
[ /proc/$pid/exe -ef /run/kdbus/kdbus-init-copy ] && echo "CHECK exe is the copy"
if [ -e /run/kdbus/kdbus-init-copy ]; then
	# It stays on the copy, rather than following this root again and again.
	sleep 1.2
	echo "CHECK history later $(grep -c '"since_us"' /run/kdbus/kdbus-init.json)"
	said=$(/usr/sbin/kdbus-init follow --timeout 2 2>&1) && rc=0 || rc=$?
	echo "CHECK follow says: $said (exit $rc)"
fi
echo "CHECK pid $pid same as before: $(grep -o '"pid": [0-9]*' /run/kdbus/kdbus-init.json | head -1)"
echo "CHECK argv0 $(tr '\0' ' ' </proc/$pid/cmdline | cut -d' ' -f1)"
echo "CHECK root_link $(readlink /proc/$pid/root)"
echo "CHECK deleted_maps $(grep -c '(deleted)' /proc/$pid/maps)"
echo "CHECK history $(grep -c '"since_us"' /run/kdbus/kdbus-init.json)"
if [ -x /usr/sbin/kdbus-init ]; then reader=/usr/sbin/kdbus-init; else reader=/usr/sbin/kdbus-init-reader; fi
$reader status | sed 's/^/STATUS /'

# The shutdown root: a copy of the initramfs in /run/initramfs.
mkdir -p /run/initramfs
mount --bind /run/initramfs /run/initramfs
cp -a /shutdown-root/. /run/initramfs/
mkdir -p /run/initramfs/oldroot
# As systemd-shutdown does: /proc and /run bound into the new root.
mount --bind /proc /run/initramfs/proc
mount --bind /run /run/initramfs/run
cd /run/initramfs
pivot_root . oldroot
# systemd-shutdown then execs /shutdown; dracut's moves the API file
# systems away from /oldroot and runs the pre-shutdown hooks.
exec /bin/sh /shutdown
INIT
cat >"$ird/sysroot/shutdown-root/shutdown" <<'SHUTDOWN'
#!/bin/sh
# As dracut's /shutdown does before its hooks and its killing.
for i in sys proc run dev; do
	mkdir -p /oldsys/$i
	mount --move /oldroot/$i /oldsys/$i 2>/dev/null || true
done
pid=$(cat /run/kdbus/kdbus-init.pid)
i=0
until [ /proc/$pid/exe -ef /usr/sbin/kdbus-init ] || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done
echo "CHECK shutdown exe is the shutdown root's binary: $([ /proc/$pid/exe -ef /usr/sbin/kdbus-init ] && echo yes)"
echo "CHECK shutdown root_link $(readlink /proc/$pid/root)"
echo "CHECK shutdown oldroot refs $(ls -l /proc/$pid/ /proc/$pid/fd/ 2>/dev/null | grep -c oldroot)"
ls -l /proc/$pid/ /proc/$pid/fd/ 2>/dev/null | grep oldroot | sed 's/^/OLDROOT /' 
i=0
until grep -q '"root": "shutdown-root"' /run/kdbus/kdbus-init.json 2>/dev/null || [ $i -ge 100 ]; do
	sleep 0.05; i=$((i+1))
done
echo "CHECK shutdown $(grep -o '"root": "[a-z-]*"' /run/kdbus/kdbus-init.json | head -1)"
echo "CHECK shutdown history $(grep -c '"since_us"' /run/kdbus/kdbus-init.json)"
SHUTDOWN
chmod 755 "$ird/sysroot/shutdown-root/shutdown"
chmod 755 "$ird/sysroot/sbin/init"

exec chroot "$ird" /stage1
