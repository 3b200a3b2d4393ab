"""os1d on the desktop: the tray on the main thread, the daemon's loop in a worker thread, and the two
wired together (menu actions into the loop, state changes onto the icon)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from . import daemon
from .config import Config
from .events import Event, StateChanged

log = logging.getLogger("os1d")


def run_daemon(cfg: Config, opts: daemon.RunOptions) -> int:
    """`os1d run`: with a tray icon where there is a desktop (and no --no-tray), else headless."""
    from .tray import display_available

    if not opts.tray or opts.input_file or not display_available():
        return asyncio.run(daemon.run(cfg, opts))
    try:
        from .tray import Tray

        tray = Tray()
    except Exception as exc:  # no usable tray backend here
        log.warning("no tray icon (%s); running headless", exc)
        return asyncio.run(daemon.run(cfg, opts))
    if type(tray.icon).__module__.endswith("._xorg"):
        # pystray's plain-X backend can't be redrawn safely from another thread (its icon stopped updating,
        # or hung, in tests); GTK and AppIndicator hand every change to their own main loop
        log.info("no tray icon: only pystray's plain X backend is available here (install PyGObject for the "
                 "GTK or AppIndicator tray); running headless")
        return asyncio.run(daemon.run(cfg, opts))
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["code"] = asyncio.run(daemon.run(cfg, opts, tray))
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc
        finally:
            tray.stop()

    # The main thread sits in the tray's own loop. Under GTK's, Python's handlers run (PyGObject wakes the loop
    # for them); under others they may never get to: there the wakeup pipe, read by a thread of its own, hands
    # the signal on. Each signal is delivered once, by whichever path sees it first.
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write)
    for sig in daemon.SIGNALS:
        signal.signal(sig, lambda number, _frame: _deliver(number, _HANDLED))
    threading.Thread(target=_take_signals, args=(read,), name="os1d-signals", daemon=True).start()
    worker = threading.Thread(target=work, name="os1d-loop")
    worker.start()
    try:
        tray.run()
    except Exception as exc:  # the icon could not be shown: the daemon goes on without it
        log.warning("the tray icon failed (%s); running headless", exc)
    while worker.is_alive():
        worker.join(0.5)
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome.get("code", 0))


_HANDLED: Counter[int] = Counter()
_PIPED: Counter[int] = Counter()
_DELIVERED: Counter[int] = Counter()
_LOCK = threading.Lock()


def _take_signals(pipe: int) -> None:
    while True:
        for number in os.read(pipe, 64):
            _deliver(number, _PIPED)


def _deliver(number: int, seen: Counter[int]) -> None:
    """Hand a signal to the daemon's loop (before the loop listens for them: stop at once), unless the other
    path already has."""
    with _LOCK:
        seen[number] += 1
        if seen[number] <= _DELIVERED[number]:
            return
        _DELIVERED[number] = seen[number]
    forward = daemon.forward_signal
    if forward is None:
        os._exit(128 + number)
    forward(signal.Signals(number))


def attach(tray: Any, assistant: Any, service: Any) -> Callable[[Event], None]:
    """Give the tray its actions (run in the assistant's loop); return the sink that keeps it current."""
    from .tray import TrayActions

    loop = asyncio.get_running_loop()

    async def forget_all() -> None:
        gone = await assistant.conversation.forget_everything()
        if gone is None:
            log.warning("memory is off; there is nothing to forget")
            return
        log.info("forgot %d memories", gone)
        if service is not None:
            await service.interface.refresh_count()

    tray.actions = TrayActions(mute=lambda muted: loop.call_soon_threadsafe(daemon.mute, assistant, muted),
                               forget=lambda: asyncio.run_coroutine_threadsafe(forget_all(), loop),
                               quit=lambda: os.kill(os.getpid(), signal.SIGTERM))
    tray.show(assistant.state.state.value, assistant.muted)

    def sink(event: Event) -> None:
        if isinstance(event, StateChanged):
            tray.show(event.state, assistant.muted)
    return sink
