# kdbus initramfs toolkit: top-level build, install and test entry points.
#
#   make deps      install what building and testing need (idempotent)
#   make           build kdbus.ko and the binaries
#   make install   install module, binaries, the dracut module and the
#                  initramfs-tools hook and scripts (DESTDIR=)
#   make test      everything CI runs: lint, unit tests, VM tests
#   make bench     the benchmarks in a VM (release build), figures as a table
#   make demo      the main job: show the bus across a whole VM boot
#   make bench-boot  boot time and initramfs size with and without kdbus, and
#                  kdbus-bridge vs dbus-broker as the system bus
#                  (BENCH_BOOT="--runs 11 --system-bus": that pair only)
#   make fuzz      a million racing random ioctls against the module (not in test)

SHELL := /bin/bash
CARGO ?= cargo
DESTDIR ?=
PREFIX ?= /usr

# Kernels to build for and boot: Debian 12's own 6.1 is the main target;
# 6.12 from Debian 12's security suite is the second (the ABI suite runs on
# both). KVER= picks one by hand.
newest_kver = $(shell ls -d /lib/modules/$(1)*/build 2>/dev/null | sed 's|/lib/modules/||; s|/build$$||' | sort -V | tail -n1)
KVER ?= $(call newest_kver,6.1.)
KVER2 ?= $(call newest_kver,6.12.)

# Debian packages the build and the VM tests need.
APT_PACKAGES := linux-image-amd64 linux-headers-amd64 linux-source-6.1 \
	linux-image-6.12-amd64 linux-headers-6.12-amd64 \
	qemu-system-x86 dracut-core initramfs-tools-core busybox-static cpio kmod e2fsprogs \
	mmdebstrap zstd gcc make python3-venv dkms \
	dbus-daemon dbus-broker libdbus-1-dev pkg-config \
	dbus-bin dbus-tests libglib2.0-bin python3-dbus python3-gi systemd
VENV := .venv
VNG := $(VENV)/bin/vng
LINUX_SRC := build/linux-source
CHECKPATCH := $(LINUX_SRC)/scripts/checkpatch.pl
KERNELDOC := $(LINUX_SRC)/scripts/kernel-doc

BINARIES := kdbus-init switch-root kdbusctl

.PHONY: all kmod rust initramfs-bins deps install install-dkms test lint kmod-check dkms-check \
	install-check unit vmtest \
	vmtest-second bench bench-smoke boottest demo bench-boot fuzz clean

all: kmod rust

kmod:
	$(MAKE) -C kmod KVER=$(KVER)

rust:
	$(CARGO) build --release --workspace

