"""Held-out figures of a head: recall, false accepts per hour, peak scores on confusable phrases."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.chunk import FRAME, RATE
from ..audio.wake import Trigger, patience_of
from ..onnx import cpu_session
from .dataset import Clip
from .features import stream_scores


@dataclass(frozen=True)
class Summary:
    """What the detector does on the held-out clips at one threshold."""

    threshold: float
    recall: float
    positives: int
    missed: list[str] = field(default_factory=list)
    false_accepts: int = 0
    hours: float = 0.0
    """Length of the ordinary speech and noise."""
    confusable_peaks: dict[str, float] = field(default_factory=dict)
    """Highest score per confusable text (over its held-out voices)."""
    confusables_fired: tuple[str, ...] = ()
    """Confusable texts that made a detection (threshold and the head's patience) in any of their clips."""

    @property
    def per_hour(self) -> float:
        return self.false_accepts / self.hours if self.hours else 0.0

    def lines(self) -> list[str]:
        fired = self.confusables_fired
        out = [f"held-out recall at {self.threshold}: {self.recall:.1%} of {self.positives} clips",
               f"false accepts: {self.false_accepts} in {self.hours * 60:.1f} min of ordinary speech and noise "
               f"({self.per_hour:.2f}/hour)",
               "confusables (peak score): " + ", ".join(f"{t} {p:.2f}" for t, p in self.confusable_peaks.items()),
               f"confusables that fire: {len(fired)}" + (f" ({', '.join(fired)})" if fired else "")]
        if self.missed:
            out.append("missed: " + "; ".join(self.missed[:8]) + (" …" if len(self.missed) > 8 else ""))
        return out


def detections(scores: np.ndarray, threshold: float, refractory_s: float = 2.0, patience: int = 1) -> list[int]:
    """Frames where WakeWordDetector.detect would fire."""
    trigger = Trigger(threshold, int(round(refractory_s * RATE / FRAME)), patience)
    return [i for i, s in enumerate(scores) if trigger(float(s))]


def evaluate(model: Path, clips: list[Clip], initial: np.ndarray, threshold: float = 0.5) -> Summary:
    head = cpu_session(model)
    patience = patience_of(head)
    hits, missed, fa, frames, peaks, fired = 0, [], 0, 0, {}, []
    positives = [c for c in clips if c.kind == "positive"]
    for c in clips:
        scores = stream_scores(head, c.emb, initial)
        if c.kind == "positive":
            if detections(scores, threshold, patience=patience):
                hits += 1
            else:
                missed.append(f"{c.label} ({scores.max():.2f})")
        elif c.kind == "confusable":
            text = c.label.split(": ", 1)[1]
            peaks[text] = max(peaks.get(text, 0.0), float(scores.max()))
            if detections(scores, threshold, patience=patience) and text not in fired:
                fired.append(text)
        else:
            fa += len(detections(scores, threshold, patience=patience))
            frames += len(scores)
    return Summary(threshold, hits / max(len(positives), 1), len(positives), missed, fa, frames * FRAME / RATE / 3600,
                   peaks, tuple(fired))
