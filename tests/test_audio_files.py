"""WAV input of any common format, and resampling to the pipeline's 16 kHz."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from os1d.audio.chunk import RATE, read_wav, resample


def dominant_hz(pcm: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float32)))
    return float(np.argmax(spectrum) * rate / len(pcm))


@pytest.mark.parametrize("fmt", [["-r", "44100", "-c", "2", "-b", "24"], ["-r", "48000", "-c", "1", "-e", "floating-point", "-b", "32"],
                                 ["-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned-integer"], ["-r", "22050", "-c", "2", "-b", "16"]])
def test_any_common_wav_becomes_16k_mono(tmp_path: Path, fmt: list[str]) -> None:
    wav = tmp_path / "tone.wav"
    subprocess.run(["sox", "-n", *fmt, str(wav), "synth", "1.5", "sine", "440", "vol", "0.5"], check=True)
    pcm = read_wav(wav)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 1.5 * RATE) <= 2
    assert abs(dominant_hz(pcm) - 440) < 2
    assert 12000 < np.abs(pcm).max() < 20000  # half scale survives every conversion


def test_resampling_removes_what_16k_cannot_hold() -> None:
    t = np.arange(48000) / 48000
    high = (8000 * np.sin(2 * np.pi * 11000 * t)).astype(np.int16)  # above 8 kHz Nyquist: must not alias
    low = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    assert np.abs(resample(high, 48000)[50:-50]).max() < 200  # (the abrupt start and end ring briefly)
    out = resample(low, 48000)
    assert len(out) == 16000 and abs(dominant_hz(out) - 1000) < 2
