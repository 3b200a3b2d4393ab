"""OS1's voice: Kokoro-82M through kokoro-onnx, one speakable piece of the reply at a time."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import TtsConfig
from ..errors import UserError, first_line
from ..onnx import cpu_session
from .conv_integer import fast_convolutions
from .speakable import speakable

RATE = 24000
"""Kokoro speaks at 24 kHz."""
MODEL = "kokoro-v1.0.int8.onnx"
VOICES = "voices-v1.0.bin"
log = logging.getLogger("os1d")


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


class KokoroVoice:
    """Text → 24 kHz float32 speech; blocking (run it in its own lane)."""

    rate = RATE

    def __init__(self, folder: Path, cfg: TtsConfig, threads: int = 2) -> None:
        from kokoro_onnx import Kokoro

        for chatty in ("phonemizer", "kokoro_onnx"):  # "words count mismatch …" for every piece
            logging.getLogger(chatty).setLevel(logging.ERROR)
        if problem := voice_problem(folder, cfg.voice):
            raise UserError(problem)
        self.voice, self.speed = cfg.voice, cfg.speed
        session = cpu_session(folder / MODEL, threads, fast_convolutions(folder / MODEL))
        session._model_path = str(folder / MODEL)  # (a graph loaded from memory has none; kokoro-onnx checks it)
        try:
            self._kokoro = Kokoro.from_session(session, str(folder / VOICES))
        except Exception as exc:  # kokoro-onnx validates the files in its own ways
            raise UserError(f"the Kokoro voice in {folder} cannot be loaded ({first_line(exc)}); "
                            f"run `os1d models pull kokoro --force`") from None

    def synthesize(self, text: str) -> np.ndarray:
        """The piece of text as speech (silence for text with nothing to say)."""
        words = speakable(text)
        if not any(ch.isalnum() for ch in words):
            return np.zeros(0, dtype=np.float32)
        audio, rate = self._kokoro.create(words, voice=self.voice, speed=self.speed, lang="en-us")
        if rate != RATE:  # pragma: no cover - every Kokoro v1.0 export speaks at 24 kHz
            raise RuntimeError(f"Kokoro spoke at {rate} Hz, not {RATE}")
        return np.asarray(audio, dtype=np.float32)

    def warm_up(self) -> None:
        self.synthesize("Hello.")
