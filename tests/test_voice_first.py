"""The voice goes first on a shared CPU: the local LLM pauses between tokens while Kokoro voices a piece."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import Heard
from os1d.agent.conversation import Conversation
from os1d.agent.turn import Lanes, Request, Turn
from os1d.agent.ultravox import Sampling, Ultravox
from os1d.agent.voice_first import VoiceFirst
from os1d.audio.tts import KokoroVoice, Stop, Stopped
from os1d.config import Config, TtsConfig, parse_config
from os1d.lanes import Lane, Models


def test_the_llm_waits_while_a_piece_is_voiced_and_not_longer() -> None:
    share = VoiceFirst(enabled=True, most_s=2.0)
    release, started = threading.Event(), threading.Event()

    def synthesis() -> str:
        started.set()
        release.wait(5)
        return "voiced"

    voicing = threading.Thread(target=lambda: share.voiced(synthesis)())
    voicing.start()
    started.wait(5)
    waited: list[float] = []

    def llm_step() -> None:
        t0 = time.perf_counter()
        share.wait()
        waited.append(time.perf_counter() - t0)

    step = threading.Thread(target=llm_step)
    step.start()
    time.sleep(0.3)
    assert step.is_alive()  # held while the piece is voiced
    release.set()
    step.join(2)
    voicing.join(2)
    assert not step.is_alive() and 0.25 <= waited[0] < 1.0
    t0 = time.perf_counter()
    share.wait()  # nothing voiced: no wait at all
    assert time.perf_counter() - t0 < 0.01 and share.first(lambda x: x + 1)(1) == 2


def test_a_cancelled_turn_or_a_stuck_voice_never_holds_the_llm() -> None:
    share = VoiceFirst(enabled=True, most_s=0.4)
    stuck = threading.Event()
    threading.Thread(target=lambda: share.voiced(stuck.wait)(10), daemon=True).start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    share.wait()  # the guard
    assert 0.35 <= time.perf_counter() - t0 < 1.0
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    t0 = time.perf_counter()
    share.wait(cancel)  # a barge-in: at once
    assert time.perf_counter() - t0 < 0.3
    stuck.set()
    off = VoiceFirst(enabled=False)
    hold = threading.Event()
    threading.Thread(target=lambda: off.voiced(hold.wait)(10), daemon=True).start()
    t0 = time.perf_counter()
    off.wait()
    assert time.perf_counter() - t0 < 0.01  # disabled: a no-op
    hold.set()


class Slow:
    """The kit's stand-in, taking 15 ms a token like a bigger model, noting when each token came out."""

    def __init__(self, model: Ultravox) -> None:
        self.model, self.times = model, []  # type: ignore[var-annotated]
        self.hearing = model.hearing

    def prepare_audio(self, samples: np.ndarray) -> np.ndarray:
        return self.model.prepare_audio(samples)

    def stream(self, messages, audio, sampling, cancel=None, usage=None, draft=""):  # type: ignore[no-untyped-def]
        for piece in self.model.stream(messages, audio, sampling, cancel, usage, draft):
            time.sleep(0.015)
            self.times.append(time.perf_counter())
            yield piece


