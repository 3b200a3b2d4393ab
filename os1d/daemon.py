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

import numpy as np

from . import models, preflight
from .audio.devices import Microphone, WavFileSource
from .config import Config
from .download import pull
from .errors import UserError
from .events import (Error, Event, ModelLoaded, ReplyDone, SpeechEnded, StateChanged, Transcript,
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

        def trouble(source: str) -> Callable[[str], None]:
            def report(message: str) -> None:
                assistant.emit(Error(assistant.clock, source=source, message=message))
                assistant.failure = assistant.failure or UserError(message)
            return report

        if opts.events:
            stream = open_events(opts.events)
            if stream is not sys.stdout:
                stack.callback(stream.close)
            sinks.append(EventLog(stream, opts.events, trouble("events")))
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
            source = Microphone(cfg.audio.input_device, mic_trouble, retry_s=cfg.audio.retry_s)
        await assistant.load()
        await _until_stopped(assistant.run(source.frames(), serial=opts.fast))
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
