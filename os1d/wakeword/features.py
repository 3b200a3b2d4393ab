"""openWakeWord features of whole clips, computed exactly as WakeWordDetector streams them.

The detector feeds the melspectrogram model one 80 ms frame plus 480 samples of context at a time and
embeds the last 76 mel rows after every frame; this does the same calls in batches, so a head trained
on these features sees at run time what it saw in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.chunk import FRAME
from ..audio.wake import MEL_BINS, MEL_CONTEXT, MEL_WINDOW, WARMUP_FRAMES, mel_rows
from ..onnx import cpu_session

WINDOW = 16
"""Embeddings per head input (openWakeWord's pretrained heads take [1, 16, 96])."""
DIM = 96
"""Size of one embedding."""
BATCH = 512


class FeatureExtractor:
    """16 kHz int16 audio → one 96-d embedding per 80 ms frame (after the detector's initial state)."""

    def __init__(self, folder: Path, threads: int = 1) -> None:
        self._mel = cpu_session(folder / "melspectrogram.onnx", threads)
        self._embed = cpu_session(folder / "embedding_model.onnx", threads)
        self._mel_in = self._mel.get_inputs()[0].name
        self._embed_in = self._embed.get_inputs()[0].name
        self.initial = self._embedding(np.ones((1, MEL_WINDOW, MEL_BINS), dtype=np.float32))[0]
        """The embedding that fills the detector's buffer after a reset."""

    def _embedding(self, mels: np.ndarray) -> np.ndarray:
        out = [self._embed.run(None, {self._embed_in: mels[i : i + BATCH, :, :, None]})[0]
               for i in range(0, len(mels), BATCH)]
        return np.concatenate(out).reshape(len(mels), DIM)

    def _mels(self, audio: np.ndarray) -> np.ndarray:
        """One call of the melspectrogram model on a 1-D stretch of audio, as the detector makes it."""
        return mel_rows(self._mel.run(None, {self._mel_in: audio[None]})[0])

    def embeddings(self, pcm: np.ndarray) -> np.ndarray:
        """[frames, 96] for int16 audio whose length is a whole number of frames (the rest is dropped)."""
        n = len(pcm) // FRAME
        if n == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        audio = pcm[: n * FRAME].astype(np.float32)
        first = self._mels(audio[:FRAME])  # the first frame has no context before it
        rows = [np.ones((MEL_WINDOW, MEL_BINS), dtype=np.float32), first]
        if n > 1:
            starts = np.arange(1, n) * FRAME - MEL_CONTEXT
            windows = audio[starts[:, None] + np.arange(FRAME + MEL_CONTEXT)[None, :]]
            # one call per frame: the model clips each call's output relative to that call's loudest value
            rows += [self._mels(w) for w in windows]
        mels = np.concatenate(rows)
        per_first, per = len(first), (len(mels) - MEL_WINDOW - len(first)) // max(n - 1, 1)
        ends = MEL_WINDOW + per_first + np.arange(n) * per  # mel rows seen after each frame
        idx = ends[:, None] - MEL_WINDOW + np.arange(MEL_WINDOW)[None, :]
        return self._embedding(mels[idx])

    def windows(self, emb: np.ndarray, stride: int = 1, start: int = WINDOW) -> np.ndarray:
        """Head inputs [k, 16, 96] ending at frames start-1, start-1+stride, … (frame i = 0-based)."""
        ends = np.arange(max(start, 1), len(emb) + 1, stride)
        return window_at(emb, ends, self.initial)


def window_at(emb: np.ndarray, ends: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Head inputs for the frames before each end (exclusive), padded with the initial embedding."""
    padded = np.concatenate([np.repeat(initial[None], WINDOW, axis=0), emb])
    ends = np.asarray(ends, dtype=np.int64) + WINDOW
    return padded[ends[:, None] - WINDOW + np.arange(WINDOW)[None, :]].astype(np.float32)


def stream_scores(head, emb: np.ndarray, initial: np.ndarray) -> np.ndarray:  # head: onnxruntime session
    """The score WakeWordDetector gives each frame (0 while it warms up)."""
    name = head.get_inputs()[0].name
    n = int(head.get_inputs()[0].shape[1])
    x = window_at(emb, np.arange(1, len(emb) + 1), initial)[:, WINDOW - n :]
    out = np.array([float(head.run(None, {name: x[i : i + 1]})[0].reshape(-1)[0]) for i in range(len(x))])
    out[:WARMUP_FRAMES] = 0.0
    return out
