"""Kokoro's voice graph as os1d rewrites it, against the same graph with one rewrite undone: the same speech."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from os1d.audio.adain import fold_norm_gains
from os1d.audio.chunk import resample
from os1d.audio.conv_integer import integer_graph
from os1d.audio.snake import polynomial_snakes
from os1d.audio.stft import conv_stft
from os1d.audio.tts import MODEL, KokoroVoice
from os1d.config import TtsConfig
from speech import words

REWRITES: dict[str, Callable[[onnx.GraphProto], int]] = {
    "snakes": polynomial_snakes, "stft": conv_stft, "norms": fold_norm_gains}
VOICES = ("jf_alpha", "jm_kumo")
SENTENCES = {"Sure, I can set that timer for you.": "timer",
             "Good morning! I remember that you live in Lisbon.": "lisbon"}
"""Each sentence, and the word in it Whisper may mishear."""


def graph_without(folder: Path, undone: str) -> bytes:
    """The voice's graph with its integer layers and every rewrite but `undone` (the exact export's operators)."""
    model = onnx.load_from_string(integer_graph(folder / MODEL))
    for name, rewrite in REWRITES.items():
        if name != undone:
            assert rewrite(model.graph) > 0, name
    return model.SerializeToString()


def untrimmed(kokoro: KokoroVoice, text: str, voice: str) -> np.ndarray:
    """The whole synthesis (kokoro-onnx trims the silence at both ends, and where a few samples of it differ,
    so does the length)."""
    return kokoro._kokoro.create(text, voice=voice, speed=1.0, lang="en-us", trim=False)[0]


def loudness(audio: np.ndarray) -> np.ndarray:
    """dB per 20 ms."""
    frames = audio[: len(audio) // 480 * 480].reshape(-1, 480)
    return 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-10)


def pcm16k(audio: np.ndarray) -> np.ndarray:
    return resample(np.clip(audio * 32767, -32768, 32767).astype(np.int16), 24000)


def pairs(folder: Path, graph: bytes | None, reference: bytes) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(text, ours, the reference's) for each voice and sentence."""
    out = []
    for voice in VOICES:
        ours = KokoroVoice(folder, TtsConfig(voice=voice), graph=graph)
        theirs = KokoroVoice(folder, TtsConfig(voice=voice), graph=reference)
        out += [(text, untrimmed(ours, text, voice), untrimmed(theirs, text, voice)) for text in SENTENCES]
    return out


def assert_same_speech(text: str, mine: np.ndarray, reference: np.ndarray, whisper, rms: float,  # type: ignore
                       typical_db: float, most_db: float) -> None:
    """As long; differing by under `rms` of the reference's level (a change of one float32 rounding in a norm
    flips int8 roundings downstream: up to 0.16 here); its speech's 20 ms frames as loud as the reference's within
    `typical_db` dB (95 % of them; a Snake with α/3 instead of α/π is 1.1 dB off) and `most_db` (all); heard as
    the same words."""
    assert len(mine) == len(reference) > 24000
    assert np.sqrt(np.mean((mine - reference) ** 2) / np.mean(reference ** 2)) < rms
    level, level_before = loudness(mine), loudness(reference)
    off = np.abs(level - level_before)[level_before > level_before.max() - 30]
    assert np.percentile(off, 95) < typical_db and off.max() < most_db, (np.percentile(off, 95), off.max())
    heard = [words(whisper.transcribe(pcm16k(audio))) for audio in (mine, reference)]
    assert heard[0] == heard[1], heard
    assert SENTENCES[text] in heard[0]
