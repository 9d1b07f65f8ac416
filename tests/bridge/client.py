#!/usr/bin/python3
"""python3-dbus client checks for the bridge tests.

usage: client.py ADDRESS CHECK
CHECK is one of:
  creds   print "uid=<uid> pid=<pid> self=<pid>" as the bus reports them
  fds     pass an fd to org.example.Test and receive one from it
Exits non-zero with a message on stderr when a check fails.
"""
import os
import sys

import dbus

address, check = sys.argv[1], sys.argv[2]
bus = dbus.bus.BusConnection(address)

if check == "creds":
    me = bus.get_unique_name()
    driver = bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus")
    uid = driver.GetConnectionUnixUser(me, dbus_interface="org.freedesktop.DBus")
    pid = driver.GetConnectionUnixProcessID(me, dbus_interface="org.freedesktop.DBus")
    creds = driver.GetConnectionCredentials(me, dbus_interface="org.freedesktop.DBus")
    assert creds["UnixUserID"] == uid, creds
    assert creds["ProcessID"] == pid, creds
    print(f"uid={uid} pid={pid} self={os.getpid()}")
elif check == "fds":
    echo = bus.get_object("org.example.Test", "/org/example/Echo")
    read, write = os.pipe()
    os.write(write, b"to the service")
    os.close(write)
    got = echo.ReadFd(dbus.types.UnixFd(read), dbus_interface="org.example.Echo")
    os.close(read)
    assert got == "to the service", got
    fd = echo.OpenFd("to the client", dbus_interface="org.example.Echo")
    with os.fdopen(fd.take(), "r") as f:
        back = f.read()
    assert back == "to the client", back
    print("fds ok")
else:
    sys.exit(f"unknown check {check}")
