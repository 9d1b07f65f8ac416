#!/bin/sh
# Runs inside a private mount namespace (unshare -m): builds a fake
# initramfs (tmpfs) with a real root mounted below it, and exercises
# switch-root there: the bad cases first (nothing may change), then the
# real switch. Prints CHECK lines the Rust test reads.
# usage: namespace.sh SWITCH_ROOT BUSYBOX WORKDIR
set -eu
bin=$1 busybox=$2 work=$3

mount --make-rprivate /
rm -rf "$work"
mkdir -p "$work/ird"
ird=$work/ird
mount -t tmpfs ird "$ird"

mkdir -p "$ird/bin" "$ird/etc" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/run" \
	"$ird/keep" "$ird/deep/a/b" "$ird/sysroot" "$ird/notmounted"
cp "$busybox" "$ird/bin/busybox"
for app in sh sleep cat ls echo test grep; do ln -s busybox "$ird/bin/$app"; done
touch "$ird/etc/initrd-release" "$ird/deep/a/b/file"
cp "$bin" "$ird/bin/switch-root"
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
	mkdir -p "$ird$(dirname "$lib")"
	cp -L "$lib" "$ird$lib"
done

# Stand-ins for the API file systems, each with a marker; /sys carries a
# submount where kdbusfs would be.
mount -t proc proc "$ird/proc"
mount -t tmpfs dev "$ird/dev" && touch "$ird/dev/devmarker"
mount -t tmpfs sys "$ird/sys" && mkdir -p "$ird/sys/fs/kdbus"
mount -t tmpfs kdbus "$ird/sys/fs/kdbus" && touch "$ird/sys/fs/kdbus/busmarker"
mount -t tmpfs run "$ird/run" && mkdir -p "$ird/run/kdbus" && touch "$ird/run/runmarker"
# Another file system inside the initramfs: must survive the cleanup.
mount -t tmpfs keep "$ird/keep" && touch "$ird/keep/survivor"

# The real root.
new=$ird/sysroot
mount -t tmpfs newroot "$new"
mkdir -p "$new/bin" "$new/sbin" "$new/usr/lib/systemd" "$new/dev" "$new/proc" "$new/sys" "$new/run"
cp "$busybox" "$new/bin/busybox"
touch "$new/newroot-marker"
cat >"$new/usr/lib/systemd/systemd" <<'INIT'
#!/bin/busybox sh
# The "init" of the new root: report what it sees.
for f in /newroot-marker /dev/devmarker /sys/fs/kdbus/busmarker /run/runmarker /proc/self/stat; do
	/bin/busybox test -e "$f" && echo "CHECK present $f" || echo "CHECK missing $f"
done
/bin/busybox test -e /etc/initrd-release && echo "CHECK present /etc/initrd-release"
echo "CHECK args $*"
echo "CHECK root $(/bin/busybox readlink /proc/self/root)"
/bin/busybox sleep 0.5
INIT
chmod 755 "$new/usr/lib/systemd/systemd"
ln -s /usr/lib/systemd/systemd "$new/sbin/init"
printf '#!/bin/busybox sh\n' >"$new/sbin/noexec" && chmod 644 "$new/sbin/noexec"

snapshot() { (cd "$ird" && find . -xdev | sort | md5sum); }
before=$(snapshot)

# Outside an initramfs (the host's own root): refused.
if "$bin" "$new" /sbin/init 2>"$work/err"; then echo "CHECK bad-host succeeded"; else
	echo "CHECK bad-host refused: $(cat "$work/err")"; fi

run_in() { chroot "$ird" /bin/sh -c "$1"; }
for case in "/notmounted /sbin/init" "/sysroot /sbin/missing" "/sysroot /sbin/noexec" \
	"/sysroot sbin/init" "/nonexistent /sbin/init"; do
	if run_in "/bin/switch-root $case" 2>"$work/err"; then echo "CHECK bad-case succeeded: $case"; else
		echo "CHECK bad-case refused: $case: $(cat "$work/err")"; fi
done
run_in "/bin/switch-root --check /sysroot /sbin/init" && echo "CHECK dry-run ok"
[ "$(snapshot)" = "$before" ] && echo "CHECK unchanged-after-refusals"
mountpoint -q "$ird/proc" && mountpoint -q "$ird/sys/fs/kdbus" && echo "CHECK api-still-mounted"

# A stand-in kdbus-init that says when it is told to follow.
run_in 'trap "echo CHECK kdbus-init told to follow; exit 0" USR1
	echo $$ >/run/kdbus/kdbus-init.pid
	i=0; while [ $i -lt 50 ]; do sleep 0.1 2>/dev/null || exit 0; i=$((i+1)); done' &
follower=$!
sleep 0.3

run_in "exec /bin/switch-root /sysroot /sbin/init one 'two words'" && echo "CHECK init exited 0"
wait $follower || true

# The new root is stacked on the old initramfs mount: look below it.
umount -l "$ird"
echo "CHECK left-in-initramfs $(cd "$ird" && ls -A | tr '\n' ' ')"
[ -e "$ird/keep/survivor" ] && echo "CHECK other-fs-kept"
umount -R "$ird" 2>/dev/null || true
