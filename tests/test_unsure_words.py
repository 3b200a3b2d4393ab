"""Where Whisper is unsure of the user's words and tries again warmer, a reply begun with the look ahead's memories
plays meanwhile if Whisper's first try recalls the same memories (the retries waiting for its first sound), and waits
for the retries if it recalls others (os1d/agent/turn_parts.Unsure); the words shown and kept are the retries'
(os1d/agent/whisper.py); a model that hears the words (llm.input = text) hears the retries', through the daemon's
own listening and turns with the kit's real models."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_foresight import store_memories

from harness import kit_config, run_listener
from os1d.agent.conversation import Recollection
from os1d.agent.turn_parts import RETRY_WAIT_S
from os1d.agent.ultravox import Ultravox
from os1d.audio.speaker import TimelineSpeaker
from os1d.audio.tts import KokoroVoice
from os1d.config import LlmConfig, MemoryConfig
from os1d.events import ReplyDelta, ReplyDone, Transcript, TurnMetrics
from speech import espeak, join, silence
from wake_requests import say, trim

SENTENCE = "Hello from the tiny stand-in model — nice to hear you, café ☕."
"""What the stand-in says to anything."""
BEES = {"id": 99, "text": "I keep bees on the roof.", "cosine": 0.7, "score": 0.7}
"""A memory no words here recall (it is not in the store): a look ahead that recalled it recalled other memories."""


class Held:
    """The real transcriber; where Whisper is unsure of the words, its retries wait (up to `hold_s`) until some of
    the reply was played."""

    def __init__(self, real, voiced: threading.Event, played: threading.Event,  # type: ignore[no-untyped-def]
                 hold_s: float) -> None:
        self.real, self.voiced, self.played, self.hold_s = real, voiced, played, hold_s
        self.first: list[str] = []
        """The first try's words, where Whisper was unsure of them."""
        self.voiced_first: list[bool] = []
        """For each, whether the reply's first piece was voiced when the turn let Whisper try again."""
        self.held: list[bool] = []
        """For each, whether the reply played while Whisper was yet to try again."""
        self.final: list[str] = []

    def transcribe(self, samples: np.ndarray, hint: str = "", retries: bool = True,
                   unsure: Callable[[str], None] | None = None) -> str:
        def told(text: str) -> None:
            self.first.append(text)
            assert unsure is not None
            unsure(text)
            self.voiced_first.append(self.voiced.is_set())
            self.held.append(self.played.wait(self.hold_s))

        text = self.real.transcribe(samples, hint, retries, told if unsure is not None else None)
        self.final.append(text)
        return text


def asking(request_: str, voice: tuple[str, float]) -> np.ndarray:
    """The wake phrase, then the request in `voice`, then silence."""
    return join(silence(0.5), espeak("hey jarvis", "en-us+f3", 165), silence(0.3), trim(say(request_, voice)),
                silence(3.0))


def wrap_transcriber(assistant, wrap: Callable[[object], object]) -> None:  # type: ignore[no-untyped-def]
    """The assistant's transcriber, once loaded, as wrap(it)."""
    real = assistant.lanes.transcriber

    async def wrapped():  # type: ignore[no-untyped-def]
        return wrap(await real)

    assistant.lanes.transcriber = asyncio.ensure_future(wrapped())


CASES = [  # whether the first try's words recall what the look ahead did, and who asks what
    (True, ("jf_alpha", 1.2), "What should I cook tonight?"),  # "…we're not going to play.", then "…not hungry."
    (True, ("fi", 160), "Tell me a joke about cats."),  # (espeak-ng's Finnish voice) "…Bill Mayoke Mold Cuts." twice
    (False, ("jf_tebukuro", 1.1), "What should I cook tonight?"),  # "…we're not going to be late." twice
]