# What goes into initramfs images, built for size: Cargo profile initramfs,
# with the standard library rebuilt the same way (-Z build-std, std's
# optimize_for_size) and without unwind tables (panic=abort never unwinds).
# That halves kdbus-init with zstd and leaves libgcc_s out of the image:
# the kdbus parts of an image must stay under 300 KB
# (tests/vm/src/boot/footprint.rs). Two more trades for the last 15 KB
# with zstd: panics print their message but no file and line
# (-Z location-detail=none), and the binaries are not position independent
# (their own code at a fixed address; libraries, heap and stack are still
# randomised). Panics that abort without a word would save more, but a
# panic at boot must say what went wrong. The -Z options are unstable:
# RUSTC_BOOTSTRAP=1 lets the stable toolchain take them, as the Linux
# kernel does to build its own Rust. --target keeps these builds apart
# from host ones: they land in $(INITRAMFS_DIR).
# kdbusctl goes without its image inspector (the decompressors are of no
# use inside an image).
INITRAMFS_TARGET := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
INITRAMFS_DIR := target/$(INITRAMFS_TARGET)/initramfs
RUST_SRC := $(shell rustc --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library
# kdbus-bridge keeps unwinding (profile initramfs-unwind, see Cargo.toml):
# $(1) profile, $(2) std's panic runtime, $(3) the extra rustflags, each
# followed by its comma (a comma cannot be written in $(call)'s arguments).
initramfs_build_with = RUSTC_BOOTSTRAP=1 $(CARGO) build --profile $(1) --target $(INITRAMFS_TARGET) \
	-Z build-std=std,$(2) -Z build-std-features=optimize_for_size \
	--config 'target.$(INITRAMFS_TARGET).rustflags=[$(3)"-Zlocation-detail=none", \
		"-Crelocation-model=static"]'
no_unwind_tables := "-Cforce-unwind-tables=no",
initramfs_build = $(call initramfs_build_with,initramfs,panic_abort,$(no_unwind_tables))
bridge_build = $(call initramfs_build_with,initramfs-unwind,panic_unwind,)
BRIDGE_BIN := target/$(INITRAMFS_TARGET)/initramfs-unwind/kdbus-bridge
initramfs-bins:
	@test -d $(RUST_SRC) || { echo "initramfs-bins: the standard library's sources" \
		"(rust-src) are missing, and the initramfs binaries are built from them:" \
		"run \`make deps\` (or \`rustup component add rust-src\`)" >&2; exit 1; }
	$(initramfs_build) -p kdbus-init -p switch-root
	$(initramfs_build) -p kdbusctl --no-default-features
	$(bridge_build) -p kdbus-bridge

# ---------------------------------------------------------------- set-up

deps: $(VNG) $(CHECKPATCH)
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@rustup component add clippy rustfmt >/dev/null 2>&1 || true
	@# rust-src: initramfs-bins rebuilds the standard library for size.
	@test -d $(RUST_SRC) || rustup component add rust-src || { \
		echo "deps: cannot install the Rust standard library's sources (rust-src)," \
			"which make initramfs-bins needs: with rustup, run" \
			"\`rustup component add rust-src\`; with Debian's Rust, apt-get install rust-src" >&2; \
		exit 1; }

# virtme-ng boots the host's userspace in a VM: the fast loop for module tests.
$(VNG):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q virtme-ng

# checkpatch.pl and kernel-doc come from the 6.1 source package, not the
# headers.
$(CHECKPATCH) $(KERNELDOC) &:
	@test -f /usr/src/linux-source-6.1.tar.xz || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends linux-source-6.1; }
	mkdir -p $(LINUX_SRC)
	tar -xJf /usr/src/linux-source-6.1.tar.xz -C $(LINUX_SRC) --strip-components=1 \
		linux-source-6.1/scripts/checkpatch.pl linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch \
		linux-source-6.1/scripts/kernel-doc
	touch $(CHECKPATCH) $(KERNELDOC)

# ---------------------------------------------------------------- install

