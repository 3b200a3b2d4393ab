"""The D-Bus API on the session bus: org.os1d.OS1 at /org/os1d/OS1 (see the README), with dbus-fast.

Events reach D-Bus through a bounded queue of their own: a slow or stuck client never holds up listening.
"""

# (no `from __future__ import annotations`: dbus-fast reads the D-Bus signatures from the annotations)
import asyncio
import logging
from collections.abc import Callable
from typing import Any

from dbus_fast import BusType, DBusError, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method, signal

from . import __version__
from .errors import UserError
from .events import Event, ReplyDelta, StateChanged, Transcript, WakeDetected

log = logging.getLogger("os1d")
BUS_NAME = "org.os1d.OS1"
PATH = "/org/os1d/OS1"
IFACE = "org.os1d.OS1"
INVALID = "org.os1d.OS1.Error.InvalidArgs"
UNAVAILABLE = "org.os1d.OS1.Error.NotAvailable"
QUEUE = 256
"""Events waiting for D-Bus at most; beyond that the oldest are dropped."""


class OS1Interface(ServiceInterface):
    """The methods, properties and signals of org.os1d.OS1 over the running assistant."""

    def __init__(self, assistant: Any, quit: Callable[[], None], mute: Callable[[bool], None]) -> None:
        super().__init__(IFACE)
        self.a, self._quit, self._mute = assistant, quit, mute
        self.memory_count = 0
        self.last_transcript = self.last_reply = ""
        """What a client that connects late reads first (with State)."""

    # -- properties ----------------------------------------------------------------------------------------
    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> "s":  # type: ignore[name-defined] # noqa: F821
        return str(self.a.state.state.value)

    @dbus_property()
    def Muted(self) -> "b":  # type: ignore[name-defined] # noqa: F821
        return bool(self.a.muted)

    @Muted.setter  # type: ignore[no-redef]
    def Muted(self, value: "b") -> None:  # type: ignore[name-defined] # noqa: F821
        self._mute(bool(value))  # (PropertiesChanged follows with the state change)

    @dbus_property(access=PropertyAccess.READ)
    def MemoryCount(self) -> "u":  # type: ignore[name-defined] # noqa: F821
        return self.memory_count

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> "s":  # type: ignore[name-defined] # noqa: F821
        return __version__

    @dbus_property(access=PropertyAccess.READ)
    def LastTranscript(self) -> "s":  # type: ignore[name-defined] # noqa: F821
        return self.last_transcript

    @dbus_property(access=PropertyAccess.READ)
    def LastReply(self) -> "s":  # type: ignore[name-defined] # noqa: F821
        return self.last_reply

    # -- methods -------------------------------------------------------------------------------------------
    @method()
    async def Ask(self, text: "s") -> "s":  # type: ignore[name-defined] # noqa: F821
        return await self._ask(text, True)

    @method()
    async def AskQuietly(self, text: "s") -> "s":  # type: ignore[name-defined] # noqa: F821
        return await self._ask(text, False)

    async def _ask(self, text: str, speak: bool) -> str:
        if not text.strip():
            raise DBusError(INVALID, "the question is empty")
        if getattr(self.a, "lanes", None) is None:
            raise DBusError(UNAVAILABLE, "os1d is still starting; ask again in a moment")
        try:
            return str(await self.a.ask(text.strip(), speak=speak))
        except UserError as exc:
            raise DBusError(UNAVAILABLE, str(exc)) from None
        except asyncio.CancelledError:
            raise DBusError(UNAVAILABLE, "the question was interrupted") from None

    @method()
    async def Say(self, text: "s") -> None:  # type: ignore[name-defined] # noqa: F821
        if not text.strip():
            raise DBusError(INVALID, "there is nothing to say")
        if self.a.muted:
            raise DBusError(UNAVAILABLE, "OS1 is muted; unmute it first (`os1d unmute`)")
        if getattr(self.a, "lanes", None) is None:
            raise DBusError(UNAVAILABLE, "os1d is still starting; try again in a moment")
        await self.a.say(text.strip())

    @method()
    def Stop(self) -> None:
        self.a.stop()

    @method()
    async def Forget(self) -> "u":  # type: ignore[name-defined] # noqa: F821
        gone = await self.a.conversation.forget_everything()
        if gone is None:
            raise DBusError(UNAVAILABLE, "memory is off or could not be loaded (see `os1d doctor`)")
        await self.refresh_count()
        return gone

    @method()
    async def ForgetMemory(self, memory_id: "t") -> "b":  # type: ignore[name-defined] # noqa: F821
        memory = await self._memory()
        gone = await self.a.models.memory_lane.run(memory.store.forget, int(memory_id))
        await self.refresh_count()
        return bool(gone)

    @method()
    async def Recall(self, query: "s", k: "u") -> "a(tsd)":  # type: ignore[name-defined] # noqa: F821
        if not query.strip():
            raise DBusError(INVALID, "the query is empty")
        if not 1 <= k <= 100:
            raise DBusError(INVALID, f"k must be 1 to 100, not {k}")
        memory = await self._memory()
        found = await self.a.models.memory_lane.run(memory.recall, query, int(k))
        return [[int(m["id"]), str(m["text"]), float(m["score"])] for m in found]

    @method()
    def Quit(self) -> None:
        asyncio.get_running_loop().call_soon(self._quit)

    async def _memory(self) -> Any:
        memory = await self.a.conversation.loaded_memory()
        if memory is None:
            raise DBusError(UNAVAILABLE, "memory is off or could not be loaded (see `os1d doctor`)")
        return memory

    async def refresh_count(self) -> None:
        memory = await self.a.conversation.loaded_memory()
        count = 0 if memory is None else await self.a.models.memory_lane.run(memory.store.count)
        if count != self.memory_count:
            self.memory_count = int(count)
            self.emit_properties_changed({"MemoryCount": self.memory_count})

    # -- signals -------------------------------------------------------------------------------------------
    @signal()
    def StateChanged(self, state: str) -> "s":  # type: ignore[name-defined] # noqa: F821
        return state

    @signal()
    def Transcript(self, role: str, text: str) -> "ss":  # type: ignore[name-defined] # noqa: F821
        return [role, text]

    @signal()
    def WakeWord(self, name: str, score: float) -> "sd":  # type: ignore[name-defined] # noqa: F821
        return [name, score]

    @signal()
    def ReplyDelta(self, text: str) -> "s":  # type: ignore[name-defined] # noqa: F821
        return text

    @signal()
    def Event(self, event: Event) -> "sudv":  # type: ignore[name-defined] # noqa: F821
        """Every event: its type name, exchange, input-clock time and payload (a struct, fixed per type)."""
        return [type(event).__name__, event.turn, float(event.t), Variant(event.signature(), event.payload())]


