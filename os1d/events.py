"""Typed events: the one vocabulary between stages, the --events log, D-Bus and the tray."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

SIGNATURES = {"str": "s", "float": "d", "float | None": "d", "bool": "b", "int": "x", "int | None": "x",
              "list[int]": "at"}
"""D-Bus type of each field type an event uses (a missing float goes out as NaN, a missing count as -1)."""


@dataclass(frozen=True)
class Event:
    """Base of every event."""

    t: float
    """Seconds on the input-audio clock when the event happened."""
    wall: float = field(default_factory=time.time, kw_only=True)
    """Unix time when the event was created."""
    turn: int = field(default=0, kw_only=True)
    """The exchange it belongs to: 1, 2, … from each wake word, answer back or typed question (0 before the first)."""
    WIRE: ClassVar[dict[str, tuple[str, Callable[[Any], Any]]]] = {}
    """Fields whose D-Bus form is not their type's plain one: name → (signature, converter)."""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {"event": type(self).__name__, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def payload_fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.name not in ("t", "wall", "turn")]

    @classmethod
    def signature(cls) -> str:
        """The fixed D-Bus signature of this event type's payload: a struct of its own fields, in order."""
        types = [cls.WIRE[f.name][0] if f.name in cls.WIRE else SIGNATURES[str(f.type)] for f in cls.payload_fields()]
        return "(" + "".join(types) + ")"

    def payload(self) -> list[Any]:
        """The payload's values for D-Bus, matching signature()."""
        out = []
        for f in self.payload_fields():
            value = getattr(self, f.name)
            if f.name in self.WIRE:
                value = self.WIRE[f.name][1](value)
            elif value is None:
                value = math.nan if SIGNATURES[str(f.type)] == "d" else -1
            out.append(value)
        return out


@dataclass(frozen=True)
class StateChanged(Event):
    state: str
    """starting | idle | listening | thinking | speaking | muted | error"""
    detail: str = ""
    """Why, in a few words (e.g. "loading whisper-base")."""


@dataclass(frozen=True)
class WakeDetected(Event):
    model: str
    """Name of the wake-word model that fired."""
    score: float
    """Its score, 0..1."""


@dataclass(frozen=True)
class SpeechStarted(Event):
    start: float
    """Input-clock time where the utterance audio begins (pre-roll included)."""


@dataclass(frozen=True)
class SpeechEnded(Event):
    duration: float
    """Seconds of utterance audio."""
    reason: str
    """silence | max_length | end_of_input"""


@dataclass(frozen=True)
class ListenTimeout(Event):
    waited: float
    """Seconds waited after the wake word without hearing speech."""


@dataclass(frozen=True)
class Transcript(Event):
    role: str
    """user | assistant"""
    text: str
    seconds: float = 0.0
    """Seconds spent transcribing (0 for text that was not transcribed)."""


def _memories(memories: list[dict]) -> list[list[Any]]:
    return [[int(m["id"]), str(m["text"]), float(m["cosine"]), float(m["score"])] for m in memories]


@dataclass(frozen=True)
class Recalled(Event):
    memories: list[dict]
    """The memories put into the prompt: id, text, cosine, score."""
    WIRE = {"memories": ("a(tsdd)", _memories)}


@dataclass(frozen=True)
class ReplyDelta(Event):
    text: str
    """The next piece of the reply, as it streams."""


@dataclass(frozen=True)
class ReplyDone(Event):
    text: str
    """The whole reply (what was produced before an interruption, if interrupted)."""
    interrupted: bool = False


@dataclass(frozen=True)
class SpeakingStarted(Event):
    """OS1's voice started (the first sample of a reply sounded)."""

    text: str = ""
    """What the first piece says."""


@dataclass(frozen=True)
class SpeakingStopped(Event):
    reason: str
    """done | interrupted (barge-in) | stopped (Stop) | muted"""


@dataclass(frozen=True)
class Greeting(Event):
    first_time: bool
    """True the first time os1d ever starts for this user."""
    name: str
    """The user's name when OS1 knows it, else empty."""
    text: str
    """What OS1 says."""


@dataclass(frozen=True)
class Remembered(Event):
    ids: list[int]
    """The memories a finished turn added (empty when it added nothing new)."""


@dataclass(frozen=True)
class TurnMetrics(Event):
    """Latency of one turn in milliseconds; null where a stage did not run."""

    endpoint: float | None
    """End of user speech → the utterance is cut (the VAD hangover)."""
    stt: float | None
    """Whisper's transcription time."""
    recall: float | None
    """Memory recall time."""
    llm_first_token: float | None
    """Start of the turn (at the pause that began it, or the typed question) → first reply token."""
    tts_first_audio: float | None
    """First token → first reply audio ready to play (null without a voice)."""
    total: float | None
    """End of user speech → first reply audio sample (first token, without a voice)."""
    audio_encoder: float | None = None
    """The Ultravox audio encoder's time, run beside Whisper."""
    parallel: float | None = None
    """How long Whisper and the audio encoder ran at the same time."""
    prefill_tokens: int | None = None
    """Prompt tokens the decoder ran (null where the backend does not say)."""
    cached_tokens: int | None = None
    """Prompt tokens whose cache was reused from the turn before."""


@dataclass(frozen=True)
class ModelLoaded(Event):
    model: str
    seconds: float
    """Wall-clock seconds the load took."""


@dataclass(frozen=True)
class Error(Event):
    source: str
    """Stage that failed: audio, wake, stt, models, …"""
    message: str
    """One line for the user: what happened and what to do."""


class Feed:
    """One subscriber's own bounded queue, delivered by a thread of its own: a slow subscriber (a pipe
    nobody reads, a full disk) never holds up listening. When it falls `size` events behind, the oldest
    are dropped (and counted)."""

    def __init__(self, name: str, deliver: Callable[[Event], None], size: int = 4096) -> None:
        self.name, self.dropped = name, 0
        self._deliver = deliver
        self._queue: queue.Queue[Event | None] = queue.Queue(size)
        self._thread = threading.Thread(target=self._run, name=f"os1d-{name}", daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._deliver(event)
            except Exception:  # a subscriber's failure is its own
                logging.getLogger("os1d").debug("the %s subscriber failed", self.name, exc_info=True)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then stop."""
        self(None)  # type: ignore[arg-type]
        self._thread.join(timeout)
        if self.dropped:
            logging.getLogger("os1d").warning("the %s subscriber fell behind: %d events were dropped",
                                              self.name, self.dropped)
