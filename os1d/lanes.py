"""The models and where they run: each in its own single-thread lane, loaded in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import models
from .agent import hearing
from .agent.openai_backend import OpenAIBackend
from .agent.turn import SpeechLLM, Transcriber
from .agent.ultravox import Ultravox
from .agent.voice_first import VoiceFirst
from .agent.whisper import WhisperTranscriber
from .audio.tts import KokoroVoice
from .audio.wake import WakeWordDetector
from .config import Config
from .errors import UserError, first_line
from .events import Error, Event, ModelLoaded
from .memory.recall import Memories

T = TypeVar("T")
log = logging.getLogger("os1d")


ABANDONED: list[str] = []
"""Lanes closed while a job still ran in them (a model still loading when os1d was told to stop)."""


class Lane:
    """A single-thread executor for one model, so models really run side by side."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"os1d-{name}")
        self._jobs: list[Future[Any]] = []

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        job = self._pool.submit(fn, *args)
        self._jobs = [j for j in self._jobs if not j.done()] + [job]
        return job

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._submit(fn, *args))

    def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run in the lane and wait (off the event loop: at shutdown)."""
        return self._submit(fn, *args).result()

    def close(self, wait: bool = True) -> None:
        """Take no more work; wait=False: not even for the job in progress, which is then left to run out
        (ABANDONED: the process should end without joining its thread, see abandon_at_exit)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
        if not wait and any(not j.done() for j in self._jobs):
            ABANDONED.append(self.name)


def abandon_at_exit(code: int) -> None:
    """End the process now if a lane was left running (a load that takes seconds more, or minutes on a first
    run's int8 conversion, must not hold up a stop); otherwise return. Everything of value is closed by then:
    memories written, the index saved, the event log and recording closed; a load leaves nothing half-written
    (its caches are written aside and renamed)."""
    if not ABANDONED:
        return
    log.debug("not waiting for the work still running in the %s lane(s)", ", ".join(ABANDONED))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


