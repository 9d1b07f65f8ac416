#!/bin/sh
# dkms POST_INSTALL: the initramfs-tools hook and boot scripts that put the
# module into every image update-initramfs builds, from the dkms source
# tree (`make install-dkms` lays it out) into /usr/share/initramfs-tools.
# KDBUS_INITRAMFS_TOOLS=DIR installs there instead (tests). The images are
# not rebuilt here: a kernel upgrade does that after dkms has run; after a
# `dkms install` by hand, run `update-initramfs -u`. The hook needs
# kdbus-init (/usr/sbin/kdbus-init, from `make install`) and leaves the bus
# out of images, with a warning, until it is there.
set -e
dest=${KDBUS_INITRAMFS_TOOLS:-/usr/share/initramfs-tools}
if [ ! -f initramfs-tools/hooks/kdbus ]; then
	echo "kdbus: the dkms source tree has no initramfs-tools/ (install it with \`make install-dkms\`): the hook is not installed" >&2
	exit 0
fi
for f in hooks/kdbus scripts/init-top/kdbus scripts/init-bottom/kdbus; do
	mkdir -p "$dest/${f%/*}"
	install -m 0755 "initramfs-tools/$f" "$dest/$f"
done
echo "kdbus: initramfs-tools hook installed in $dest (run update-initramfs -u for existing images)"
