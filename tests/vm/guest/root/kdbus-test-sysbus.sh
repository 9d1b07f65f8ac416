#!/bin/sh
# With kdbus.test.sysbus: reports the real root's system bus as its clients
# see it, as `@@T sysbus KEY VALUE` lines: which unit is dbus.service, the
# names busctl lists, hostnamectl, timedatectl and loginctl (their services
# bus-activated), the bus id busctl reports, and whether any kdbus-bridge
# runs. Every client call is bounded, so that a bus that does not answer
# fails the checks instead of hanging the boot.
say() { echo "@@T sysbus $1 $2"; }
bounded() { timeout 30 "$@"; }

bus_unit=$(systemctl show -P Id dbus.service)
say dbus_service "$bus_unit"
say dbus_socket "$(systemctl show -P Id dbus.socket)"
say dbus_state "$(systemctl show -P ActiveState dbus.service)"
# By their command name: pidof does not know a bridge that the initramfs
# started ('@' argv[0], its program file gone).
bridges=0
for comm in /proc/[0-9]*/comm; do
    [ "$(cat "$comm" 2>/dev/null)" = kdbus-bridge ] && bridges=$((bridges + 1))
done
say bridge_procs "$bridges"
say broker_procs "$(pidof dbus-broker | wc -w)"

names=$(bounded busctl --system list --no-legend --no-pager 2>&1)
say busctl_list_rc $?
for name in org.freedesktop.systemd1 org.freedesktop.login1 org.freedesktop.hostname1; do
    if echo "$names" | awk '{print $1}' | grep -qx "$name"; then
        say listed "$name"
    fi
done
# ListNames shows an activatable name only once its service owns it.
for name in org.freedesktop.systemd1 org.freedesktop.login1; do
    say owner "$name $(bounded busctl --system call org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus GetNameOwner s "$name" 2>&1)"
done

out=$(bounded hostnamectl hostname 2>&1)
say hostnamectl "rc=$? $out"
out=$(bounded timedatectl show -p Timezone 2>&1)
say timedatectl "rc=$? $out"
out=$(bounded loginctl list-sessions --no-legend --no-pager 2>&1)
say loginctl "rc=$? $out"
for unit in systemd-hostnamed systemd-timedated systemd-logind; do
    say unit_state "$unit $(systemctl show -P ActiveState $unit.service)"
done

# The client that connected in the initramfs (kdbus=1, images with D-Bus):
# still there, with the same unique name, answering.
say early_owner "$(bounded busctl --system call org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus GetNameOwner s org.kdbus.test.Early 2>&1)"
out=$(bounded busctl --system call org.kdbus.test.Early /org/kdbus/test org.kdbus.test.Echo Ping 2>&1)
say early_call "rc=$? $out"
# The bus policy, for a user without privileges (kdbus-late): owning a name
# that system.d reserves to root, a call that a deny send_* rule forbids
# and one that an allow rule permits (the early client's policy), and a
# name whose owning a policy file added at runtime allows after a reload.
as_user() { bounded setpriv --reuid=kdbus-late --regid=kdbus-late --clear-groups "$@"; }
request_name() {
    as_user dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.RequestName "string:$1" uint32:4 2>&1
}
call_early() {
    as_user dbus-send --system --print-reply --dest=org.kdbus.test.Early /org/kdbus/test \
        "org.kdbus.test.Echo.$1" 2>&1
}
# A policy file of ours in /etc/dbus-1/system.d (no content: removed), and
# the bus reloaded: both buses' ExecReload= is a ReloadConfig call, done
# when it returns.
test_policy() {
    file=/etc/dbus-1/system.d/kdbus-test-$1.conf
    if [ -n "$2" ]; then
        mkdir -p /etc/dbus-1/system.d
        printf '<busconfig>\n  %s\n</busconfig>\n' "$2" >"$file"
    else
        rm -f "$file"
    fi
    systemctl reload dbus.service
}
# Polls "$@" every 0.2 s until it succeeds, for at most 10 s.
wait_until() {
    i=0
    while [ $i -lt 50 ] && ! "$@"; do
        sleep 0.2
        i=$((i + 1))
    done
}
seats() { sed -n 's/^ONLINE_SEATS=//p' "/run/systemd/users/$(id -u kdbus-late)" 2>/dev/null; }
seated() { [ -n "$(seats)" ]; }
unseated() { [ -z "$(seats)" ]; }
scope_active() { [ "$(systemctl is-active "session-$1.scope")" = active ]; }
# shellcheck disable=SC2046,SC2086  # replies on one line
{
    out=$(request_name org.freedesktop.login1); say policy_own_reserved "rc=$? $(echo $out)"
    out=$(call_early Forbidden); say policy_denied_call "rc=$? $(echo $out)"
    out=$(call_early Ping); say policy_allowed_call "rc=$? $(echo $out)"
    out=$(request_name org.kdbus.test.Reloaded); say policy_own_before_reload "rc=$? $(echo $out)"
    test_policy reload '<policy user="kdbus-late"><allow own="org.kdbus.test.Reloaded"/></policy>'
    out=$(request_name org.kdbus.test.Reloaded); say policy_own_after_reload "rc=$? $(echo $out)"
    test_policy reload ""

    # at_console: a name only a user at the console may own, asked for
    # before, during and after the user's session on a virtual terminal
    # (logind puts it on seat0).
    test_policy console '<policy at_console="true"><allow own="org.kdbus.test.Console"/></policy>'
    out=$(request_name org.kdbus.test.Console); say policy_console_before "rc=$? $(echo $out)"
    systemd-run --quiet --unit=kdbus-test-console -p PAMName=login -p User=kdbus-late \
        -p TTYPath=/dev/tty2 -p StandardInput=tty -p StandardOutput=journal sleep 600
    wait_until seated
    say console_seats "[$(seats)]"
    out=$(request_name org.kdbus.test.Console); say policy_console_during "rc=$? $(echo $out)"
    # Logging out before the session's scope has started fails the scope.
    wait_until scope_active "$(loginctl list-sessions --no-legend |
        awk '$3 == "kdbus-late" { print $1; exit }')"
    systemctl stop kdbus-test-console
    wait_until unseated
    out=$(request_name org.kdbus.test.Console); say policy_console_after "rc=$? $(echo $out)"
    test_policy console ""
}

# Which bridge serves: the initramfs's (its program file went with the
# initramfs) or this root's.
pid=$(cat /run/kdbus/kdbus-bridge.pid 2>/dev/null)
[ -n "$pid" ] && say bridge_exe "$(readlink "/proc/$pid/exe")"

say bus_id "$(bounded busctl --system status 2>/dev/null | sed -n 's/^BusID=//p')"
# What the bus said about itself (the journal knows the unit by its own
# name, not by the alias).
journalctl -b -u "$bus_unit" -o cat --no-pager 2>/dev/null | head -n 20 | while read -r line; do
    say log "$line"
done
say end sysbus
