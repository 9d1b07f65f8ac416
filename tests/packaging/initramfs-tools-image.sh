#!/bin/bash
# usage: initramfs-tools-image.sh ROOT KVER IMAGE KDBUSCTL
#
# Builds an initramfs-tools image the way an installed system does, from
# what a staged install (make install DESTDIR=ROOT, or dkms install into
# ROOT) put into ROOT: in a private mount namespace ROOT's
# /usr/share/initramfs-tools, /usr/sbin and /lib/modules/KVER are laid over
# the host's, depmod indexes the module there, and mkinitramfs runs with
# only the installed hook and scripts of ours (no KDBUS_BINDIR, KDBUS_KO).
# Then `KDBUSCTL initramfs IMAGE --json` must find kdbus.ko where ROOT has it
# (below /usr/lib/modules/KVER in the image), built for KVER, and call the
# image ready.
# Nothing on the host is changed.
set -euo pipefail

root=$(realpath "$1") kver=$2 image=$3 kdbusctl=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/kdbus-itools.XXXXXX")
trap 'rm -rf "$work"' EXIT

for f in usr/share/initramfs-tools/hooks/kdbus usr/share/initramfs-tools/scripts/init-top/kdbus \
	usr/share/initramfs-tools/scripts/init-bottom/kdbus usr/sbin/kdbus-init; do
	[ -x "$root/$f" ] || { echo "$root/$f: missing or not executable" >&2; exit 1; }
done
ko=$(cd "$root/lib/modules/$kver" 2>/dev/null && find . -name 'kdbus.ko*' -print -quit)
[ -n "$ko" ] || { echo "$root/lib/modules/$kver: no kdbus.ko" >&2; exit 1; }
module=usr/lib/modules/$kver/${ko#./}

# A small image: only what the boot tests' disk needs, zstd as Debian's default.
mkdir -p "$work/conf/conf.d" "$work/conf/hooks" "$work/conf/scripts" "$work/up" "$work/ow"
printf 'MODULES=list\nBUSYBOX=auto\nKEYMAP=n\nCOMPRESS=zstd\nDEVICE=\nNFSROOT=auto\nRUNSIZE=10%%\nFSTYPE=ext4\n' \
	>"$work/conf/initramfs.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' >"$work/conf/modules"

unshare --mount --propagation private bash -euc '
	root=$1 kver=$2 work=$3 image=$4
	mount -t overlay kdbus-itools -o "lowerdir=$root/usr/share/initramfs-tools:/usr/share/initramfs-tools" \
		/usr/share/initramfs-tools
	mount -t overlay kdbus-sbin -o "lowerdir=$root/usr/sbin:/usr/sbin" /usr/sbin
	mount -t overlay kdbus-modules \
		-o "lowerdir=$root/lib/modules/$kver:/lib/modules/$kver,upperdir=$work/up,workdir=$work/ow" \
		"/lib/modules/$kver"
	depmod -a "$kver"
	mkinitramfs -d "$work/conf" -c zstd -o "$image" "$kver"
' sh "$root" "$kver" "$work" "$image"

"$kdbusctl" initramfs "$image" --json >"$work/report.json" || {
	cat "$work/report.json" >&2
	echo "$image: kdbusctl initramfs does not call it ready" >&2
	exit 1
}
python3 - "$work/report.json" "$kver" "$module" <<'PY'
import json, sys
report, kver, module = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
problems = []
if report.get("module") != module:
    problems.append(f"module at {report.get('module')!r}, expected {module!r}")
if (report.get("module_vermagic") or "").split()[:1] != [kver]:
    problems.append(f"module vermagic {report.get('module_vermagic')!r} is not for {kver}")
if report.get("ready") is not True:
    problems.append("not ready")
if problems:
    sys.exit(f"{sys.argv[1]}: " + "; ".join(problems) + "\n" + json.dumps(report, indent=1))
PY
echo "initramfs-tools-image: $image has $module for $kver, ready"