class Models:
    """The wake word (loaded first: listening starts at once), then Whisper, the speech LLM and the voice."""

    def __init__(self, cfg: Config, models_dir: Path, emit: Callable[[Event], None],
                 clock: Callable[[], float]) -> None:
        self.cfg, self.models_dir, self._emit, self._clock = cfg, models_dir, emit, clock
        self.wake_lane, self.stt_lane, self.llm_lane, self.tts_lane, self.memory_lane = (
            Lane(n) for n in ("wake", "stt", "llm", "tts", "memory"))
        self.wake: WakeWordDetector | None = None
        self.transcriber: asyncio.Task[Transcriber] | None = None
        self.speech_llm: asyncio.Task[SpeechLLM] | None = None
        self.voice: asyncio.Task[KokoroVoice] | None = None
        self.memory: asyncio.Task[Memories] | None = None
        self.share = VoiceFirst()
        """On while the loaded speech LLM runs on the CPU (llm.yield_to_voice): the voice goes first."""

    async def load(self) -> None:
        cfg, root = self.cfg, self.models_dir
        wake_dir = models.locate(root, "openwakeword")
        stt_dir = models.locate(root, cfg.stt.model)
        llm_dir = models.locate(root, "ultravox", cfg) if cfg.llm.backend == "ultravox-onnx" else None
        tts_dir = models.locate(root, "kokoro")
        memory_dir = models.locate(root, "minilm") if cfg.memory.enabled else None
        t0 = time.perf_counter()
        w = cfg.wake
        self.wake = await self.wake_lane.run(WakeWordDetector, wake_dir, w.models, w.threshold, w.refractory_s)
        self._emit(ModelLoaded(self._clock(), model="openwakeword", seconds=round(time.perf_counter() - t0, 3)))
        self.transcriber = asyncio.create_task(self._loaded(stt_dir.name, self.stt_lane, WhisperTranscriber,
                                                            stt_dir, cfg.stt))
        self.speech_llm = asyncio.create_task(self._loaded("ultravox" if llm_dir else "openai", self.llm_lane,
                                                           load_speech_llm, cfg, llm_dir))
        self.speech_llm.add_done_callback(self._on_llm)
        self.voice = asyncio.create_task(self._loaded("kokoro", self.tts_lane, load_voice, cfg, tts_dir))
        if memory_dir is not None:
            self.memory = asyncio.create_task(self._loaded("minilm", self.memory_lane, load_memory, cfg, memory_dir))

    def _on_llm(self, task: asyncio.Task[SpeechLLM]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.share.enabled = self.cfg.llm.yield_to_voice and getattr(task.result(), "device", "") == "cpu"

    async def _loaded(self, name: str, lane: Lane, fn: Callable[..., T], *args: Any) -> T:
        t0 = time.perf_counter()
        try:
            model = await lane.run(fn, *args)
        except UserError as exc:
            self._emit(Error(self._clock(), source="models", message=str(exc)))
            raise
        except Exception as exc:  # a failure nobody foresaw: still one line, and the loop goes on
            log.debug("loading %s failed", name, exc_info=True)
            error = UserError(f"{name} could not be loaded ({type(exc).__name__}: {first_line(exc)})")
            self._emit(Error(self._clock(), source="models", message=str(error)))
            raise error from exc
        self._emit(ModelLoaded(self._clock(), model=name, seconds=round(time.perf_counter() - t0, 3)))
        return model

    @property
    def loading(self) -> list[asyncio.Task[Any]]:
        return [t for t in (self.transcriber, self.speech_llm, self.voice, self.memory) if t is not None]

    async def failure(self) -> UserError | None:
        """Wait for every load; the first that failed (a load failure counts even when nobody spoke)."""
        for task in self.loading:
            await asyncio.wait([task])
            if not task.cancelled() and isinstance(task.exception(), UserError):
                return task.exception()  # type: ignore[return-value]
        return None

    def close(self) -> None:
        """Stop the lanes without waiting for a model still loading (a turn's work stops within one step);
        memories loaded are closed properly: the index saved, the database closed."""
        for lane in (self.wake_lane, self.stt_lane, self.llm_lane, self.tts_lane):
            lane.close(wait=False)
        task, loaded = self.memory, False
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            self.memory_lane.run_blocking(task.result().close)
            loaded = True
        self.memory_lane.close(wait=loaded)


def load_speech_llm(cfg: Config, folder: Path | None) -> SpeechLLM:
    """The configured speech LLM, warmed up (blocking)."""
    llm = cfg.llm
    if folder is None:
        if not llm.url:
            raise UserError("llm.backend is openai but llm.url is empty; set it to the server, e.g. http://localhost:8000")
        server = OpenAIBackend(llm.url, llm.server_model, llm.timeout_s)
        server.hearing = hearing.choose(llm, None)
        return server
    dtypes = {"embed_tokens": llm.embed_dtype, "audio_encoder": llm.encoder_dtype,
              "decoder_model_merged": llm.decoder_dtype}
    model = Ultravox(folder, dtypes, llm.device, int8_matmul=llm.int8_matmul, int8_cache=cfg.int8_cache())
    model.warm_up()
    model.hearing = hearing.choose(llm, model.encode_audio)
    log.info("the speech LLM hears %s: %s", "your voice" if model.hearing.mode == "audio" else
             "Whisper's transcript (text)", model.hearing.why)
    return model


def load_memory(cfg: Config, folder: Path) -> Memories:
    """The embedder (warmed up) and the memory store."""
    from .memory.embed import MiniLMEmbedder
    from .memory.store import MemoryStore

    embedder = MiniLMEmbedder(folder)
    embedder.embed(["hello"])
    return Memories(MemoryStore(cfg.memory_dir(), embedder.dim), embedder, cfg.memory)


def load_voice(cfg: Config, folder: Path) -> KokoroVoice:
    voice = KokoroVoice(folder, cfg.tts, cache=cfg.graph_cache())
    voice.warm_up()
    return voice


async def ready(task: Awaitable[T] | None) -> T:
    """A model once loaded (its load error, if it failed)."""
    if task is None:
        raise RuntimeError("models are not loading yet: call load() first")  # a bug
    return await asyncio.shield(task)  # (whoever waits may be cancelled; the load goes on)
