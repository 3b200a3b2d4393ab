"""Generated test speech: espeak-ng voices and Kokoro (from the offline test kit)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from os1d.audio.chunk import FRAME, RATE, read_wav

REPO = Path(__file__).resolve().parent.parent
ESPEAK_VOICES = [
    f"{lang}+{variant}"
    for lang in ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029")
    for variant in ("m1", "m3", "f2", "f4")
]


def kit_dir() -> Path:
    """The offline test kit (scripts/make-test-kit); tests fail, not skip, without it."""
    path = Path(os.environ.get("OS1D_TEST_KIT", REPO / ".cache" / "test-kit"))
    if not (path / "whisper-base").is_dir():
        raise RuntimeError(f"the test kit is missing at {path}: run scripts/make-test-kit {path}")
    return path


def espeak(text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """16 kHz int16 speech from espeak-ng."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
                       check=True, capture_output=True)
        return read_wav(wav)


@functools.lru_cache(maxsize=1)
def _kokoro():  # type: ignore[no-untyped-def]
    """kokoro-onnx on the kit's model, run exactly on every CPU (on its own, its int8 matmuls saturate on x86
    without VNNI, and the speech is garbled: os1d.audio.conv_integer)."""
    from os1d.audio.conv_integer import unsigned_weights
    from os1d.audio.tts import MODEL, KokoroVoice
    from os1d.config import TtsConfig

    folder = kit_dir() / "kokoro"
    return KokoroVoice(folder, TtsConfig(voice="jf_alpha"), graph=unsigned_weights(folder / MODEL))._kokoro


def kokoro(text: str, voice: str = "jf_alpha", speed: float = 1.0) -> np.ndarray:
    """16 kHz int16 speech from Kokoro (the kit's voices are Japanese but speak English phonemes)."""
    samples, rate = _kokoro().create(text, voice=voice, speed=speed, lang="en-us")
    pcm = np.clip(np.asarray(samples) * 32767, -32768, 32767).astype(np.int16)
    from os1d.audio.chunk import resample

    return resample(pcm, rate)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def join(*parts: np.ndarray) -> np.ndarray:
    """Concatenate and pad to whole 80 ms frames."""
    pcm = np.concatenate(parts)
    return np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, dtype=np.int16)])


def speech_bounds(pcm: np.ndarray, threshold: int = 300) -> tuple[float, float]:
    """First and last sample louder than threshold, in seconds."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    return loud[0] / RATE, loud[-1] / RATE


def ordinary_speech(seconds: float) -> np.ndarray:
    """Speech with no wake word in it: paragraphs of the GPL-3 read by the ESPEAK_VOICES in turn."""
    text = Path("/usr/share/common-licenses/GPL-3").read_text()
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in text.split("\n\n") if len(p.strip()) > 200]
    parts: list[np.ndarray] = []
    total = 0
    for k, paragraph in enumerate(paragraphs):
        parts += [espeak(paragraph, ESPEAK_VOICES[k % len(ESPEAK_VOICES)], 170), silence(0.3)]
        total += len(parts[-2]) + len(parts[-1])
        if total >= seconds * RATE:
            break
    return join(*parts)


def words(text: str) -> list[str]:
    """Lower-case words and numbers, for comparing transcripts."""
    return re.findall(r"[a-z0-9']+", text.lower())