class Spans:
    """Kokoro, noting when each synthesis ran."""

    def __init__(self, voice: KokoroVoice) -> None:
        self.voice, self.spans = voice, []  # type: ignore[var-annotated]
        self.started, self.stopped = threading.Event(), 0

    def synthesize(self, text: str, stop: Stop | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        self.started.set()
        try:
            return self.voice.synthesize(text, stop)
        except Stopped:
            self.stopped += 1
            raise
        finally:
            self.spans.append((t0, time.perf_counter()))


@pytest.mark.parametrize("enabled", [True, False])
def test_no_token_is_made_while_kokoro_voices_a_piece(kit: Path, enabled: bool) -> None:
    """A whole turn, the real stand-in and the real Kokoro: with the gate, tokens come between syntheses; without
    it (the baseline), the rest of the reply is made while the first piece is voiced."""
    llm = Slow(Ultravox(kit / "ultravox"))
    voice = Spans(KokoroVoice(kit / "kokoro", TtsConfig(voice="jf_alpha")))
    heard = Heard()
    async def ready(x: object) -> object:
        return x

    async def scenario() -> str:
        lanes = [Lane("stt"), Lane("llm"), Lane("tts")]
        try:
            both = Lanes(lanes[0].run, lanes[1].run, lanes[2].run, asyncio.ensure_future(ready(llm)),
                         asyncio.ensure_future(ready(llm)), asyncio.ensure_future(ready(voice)),
                         VoiceFirst(enabled=enabled))
            turn = Turn(Request(text="Say hello."), Conversation(Config()), both, lambda e: None, lambda: 0.0,
                        heard, Sampling())
            turn.start()
            turn.commit(0.0)
            return await turn.task
        finally:
            for lane in lanes:
                lane.close()

    reply = asyncio.run(scenario())
    assert reply.startswith("Hello from the tiny") and len(heard.played) >= 2 and len(voice.spans) >= 2
    inside = [sum(a + 0.02 < t < b for t in llm.times) for a, b in voice.spans]
    if enabled:
        assert max(inside) <= 1, inside  # (at most the token begun as the piece went to Kokoro)
    else:
        assert inside[0] >= 5, inside


def test_the_gate_is_on_for_a_local_llm_on_the_cpu_only(kit: Path) -> None:
    async def loaded(cfg: Config, llm: object) -> bool:
        models = Models(cfg, kit, lambda e: None, lambda: 0.0)

        async def done() -> object:
            return llm

        models.speech_llm = asyncio.ensure_future(done())
        models.speech_llm.add_done_callback(models._on_llm)
        await models.speech_llm
        await asyncio.sleep(0)
        models.close()
        return models.share.enabled

    model = Ultravox(kit / "ultravox")
    assert model.device == "cpu" and asyncio.run(loaded(Config(), model))
    assert not asyncio.run(loaded(parse_config({"llm": {"yield_to_voice": False}}), model))
    assert not asyncio.run(loaded(Config(), object()))  # a server (the openai backend): nothing to share


def test_a_synthesis_stops_midway_and_the_voice_goes_on(kit: Path) -> None:
    voice = KokoroVoice(kit / "kokoro", TtsConfig(voice="jm_kumo"))
    text = "I think Paris is lovely in the spring, especially by the river, when the trees are in flower."
    whole = voice.synthesize(text)
    stop = Stop()
    threading.Timer(0.1, stop).start()  # (the whole piece takes about a second here)
    with pytest.raises(Stopped):
        voice.synthesize(text, stop)
    with pytest.raises(Stopped):  # stopped before it began: nothing runs
        voice.synthesize("Hello.", stop)
    again = voice.synthesize(text, Stop())  # the next one is whole
    assert len(again) == len(whole) and np.abs(again - whole).max() < 1e-3


def test_a_turn_dropped_while_its_piece_is_voiced_stops_the_synthesis(kit: Path) -> None:
    """Barge-in, or a reply begun with memories all the words do not recall: Kokoro stops between two nodes,
    and the TTS lane is free for the next turn at once, not after the rest of a piece nobody hears."""
    voice = Spans(KokoroVoice(kit / "kokoro", TtsConfig(voice="jf_alpha")))
    llm = Ultravox(kit / "ultravox")

    async def ready(x: object) -> object:
        return x

    async def scenario() -> float:
        lanes = [Lane("stt"), Lane("llm"), Lane("tts")]
        try:
            both = Lanes(lanes[0].run, lanes[1].run, lanes[2].run, asyncio.ensure_future(ready(llm)),
                         asyncio.ensure_future(ready(llm)), asyncio.ensure_future(ready(voice)))
            turn = Turn(Request(text="Say hello."), Conversation(Config()), both, lambda e: None, lambda: 0.0,
                        Heard(), Sampling())
            turn.start()
            while not voice.started.is_set():
                await asyncio.sleep(0.002)
            turn.interrupt(None)
            await asyncio.wait([turn.task])
            return await lanes[2].run(time.perf_counter) - voice.spans[0][0]
        finally:
            for lane in lanes:
                lane.close()

    free_after = asyncio.run(scenario())
    assert voice.stopped == 1 and len(voice.spans) == 1
    a, b = voice.spans[0]
    assert free_after < b - a + 0.05  # the lane was free as soon as the stopped synthesis ended
    whole = time.perf_counter()
    voice.voice.synthesize("Hello from the tiny")  # the first piece, whole, as the stand-in says it
    assert b - a < 0.8 * (time.perf_counter() - whole)