class DBusService:
    """The assistant on the session bus; `on_event` feeds it events (never blocks)."""

    def __init__(self, bus: MessageBus, interface: OS1Interface) -> None:
        self.bus, self.interface = bus, interface
        self._events: "asyncio.Queue[Event]" = asyncio.Queue(QUEUE)
        self._pump = asyncio.ensure_future(self._send())

    def on_event(self, event: Event) -> None:
        if self._events.full():
            self._events.get_nowait()
        self._events.put_nowait(event)

    async def _send(self) -> None:
        i = self.interface
        muted = bool(i.a.muted)
        while True:
            e = await self._events.get()
            try:
                if isinstance(e, StateChanged):
                    if bool(i.a.muted) != muted:  # muting shows as a state change: Muted changed with it
                        muted = bool(i.a.muted)
                        i.emit_properties_changed({"Muted": muted})
                    i.StateChanged(e.state)
                    i.emit_properties_changed({"State": e.state})
                elif isinstance(e, Transcript):
                    i.last_transcript = e.text
                    i.Transcript(e.role, e.text)
                elif isinstance(e, WakeDetected):
                    i.WakeWord(e.model, float(e.score))
                elif isinstance(e, ReplyDelta):
                    i.ReplyDelta(e.text)
                elif type(e).__name__ == "ReplyDone":
                    i.last_reply = e.text  # type: ignore[attr-defined]
                    if not getattr(e, "interrupted", False):
                        i.Transcript("assistant", e.text)  # type: ignore[attr-defined]
                elif type(e).__name__ in ("Remembered", "ModelLoaded"):
                    await i.refresh_count()
                i.Event(e)
            except Exception as exc:  # the bus went away: the assistant goes on
                log.debug("D-Bus signal not sent: %s", exc)

    def close(self) -> None:
        self._pump.cancel()
        self.bus.disconnect()


async def serve(assistant: Any, quit: Callable[[], None], mute: Callable[[bool], None]) -> DBusService:
    """Own org.os1d.OS1 on the session bus; one line if another os1d has it or there is no bus."""
    try:
        bus = await MessageBus(bus_type=BusType.SESSION).connect()
    except Exception as exc:
        raise UserError(f"no D-Bus session bus ({exc})") from None
    interface = OS1Interface(assistant, quit, mute)
    bus.export(PATH, interface)
    reply = await bus.request_name(BUS_NAME, NameFlag.DO_NOT_QUEUE)
    if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
        bus.disconnect()
        raise UserError(f"os1d is already running ({BUS_NAME} is taken on the session bus); "
                        "`os1d status` shows it, `os1d stop` or Quit ends it")
    return DBusService(bus, interface)
