"""The listening path: frames → wake word → utterance → transcript, with every step as an event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import models
from .agent.whisper import WhisperTranscriber, remove_wake_phrase
from .audio.chunk import AudioChunk
from .audio.vad import Segmenter, Started, TimedOut, Utterance
from .audio.wake import WakeWordDetector
from .config import Config
from .errors import UserError
from .events import (Error, Event, ListenTimeout, ModelLoaded, SpeechEnded, SpeechStarted,
                     StateChanged, Transcript, WakeDetected)

Emit = Callable[[Event], None]
T = TypeVar("T")


class Lane:
    """A single-thread executor for one model, so models really run side by side."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"os1d-{name}")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Listener:
    """Owns the listening state; run() consumes a frame source until it ends."""

    def __init__(self, cfg: Config, models_dir: Path, emit: Emit) -> None:
        self.cfg = cfg
        self.models_dir = models_dir
        self._emit = emit
        self.state = "starting"
        self.clock = 0.0
        self._wake_lane = Lane("wake")
        self._stt_lane = Lane("stt")
        self._segmenter = Segmenter(cfg.vad)
        self._turns: set[asyncio.Task[None]] = set()
        self._wake: WakeWordDetector | None = None
        self._stt: asyncio.Task[WhisperTranscriber] | None = None

    def emit(self, event: Event) -> None:
        self._emit(event)

    def set_state(self, state: str, detail: str = "") -> None:
        if state != self.state:
            self.state = state
            self.emit(StateChanged(self.clock, state=state, detail=detail))

    async def load(self) -> None:
        """Load the wake word now (fast) and Whisper in the background (slow)."""
        wake_dir = models.locate(self.models_dir, "openwakeword")
        stt_dir = models.locate(self.models_dir, self.cfg.stt.model)
        t0 = time.perf_counter()
        w = self.cfg.wake
        self._wake = await self._wake_lane.run(WakeWordDetector, wake_dir, w.models, w.threshold, w.refractory_s)
        self.emit(ModelLoaded(self.clock, model="openwakeword", seconds=round(time.perf_counter() - t0, 3)))
        self._stt = asyncio.create_task(self._load_stt(stt_dir))

    async def _load_stt(self, folder: Path) -> WhisperTranscriber:
        t0 = time.perf_counter()
        model = await self._stt_lane.run(WhisperTranscriber, folder, self.cfg.stt)
        self.emit(ModelLoaded(self.clock, model=folder.name, seconds=round(time.perf_counter() - t0, 3)))
        return model

    async def run(self, frames: AsyncIterator[AudioChunk]) -> None:
        """Listen until the source ends, then finish the last turn."""
        assert self._wake is not None, "load() first"
        try:
            async for chunk in frames:
                await self._on_frame(chunk)
            self._on_utterance(self._segmenter.finish())
            while self._turns:
                await asyncio.gather(*list(self._turns))
            if self._stt is not None:
                await self._stt  # a load failure is reported even when nobody spoke
        finally:
            for task in self._turns:
                task.cancel()
            if self._stt is not None and not self._stt.done():
                self._stt.cancel()

    def close(self) -> None:
        self._wake_lane.close()
        self._stt_lane.close()

    async def _on_frame(self, chunk: AudioChunk) -> None:
        assert self._wake is not None
        if self.state == "starting" or self.state == "error":
            self.set_state("idle")
        detections = await self._wake_lane.run(self._wake.detect, chunk.samples)
        self.clock = chunk.end
        was_active = self._segmenter.active
        events = self._segmenter.feed(chunk)
        if was_active:
            self._on_segments(events)
        elif detections:
            best = max(detections, key=lambda d: d.score)
            self.emit(WakeDetected(self.clock, model=best.model, score=round(best.score, 4)))
            self.set_state("listening")
            self._on_segments(self._segmenter.arm(self.clock))

    def _on_segments(self, events: list[Started | Utterance | TimedOut]) -> None:
        for ev in events:
            if isinstance(ev, Started):
                self.emit(SpeechStarted(self.clock, start=round(ev.start, 3)))
            elif isinstance(ev, TimedOut):
                self.emit(ListenTimeout(self.clock, waited=round(ev.waited, 3)))
                self.set_state("idle")
            else:
                self._on_utterance(ev)

    def _on_utterance(self, utt: Utterance | None) -> None:
        if utt is None:
            return
        self.emit(SpeechEnded(self.clock, duration=round(utt.duration, 3), reason=utt.reason))
        self.set_state("thinking")
        task = asyncio.create_task(self._transcribe(utt))
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _transcribe(self, utt: Utterance) -> None:
        assert self._stt is not None
        try:
            stt = await self._stt
        except UserError as exc:
            self.emit(Error(self.clock, source="stt", message=str(exc)))
            self.set_state("error")
            raise
        t0 = time.perf_counter()
        text = await self._stt_lane.run(stt.transcribe, utt.samples)
        text = remove_wake_phrase(text, self._wake.names if self._wake else [])
        self.emit(Transcript(self.clock, role="user", text=text, seconds=round(time.perf_counter() - t0, 3)))
        if self.state == "thinking" and not self._segmenter.active:
            self.set_state("idle")
