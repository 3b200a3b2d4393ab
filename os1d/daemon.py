"""Lifecycle of `os1d run`: make sure models are here, open audio, listen, stop cleanly on signals."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import models, preflight
from .audio.devices import Microphone, WavFileSource
from .config import Config, state_path
from .download import pull
from .errors import UserError
from .events import (Error, Event, Feed, ModelLoaded, ReplyDone, SpeechEnded, StateChanged, Transcript,
                     WakeDetected)
from .outputs import EventLog, WavSink, check_paths, open_events
from .assistant import Assistant
from .audio.echo import echo_cancelled
from .audio.speaker import DeviceSpeaker, Speaker, TimelineSpeaker
from .audio.tts import RATE as TTS_RATE
from .state import State

log = logging.getLogger("os1d")
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@dataclass(frozen=True)
class RunOptions:
    input_file: Path | None = None
    output_file: Path | None = None
    events: str | None = None
    """A path, "-" for stdout, or None."""
    fast: bool = False
    tray: bool = True
    config: Path | None = None
    """The --config given (None: the default path), re-read on SIGHUP."""


def ensure_models(cfg: Config) -> Path:
    """Pull what the daemon needs and is missing (unless offline); return the models dir."""
    models_dir = cfg.models_dir()
    for name in models.models_for(cfg.stt.model, cfg.llm.backend, cfg.memory.enabled):
        status = models.check(models_dir, name, cfg=cfg)
        if status.state in ("missing", "corrupt", "unreadable"):
            if cfg.offline() or status.state == "unreadable":
                folder = models_dir / name
                if name == "ultravox" and (folder / "config.json").is_file():  # only a precision is missing
                    for problem in models.precision_problems(folder, preflight.cfg_dtypes(cfg)):
                        raise UserError(problem)
                models.locate(models_dir, name, cfg)  # raises the one-line error naming the fix
            log.info("downloading %s into %s", name, models_dir)
            pull(models_dir, models.spec(name, cfg))
    return models_dir


def describe(event: Event) -> str | None:
    """A human line for the log, for the events a person cares about."""
    if isinstance(event, WakeDetected):
        return f"wake word {event.model} ({event.score:.2f})"
    if isinstance(event, SpeechEnded):
        return f"heard {event.duration:.1f} s of speech ({event.reason})"
    if isinstance(event, Transcript):
        return f"you: {event.text}"
    if isinstance(event, StateChanged):
        return f"state: {event.state}" + (f" ({event.detail})" if event.detail else "")
    if isinstance(event, ReplyDone):
        return f"os1: {event.text}" + (" (interrupted)" if event.interrupted else "")
    if isinstance(event, ModelLoaded):
        return f"loaded {event.model} in {event.seconds:.1f} s"
    if isinstance(event, Error):
        return f"error ({event.source}): {event.message}"
    return None


def open_speaker(cfg: Config, record: Callable[[np.ndarray], None] | None,
                 device: bool) -> tuple[Speaker, str]:
    """The output device (live runs) or the input clock's timeline (--input-file); a problem in one line."""
    if not device:
        return TimelineSpeaker(record), ""
    try:
        return DeviceSpeaker(cfg.audio.output_device, record), ""
    except UserError as exc:
        return TimelineSpeaker(record), f"{exc}; os1d answers in text only"


async def run(cfg: Config, opts: RunOptions, tray: Any = None) -> int:
    """Run the daemon until its input ends (file) or it is told to stop (signal, from the very start: a
    SIGHUP while models load reloads, it does not kill); `tray`: an os1d.tray.Tray running on the main
    thread (this loop then runs in a worker thread). RELOAD: SIGHUP asked to start afresh."""
    check_paths(opts.input_file, opts.output_file, opts.events)
    reload = None if opts.input_file else lambda: config_is_good(opts.config)
    return RELOAD if await _until_stopped(_run(cfg, opts, tray), reload) else 0


async def _in_daemon_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) off the loop, in a thread that does not hold up the exit: a stop during a first-run
    download ends os1d at once (the download resumes next time)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(result)

    def work() -> None:
        try:
            result, exc = fn(*args), None
        except BaseException as error:  # handed to the loop
            result, exc = None, error
        with contextlib.suppress(RuntimeError):  # the loop has gone: os1d is stopping
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=work, name="os1d-prepare", daemon=True).start()
    return await done


