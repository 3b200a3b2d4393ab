"""Lifecycle of `os1d run`: make sure models are here, open audio, listen, stop cleanly on signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from . import models, preflight
from .audio.devices import Microphone, WavFileSource
from .config import Config
from .download import pull
from .errors import UserError
from .events import (Error, Event, ModelLoaded, ReplyDone, SpeechEnded, StateChanged, Transcript,
                     WakeDetected)
from .outputs import EventLog, WavSink, check_paths, open_events
from .pipeline import Listener

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


def ensure_models(cfg: Config) -> Path:
    """Pull what the daemon needs and is missing (unless offline); return the models dir."""
    models_dir = cfg.models_dir()
    for name in models.models_for(cfg.stt.model, cfg.llm.backend):
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


async def run(cfg: Config, opts: RunOptions) -> int:
    """Run the daemon until its input ends (file) or it is told to stop (signal)."""
    check_paths(opts.input_file, opts.output_file, opts.events)
    source = WavFileSource(opts.input_file, fast=opts.fast) if opts.input_file else None
    models_dir = await asyncio.to_thread(ensure_models, cfg)
    await asyncio.to_thread(preflight.check, cfg, models_dir)
    with contextlib.ExitStack() as stack:
        sinks: list[EventLog] = []

        def emit(event: Event) -> None:
            line = describe(event)
            if line:
                log.info(line)
            for sink in sinks:
                sink(event)

        listener = Listener(cfg, models_dir, emit)
        stack.callback(listener.close)

        def trouble(source: str) -> Callable[[str], None]:
            def report(message: str) -> None:
                listener.emit(Error(listener.clock, source=source, message=message))
                listener.failure = listener.failure or UserError(message)
            return report

        if opts.events:
            stream = open_events(opts.events)
            if stream is not sys.stdout:
                stack.callback(stream.close)
            sinks.append(EventLog(stream, opts.events, trouble("events")))
        if opts.output_file:
            stack.callback(WavSink(opts.output_file).close)
        listener.emit(StateChanged(0.0, state="starting"))

        def mic_trouble(message: str) -> None:
            listener.emit(Error(listener.clock, source="audio", message=message))
            listener.set_state("error", message)

        if source is None:
            source = Microphone(cfg.audio.input_device, mic_trouble, retry_s=cfg.audio.retry_s)
        await listener.load()
        await _until_stopped(listener.run(source.frames(), serial=opts.fast))
    return 0


async def _until_stopped(work: Awaitable[None]) -> None:
    """Run `work`; SIGINT, SIGTERM and SIGHUP (the terminal closed) stop it cleanly."""
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def stop(sig: signal.Signals) -> None:
        received.append(sig.name)
        if main is not None:
            main.cancel()

    for sig in SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop, sig)
    try:
        await work
    except asyncio.CancelledError:
        if not received:
            raise
        log.info("stopping (%s)", received[0])
    finally:
        for sig in SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
