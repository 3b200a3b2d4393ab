"""Utterances: after the wake word (or when OS1 invites an answer), webrtcvad finds what the user said.

Nothing the user says after the wake phrase is ever dropped. The wake word fires a little after the
phrase ends, often once the next word has begun, and where the phrase ended can't be told reliably
from the audio. So an utterance that follows a wake word starts before the phrase (at the last clear
pause before it), keeps everything after, and the wake phrase is removed from the transcript text.
"""

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
WAKE_LATENCY_MAX_MS = 500
"""The latest the wake word fires after its phrase ends (measured: median 123 ms, max about 300 ms).
The user's request cannot begin earlier than this before the detection."""
WAKE_PHRASE_MAX_MS = 2000
"""How far before the detection the wake phrase can begin (the wake model's own window is 2 s)."""
PHRASE_GAP_MS = 240
"""A pause at least this long, before the point where the request can begin, marks the wake phrase's
start: audio before it is not kept."""
HISTORY_MS = 10_000
"""Recent audio kept while not listening: the wake phrase, and what was said while a transcript
was checked (an utterance that held only the wake phrase is followed by listening again from its end)."""
SPECULATE_MS = 120
"""Silence after speech at which a turn may start speculatively (committed if the hangover confirms the
end, discarded if the user goes on). 120 rather than 160 ms: turns ×0.89–0.97 of the time, the same words, no
more turns discarded (BENCHMARKS.md)."""
LOOK_MS = 1500
"""While the user speaks, what they said so far is handed on every this much of speech (Midway): the turn's
memories can be recalled and prefilled before they finish."""
WAKE_LOOK_MS = 1000
"""After a wake word, the first Midway comes this long after its detection (then every LOOK_MS): before it the
user was saying the wake phrase, and a short request is over soon after."""
TAIL_MS = 500
"""Audio kept after the last voiced sub-frame: webrtcvad misses soft endings (a final "s"), and Whisper
hears a last word better with some silence after it."""


@dataclass(frozen=True)
class Utterance:
    """What the user said after the wake word."""

    samples: np.ndarray
    """16 kHz mono int16, pre-roll (and after a wake word, the wake phrase) included."""
    start: float
    """Input-clock seconds where `samples` begins."""
    reason: str
    """Why it ended: silence | max_length | end_of_input"""
    speech_end: float
    """Input-clock seconds where the last voiced audio ends."""
    wake_at: float | None = None
    """Input-clock seconds of the wake word that opened it (None when no wake word did)."""

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class Started:
    start: float


@dataclass(frozen=True)
class TimedOut:
    waited: float


@dataclass(frozen=True)
class Paused:
    """The user went quiet (SPECULATE_MS): what they said so far, as the utterance it will be if they stay so."""

    utterance: Utterance


@dataclass(frozen=True)
class Resumed:
    """They went on speaking after a pause."""


@dataclass(frozen=True)
class Midway:
    """The user is still speaking (every LOOK_MS): what they said so far."""

    utterance: Utterance


Segment = Started | Utterance | TimedOut | Paused | Resumed | Midway


@dataclass
class _Sub:
    samples: np.ndarray
    voiced: bool
    end: float
    """Input-clock seconds where this sub-frame ends."""


