"""Rooms and backgrounds: noise, simple reverberation and levels, on 16 kHz int16 audio (numpy/scipy only)."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve, lfilter

from ..audio.chunk import RATE


def noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise, white, pink or brown, or a hum with hiss."""
    kind = rng.integers(4)
    white = rng.standard_normal(n).astype(np.float32)
    if kind == 1:  # pink, Paul Kellet's economical filter
        out = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786], [1, -2.494956002, 2.017265875,
                                                                              -0.522189400], white)
    elif kind == 2:  # brown
        out = lfilter([1.0], [1.0, -0.995], white)
    elif kind == 3:
        t = np.arange(n) / RATE
        out = np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * t) + 0.3 * white
    else:
        out = white
    out = out - out.mean()
    return (out / (np.sqrt(np.mean(out ** 2)) + 1e-9)).astype(np.float32)


def room(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room response: direct path, a few early echoes, an exponential tail."""
    rt60 = rng.uniform(0.15, 0.9)
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * rng.uniform(0.05, 0.4)
    ir[0] = 1.0
    for _ in range(rng.integers(1, 5)):
        ir[rng.integers(int(0.002 * RATE), int(0.03 * RATE))] += rng.uniform(0.2, 0.7)
    wet = fftconvolve(x, ir)[: len(x)]
    return (wet * np.sqrt(np.sum(x ** 2) / (np.sum(wet ** 2) + 1e-9))).astype(np.float32)


def scene(speech: np.ndarray, before: float, after: float, rng: np.random.Generator,
          clean: float = 0.15) -> tuple[np.ndarray, int]:
    """Speech placed after `before` seconds of background, `after` seconds following, in a random room at a random
    level and signal-to-noise ratio; also the sample where the speech ends. `clean`: share left dry and quiet."""
    x = speech.astype(np.float32) / 32768.0
    a, b = int(before * RATE), int(after * RATE)
    x = np.concatenate([np.zeros(a, np.float32), x, np.zeros(b, np.float32)])
    end = a + len(speech)
    if rng.random() > clean:
        if rng.random() < 0.6:
            x = room(x, rng)
        rms = np.sqrt(np.mean(speech.astype(np.float32) ** 2)) / 32768.0 + 1e-6
        snr = rng.uniform(3, 30)
        x = x + noise(len(x), rng) * rms / (10 ** (snr / 20))
    else:
        x = x + noise(len(x), rng) * 10 ** rng.uniform(-4.5, -3.5)
    peak = np.abs(x).max() + 1e-9
    x = x / peak * 10 ** (rng.uniform(-30, -1) / 20)
    return np.clip(x * 32767, -32768, 32767).astype(np.int16), end


def background(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise alone at a random level (from near silence to loud)."""
    x = noise(int(seconds * RATE), rng) * 10 ** (rng.uniform(-60, -12) / 20)
    return np.clip(x * 32767, -32768, 32767).astype(np.int16)
