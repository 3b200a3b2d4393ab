"""Control verbs (`os1d status|mute|unmute|stop|ask|say`): the running daemon, over D-Bus."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from .errors import UserError

NOT_RUNNING = "os1d is not running; start it with `os1d run` (or `os1d service install` to run it always)"
START_S = 60.0
"""How long a control command waits for the session bus to start os1d on demand."""


async def _connect() -> tuple[Any, Any]:
    from dbus_fast import BusType, DBusError
    from dbus_fast.aio import MessageBus

    from .dbus import BUS_NAME, IFACE, PATH

    try:
        bus = await MessageBus(bus_type=BusType.SESSION).connect()
    except Exception as exc:
        raise UserError(f"no D-Bus session bus here ({exc}); {NOT_RUNNING}") from None
    wait = 5.0
    if not await _bus_says(bus, "NameHasOwner", BUS_NAME) and await _activatable(bus, BUS_NAME):
        print("os1d: starting os1d (its D-Bus service file is installed)…", file=sys.stderr, flush=True)
        wait = START_S  # the bus starts it and hands it this call once it is on the bus
    try:
        node = await bus.introspect(BUS_NAME, PATH, timeout=wait)
    except (DBusError, asyncio.TimeoutError) as exc:
        bus.disconnect()
        if wait == START_S:
            why = exc.text if isinstance(exc, DBusError) else f"it was not on the bus within {START_S:.0f} s"
            raise UserError(f"the session bus could not start os1d ({why}); `os1d run` shows why") from None
        raise UserError(NOT_RUNNING) from None
    return bus, bus.get_proxy_object(BUS_NAME, PATH, node).get_interface(IFACE)


async def _bus_says(bus: Any, member: str, *args: str) -> Any:
    from dbus_fast import Message, MessageType

    reply = await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                   interface="org.freedesktop.DBus", member=member,
                                   signature="s" * len(args), body=list(args)))
    return reply.body[0] if reply is not None and reply.message_type == MessageType.METHOD_RETURN else None


async def _activatable(bus: Any, name: str) -> bool:
    return name in (await _bus_says(bus, "ListActivatableNames") or [])


async def _run(verb: str, text: str, as_json: bool, quiet: bool) -> int:
    from dbus_fast import DBusError

    bus, os1 = await _connect()
    try:
        if verb == "status":
            status = {"state": await os1.get_state(), "muted": await os1.get_muted(),
                      "memories": await os1.get_memory_count(), "version": await os1.get_version()}
            print(json.dumps(status) if as_json else
                  f"os1d {status['version']}: {status['state']}{' (muted)' if status['muted'] else ''}, "
                  f"{status['memories']} memories")
        elif verb in ("mute", "unmute"):
            await os1.set_muted(verb == "mute")
            print("muted" if verb == "mute" else "listening")
        elif verb == "stop":
            await os1.call_stop()
        elif verb == "say":
            await os1.call_say(text)
        elif verb == "ask":
            os1.on_reply_delta(lambda delta: print(delta, end="", flush=True))
            reply = await (os1.call_ask_quietly(text) if quiet else os1.call_ask(text))
            print() if reply else print("(no reply)")
        return 0
    except DBusError as exc:
        raise UserError(exc.text) from None
    finally:
        bus.disconnect()


def control(verb: str, text: str = "", as_json: bool = False, quiet: bool = False) -> int:
    if verb in ("ask", "say") and not text.strip():
        raise UserError(f"`os1d {verb}` needs some words, e.g. os1d {verb} \"what time is it?\"")
    try:
        return asyncio.run(_run(verb, text, as_json, quiet))
    except BrokenPipeError:  # `os1d ask … | head -1`
        sys.stderr.close()
        return 0
