#!/usr/bin/python3
"""A python3-dbus service for the bridge tests.

usage: service.py ADDRESS NAME [--queue]
Owns NAME on the bus at ADDRESS and serves /org/example/Echo with
org.example.Echo: Echo(s)->s, Fail()->error org.example.Error.Failed,
ReadFd(h)->s (reads the passed fd), OpenFd(s)->h (a pipe holding the
string), Emit(s path, s arg0) (emits the
signal Ping(s) from PATH), Quit(). Prints "ready" once the name is owned.
"""
import os
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

IFACE = "org.example.Echo"


class Failed(dbus.DBusException):
    _dbus_error_name = "org.example.Error.Failed"


class Echo(dbus.service.Object):
    def __init__(self, bus, loop):
        super().__init__(bus, "/org/example/Echo")
        self.bus = bus
        self.loop = loop
        self.emitters = {}

    @dbus.service.method(IFACE, in_signature="s", out_signature="s")
    def Echo(self, text):
        return text

    @dbus.service.method(IFACE, in_signature="", out_signature="")
    def Fail(self):
        raise Failed("failing as asked")

    @dbus.service.method(IFACE, in_signature="h", out_signature="s")
    def ReadFd(self, fd):
        with os.fdopen(fd.take(), "r") as f:
            return f.read()

    @dbus.service.method(IFACE, in_signature="s", out_signature="h")
    def OpenFd(self, text):
        read, write = os.pipe()
        os.write(write, text.encode())
        os.close(write)
        fd = dbus.types.UnixFd(read)
        os.close(read)
        return fd

    @dbus.service.method(IFACE, in_signature="ss", out_signature="")
    def Emit(self, path, text):
        emitter = self.emitters.get(path)
        if emitter is None:
            emitter = Emitter(self.bus, path)
            self.emitters[path] = emitter
        emitter.Ping(text)

    @dbus.service.method(IFACE, in_signature="", out_signature="")
    def Quit(self):
        GLib.idle_add(self.loop.quit)


class Emitter(dbus.service.Object):
    def __init__(self, bus, path):
        super().__init__(bus, path)

    @dbus.service.signal(IFACE, signature="s")
    def Ping(self, text):
        pass


def main():
    address, name = sys.argv[1], sys.argv[2]
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    loop = GLib.MainLoop()
    Echo(bus, loop)
    flags = 0 if "--queue" in sys.argv else dbus.bus.NAME_FLAG_DO_NOT_QUEUE
    reply = bus.request_name(name, flags)
    print("ready" if reply == dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER else "queued", flush=True)
    loop.run()


main()
