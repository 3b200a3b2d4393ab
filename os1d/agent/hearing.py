"""What the speech LLM hears (llm.input): the user's audio through its audio encoder, or Whisper's transcript
as text, for machines where the encoder is too slow to wait for."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import LlmConfig
from ..errors import UserError, first_line

SAMPLE_S = 5.0
"""The length of speech the encoder is timed on."""
log = logging.getLogger("os1d")


@dataclass(frozen=True)
class Hearing:
    mode: str
    """audio | text"""
    why: str


def encoder_ms(encode: Callable[[np.ndarray], Any], repeats: int = 2) -> float:
    """The audio encoder's time for SAMPLE_S of sound, in ms (the best of `repeats`, after a first run)."""
    samples = np.random.default_rng(0).normal(0, 600, int(SAMPLE_S * 16000)).astype(np.int16)
    encode(samples[:1600])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        encode(samples)
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def choose(cfg: LlmConfig, encode: Callable[[np.ndarray], Any] | None) -> Hearing:
    """audio or text, and why; `encode`: the local audio encoder (None: a server's model)."""
    if cfg.input != "auto":
        return Hearing(cfg.input, f"llm.input = {cfg.input}")
    if encode is None:
        return Hearing("audio", "llm.input = auto, and the server's model hears the audio")
    ms = encoder_ms(encode)
    budget = cfg.encoder_budget_ms
    if ms > budget:
        return Hearing("text", f"the audio encoder takes {ms:.0f} ms for {SAMPLE_S:g} s of speech here, over "
                               f"llm.encoder_budget_ms = {budget:g} (set llm.input = \"audio\" to use it anyway)")
    return Hearing("audio", f"the audio encoder takes {ms:.0f} ms for {SAMPLE_S:g} s of speech here, within "
                            f"llm.encoder_budget_ms = {budget:g}")


def doctor_line(cfg: LlmConfig, folder: Path | None, int8_cache: Path | None = None) -> str:
    """For `os1d doctor`: what a run will hear, and why (times the encoder alone where that decides it)."""
    if cfg.backend != "ultravox-onnx" or cfg.input != "auto":
        fixed = choose(cfg, None)
        return f"{fixed.mode}: {fixed.why}"
    if folder is None:
        return "unknown until the Ultravox model is downloaded (llm.input = auto)"
    from .ultravox_parts import AudioEncoder

    try:
        encoder = AudioEncoder.load(folder, cfg.encoder_dtype, cfg.device, cfg.int8_matmul, int8_cache)
    except (UserError, OSError, ValueError) as exc:
        return f"unknown: the audio encoder cannot be loaded ({first_line(exc)})"
    hearing = choose(cfg, encoder.encode)
    return f"{hearing.mode}: {hearing.why}"