install: all initramfs-bins
	install -D -m 0644 kmod/kdbus.ko $(DESTDIR)/lib/modules/$(KVER)/extra/kdbus.ko
	@# Staged installs (packages) leave the module index to the target system.
	@if [ -n "$(DESTDIR)" ]; then echo "install: staged in $(DESTDIR): run 'depmod -a $(KVER)' on the target"; \
	else depmod -a $(KVER); fi
	install -D -m 0755 $(INITRAMFS_DIR)/kdbus-init $(DESTDIR)$(PREFIX)/sbin/kdbus-init
	install -D -m 0755 $(INITRAMFS_DIR)/switch-root $(DESTDIR)$(PREFIX)/lib/kdbus/switch-root
	install -D -m 0755 $(INITRAMFS_DIR)/kdbusctl $(DESTDIR)$(PREFIX)/bin/kdbusctl
	install -D -m 0644 dracut/50kdbus/kdbus-init.service $(DESTDIR)$(PREFIX)/lib/systemd/system/kdbus-init.service
	@# The kernel bus as the system bus with kdbus=1 (the generator makes
	@# kdbus-bridge dbus.service then; the distro's bus otherwise).
	install -D -m 0755 $(BRIDGE_BIN) $(DESTDIR)$(PREFIX)/bin/kdbus-bridge
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/lib/systemd/system systemd/kdbus-bridge.service \
		systemd/kdbus-bridge.socket
	install -D -m 0755 systemd/kdbus-system-bus-generator \
		$(DESTDIR)$(PREFIX)/lib/systemd/system-generators/kdbus-system-bus-generator
	install -d $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/50kdbus
	install -m 0755 dracut/50kdbus/*.sh $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/50kdbus/
	install -m 0644 dracut/50kdbus/*.service $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/50kdbus/
	@# initramfs-tools: every image update-initramfs builds gets the bus.
	install -D -m 0755 initramfs-tools/hooks/kdbus $(DESTDIR)$(PREFIX)/share/initramfs-tools/hooks/kdbus
	install -D -m 0755 initramfs-tools/scripts/init-top/kdbus \
		$(DESTDIR)$(PREFIX)/share/initramfs-tools/scripts/init-top/kdbus
	install -D -m 0755 initramfs-tools/scripts/init-bottom/kdbus \
		$(DESTDIR)$(PREFIX)/share/initramfs-tools/scripts/init-bottom/kdbus

# The dkms source tree, as a package ships it (/usr/src/kdbus-VERSION): the
# module's sources with dkms.conf, and the initramfs-tools hook and scripts
# that dkms.conf's POST_INSTALL (kmod/dkms-post-install.sh) puts into
# /usr/share/initramfs-tools when dkms installs the module. Then, unstaged:
# dkms install kdbus/VERSION (the binaries come from `make install`).
DKMS_SRC = $(DESTDIR)/usr/src/kdbus-$(DKMS_VERSION)
install-dkms:
	rm -rf $(DKMS_SRC) && mkdir -p $(DKMS_SRC)
	git ls-files -z kmod | sed -z 's|^kmod/||' | (cd kmod && cpio -0pdm --quiet $(abspath $(DKMS_SRC)))
	git ls-files -z initramfs-tools | cpio -0pdm --quiet $(abspath $(DKMS_SRC))

# ---------------------------------------------------------------- tests

test: deps lint unit kmod-check dkms-check vmtest vmtest-second bench-smoke boottest

lint: $(CHECKPATCH) $(KERNELDOC)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CHECKPATCH) --no-tree --quiet --show-types --ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG \
		-f kmod/*.c $(filter-out kmod/compat.h,$(wildcard kmod/*.h))
	@# compat.h exists to test kernel versions; everything else applies.
	$(CHECKPATCH) --no-tree --quiet --show-types \
		--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG,LINUX_VERSION_CODE,CONSTANT_COMPARISON \
		-f kmod/compat.h
	$(CHECKPATCH) --no-tree --quiet --show-types --ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG \
		-f kmod/include/uapi/linux/kdbus.h
	@# kernel-doc checks the comments there are; the awk script that every
	@# non-static function has one.
	perl $(KERNELDOC) -none -Werror kmod/*.c kmod/*.h
	awk -f tests/kerneldoc-missing.awk kmod/*.c

unit:
	$(CARGO) test --workspace --exclude kdbus-abi-tests
	tests/packaging/system-bus-generator.sh

# kdbus.ko must build without a single warning, W=1 included: builds the
# module in $(1) for kernel $(2), logging to $(3).
build_w1 = $(MAKE) -C $(1) KVER=$(2) W=1 2>&1 | tee $(3); ! grep -E 'warning:|error:' $(3)

kmod-check:
	@mkdir -p build
	$(MAKE) -C kmod KVER=$(KVER) clean >/dev/null
	$(call build_w1,kmod,$(KVER),build/kmod-w1.log)

# The module's tracked sources, copied to $(1) (a path below the checkout).
copy_kmod = git ls-files -z kmod | sed -z 's|^kmod/||' | (cd kmod && cpio -0pdm --quiet ../$(1))

# The dkms source tree (make install-dkms) builds the module through the
# shipped dkms.conf, and `dkms install` puts it and, by POST_INSTALL, the
# initramfs-tools hook and scripts into a staged root, from which
# mkinitramfs must build an image with the module in it. A private dkms
# tree: nothing is registered with the system's dkms or installed on it.
DKMS_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' kmod/dkms.conf)
DKMS_ROOT := $(CURDIR)/build/dkms/root
dkms_args = --dkmstree $(CURDIR)/build/dkms/tree --sourcetree $(DKMS_ROOT)/usr/src \
	-m kdbus -v $(DKMS_VERSION) -k $(KVER)
dkms-check: install-check initramfs-bins
	rm -rf build/dkms && mkdir -p build/dkms/tree $(DKMS_ROOT)/lib/modules/$(KVER)
	$(MAKE) -s install-dkms DESTDIR=$(DKMS_ROOT)
	dkms build $(dkms_args)
	test -f build/dkms/tree/kdbus/$(DKMS_VERSION)/$(KVER)/*/module/kdbus.ko
	KDBUS_INITRAMFS_TOOLS=$(DKMS_ROOT)/usr/share/initramfs-tools \
		dkms install --no-depmod --installtree $(DKMS_ROOT)/lib/modules $(dkms_args)
	@# kdbus-init, as the binaries' install (make install) would add it.
	install -D -m 0755 $(INITRAMFS_DIR)/kdbus-init $(DKMS_ROOT)/usr/sbin/kdbus-init
	tests/packaging/initramfs-tools-image.sh $(DKMS_ROOT) $(KVER) build/dkms/initrd.img \
		target/release/kdbusctl

