"""The audio format that flows through the pipeline: 16 kHz mono int16, 80 ms frames."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import UserError, first_line

RATE = 16000
"""Hertz: every stage works at this rate."""
FRAME = 1280
"""Samples per frame: 80 ms, the step of the wake-word models."""


@dataclass(frozen=True)
class AudioChunk:
    """A block of 16 kHz mono int16 samples and where it sits on the input clock."""

    samples: np.ndarray
    """int16 samples."""
    start: float
    """Input-clock seconds of the first sample."""

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE

    @property
    def end(self) -> float:
        return self.start + self.duration


def resample(samples: np.ndarray, rate: int, target: int = RATE) -> np.ndarray:
    """int16 at `rate` → int16 at `target` (polyphase, anti-aliased)."""
    if rate == target or len(samples) == 0:
        return samples.astype(np.int16, copy=False)
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    out = resample_poly(samples.astype(np.float32), target // g, rate // g)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def resample_float(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """float32 at `rate` → float32 at `target` (polyphase, anti-aliased)."""
    if rate == target or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(samples.astype(np.float32), target // g, rate // g).astype(np.float32)


def read_wav(path: Path) -> np.ndarray:
    """A WAV file as 16 kHz mono int16, whatever its rate, sample format or channel count."""
    from scipy.io import wavfile

    try:
        if path.is_dir():
            raise UserError(f"{path} is a folder, not a WAV file")
        rate, data = wavfile.read(str(path))
    except FileNotFoundError:
        raise UserError(f"input file {path} does not exist") from None
    except OSError as exc:  # unreadable, a name too long for the file system, …
        raise UserError(f"cannot read input file {path}: {exc.strerror or first_line(exc)}") from None
    except UserError:
        raise
    except Exception as exc:  # scipy's parser fails in many ways on damaged files
        raise UserError(f"{path} is not a readable WAV file ({type(exc).__name__}: {first_line(exc)})") from None
    if rate <= 0:
        raise UserError(f"{path} is not a readable WAV file (its header says the sample rate is {rate} Hz)")
    if data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) * 256.0
    elif data.dtype == np.int32:  # 24- and 32-bit integers, left-justified by scipy
        data = data.astype(np.float32) / 65536.0
    elif data.dtype.kind == "f":
        data = data.astype(np.float32) * 32767.0
    else:
        data = data.astype(np.float32)
    if data.ndim > 1:
        data = data.mean(axis=1)
    pcm = np.clip(data, -32768, 32767).astype(np.int16)
    return resample(pcm, int(rate))


def write_wav(target: Path | BinaryIO, samples: np.ndarray, rate: int = RATE) -> None:
    """Mono 16-bit WAV to a path or a binary file object."""
    with wave.open(str(target) if isinstance(target, Path) else target, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
