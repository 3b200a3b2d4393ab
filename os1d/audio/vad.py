"""Utterances: after the wake word, webrtcvad finds where the user's speech starts and ends."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..config import VadConfig
from .chunk import RATE, AudioChunk

SUB_MS = 20
"""webrtcvad frame length used here (10, 20 or 30 ms are allowed)."""
SUB = RATE * SUB_MS // 1000
ONSET_WINDOW = 5
"""Sub-frames looked at to decide that speech started…"""
ONSET_VOICED = 3
"""…and how many of them must be voiced (60 ms of speech in 100 ms)."""
WAKE_TAIL_MAX_MS = 800
"""If the wake phrase is still sounding when it fires, wait at most this long for it to end."""
WAKE_GAP_MS = 60
"""Silence that marks the end of the wake phrase."""
LOOKBACK_MS = 600
"""How far before the detection to look for the end of the wake phrase (the model fires late)."""
TAIL_MS = 300
"""Audio kept after the last voiced sub-frame (webrtcvad misses soft endings such as a final "s")."""


@dataclass(frozen=True)
class Utterance:
    """What the user said after the wake word."""

    samples: np.ndarray
    """16 kHz mono int16, pre-roll included."""
    start: float
    """Input-clock seconds where `samples` begins."""
    reason: str
    """Why it ended: silence | max_length | end_of_input"""
    speech_end: float
    """Input-clock seconds where the last voiced audio ends."""

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE


@dataclass(frozen=True)
class Started:
    start: float


@dataclass(frozen=True)
class TimedOut:
    waited: float


class Segmenter:
    """Feeds on frames after a wake word; reports Started, then an Utterance or TimedOut."""

    def __init__(self, cfg: VadConfig) -> None:
        import webrtcvad

        self.cfg = cfg
        self._vad = webrtcvad.Vad(cfg.aggressiveness)
        self.active = False
        self._history: deque[tuple[np.ndarray, bool]] = deque(maxlen=LOOKBACK_MS // SUB_MS)

    def arm(self, t: float) -> list[Started | Utterance | TimedOut]:
        """Start listening at input time t, just after a wake word fired.

        The speech after the wake phrase may already have begun (the model fires up to a few hundred
        ms late): the recent past is searched for the pause that ended the wake phrase and replayed
        from there. With no pause yet, the phrase is still sounding: wait for it to end.
        """
        history = list(self._history)
        gap_end = None
        run = 0
        for i in range(len(history) - 1, -1, -1):
            run = 0 if history[i][1] else run + 1
            if run >= WAKE_GAP_MS // SUB_MS:
                gap_end = i
                break
        self._start_listening(t, wake_tail=gap_end is None)
        out = []
        if gap_end is not None:
            self._clock = t - (len(history) - gap_end) * SUB / RATE
            for sub, voiced in history[gap_end:]:
                self._clock += SUB / RATE
                if (event := self._step(sub, voiced)) is not None:
                    out.append(event)
        return out

    def _start_listening(self, t: float, wake_tail: bool) -> None:
        self.active = True
        self._armed_at = t
        self._pre: deque[np.ndarray] = deque(maxlen=max(1, self.cfg.pre_roll_ms // SUB_MS))
        self._window: deque[bool] = deque(maxlen=ONSET_WINDOW)
        self._speech: list[np.ndarray] | None = None
        self._start = t
        self._clock = t
        self._silence_ms = 0
        self._voiced_len = 0
        self._in_wake_tail = wake_tail
        self._wake_gap_ms = 0

    def feed(self, chunk: AudioChunk) -> list[Started | Utterance | TimedOut]:
        """Classify the chunk; while armed, return what happened in it."""
        out: list[Started | Utterance | TimedOut] = []
        for i in range(0, len(chunk.samples) - SUB + 1, SUB):
            sub = chunk.samples[i : i + SUB]
            voiced = self._vad.is_speech(sub.tobytes(), RATE)
            self._history.append((sub, voiced))
            if not self.active:
                continue
            self._clock = chunk.start + (i + SUB) / RATE
            event = self._step(sub, voiced)
            if event is not None:
                out.append(event)
        return out

    def _step(self, sub: np.ndarray, voiced: bool) -> Started | Utterance | TimedOut | None:
        if self._in_wake_tail:  # skip the rest of the wake phrase if it is still sounding
            self._wake_gap_ms = 0 if voiced else self._wake_gap_ms + SUB_MS
            waited_ms = (self._clock - self._armed_at) * 1000
            if self._wake_gap_ms >= WAKE_GAP_MS or waited_ms >= WAKE_TAIL_MAX_MS:
                self._in_wake_tail = False
            return None
        if self._speech is None:
            self._pre.append(sub)
            self._window.append(voiced)
            if sum(self._window) >= ONSET_VOICED:
                self._speech = list(self._pre)
                self._start = self._clock - len(self._pre) * SUB / RATE
                self._voiced_len = len(self._speech)
                return Started(self._start)
            if self._clock - self._armed_at >= self.cfg.listen_timeout_s:
                self.active = False
                return TimedOut(self._clock - self._armed_at)
            return None
        self._speech.append(sub)
        if voiced:
            self._silence_ms = 0
            self._voiced_len = len(self._speech)
        else:
            self._silence_ms += SUB_MS
        if self._silence_ms >= self.cfg.hangover_ms:
            return self._finish("silence")
        if len(self._speech) * SUB >= self.cfg.max_utterance_s * RATE:
            return self._finish("max_length")
        return None

    def _finish(self, reason: str) -> Utterance:
        assert self._speech is not None
        keep = len(self._speech) if reason != "silence" else min(len(self._speech), self._voiced_len + TAIL_MS // SUB_MS)
        self.active = False
        return Utterance(np.concatenate(self._speech[:keep]), self._start, reason,
                         self._start + self._voiced_len * SUB / RATE)

    def finish(self) -> Utterance | None:
        """The input ended: hand over speech in progress, if any."""
        if not self.active:
            return None
        self.active = False
        if not self._speech:
            return None
        return Utterance(np.concatenate(self._speech), self._start, "end_of_input",
                         self._start + self._voiced_len * SUB / RATE)