# make install staged into a root (DESTDIR), and an initramfs-tools image
# built from what it installed there: the hook must put kdbus.ko in.
install-check:
	rm -rf build/install-check
	$(MAKE) install DESTDIR=$(CURDIR)/build/install-check/root
	tests/packaging/initramfs-tools-image.sh build/install-check/root $(KVER) \
		build/install-check/initrd.img target/release/kdbusctl

vmtest: kmod-check
	$(CARGO) run -q -p kdbus-vmtest -- --kver $(KVER) abi

# The ABI suite on the second kernel, with the module built (W=1, no
# warnings) from a copy of kmod/ so the main build stays as it is.
KMOD2 := build/kmod-$(KVER2)
vmtest-second:
	rm -rf $(KMOD2) && mkdir -p $(KMOD2)
	$(call copy_kmod,$(KMOD2))
	$(call build_w1,$(KMOD2),$(KVER2),build/kmod2-w1.log)
	$(CARGO) run -q -p kdbus-vmtest -- --kver $(KVER2) --module $(KMOD2)/kdbus.ko abi

# A million random ioctls from racing threads while connections and buses
# are torn down underneath; the VM harness fails on any kernel warning, a
# leaked object or a failed rmmod. FUZZ_CALLS= changes the count.
FUZZ_CALLS ?= 1000000
fuzz: deps kmod-check
	$(CARGO) run -q -p kdbus-vmtest -- --kver $(KVER) --timeout 3600 \
		abi --only fuzz --env KDBUS_FUZZ_CALLS=$(FUZZ_CALLS) -- --ignored --nocapture racing_commands_with_teardown

# The benchmark is not a timed test: `make test` runs every case a few
# times (--quick) so that it cannot rot; `make bench` measures. Extra
# arguments: make bench BENCH_ARGS="--only broadcast --duration 5".
BENCH_ARGS ?=

bench: deps kmod-check
	$(CARGO) build -q --release -p kdbus-bench -p kdbus-bridge
	$(CARGO) run -q -p kdbus-vmtest -- --kver $(KVER) module -- \
		target/release/kdbus-bench --json-file target/bench.json $(BENCH_ARGS)

bench-smoke: kmod-check
	$(CARGO) build -q --release -p kdbus-bench -p kdbus-bridge
	$(CARGO) run -q -p kdbus-vmtest -- --kver $(KVER) module -- target/release/kdbus-bench --quick

# Full boots under QEMU: Debian 12 root (built once, cached in build/boot),
# dracut --add kdbus initramfs, six scenarios.
boottest: kmod-check
	$(CARGO) run -q -p kdbus-vmtest -- --kver $(KVER) boot

BENCH_BOOT ?=
bench-boot: deps kmod-check
	$(CARGO) run -q -p kdbus-vmtest -- --kver $(KVER) bench $(BENCH_BOOT)

# ---------------------------------------------------------------- demo

demo: deps kmod-check
	$(CARGO) run -q -p kdbus-vmtest -- --kver $(KVER) demo

clean:
	$(MAKE) -C kmod clean
	$(CARGO) clean
	rm -rf build