async def _run(cfg: Config, opts: RunOptions, tray: Any) -> None:
    source = WavFileSource(opts.input_file, fast=opts.fast) if opts.input_file else None
    models_dir = await _in_daemon_thread(ensure_models, cfg)
    await asyncio.to_thread(preflight.check, cfg, models_dir)
    with contextlib.ExitStack() as stack:
        sinks: list[Callable[[Event], None]] = []

        def emit(event: Event) -> None:
            line = describe(event)
            if line:
                log.info(line)
            for sink in sinks:
                sink(event)

        loop = asyncio.get_running_loop()

        def trouble(source: str) -> Callable[[str], None]:
            def report(message: str) -> None:
                assistant.emit(Error(assistant.clock, source=source, message=message))
                assistant.failure = assistant.failure or UserError(message)
            return lambda message: loop.call_soon_threadsafe(report, message)  # (from the subscriber's thread)

        if opts.events:
            stream = open_events(opts.events)
            if stream is not sys.stdout:
                stack.callback(stream.close)
            log_feed = Feed("events", EventLog(stream, opts.events, trouble("events")), size=65536)
            stack.callback(log_feed.close)  # (before the stream closes: what is queued gets written)
            sinks.append(log_feed)
        record = None
        if opts.output_file:
            sink = WavSink(opts.output_file, rate=TTS_RATE)
            stack.callback(sink.close)
            record = sink.write
        speaker, speaker_problem = open_speaker(cfg, record, device=source is None)
        echo = source is None and echo_cancelled(cfg.audio.input_device)
        assistant = Assistant(cfg, models_dir, emit, speaker, echo_cancelled=echo)
        stack.callback(assistant.close)
        assistant.emit(StateChanged(0.0, state="starting"))
        if speaker_problem:
            assistant.emit(Error(0.0, source="audio", message=speaker_problem))

        def mic_trouble(message: str) -> None:
            assistant.emit(Error(assistant.clock, source="audio", message=message))
            assistant.state(State.ERROR, message)

        if source is None:
            service = await _serve(assistant)  # before any model loads: a second os1d stops here
            if service is not None:
                stack.callback(service.close)
                sinks.append(service.on_event)  # type: ignore[arg-type]
            if load_muted():
                assistant.set_muted(True)
            if tray is not None:
                from .desktop import attach

                tray_feed = Feed("tray", attach(tray, assistant, service), size=64)
                stack.callback(tray_feed.close)
                sinks.append(tray_feed)
            source = Microphone(cfg.audio.input_device, mic_trouble, retry_s=cfg.audio.retry_s)
        await assistant.load()
        await assistant.run(source.frames(), serial=opts.fast)


forward_signal: Callable[[signal.Signals], None] | None = None
"""While the loop runs off the main thread: how the main thread's signal handler reaches it."""
RELOAD = -1
"""run()'s answer when SIGHUP asked for a reload with a good config: the caller starts os1d afresh."""


def config_is_good(path: Path | None) -> bool:
    """SIGHUP: the new config, checked before the running one is let go (one line if it is bad)."""
    from .config import load_config

    try:
        load_config(path)
        return True
    except UserError as exc:
        log.error("the config was not reloaded: %s; os1d keeps running with the config it started with", exc)
        return False


async def _serve(assistant: Assistant):  # type: ignore[no-untyped-def]
    """The D-Bus API (live runs); without a session bus os1d runs on, uncontrolled, and says so."""
    from . import dbus

    try:
        return await dbus.serve(assistant, lambda: os.kill(os.getpid(), signal.SIGTERM),
                                lambda muted: mute(assistant, muted))
    except UserError as exc:
        if "already running" in str(exc):
            raise
        log.warning("%s; os1d runs without D-Bus control", exc)
        return None


def load_muted() -> bool:
    try:
        return bool(json.loads(state_path().read_text()).get("muted", False))
    except (OSError, ValueError, AttributeError):
        return False


def mute(assistant: Assistant, muted: bool) -> None:
    """Mute or unmute (D-Bus, the tray), and keep it for the next start."""
    assistant.set_muted(muted)
    save_muted(muted)


def save_muted(muted: bool) -> None:
    """Muted survives a restart (written atomically)."""
    path = state_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        part.write_text(json.dumps({"muted": muted}))
        part.replace(path)
    except OSError as exc:
        log.warning("could not keep the mute setting in %s: %s", path, exc)


STOP_GRACE_S = 20.0
"""A stop (SIGTERM, Quit, the tray's Quit) that has not ended os1d by then ends it at once, every thread's stack
in the log: a stop never hangs. (Every memory is committed as it is made; only writes still queued are lost.)"""


def _stop_within(seconds: float) -> None:
    def overdue() -> None:
        log.error("os1d did not stop within %.0f s; it stops now (where it hung, for a bug report:)", seconds)
        faulthandler.dump_traceback(all_threads=True)
        os._exit(1)

    timer = threading.Timer(seconds, overdue)
    timer.daemon = True
    timer.start()


async def _until_stopped(work: Awaitable[None], reload: Callable[[], bool] | None = None) -> bool:
    """Run `work`; SIGINT and SIGTERM stop it cleanly. SIGHUP too, unless `reload` is given: then it stops
    only when reload() says the new config is good. True: stopped to reload."""
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def stop(sig: signal.Signals) -> None:
        if sig.name == "SIGHUP" and reload is not None and not reload():
            return
        received.append(sig.name)
        if sig.name != "SIGHUP" or reload is None:
            _stop_within(STOP_GRACE_S)
        if main is not None:
            main.cancel()

    global forward_signal
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        for sig in SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop, sig)
    else:  # the main thread runs the tray and hands signals over
        forward_signal = lambda sig: loop.call_soon_threadsafe(stop, sig)  # noqa: E731
    try:
        await work
    except asyncio.CancelledError:
        if not received:
            raise
    finally:
        if received:
            log.info("reloading the config (SIGHUP)" if received[0] == "SIGHUP" and reload else
                     f"stopping ({received[0]})")
        forward_signal = None
        for sig in SIGNALS if on_main else ():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return bool(received) and received[0] == "SIGHUP" and reload is not None