@pytest.mark.parametrize("agree,voice,request_", CASES, ids=["agree", "agree-espeak", "other-memories"])
def test_a_reply_plays_while_whisper_tries_again_if_its_first_words_recall_the_same(
        agree: bool, voice: tuple[str, float], request_: str, tmp_path: Path, kit: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    voiced, played = threading.Event(), threading.Event()
    real_play, real_synthesize = TimelineSpeaker.play, KokoroVoice.synthesize

    def play(self, samples, text, now):  # type: ignore[no-untyped-def]
        played.set()
        real_play(self, samples, text, now)

    def synthesize(self, text, stop=None):  # type: ignore[no-untyped-def]
        samples = real_synthesize(self, text, stop)
        voiced.set()
        return samples

    monkeypatch.setattr(TimelineSpeaker, "play", play)
    monkeypatch.setattr(KokoroVoice, "synthesize", synthesize)
    held: list[Held] = []
    assistants: list = []  # type: ignore[type-arg]

    def holding(real) -> Held:  # type: ignore[no-untyped-def]
        held.append(Held(real, voiced, played, 10.0 if agree else 2.0))
        return held[-1]

    def prepare(assistant) -> None:  # type: ignore[no-untyped-def]
        wrap_transcriber(assistant, holding)
        assistants.append(assistant)
        if not agree:  # the look ahead recalled a memory that the first try's words (and all the words) do not
            assistant.foresight.recalled = lambda utterance: Recollection(memories=[BEES])

    memory = MemoryConfig(dir=str(tmp_path / "memory"))
    if agree:  # no memories: every words recall the same (the pinned facts, none)
        memory = MemoryConfig(enabled=False)
    else:
        store_memories(tmp_path / "memory", kit)
    run = run_listener(asking(request_, voice), kit_config(memory=memory), prepare=prepare)
    assert run.failure is None, run.failure
    stt = held[0]
    assert stt.first, "Whisper was sure of these words: the case tests nothing"
    assert [e.text for e in run.of(ReplyDone)] == [SENTENCE]
    assert stt.held[-1] is agree  # the reply played while Whisper was still to try again (or waited for it)
    if agree:  # and Whisper tried again only once the reply's first piece was voiced (not halving its speed)
        assert stt.voiced_first[-1]
    # the words shown and kept are those Whisper settled on, shown before the reply's text
    events = [e for e in run.events if isinstance(e, (Transcript, ReplyDelta))]
    shown = [e for e in run.of(Transcript) if e.role == "user"]
    assert len(shown) == 1 and shown[0].text and shown[0].text.lower() in stt.final[-1].lower()
    assert events[0] == shown[0] and len(events) > 1 and all(isinstance(e, ReplyDelta) for e in events[1:])
    assert [m.text for m in assistants[0].conversation.history if m.role == "user"] == [shown[0].text]


def test_a_model_that_hears_the_words_hears_those_whisper_settles_on(tmp_path: Path, kit: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With llm.input = text the reply is made from Whisper's words, so where Whisper is unsure of its first try the
    reply waits for the retries and the model hears their words; Whisper tries again at once (it is not asked to
    wait for a first sound that can only come after it)."""
    heard: list[str] = []
    real_stream = Ultravox.stream

    def stream(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        heard.append([m.text for m in messages if m.role == "user"][-1])
        return real_stream(self, messages, *args, **kwargs)

    monkeypatch.setattr(Ultravox, "stream", stream)
    first: list[str] = []
    asked: list[bool] = []  # for each transcription, whether the turn asked to be told the first try's words
    final: list[str] = []

    class Telling:
        """The real transcriber, always asked for the first try's words (to know Whisper was unsure of them; the
        words it settles on are the same either way, test_whisper), passing them on where the turn asked."""

        def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
            self.real = real

        def transcribe(self, samples: np.ndarray, hint: str = "", retries: bool = True,
                       unsure: Callable[[str], None] | None = None) -> str:
            def told(text: str) -> None:
                first.append(text)
                if unsure is not None:
                    unsure(text)

            asked.append(unsure is not None)
            final.append(self.real.transcribe(samples, hint, retries, told))
            return final[-1]

    _, voice, request_ = CASES[0]
    run = run_listener(asking(request_, voice), kit_config(llm=LlmConfig(input="text")),
                       prepare=lambda assistant: wrap_transcriber(assistant, Telling))
    assert run.failure is None, run.failure
    assert first, "Whisper was sure of these words: the case tests nothing"
    assert [e.text for e in run.of(ReplyDone)] == [SENTENCE]
    shown = [e for e in run.of(Transcript) if e.role == "user"]
    assert len(shown) == 1 and shown[0].text.lower() in final[-1].lower()
    assert heard == [shown[0].text] and heard[0].lower() not in first[-1].lower()  # the retries' words, not the first
    assert not any(asked)
    metrics = run.of(TurnMetrics)  # (Whisper held back for the reply's first sound would have waited RETRY_WAIT_S)
    assert len(metrics) == 1 and 0 < metrics[0].stt < RETRY_WAIT_S * 1000, metrics
