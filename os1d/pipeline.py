"""The listening path: frames → wake word → utterance → transcript, with every step as an event."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import models
from .agent.openai_backend import OpenAIBackend
from .agent.turn import Conversation, Lanes, NothingHeard, SpeechLLM
from .agent.ultravox import Ultravox
from .agent.wake_phrase import remove_wake_phrase, spoken_phrase
from .agent.whisper import WhisperTranscriber
from .audio.chunk import AudioChunk
from .audio.vad import Segmenter, Started, TimedOut, Utterance
from .audio.wake import WakeWordDetector
from .config import Config
from .errors import UserError, first_line
from .events import (Error, Event, ListenTimeout, ModelLoaded, SpeechEnded, SpeechStarted,
                     StateChanged, WakeDetected)

Emit = Callable[[Event], None]
T = TypeVar("T")
log = logging.getLogger("os1d")


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
        self._llm_lane = Lane("llm")
        self._turn: asyncio.Future[Any] | None = None
        self._wake: WakeWordDetector | None = None
        self._woke_by = ""
        """The wake-word model that opened the listening in progress."""
        self._stt: asyncio.Task[WhisperTranscriber] | None = None
        self._llm: asyncio.Task[SpeechLLM] | None = None
        self.failure: UserError | None = None
        """The first error a turn hit (a missing model, an unreachable server): the exit status."""

    def emit(self, event: Event) -> None:
        self._emit(event)

    def set_state(self, state: str, detail: str = "") -> None:
        if state != self.state:
            self.state = state
            self.emit(StateChanged(self.clock, state=state, detail=detail))

    async def load(self) -> None:
        """Load the wake word now (fast); Whisper and the speech LLM in the background (slow)."""
        wake_dir = models.locate(self.models_dir, "openwakeword")
        stt_dir = models.locate(self.models_dir, self.cfg.stt.model)
        llm_dir = (models.locate(self.models_dir, "ultravox", self.cfg) if self.cfg.llm.backend == "ultravox-onnx"
                   else None)
        t0 = time.perf_counter()
        w = self.cfg.wake
        self._wake = await self._wake_lane.run(WakeWordDetector, wake_dir, w.models, w.threshold, w.refractory_s)
        self.emit(ModelLoaded(self.clock, model="openwakeword", seconds=round(time.perf_counter() - t0, 3)))
        self._stt = asyncio.create_task(self._loaded(stt_dir.name, self._stt_lane, WhisperTranscriber,
                                                     stt_dir, self.cfg.stt))
        self._llm = asyncio.create_task(self._loaded("ultravox" if llm_dir else "openai", self._llm_lane,
                                                     load_speech_llm, self.cfg, llm_dir))
        lanes = Lanes(self._stt_lane.run, self._llm_lane.run, self._stt, self._llm)
        names = self._wake.names
        self.conversation = Conversation(self.cfg, lanes, self.emit, lambda: self.clock,
                                         clean=lambda text: remove_wake_phrase(text, names))

    async def _loaded(self, name: str, lane: Lane, fn: Callable[..., T], *args: Any) -> T:
        t0 = time.perf_counter()
        try:
            model = await lane.run(fn, *args)
        except UserError as exc:
            self.emit(Error(self.clock, source="models", message=str(exc)))
            raise
        except Exception as exc:  # a failure nobody foresaw: still one line, and the loop goes on
            log.debug("loading %s failed", name, exc_info=True)
            error = UserError(f"{name} could not be loaded ({type(exc).__name__}: {first_line(exc)})")
            self.emit(Error(self.clock, source="models", message=str(error)))
            raise error from exc
        self.emit(ModelLoaded(self.clock, model=name, seconds=round(time.perf_counter() - t0, 3)))
        return model

    async def run(self, frames: AsyncIterator[AudioChunk], serial: bool = False) -> None:
        """Listen until the source ends, then finish the last turn.

        serial: finish each turn before reading on (a file replayed as fast as possible).
        """
        assert self._wake is not None, "load() first"
        try:
            async for chunk in frames:
                await self._on_frame(chunk)
                if serial and self._turn is not None:
                    await asyncio.wait([self._turn])
            while True:  # the input ended: hand over speech in progress (a turn may listen on, once)
                self._on_utterance(self._segmenter.finish())
                if self._turn is not None:
                    await asyncio.wait([self._turn])
                if not self._segmenter.active:
                    break
            if self.state == "listening":
                self.set_state("idle")
            for task in (self._stt, self._llm):  # a load failure counts even when nobody spoke
                if task is not None:
                    await asyncio.wait([task])
                    if isinstance(task.exception(), UserError):
                        self.failure = self.failure or task.exception()
            if self.failure is not None:
                raise self.failure
        finally:  # on a signal: stop the reply (within one token) before the lanes shut down
            pending = [t for t in (self._turn, self._stt, self._llm) if t is not None and not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def ask(self, text: str) -> str:
        """A typed turn; cancels a spoken one in progress."""
        self._cancel_turn()
        self._turn = asyncio.ensure_future(self.conversation.text_turn(text))
        return await self._turn

    def close(self) -> None:
        for lane in (self._wake_lane, self._stt_lane, self._llm_lane):
            lane.close()

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
            self._woke_by = best.model
            self._cancel_turn()  # barge-in: the user wants to say something new
            self.set_state("listening")
            self._on_segments(self._segmenter.arm_after_wake(self.clock))

    def _on_segments(self, events: list[Started | Utterance | TimedOut]) -> None:
        for ev in events:
            if isinstance(ev, Started):
                self.emit(SpeechStarted(self.clock, start=round(ev.start, 3)))
            elif isinstance(ev, TimedOut):
                self.emit(ListenTimeout(self.clock, waited=round(ev.waited, 3)))
                self.set_state("idle")
            else:
                self._on_utterance(ev)

    def _cancel_turn(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()

    def _on_utterance(self, utt: Utterance | None) -> None:
        if utt is None:
            return
        self.emit(SpeechEnded(self.clock, duration=round(utt.duration, 3), reason=utt.reason))
        self.set_state("thinking")
        self._cancel_turn()
        endpoint_ms = round((self.clock - utt.speech_end) * 1000, 1)
        hint = spoken_phrase(self._woke_by) if utt.wake_at is not None else ""
        self._turn = asyncio.ensure_future(self._spoken_turn(utt, endpoint_ms, hint))

    async def _spoken_turn(self, utt: Utterance, endpoint_ms: float, hint: str) -> None:
        try:
            await self.conversation.audio_turn(utt.samples, endpoint_ms, hint)
        except NothingHeard:
            if utt.wake_at is not None and not self._segmenter.active:
                # only the wake phrase so far (the user paused after it): listen on from where it ended
                log.debug("heard only the wake phrase; still listening")
                self.set_state("listening")
                self._on_segments(self._segmenter.arm(utt.end))
        except UserError as exc:
            self.emit(Error(self.clock, source="llm", message=str(exc)))
            self.failure = self.failure or exc
        except Exception as exc:  # a bug or an unforeseen failure: reported, and listening goes on
            message = f"this turn failed unexpectedly ({type(exc).__name__}: {first_line(exc)}); still listening"
            log.debug("the turn failed", exc_info=True)
            self.emit(Error(self.clock, source="turn", message=message))
            self.failure = self.failure or UserError(f"a turn failed unexpectedly ({type(exc).__name__}: "
                                                     f"{first_line(exc)}); run with -v for details")
        if not self._segmenter.active:
            self.set_state("idle")


def load_speech_llm(cfg: Config, folder: Path | None) -> SpeechLLM:
    """The configured speech LLM, warmed up (blocking)."""
    llm = cfg.llm
    if folder is None:
        if not llm.url:
            raise UserError("llm.backend is openai but llm.url is empty; set it to the server, e.g. http://localhost:8000")
        return OpenAIBackend(llm.url, llm.server_model, llm.timeout_s)
    dtypes = {"embed_tokens": llm.embed_dtype, "audio_encoder": llm.encoder_dtype,
              "decoder_model_merged": llm.decoder_dtype}
    model = Ultravox(folder, dtypes, llm.device)
    model.warm_up()
    return model
