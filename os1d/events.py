"""Typed events: the one vocabulary between stages, the --events log, D-Bus and the tray."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """Base of every event."""

    t: float
    """Seconds on the input-audio clock when the event happened."""
    wall: float = field(default_factory=time.time, kw_only=True)
    """Unix time when the event was created."""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {"event": type(self).__name__, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


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


@dataclass(frozen=True)
class Recalled(Event):
    memories: list[dict]
    """The memories put into the prompt: id, text, cosine, score."""


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
