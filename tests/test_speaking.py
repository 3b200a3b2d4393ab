"""OS1 speaks: after the user has finished, heard on the output's timeline; barge-in, Stop, follow-up,
and never answering its own voice. In-process (run_listener), real models, the input clock."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.signal import fftconvolve

from harness import Run, kit_config, run_listener
from os1d.assistant import Assistant
from os1d.audio.chunk import RATE, resample_float
from os1d.audio.tts import RATE as VOICE_RATE
from os1d.audio.tts import KokoroVoice
from os1d.config import ConversationConfig
from os1d.events import (Error, ListenTimeout, ReplyDone, SpeakingStarted, SpeakingStopped, SpeechEnded,
                         Transcript, TurnMetrics, WakeDetected)
from speech import REPO, join, silence, words
from wake_requests import say, trim

sys.path.insert(0, str(REPO / "scripts"))
from ultravox_standin import SENTENCE  # noqa: E402

VOICE = ("jm_kumo", 1.0)
WAKE = trim(say("Hey Jarvis.", VOICE))
REQUEST = trim(say("What is the capital of France?", VOICE))
OPENING = join(silence(1.0), WAKE, silence(0.3), REQUEST)


@dataclass
class FirstReply:
    """The reference run: the opening request and OS1's whole reply, nothing else said."""

    run: Run
    started: float
    """Input time OS1's voice started."""
    ended: float


@pytest.fixture(scope="module")
def first() -> FirstReply:
    run = run_listener(join(OPENING, silence(12.0)))
    (started,), (ended,) = run.of(SpeakingStarted), run.of(SpeakingStopped)
    assert ended.reason == "done"
    return FirstReply(run, started.t, ended.t)


def loudness(audio: np.ndarray, start: float, end: float, rate: int = VOICE_RATE) -> float:
    part = audio[int(start * rate) : int(end * rate)]
    return float(np.abs(part).max()) if len(part) else 0.0


def test_the_reply_is_spoken_once_the_user_has_finished(first: FirstReply, whisper) -> None:  # type: ignore[no-untyped-def]
    run = first.run
    (ended,) = run.of(SpeechEnded)
    assert first.started >= ended.t  # never before the hangover confirmed the end
    metrics = run.of(TurnMetrics)[0]
    assert metrics.tts_first_audio > 0 and metrics.total >= metrics.endpoint
    assert loudness(run.output, 0, first.started) == 0.0  # silence on the output until then
    voice = resample_float(run.output[int(first.started * VOICE_RATE) :], VOICE_RATE, RATE)
    heard = whisper.transcribe((voice * 32767).astype(np.int16))
    assert words(heard)[:4] == words(SENTENCE)[:4]
    assert loudness(run.output, first.started, first.ended) > 0.05
    assert loudness(run.output, first.ended + 0.01, len(run.output) / VOICE_RATE) == 0.0  # and silence after


