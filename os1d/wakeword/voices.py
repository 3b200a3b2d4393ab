"""The synthetic speakers: Kokoro voices (and blends of their style vectors) and espeak-ng voices × variants."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.chunk import RATE, read_wav, resample_float
from ..errors import UserError, first_line
from ..onnx import cpu_session

KOKORO_MODEL = "kokoro-v1.0.int8.onnx"
KOKORO_VOICES = "voices-v1.0.bin"
HELD_OUT_VARIANTS = frozenset({"m1", "m3", "m6", "f2", "f4", "f5", "adam", "linda", "john", "paul", "Annie",
                               "klatt2"})
"""espeak-ng variants never used in training (with every accent): the evaluation's voices."""


@dataclass(frozen=True)
class Speaker:
    """One synthetic voice."""

    engine: str
    """"kokoro" or "espeak"."""
    name: str
    """Kokoro voice (or "a+b@0.3" for a blend), or espeak-ng "lang+variant"."""
    held_out: bool
    """Kept for the evaluation: training never hears it."""
    style: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Kokoro style vectors [510, 1, 256]."""


@dataclass(frozen=True)
class Delivery:
    """How a line is said."""

    speed: float
    """Kokoro speed factor, or espeak-ng words per minute."""
    pitch: float
    """Kokoro: resampling factor (tone and tempo together); espeak-ng: its pitch 0–99."""


def espeak_speakers() -> list[Speaker]:
    """Every English espeak-ng voice (not mbrola) × every variant; none when espeak-ng is missing."""
    if not shutil.which("espeak-ng"):
        return []
    def listing(arg: str) -> list[list[str]]:
        out = subprocess.run(["espeak-ng", f"--voices={arg}"], capture_output=True, text=True, check=False).stdout
        return [line.split() for line in out.splitlines()[1:] if line.strip()]
    langs = sorted({f[1] for f in listing("en") if len(f) > 4 and f[4].startswith("gmw/")})
    variants = sorted({f[4].split("/", 1)[1] for f in listing("variant") if len(f) > 4 and "/" in f[4]})
    return [Speaker("espeak", f"{lang}+{v}", v in HELD_OUT_VARIANTS) for lang in langs for v in variants]


def kokoro_speakers(voices: dict[str, np.ndarray], rng: np.random.Generator, blends: int) -> list[Speaker]:
    """Each voice, every fourth one (from the third) held out; plus new speakers made from the training voices:
    mixtures of two or three of them, a little beyond their range, with a little noise."""
    names = sorted(voices)
    out = [Speaker("kokoro", n, i % 4 == 2 and len(names) > 1, voices[n]) for i, n in enumerate(names)]
    train = [s for s in out if not s.held_out]
    for _ in range(blends if len(train) > 1 else 0):
        k = int(rng.integers(2, min(3, len(train)) + 1))
        pick = rng.choice(len(train), k, replace=False)
        w = rng.dirichlet(np.ones(k)) * rng.uniform(1.0, 1.2) - (rng.uniform(0.0, 0.2) / k)
        style = sum(wi * train[j].style for wi, j in zip(w, pick))
        style = style + rng.normal(0, 0.03, size=(1, 1, style.shape[-1])) * np.std(style)
        label = "+".join(f"{train[j].name}@{wi:.2f}" for wi, j in zip(w, pick))
        out.append(Speaker("kokoro", label, False, style.astype(np.float32)))
    return out


class Voices:
    """Says text with any Speaker; 16 kHz int16 out."""

    def __init__(self, kokoro_dir: Path | None, threads: int = 2) -> None:
        self._kokoro = None
        self.kokoro_styles: dict[str, np.ndarray] = {}
        if kokoro_dir is not None:
            from kokoro_onnx import Kokoro

            for chatty in ("phonemizer", "kokoro_onnx"):
                logging.getLogger(chatty).setLevel(logging.ERROR)
            if not (kokoro_dir / KOKORO_MODEL).is_file():
                raise UserError(f"no Kokoro model at {kokoro_dir / KOKORO_MODEL}; run `os1d models pull kokoro`")
            try:
                self._kokoro = Kokoro.from_session(cpu_session(kokoro_dir / KOKORO_MODEL, threads),
                                                   str(kokoro_dir / KOKORO_VOICES))
                with np.load(kokoro_dir / KOKORO_VOICES) as voices:
                    self.kokoro_styles = {n: voices[n].astype(np.float32) for n in voices.files}
            except UserError:
                raise
            except Exception as exc:
                raise UserError(f"the Kokoro voices in {kokoro_dir} cannot be loaded ({first_line(exc)}); "
                                f"run `os1d models pull kokoro --force`") from None
        self._tmp = tempfile.TemporaryDirectory(prefix="os1d-wakeword-")

    def close(self) -> None:
        self._tmp.cleanup()

    def say(self, text: str, speaker: Speaker, how: Delivery) -> np.ndarray:
        if speaker.engine == "espeak":
            wav = Path(self._tmp.name) / "say.wav"
            subprocess.run(["espeak-ng", "-v", speaker.name, "-s", str(int(how.speed)), "-p", str(int(how.pitch)),
                            "-w", str(wav), text], check=True, capture_output=True)
            return read_wav(wav)
        assert self._kokoro is not None and speaker.style is not None
        audio, rate = self._kokoro.create(text, voice=speaker.style, speed=how.speed, lang="en-us")
        audio = resample_float(np.asarray(audio, dtype=np.float32), int(round(rate * how.pitch)), RATE)
        return np.clip(audio * 32767, -32768, 32767).astype(np.int16)

    def delivery(self, speaker: Speaker, rng: np.random.Generator) -> Delivery:
        """A random speed and pitch within what still sounds like speech."""
        if speaker.engine == "espeak":
            return Delivery(float(rng.uniform(115, 215)), float(rng.uniform(20, 80)))
        return Delivery(float(rng.uniform(0.8, 1.25)), float(rng.choice([1.0, rng.uniform(0.9, 1.1)])))
