"""OS1's voice: Kokoro-82M through kokoro-onnx, one speakable piece of the reply at a time."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TtsConfig
from ..errors import UserError, first_line
from ..graph_cache import forget
from ..onnx import cpu_session
from .conv_integer import voice_graph, voice_model
from .speakable import speakable

RATE = 24000
"""Kokoro speaks at 24 kHz."""
MODEL = "kokoro-v1.0.int8.onnx"
VOICES = "voices-v1.0.bin"
log = logging.getLogger("os1d")


class Stopped(Exception):
    """A synthesis stopped midway (its turn was dropped)."""


class Stop:
    """Stops the syntheses it is given to, midway: onnxruntime checks between the graph's nodes, so the TTS
    lane is free within milliseconds for the next turn, not after the rest of a piece nobody will hear."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._options: Any = None
        self.stopped = False

    def __call__(self) -> None:
        with self._lock:
            self.stopped = True
            if self._options is not None:
                self._options.terminate = True

    def options(self) -> Any:
        """RunOptions for one run (already set to terminate once stopped)."""
        import onnxruntime as ort

        with self._lock:
            self._options = ort.RunOptions()
            self._options.terminate = self.stopped
            return self._options


class _Stoppable:
    """The session as kokoro-onnx sees it: each run takes the RunOptions of the synthesis in progress."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.stop: Stop | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def run(self, names: Any, inputs: Any, run_options: Any = None) -> Any:
        return self._session.run(names, inputs, self.stop.options() if self.stop is not None else run_options)


def voice_names(folder: Path) -> list[str]:
    """The voices in a Kokoro folder's voices file (empty if it can't be read)."""
    try:
        with np.load(folder / VOICES) as voices:
            return sorted(voices.files)
    except (OSError, ValueError):
        return []


def voice_problem(folder: Path, voice: str) -> str | None:
    names = voice_names(folder)
    if names and voice not in names:
        return f"tts.voice = {voice!r} is not in {folder / VOICES}; the voices there: {', '.join(names)}"
    return None


def _session(path: Path, threads: int, graph: bytes | None, cache: Path | None) -> Any:
    """The voice's onnxruntime session: `graph`, else the graph for this CPU from the cache (made there once;
    loading a file leaves the interpreter free for listening), else made in memory."""
    if graph is None and cache is not None:
        try:
            model = voice_model(path, cache)
        except Exception as exc:  # a cache folder that can't be written, a full disk: made in memory
            log.warning("could not keep the voice's graph in %s (%s)", cache, first_line(exc))
            model = None
        if model is not None:
            try:
                return cpu_session(model, threads)
            except UserError as exc:  # a damaged cached file: made again next time
                log.warning("the voice's graph cached in %s cannot be loaded (%s)", model.parent, first_line(exc))
                forget(model)
    return cpu_session(path, threads, graph if graph is not None else voice_graph(path))


class KokoroVoice:
    """Text → 24 kHz float32 speech; blocking (run it in its own lane)."""

    rate = RATE

    def __init__(self, folder: Path, cfg: TtsConfig, threads: int = 2, graph: bytes | None = None,
                 cache: Path | None = None) -> None:
        """graph: the export as it is to run (default: as this CPU runs it exactly, conv_integer.voice_graph, made
        once into `cache` where one is given)."""
        from kokoro_onnx import Kokoro

        for chatty in ("phonemizer", "kokoro_onnx"):  # "words count mismatch …" for every piece
            logging.getLogger(chatty).setLevel(logging.ERROR)
        if problem := voice_problem(folder, cfg.voice):
            raise UserError(problem)
        self.voice, self.speed = cfg.voice, cfg.speed
        session = _session(folder / MODEL, threads, graph, cache)
        session._model_path = str(folder / MODEL)  # (a graph loaded from memory has none; kokoro-onnx checks it)
        self._session = _Stoppable(session)
        try:
            self._kokoro = Kokoro.from_session(self._session, str(folder / VOICES))
        except Exception as exc:  # kokoro-onnx validates the files in its own ways
            raise UserError(f"the Kokoro voice in {folder} cannot be loaded ({first_line(exc)}); "
                            f"run `os1d models pull kokoro --force`") from None

    def synthesize(self, text: str, stop: Stop | None = None) -> np.ndarray:
        """The piece of text as speech (silence for text with nothing to say); Stopped if `stop` is called
        before it is done. One at a time (the TTS lane has one thread)."""
        words = speakable(text)
        if not any(ch.isalnum() for ch in words):
            return np.zeros(0, dtype=np.float32)
        if stop is not None and stop.stopped:
            raise Stopped
        self._session.stop = stop
        try:
            audio, rate = self._kokoro.create(words, voice=self.voice, speed=self.speed, lang="en-us")
        except Exception:
            if stop is not None and stop.stopped:
                raise Stopped from None
            raise
        finally:
            self._session.stop = None
        if rate != RATE:  # pragma: no cover - every Kokoro v1.0 export speaks at 24 kHz
            raise RuntimeError(f"Kokoro spoke at {rate} Hz, not {RATE}")
        return np.asarray(audio, dtype=np.float32)

    def warm_up(self) -> None:
        self.synthesize("Hello.")
