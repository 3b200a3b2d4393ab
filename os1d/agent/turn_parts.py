"""The parts a turn is made of: the models it uses (as protocols), where they run, what it answers, and the
gate that holds it back until it is committed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..audio.chunk import RATE
from ..audio.tts import Stop
from ..audio.vad import voiced_seconds
from .conversation import Recollection
from .decoding import Sampling
from .hearing import Hearing
from .prompt import Message
from .ultravox import Usage
from .voice_first import VoiceFirst


class SpeechLLM(Protocol):
    """A model that hears audio and answers in text (Ultravox on ONNX, or on a vLLM server)."""

    hearing: Hearing
    """Whether the model hears the user's audio or Whisper's transcript."""

    def prepare_audio(self, samples: np.ndarray) -> Any: ...

    def stream(self, messages: Sequence[Message], audio: Any, sampling: Sampling,
               cancel: threading.Event | None = None, usage: Usage | None = None, draft: str = "") -> Iterator[str]:
        """The reply as text pieces; `draft` is what it likely begins with (a first try's words), which a model
        may check at once instead of token by token; the reply is the same without it."""


class Transcriber(Protocol):
    def transcribe(self, samples: np.ndarray, hint: str = "", retries: bool = True,
                   unsure: Callable[[str], None] | None = None) -> str: ...


class Synthesizer(Protocol):
    def synthesize(self, text: str, stop: Stop | None = None) -> np.ndarray: ...


Run = Callable[..., Awaitable[Any]]


class Voice(Protocol):
    """Where a reply's speech goes (the speaker, on the input clock)."""

    def play(self, samples: np.ndarray, text: str) -> None:
        """Queue a piece (24 kHz float32) and its words."""

    def complete(self) -> None:
        """The reply has no more pieces."""


@dataclass
class Lanes:
    """Where each model runs, and the models once loaded."""

    stt: Run
    llm: Run
    tts: Run
    transcriber: Awaitable[Transcriber]
    speech_llm: Awaitable[SpeechLLM]
    voice: Awaitable[Synthesizer] | None = None
    """None: replies are text only."""
    share: VoiceFirst = field(default_factory=VoiceFirst)
    """The local LLM waits while a piece is voiced (where both run on the CPU)."""


@dataclass(frozen=True)
class Request:
    """What a turn answers: the user's audio (or typed text), and where it sits on the input clock."""

    samples: np.ndarray | None = None
    text: str = ""
    """Typed text (when there is no audio)."""
    hint: str = ""
    """The wake phrase the audio begins with, for Whisper."""
    speech_end: float | None = None
    """Input-clock end of the user's speech."""
    started_at: float = 0.0
    """Input-clock time the turn began (at the pause, when it started speculatively)."""
    wake_at: float | None = None
    """Input-clock time of the wake word that opened it (None when no wake word did)."""
    audio_end: float | None = None
    """Input-clock end of the audio."""
    recalled: Recollection | asyncio.Future[Recollection | None] | None = None
    """Memories recalled while the user spoke, for their words so far (a look ahead), or to come from a look
    still under way: the reply starts with them before Whisper has heard the last words, and starts over if all
    the words recall others."""

    def after_wake(self) -> np.ndarray | None:
        """The audio from the wake word's detection on, where it holds a request (REQUEST_VOICED_S of speech or
        more); None otherwise."""
        if self.samples is None or self.wake_at is None or self.audio_end is None:
            return None
        start = self.audio_end - len(self.samples) / RATE
        tail = self.samples[max(0, round((self.wake_at - start) * RATE)):]
        return tail if voiced_seconds(tail) >= REQUEST_VOICED_S else None


REQUEST_VOICED_S = 0.5
"""Speech after the wake word's detection that makes a request, where Whisper heard only the wake phrase. A
request said much more softly than the phrase (the user turned away from the microphone, 30 dB quieter) is
heard by webrtcvad but taken by Whisper, beside the loud phrase, for background: it is transcribed again on
its own. The phrase's own end after an early detection is shorter than this."""


class Gate:
    """Holds back a turn's actions (events, speech, history) until it is committed, then lets them through."""

    def __init__(self) -> None:
        self.open = False
        self._held: list[Callable[[], None]] = []

    def __call__(self, action: Callable[[], None]) -> None:
        if self.open:
            action()
        else:
            self._held.append(action)

    def commit(self) -> None:
        self.open = True
        held, self._held = self._held, []
        for action in held:
            action()


class NothingHeard(Exception):
    """The utterance held no words for OS1 (only the wake phrase, or noise): there is nothing to answer."""


RETRY_WAIT_S = 5.0
"""The longest Whisper's retries wait for the reply's first sound (a guard: it takes well under a second)."""


class Unsure:
    """Whisper's first try at a turn's words, where it is unsure of them and tries again: a reply begun with the
    look ahead's memories need not wait for the retries if those words recall the same. The retries then wait for
    the reply's first sound (on a CPU they would halve the voice's speed)."""

    def __init__(self) -> None:
        self.retry = threading.Event()
        """Whisper may try again: the turn waits for it, or the reply going on meanwhile has its first sound."""
        self._first: asyncio.Future[str] | None = None

    def listen(self) -> Callable[[str], None]:
        """What Whisper tells its first try's words to, before it tries again (in its thread)."""
        loop = asyncio.get_running_loop()
        first = self._first = loop.create_future()

        def told(text: str) -> None:
            loop.call_soon_threadsafe(lambda: first.done() or first.set_result(text))
            self.retry.wait(RETRY_WAIT_S)
        return told

    async def words(self, transcript: asyncio.Future[str], sure: bool, clean: Callable[[str], str]) -> str:
        """Whisper's words; unless `sure`, its first try's (`clean`ed) where it is unsure of them (if any)."""
        first = self._first
        if not sure and first is not None and not transcript.done():
            await asyncio.wait([transcript, first], return_when=asyncio.FIRST_COMPLETED)
            if not transcript.done() and (words := clean(first.result())):
                return words
        self.retry.set()
        return await transcript
