#!/bin/sh
# Shutdown root, pre-shutdown hook (sourced by dracut's /shutdown): make
# kdbus-init move here before /oldroot is unmounted (dracut kills whatever
# still references /oldroot), then, on rd.kdbus.shell=shutdown, open a shell
# with kdbusctl on the same bus (in images built with kdbus_shell=yes).
# Leaving the shell continues the shutdown.
if [ -e /run/kdbus/kdbus-init.pid ]; then
    kdbus-init follow --timeout 15 || warn "kdbus: kdbus-init did not move into the shutdown root"
fi
# A bridge from the initramfs enters this root by itself (it follows PID 1):
# wait for it, since dracut then kills whatever is still in /oldroot.
if [ -e /run/kdbus/kdbus-bridge.pid ]; then
    _pid=$(cat /run/kdbus/kdbus-bridge.pid)
    _i=0
    while [ -d "/proc/$_pid" ] && [ "$(readlink "/proc/$_pid/root")" != / ] && [ $_i -lt 50 ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    [ -d "/proc/$_pid" ] && [ "$(readlink "/proc/$_pid/root")" != / ] \
        && warn "kdbus: kdbus-bridge did not move into the shutdown root"
fi
if [ "$(getarg rd.kdbus.shell=)" = "shutdown" ] && ! command -v kdbusctl >/dev/null; then
    echo "kdbus: rd.kdbus.shell=shutdown, but this image has no shell tools: rebuild it with kdbus_shell=yes in /etc/dracut.conf.d/kdbus.conf" >/dev/console
elif [ "$(getarg rd.kdbus.shell=)" = "shutdown" ]; then
    {
        echo
        echo "kdbus: debugging shell in the shutdown root (rd.kdbus.shell=shutdown)."
        echo "kdbus: try 'kdbusctl status', 'kdbusctl list', 'kdbus-init status'; 'exit' continues the $ACTION."
    } >/dev/console
    PS1='kdbus-shutdown# ' setsid -c /bin/sh -i </dev/console >/dev/console 2>&1
    echo "kdbus: shell closed, continuing the $ACTION" >/dev/console
fi
