#!/usr/bin/python3
"""Name ownership and queueing through the bridge, with python3-dbus.

usage: names.py ADDRESS
Three connections: a and b compete for org.example.Q, w watches
NameOwnerChanged for it. Exits non-zero with a message on a failed check.
"""
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

NAME = "org.example.Q"
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
address = sys.argv[1]
a = dbus.bus.BusConnection(address)
b = dbus.bus.BusConnection(address)
w = dbus.bus.BusConnection(address)
A, B = a.get_unique_name(), b.get_unique_name()

events = []
w.add_signal_receiver(
    lambda *args: events.append(("owner",) + tuple(str(x) for x in args)),
    signal_name="NameOwnerChanged",
    dbus_interface="org.freedesktop.DBus",
    arg0=NAME,
)
for conn, who in ((a, "a"), (b, "b")):
    for member in ("NameAcquired", "NameLost"):
        conn.add_signal_receiver(
            lambda name, who=who, member=member: events.append((member, who, str(name))),
            signal_name=member,
            dbus_interface="org.freedesktop.DBus",
        )


def settle(want):
    """Runs the main loop until `want` events arrived (5 s at most)."""
    ctx = GLib.MainContext.default()
    deadline = GLib.get_monotonic_time() + 5_000_000
    while len(events) < want and GLib.get_monotonic_time() < deadline:
        ctx.iteration(False)
    while ctx.pending():
        ctx.iteration(False)
    got = list(events)
    events.clear()
    return got


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")


def driver(conn, method, *args):
    proxy = conn.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus")
    return proxy.get_dbus_method(method, "org.freedesktop.DBus")(*args)


settle(100)  # NameAcquired of the unique names
A_FLAGS = dbus.bus.NAME_FLAG_ALLOW_REPLACEMENT | dbus.bus.NAME_FLAG_DO_NOT_QUEUE
check("a requests", a.request_name(NAME, A_FLAGS), dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER)
check("a again", a.request_name(NAME, A_FLAGS), dbus.bus.REQUEST_NAME_REPLY_ALREADY_OWNER)
check("b queues", b.request_name(NAME, 0), dbus.bus.REQUEST_NAME_REPLY_IN_QUEUE)
check("b without queueing", b.request_name(NAME + "x", dbus.bus.NAME_FLAG_DO_NOT_QUEUE), dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER)
check("events", sorted(settle(3)), sorted([("owner", NAME, "", A), ("NameAcquired", "a", NAME), ("NameAcquired", "b", NAME + "x")]))
check("queue", [str(x) for x in driver(w, "ListQueuedOwners", NAME)], [A, B])
check("owner", str(driver(w, "GetNameOwner", NAME)), A)
check("has owner", bool(driver(w, "NameHasOwner", NAME)), True)
check("listed", NAME in [str(x) for x in driver(w, "ListNames")], True)
check("w does not own it", w.release_name(NAME), dbus.bus.RELEASE_NAME_REPLY_NOT_OWNER)
check("nobody owns this", w.release_name("org.example.None"), dbus.bus.RELEASE_NAME_REPLY_NON_EXISTENT)

# b takes over the name from a (which allowed replacement and did not
# ask to wait in the queue).
check("b replaces", b.request_name(NAME, dbus.bus.NAME_FLAG_REPLACE_EXISTING), dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER)
check("replaced", sorted(settle(3)), sorted([("owner", NAME, A, B), ("NameLost", "a", NAME), ("NameAcquired", "b", NAME)]))

# b releases: nobody is queued, the name goes.
check("b releases", b.release_name(NAME), dbus.bus.RELEASE_NAME_REPLY_RELEASED)
check("released", sorted(settle(2)), sorted([("owner", NAME, B, ""), ("NameLost", "b", NAME)]))
check("gone", bool(driver(w, "NameHasOwner", NAME)), False)

# Queueing hands the name on when its owner leaves the bus.
check("a owns", a.request_name(NAME, 0), dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER)
check("b waits", b.request_name(NAME, 0), dbus.bus.REQUEST_NAME_REPLY_IN_QUEUE)
settle(2)
a.close()
check("handed on", sorted(settle(2)), sorted([("owner", NAME, A, B), ("NameAcquired", "b", NAME)]))

for bad in (":1.99", "org.freedesktop.DBus", "no-dots"):
    try:
        # Straight to the driver: python3-dbus would refuse these itself.
        driver(b, "RequestName", bad, dbus.UInt32(0))
        sys.exit(f"requesting {bad} succeeded")
    except dbus.DBusException as e:
        check(f"requesting {bad}", e.get_dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs")
print("names ok")
