"""Lifecycle of `os1d run`: make sure models are here, open audio, listen, stop cleanly on signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import models
from .audio.devices import Microphone, WavFileSource, WavSink
from .config import Config
from .download import pull
from .errors import UserError
from .events import (Error, Event, EventLog, ModelLoaded, ReplyDone, SpeechEnded, StateChanged, Transcript,
                     WakeDetected)
from .pipeline import Listener

log = logging.getLogger("os1d")


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
        status = models.check(models_dir, name)
        if status.state in ("missing", "corrupt"):
            if cfg.offline():
                models.locate(models_dir, name)  # raises the one-line error naming `os1d models pull`
            log.info("downloading %s into %s", name, models_dir)
            pull(models_dir, models.spec(name))
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
    models_dir = await asyncio.to_thread(ensure_models, cfg)
    with contextlib.ExitStack() as stack:
        sinks = []
        if opts.events == "-":
            sinks.append(EventLog(sys.stdout))
        elif opts.events:
            try:
                stream: IO[str] = stack.enter_context(open(opts.events, "a", encoding="utf-8"))
            except OSError as exc:
                raise UserError(f"cannot write events to {opts.events}: {exc.strerror}") from None
            sinks.append(EventLog(stream))
        if opts.output_file:
            stack.callback(WavSink(opts.output_file).close)

        def emit(event: Event) -> None:
            line = describe(event)
            if line:
                log.info(line)
            for sink in sinks:
                sink(event)

        listener = Listener(cfg, models_dir, emit)
        stack.callback(listener.close)
        listener.emit(StateChanged(0.0, state="starting"))

        def mic_trouble(message: str) -> None:
            listener.emit(Error(listener.clock, source="audio", message=message))
            listener.set_state("error", message)

        if opts.input_file:
            source = WavFileSource(opts.input_file, fast=opts.fast)
        else:
            source = Microphone(cfg.audio.input_device, mic_trouble, retry_s=cfg.audio.retry_s)
        await listener.load()
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()
        stopping = False

        def stop() -> None:
            nonlocal stopping
            stopping = True
            if main is not None:
                main.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop)
        try:
            await listener.run(source.frames(), serial=opts.fast)
        except asyncio.CancelledError:
            if not stopping:
                raise
            log.info("stopping")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
    return 0