def test_a_piece_the_voice_fails_on_is_left_unsaid_and_the_rest_is_spoken(
        whisper, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The voice fails on the reply's first piece: one Error says so, the rest is spoken, and the whole reply is
    shown and kept (before, the turn failed: nothing more was said, shown or remembered)."""
    real = KokoroVoice.synthesize

    def synthesize(self: KokoroVoice, text: str, stop=None):  # type: ignore[no-untyped-def]
        if "tiny" in text:  # (the first piece; not the warm-up)
            raise RuntimeError("no phonemes for this text")
        return real(self, text, stop)

    monkeypatch.setattr(KokoroVoice, "synthesize", synthesize)
    kept: list[Assistant] = []
    run = run_listener(join(OPENING, silence(12.0)), prepare=kept.append)
    errors = run.of(Error)
    assert [e.source for e in errors] == ["tts"] and "no phonemes for this text" in errors[0].message
    (done,) = run.of(ReplyDone)
    assert done.text == SENTENCE and kept[0].conversation.history[-1].text == SENTENCE
    (started,) = run.of(SpeakingStarted)
    voice = resample_float(run.output[int(started.t * VOICE_RATE):], VOICE_RATE, RATE)
    heard = words(whisper.transcribe((voice * 32767).astype(np.int16)))
    assert "hello" not in heard and "nice" in heard, heard


def test_barge_in_stops_the_voice_at_once_and_the_history_keeps_what_was_heard(first: FirstReply) -> None:
    second = trim(say("Tell me about the sea.", VOICE))
    at = first.started + 1.5  # OS1 is mid-sentence
    pcm = join(OPENING, silence(at - len(OPENING) / RATE), WAKE, silence(0.3), second, silence(10.0))
    kept: list[Assistant] = []
    run = run_listener(pcm, prepare=kept.append)
    wakes = run.of(WakeDetected)
    assert len(wakes) == 2
    cut = run.of(SpeakingStopped)[0]
    assert cut.reason == "interrupted" and cut.t == wakes[1].t
    assert [w.turn for w in wakes] == [1, 2] and cut.turn == 1  # the voice cut was the first exchange's
    assert [e.turn for e in run.of(ReplyDone)] == [1, 2]
    next_voice = run.of(SpeakingStarted)[1].t
    assert loudness(run.output, cut.t + 0.15, next_voice) == 0.0  # silent within 150 ms of the detection
    assert loudness(run.output, cut.t - 0.5, cut.t) > 0.05  # it was speaking until then
    history = kept[0].conversation.history
    heard = history[1]
    assert heard.role == "assistant" and heard.text.endswith(" …")
    said = heard.text[:-2].split()
    assert 2 <= len(said) < len(SENTENCE.split()) and SENTENCE.split()[: len(said)] == said
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
    assert "sea" in history[2].text.lower() and history[3].text == SENTENCE


def test_stop_silences_os1_without_opening_a_turn(first: FirstReply) -> None:
    run = run_listener(join(OPENING, silence(12.0)), hooks={first.started + 1.0: Assistant.stop})
    (stopped,) = run.of(SpeakingStopped)
    assert stopped.reason == "stopped" and abs(stopped.t - (first.started + 1.0)) < 0.1
    assert loudness(run.output, stopped.t + 0.01, 13.0) == 0.0
    assert run.states[-1] == "idle" and "listening" not in run.states[run.states.index("speaking"):]
    assert len(run.of(Transcript)) == 1


@pytest.mark.parametrize("after, answered", [(1.5, True), (8.0, False)])
def test_the_user_can_answer_back_without_the_wake_word_inside_the_window(first: FirstReply, after: float,
                                                                          answered: bool) -> None:
    """follow_up_s = 6: an answer 1.5 s after OS1 stopped opens a turn; one 8 s after does not."""
    answer = trim(say("Paris, of course.", VOICE))
    pcm = join(OPENING, silence(first.ended + after - len(OPENING) / RATE), answer, silence(4.0))
    run = run_listener(pcm)
    texts = [t.text for t in run.of(Transcript)]
    assert len(run.of(WakeDetected)) == 1
    if answered:
        assert len(texts) == 2 and "paris" in words(texts[1]) and len(run.of(ReplyDone)) == 2
        assert [t.turn for t in run.of(Transcript)] == [1, 2]  # answering back is an exchange of its own
        assert run.states[run.states.index("speaking") + 1] == "listening"
    else:
        assert len(texts) == 1 and len(run.of(ListenTimeout)) == 1


def test_os1_never_answers_its_own_voice(first: FirstReply) -> None:
    """OS1's reply comes back into the microphone, with a room's reverberation: no turn opens on it."""
    voice = resample_float(first.run.output, VOICE_RATE, RATE)
    rng = np.random.default_rng(7)
    room = rng.normal(0, 1, int(0.4 * RATE)) * np.exp(-np.arange(int(0.4 * RATE)) / (0.08 * RATE))
    echo = fftconvolve(voice, room / np.abs(room).sum() * 8)[: len(voice)]
    pcm = join(OPENING, silence(12.0)).astype(np.float32)
    pcm[: len(echo)] += 0.5 * echo[: len(pcm)] * 32767
    run = run_listener(np.clip(pcm, -32768, 32767).astype(np.int16))
    assert loudness(voice, first.started + 0.5, first.ended - 0.5, RATE) > 0.1  # there was an echo to hear
    assert len(run.of(Transcript)) == 1 and len(run.of(ReplyDone)) == 1
    assert run.states[-2:] == ["listening", "idle"]  # the window opened after the echo's tail, then timed out


def test_with_an_echo_cancelled_microphone_the_user_can_talk_over_os1(first: FirstReply) -> None:
    said = trim(say("Wait, I have another question.", VOICE))
    at = first.started + 1.0
    pcm = join(OPENING, silence(at - len(OPENING) / RATE), said, silence(10.0))
    run = run_listener(pcm, echo_cancelled=True)
    cut = run.of(SpeakingStopped)[0]
    assert cut.reason == "interrupted" and at < cut.t < at + 0.5
    texts = [t.text for t in run.of(Transcript)]
    assert len(texts) == 2 and "question" in words(texts[1])


def test_a_pause_mid_sentence_starts_a_turn_that_is_dropped_when_the_user_goes_on() -> None:
    """A 350 ms pause (past the speculative start, short of the hangover): one turn, on every word."""
    head, tail = trim(say("I was wondering,", VOICE)), trim(say("what is the capital of Spain?", VOICE))
    pcm = join(silence(1.0), WAKE, silence(0.3), head, silence(0.35), tail, silence(10.0))
    run = run_listener(pcm, kit_config(conversation=ConversationConfig(follow_up_s=0.0, greet=False)))
    (transcript,) = run.of(Transcript)
    assert {"wondering", "capital", "spain"} <= set(words(transcript.text))
    assert len(run.of(SpeechEnded)) == 1 and len(run.of(TurnMetrics)) == 1
    assert run.of(SpeakingStarted)[0].t >= run.of(SpeechEnded)[0].t
