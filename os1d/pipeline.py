"""The listening path: frames → wake words and utterances (no model loading, no turn logic)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .audio.chunk import AudioChunk
from .audio.vad import Segment, Segmenter
from .audio.wake import Detection, WakeWordDetector
from .config import VadConfig


@dataclass(frozen=True)
class Heard:
    """What one frame brought."""

    wake: Detection | None
    """The strongest wake word that fired on this frame, if any."""
    segments: list[Segment]
    """What the segmenter saw while it was listening (started, paused, resumed, an utterance, a timeout)."""


class Listener:
    """Scores each frame for the wake word (in its lane) and feeds the segmenter."""

    def __init__(self, cfg: VadConfig, wake: WakeWordDetector, run: Callable[..., Awaitable[Any]]) -> None:
        self.wake = wake
        self.segmenter = Segmenter(cfg)
        self._run = run

    async def hear(self, chunk: AudioChunk) -> Heard:
        detections = await self._run(self.wake.detect, chunk.samples)
        segments = self.segmenter.feed(chunk)
        best = max(detections, key=lambda d: d.score) if detections else None
        return Heard(best, segments)

    @property
    def listening(self) -> bool:
        return self.segmenter.active