class Segmenter:
    """Classifies every 20 ms; while armed, reports Started, then an Utterance or TimedOut."""

    def __init__(self, cfg: VadConfig) -> None:
        import webrtcvad

        self.cfg = cfg
        self._vad = webrtcvad.Vad(cfg.aggressiveness)
        self.active = False
        self._history: deque[_Sub] = deque(maxlen=HISTORY_MS // SUB_MS)

    def arm_after_wake(self, wake_at: float) -> list[Segment]:
        """Listen for the request that follows a wake word detected at input time `wake_at`.

        The utterance starts at the last clear pause that ends before the request can have begun
        (so it holds the wake phrase, never less than the request); speech must then be heard after
        the detection before a silence can end it.
        """
        history = [s for s in self._history if s.end > wake_at - WAKE_PHRASE_MAX_MS / 1000]
        limit = wake_at - WAKE_LATENCY_MAX_MS / 1000
        first = 0
        run = 0
        for i, sub in enumerate(history):
            if sub.end > limit:
                break
            run = 0 if sub.voiced else run + 1
            if run * SUB_MS >= PHRASE_GAP_MS:
                first = i + 1 - min(run, max(1, self.cfg.pre_roll_ms // SUB_MS))
        return self._arm(history[first:], wake_at, wake=True)

    def arm(self, since: float, timeout_s: float | None = None) -> list[Segment]:
        """Listen for speech from input time `since` on (replayed from recent audio if it is past); give
        up after timeout_s (default vad.listen_timeout_s) without any."""
        return self._arm([s for s in self._history if s.end > since], since, wake=False, timeout_s=timeout_s)

    def disarm(self) -> None:
        """Stop listening (what was heard so far is dropped)."""
        self.active = False

    def _arm(self, replay: list[_Sub], armed_at: float, wake: bool, timeout_s: float | None = None) -> list[Segment]:
        self.active = True
        self._armed_at = armed_at
        self._timeout_s = self.cfg.listen_timeout_s if timeout_s is None else timeout_s
        self._wake = wake
        self._paused = False
        self._onset = False
        self._window: deque[bool] = deque(maxlen=ONSET_WINDOW)
        self._speech: list[np.ndarray] = []
        self._pre: deque[np.ndarray] = deque(maxlen=max(1, self.cfg.pre_roll_ms // SUB_MS))
        self._start = replay[0].end - SUB / RATE if replay else armed_at
        self._silence_ms = 0
        self._voiced_len = 0
        self._look_at = max(0, round((armed_at - self._start) * 1000)) + WAKE_LOOK_MS if wake else LOOK_MS
        out = []
        for sub in replay:
            if self.active and (event := self._step(sub)) is not None:
                out.append(event)
        return out

    def feed(self, chunk: AudioChunk) -> list[Segment]:
        """Classify the chunk; while armed, return what happened in it."""
        out: list[Segment] = []
        for i in range(0, len(chunk.samples) - SUB + 1, SUB):
            samples = chunk.samples[i : i + SUB]
            sub = _Sub(samples, self._vad.is_speech(samples.tobytes(), RATE), chunk.start + (i + SUB) / RATE)
            self._history.append(sub)
            if self.active and (event := self._step(sub)) is not None:
                out.append(event)
        return out

    def _step(self, sub: _Sub) -> Segment | None:
        if not self._onset:
            return self._before_onset(sub)
        self._speech.append(sub.samples)
        if sub.voiced:
            self._silence_ms = 0
            self._voiced_len = len(self._speech)
        else:
            self._silence_ms += SUB_MS
        if self._silence_ms >= self.cfg.hangover_ms:
            return self._finish("silence")
        if len(self._speech) * SUB >= self.cfg.max_utterance_s * RATE:
            return self._finish("max_length")
        if sub.voiced and self._paused:
            self._paused = False
            return Resumed()
        if self._silence_ms == SPECULATE_MS and not self._paused:
            self._paused = True
            speech = self._speech[: self._voiced_len + TAIL_MS // SUB_MS]
            pad = np.zeros((self._voiced_len + TAIL_MS // SUB_MS - len(speech)) * SUB, dtype=np.int16)
            return Paused(self._utterance([*speech, pad], "silence"))
        if sub.voiced and not self._paused and len(self._speech) * SUB_MS >= self._look_at:
            while self._look_at <= len(self._speech) * SUB_MS:
                self._look_at += LOOK_MS
            return Midway(self._utterance(list(self._speech), "silence"))
        return None

    def _before_onset(self, sub: _Sub) -> Segment | None:
        """Wait for speech (after the detection, when a wake word opened the turn)."""
        if self._wake:
            self._speech.append(sub.samples)  # everything from the wake phrase on is kept
        else:
            self._pre.append(sub.samples)
        if sub.end > self._armed_at:
            self._window.append(sub.voiced)
        if sum(self._window) >= ONSET_VOICED:
            self._onset = True
            if not self._wake:
                self._speech = list(self._pre)
                self._start = sub.end - len(self._speech) * SUB / RATE
            self._voiced_len = len(self._speech)
            return Started(self._start)
        if sub.end - self._armed_at >= self._timeout_s:
            self.active = False
            return TimedOut(sub.end - self._armed_at)
        if self._wake and len(self._speech) * SUB >= self.cfg.max_utterance_s * RATE:
            self._speech = self._speech[len(self._speech) // 2 :]  # a long wait: keep the recent half
            self._start = sub.end - len(self._speech) * SUB / RATE
        return None

    def _finish(self, reason: str) -> Utterance:
        keep = len(self._speech)
        if reason == "silence":
            keep = min(keep, self._voiced_len + TAIL_MS // SUB_MS)
        self.active = False
        return self._utterance(self._speech[:keep], reason)

    def _utterance(self, speech: list[np.ndarray], reason: str) -> Utterance:
        return Utterance(np.concatenate(speech), self._start, reason, self._start + self._voiced_len * SUB / RATE,
                         self._armed_at if self._wake else None)

    def finish(self) -> Utterance | None:
        """The input ended: hand over speech in progress, if any."""
        if not self.active:
            return None
        self.active = False
        if not self._onset or not self._speech:
            return None
        return self._utterance(self._speech, "end_of_input")


def split_at_pauses(samples: np.ndarray, max_s: float, min_s: float = 4.0, aggressiveness: int = 2) -> list[float]:
    """Cut points (seconds, from 0 to the end) so that no piece is longer than max_s, each cut in the
    longest pause available, for a transcriber that is more reliable on shorter pieces."""
    total = len(samples) / RATE
    voiced = _voiced(samples, aggressiveness)
    pauses: list[tuple[int, float]] = []  # (length in sub-frames, middle in seconds)
    run = 0
    for k, v in enumerate([*voiced, True]):
        if not v:
            run += 1
        elif run:
            pauses.append((run, (k - run / 2) * SUB / RATE))
            run = 0
    cuts = [0.0]
    while total - cuts[-1] > max_s:
        inside = [p for p in pauses if cuts[-1] + min_s <= p[1] <= cuts[-1] + max_s]
        cuts.append(max(inside)[1] if inside else cuts[-1] + max_s)
    return [*cuts, total]


def voiced_seconds(samples: np.ndarray, aggressiveness: int = 2) -> float:
    """How much of 16 kHz int16 `samples` webrtcvad hears as speech, in seconds."""
    return sum(_voiced(samples, aggressiveness)) * SUB / RATE


def _voiced(samples: np.ndarray, aggressiveness: int) -> list[bool]:
    """webrtcvad's verdict on each SUB_MS sub-frame of `samples`."""
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    return [vad.is_speech(samples[i : i + SUB].tobytes(), RATE) for i in range(0, len(samples) - SUB + 1, SUB)]
