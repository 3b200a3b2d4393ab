"""Wake word: openWakeWord-format ONNX models run frame by frame (melspectrogram → embedding → head).

The three stages stream on 80 ms frames exactly as openWakeWord does, so its pretrained and
custom-trained heads work unchanged, without its tflite dependency.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..onnx import cpu_session
from .chunk import FRAME

MEL_CONTEXT = 3 * 160
"""Samples of the previous frame fed to the melspectrogram model again (its window overlap)."""
MEL_WINDOW = 76
"""Melspectrogram frames per embedding."""
MEL_BINS = 32
WARMUP_FRAMES = 5
"""Frames scored 0 after a reset, as openWakeWord does, while its buffers fill."""


def mel_rows(out: np.ndarray) -> np.ndarray:
    """The melspectrogram model's output for one call as openWakeWord scales it: [rows, MEL_BINS]."""
    return out.reshape(-1, MEL_BINS) / 10.0 + 2.0


@dataclass(frozen=True)
class Detection:
    model: str
    score: float


class Trigger:
    """When a head's scores make a detection: `patience` frames in a row at or above the threshold (as
    openWakeWord's patience), then nothing for the refractory time. The one rule for the daemon, `os1d
    wakeword test` and the evaluations."""

    def __init__(self, threshold: float, refractory_frames: int, patience: int = 1) -> None:
        self.threshold, self.refractory, self.patience = threshold, refractory_frames, max(1, patience)
        self._run = self._frame = self._quiet_until = 0

    def __call__(self, score: float) -> bool:
        self._frame += 1
        self._run = self._run + 1 if score >= self.threshold else 0
        if self._run >= self.patience and self._frame >= self._quiet_until:
            self._quiet_until = self._frame + self.refractory
            return True
        return False


def patience_of(session: Any) -> int:
    """Frames in a row a head must score at the threshold: its metadata "patience" (os1d's trained heads), else 1."""
    try:
        return max(1, int(session.get_modelmeta().custom_metadata_map.get("patience", 1)))
    except (ValueError, TypeError, AttributeError):
        return 1


def head_name(path: Path) -> str:
    """hey_jarvis_v0.1.onnx → hey_jarvis."""
    return re.sub(r"_v\d+(\.\d+)*$", "", path.stem)


def resolve_heads(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """Heads by name (the openwakeword folder first, then `os1d wakeword train`'s folder, then those shipped with
    os1d) or by .onnx path."""
    from ..wakeword import BUNDLED, trained_dir

    folders = [folder, trained_dir(), BUNDLED]
    available = [sorted(p for p in f.glob("*.onnx") if p.name not in ("melspectrogram.onnx", "embedding_model.onnx"))
                 for f in folders]
    out = []
    for name in names:
        if name.endswith(".onnx"):
            path = Path(name).expanduser()
            if not path.is_file():
                raise UserError(f"wake model file {path} does not exist")
            out.append(path)
            continue
        match = next(([p for p in here if head_name(p) == name or p.stem == name] for here in available
                      if any(head_name(p) == name or p.stem == name for p in here)), [])
        if not match:
            names_here = ", ".join(dict.fromkeys(head_name(p) for here in available for p in here)) or "none"
            raise UserError(f"wake word model {name!r} not found in {folder} (available: {names_here})")
        out.append(match[-1])
    return out


class WakeWordDetector:
    """Scores every 80 ms frame against one or more wake-word heads."""

    def __init__(self, folder: Path, heads: tuple[str, ...], threshold: float = 0.5,
                 refractory_s: float = 2.0) -> None:
        self.threshold = threshold
        self.refractory_frames = int(round(refractory_s * 16000 / FRAME))
        self._mel = cpu_session(folder / "melspectrogram.onnx")
        self._embed = cpu_session(folder / "embedding_model.onnx")
        self._heads = {}
        self.patience: dict[str, int] = {}
        """Frames in a row each head must score at the threshold."""
        for path in resolve_heads(folder, heads):
            session = cpu_session(path)
            self._heads[head_name(path)] = (session, int(session.get_inputs()[0].shape[1]))
            self.patience[head_name(path)] = patience_of(session)
        self._mel_input = self._mel.get_inputs()[0].name
        self._embed_input = self._embed.get_inputs()[0].name
        self.reset()

    @property
    def names(self) -> list[str]:
        return list(self._heads)

    def reset(self) -> None:
        """Forget all audio context (buffers start as silence)."""
        self._raw = np.zeros(0, dtype=np.float32)
        self._mels = np.ones((MEL_WINDOW, MEL_BINS), dtype=np.float32)
        n = max(n for _, n in self._heads.values())
        self._features: deque[np.ndarray] = deque(
            [self._embedding(self._mels)] * n, maxlen=n
        )
        self._frames = 0
        self.last: dict[str, float] = {}
        """Each head's score for the last frame detect() saw."""
        self._triggers = {name: Trigger(self.threshold, self.refractory_frames, self.patience[name])
                          for name in self._heads}

    def _embedding(self, mels: np.ndarray) -> np.ndarray:
        out = self._embed.run(None, {self._embed_input: mels[None, :, :, None]})[0]
        return out.reshape(-1)

    def scores(self, frame: np.ndarray) -> dict[str, float]:
        """Feed one 80 ms int16 frame; return each head's score for it."""
        if len(frame) != FRAME:
            raise ValueError(f"wake word frames must be {FRAME} samples, got {len(frame)}")
        audio = np.concatenate([self._raw[-MEL_CONTEXT:], frame.astype(np.float32)])
        self._raw = audio
        mel = mel_rows(self._mel.run(None, {self._mel_input: audio[None, :]})[0])
        self._mels = np.concatenate([self._mels, mel])[-MEL_WINDOW:]
        self._features.append(self._embedding(self._mels))
        self._frames += 1
        feats = np.stack(self._features)
        out = {}
        for name, (session, n) in self._heads.items():
            if self._frames <= WARMUP_FRAMES:
                out[name] = 0.0
                continue
            x = feats[-n:][None].astype(np.float32)
            out[name] = float(session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1)[0])
        return out

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Scores → detections, with the threshold, each head's patience and its refractory time applied."""
        self.last = self.scores(frame)
        return [Detection(name, score) for name, score in self.last.items() if self._triggers[name](score)]
