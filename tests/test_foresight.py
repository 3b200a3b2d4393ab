"""Memories recalled and prefilled while the user speaks (os1d/agent/foresight.py), through the daemon's own
listening and turns with the kit's real models (Whisper, MiniLM, usearch, the tiny Ultravox stand-in)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from harness import kit_config, run_listener
from os1d.agent.conversation import Conversation, Recollection
from os1d.agent.prompt import Message, llama3_prompt
from os1d.agent.turn import Turn
from os1d.agent.ultravox import Ultravox
from os1d.agent.whisper import WhisperTranscriber
from os1d.config import MemoryConfig
from os1d.events import Recalled, TurnMetrics
from os1d.memory.embed import MiniLMEmbedder
from os1d.memory.store import MemoryStore
from speech import espeak, join, kokoro, silence
from wake_requests import say, trim

MEMORIES = ["My sister Ana comes to visit us most weekends.", "I play the cello in a small orchestra.",
            "The car needs new tyres before the winter.", "My name is Sam."]
QUESTIONS = [  # (a voice, what is said after the wake word: one breath, or with a pause)
    (("jf_alpha", 1.0), ["Do you think my sister Ana will come to visit us again this weekend?"]),
    (("en-gb+m3", 150), ["When my sister Ana visits this weekend,", "what could we cook together?"]),
]
SLOW_WHISPER_S = 1.0
"""The turn's own words come this much later, so that "the reply began before Whisper had all the words" does
not hang on which of Whisper and the audio encoder, side by side on two cores, happens to finish first."""


def store_memories(folder: Path, kit: Path) -> None:
    store = MemoryStore(folder)
    for text, vec in zip(MEMORIES, MiniLMEmbedder(kit / "minilm").embed(MEMORIES), strict=True):
        store.add("user", "said", text, vec, fact="name" if "name" in text else None)
    store.close()


def slow_turn_words(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make the turn's own Whisper SLOW_WHISPER_S slower; the list gets when each turn had all the words."""
    real_words, told = Turn._transcript, []

    async def slow_words(self):  # type: ignore[no-untyped-def]
        words = await real_words(self)

        async def later() -> str:  # the turn's Whisper is slow: the reply must not wait for it
            text = await words
            await asyncio.sleep(SLOW_WHISPER_S)
            told.append(time.perf_counter())
            return text
        return asyncio.ensure_future(later())

    monkeypatch.setattr(Turn, "_transcript", slow_words)
    return told


@pytest.mark.parametrize("voice,parts", QUESTIONS, ids=[f"{v[0]}@{v[1]}" for v, _ in QUESTIONS])
def test_memories_recalled_while_the_user_speaks_are_prefilled_before_they_finish(
        voice: tuple[str, float], parts: list[str], tmp_path: Path, kit: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[tuple[int, int]] = []  # per turn: tokens before the user's turn, tokens of the persona
    asked: list[float] = []  # when the model was asked for a reply
    heard: list[tuple[int, bool]] = []  # Whisper's runs: the samples each heard, and whether it would retry
    real, transcribe = Ultravox.stream, WhisperTranscriber.transcribe

    def stream(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(time.perf_counter())
        before = self.tokenize(llama3_prompt(messages[:-1], reply=False)).shape[1]
        prompts.append((before, self.tokenize(llama3_prompt(messages[:1], reply=False)).shape[1]))
        return real(self, messages, *args, **kwargs)

    def counted(self, samples, *args, **kwargs):  # type: ignore[no-untyped-def]
        heard.append((len(samples), kwargs.get("retries", True)))
        return transcribe(self, samples, *args, **kwargs)

    monkeypatch.setattr(Ultravox, "stream", stream)
    monkeypatch.setattr(WhisperTranscriber, "transcribe", counted)
    told = slow_turn_words(monkeypatch)  # (when the turn had all the words)
    said = [trim(say(p, voice)) for p in parts]
    request = said[0] if len(said) == 1 else join(said[0], silence(0.3), *said[1:])
    pcm = join(silence(0.5), espeak("hey jarvis", "en-us+f3", 165), silence(0.3), request, silence(3.0))
    assert len(request) / 16000 > 3.0  # (long enough for looks ahead at 1.5 and 3 s)
    runs, began = {}, {}
    for ahead in (True, False):
        folder = tmp_path / f"memory-{ahead}"
        store_memories(folder, kit)
        cfg = kit_config(memory=MemoryConfig(dir=str(folder)))
        off = None if ahead else lambda assistant: setattr(assistant, "foresight", None)
        asked.clear()
        runs[ahead] = run_listener(pcm, cfg, prepare=off)
        assert runs[ahead].failure is None, runs[ahead].failure
        began[ahead] = list(asked)
        # the reply began before Whisper had all the words, with the look's memories or else the pinned facts (once
        # the memory had loaded: in a new process, perhaps only just)
        assert asked[0] < told[-1] - (SLOW_WHISPER_S / 2 if ahead else 0), "the reply waited for Whisper"
        if ahead:  # the look's memories were right: the reply began once
            assert len(asked) == 1 and len(heard) > 1
            # a look's words are a guess: Whisper's first try (where unsure, only the turn's own tries again)
            looks = [n for n, retry in heard if not retry]
            assert heard[-1][1] and looks and max(looks) < heard[-1][0], heard
    # without a look, all the words recalled the sister: the reply begun without memories started over with them
    assert len(began[True]) == 1 and len(began[False]) == 2
    (before, persona), (without, persona_again), (_, persona_last) = prompts
    assert before > without and persona == persona_again == persona_last  # (the memories: a note after the persona)
    assert prompts[2][0] == before
    for ahead, run in runs.items():
        (recalled,) = run.of(Recalled)
        assert recalled.memories[0]["text"] == MEMORIES[0]
        (metrics,) = run.of(TurnMetrics)
        # looked ahead: the memories were in the model's cache when the user finished; else not all of them
        assert (metrics.cached_tokens == before) if ahead else (persona <= metrics.cached_tokens < before), metrics
    assert runs[True].of(TurnMetrics)[0].prefill_tokens < runs[False].of(TurnMetrics)[0].prefill_tokens


def test_a_look_ahead_never_changes_what_the_turn_answers_or_recalls(tmp_path: Path, kit: Path) -> None:
    """Words so far that recall something else: the turn recalls for all the words, and its prompt is what it
    would have been without looking ahead (only less of it was in the cache)."""
    request = kokoro("I was practising my cello all morning, and now I wonder, is my sister Ana coming this "
                     "weekend?", "jm_kumo")
    pcm = join(silence(0.5), espeak("hey jarvis", "en-gb+f2", 160), silence(0.3), request, silence(3.0))
    runs = []
    for ahead in (True, False):
        folder = tmp_path / f"memory-{ahead}"
        store_memories(folder, kit)
        off = None if ahead else lambda assistant: setattr(assistant, "foresight", None)
        run = run_listener(pcm, kit_config(memory=MemoryConfig(dir=str(folder))), prepare=off)
        assert run.failure is None, run.failure
        runs.append(run)
    recalled = [[m["text"] for m in r.of(Recalled)[0].memories] for r in runs]
    assert recalled[0] == recalled[1] and MEMORIES[0] in recalled[0]
    replies = [[dataclasses.asdict(e)["text"] for e in r.events if type(e).__name__ == "ReplyDone"] for r in runs]
    assert replies[0] == replies[1] and replies[0][0]
    played = [r.output for r in runs]
    assert len(played[0]) == len(played[1]) and np.abs(played[0] - played[1]).max() < 1e-3


@pytest.mark.parametrize("voice", [("jf_nezumi", 1.1), ("en-us+m3", 170)])
def test_a_reply_begun_with_memories_all_the_words_do_not_recall_starts_over(
        voice: tuple[str, float], tmp_path: Path, kit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last look heard "...my cello" and recalled the cello; the last words are about Ana. The reply began
    with the cello memory, and starts over with what all the words recall, before any of it is heard."""
    prompts: list[str] = []
    real = Ultravox.stream

    def stream(self, messages, audio, *args, **kwargs):  # type: ignore[no-untyped-def]
        prompts.append(llama3_prompt(messages, len(audio)))
        return real(self, messages, audio, *args, **kwargs)

    monkeypatch.setattr(Ultravox, "stream", stream)
    pcm = join(silence(0.5), espeak("hey jarvis", "en-us+f3", 165), silence(0.3),
               trim(say("After my cello lesson, is my sister Ana coming to visit us this weekend?", voice)),
               silence(3.0))
    cello = {"id": 2, "text": MEMORIES[1], "cosine": 0.6, "score": 0.6}

    def stale(assistant) -> None:  # type: ignore[no-untyped-def]
        assistant.foresight.recalled = lambda utterance: Recollection(memories=[cello], facts=[MEMORIES[3]])

    runs = []
    for ahead in (True, False):
        folder = tmp_path / f"memory-{ahead}"
        store_memories(folder, kit)
        off = stale if ahead else lambda assistant: setattr(assistant, "foresight", None)
        runs.append(run := run_listener(pcm, kit_config(memory=MemoryConfig(dir=str(folder))), prepare=off))
        assert run.failure is None, run.failure
    whole = max(p.count("<|audio|>") for p in prompts)  # (a turn begun at a pause mid-request and dropped heard less)
    began, again, *alone = [p for p in prompts if p.count("<|audio|>") == whole]
    assert MEMORIES[1] in began and MEMORIES[0] not in began  # begun with the look's memories
    assert again == alone[-1] and MEMORIES[0] in again  # started over: the prompt of all the words
    assert len(alone) == 2 and MEMORIES[0] not in alone[0]  # (no look: begun with the pinned facts, then the same)
    recalled = [[m["text"] for m in r.of(Recalled)[0].memories] for r in runs]
    assert recalled[0] == recalled[1] and MEMORIES[0] in recalled[0]
    played = [r.output for r in runs]
    assert len(played[0]) == len(played[1]) and np.abs(played[0] - played[1]).max() < 1e-3


LOOK_S = 3.0
"""How much longer each look's Whisper takes below: it is still hearing the user when they stop."""


@pytest.mark.parametrize("voice", [("jf_alpha", 1.0), ("en-us+m3", 160)])
def test_a_look_still_hearing_the_user_when_they_stop_starts_the_reply(
        voice: tuple[str, float], tmp_path: Path, kit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In real time, on a slow machine: the first look (vad.WAKE_LOOK_MS after the wake word) is still in Whisper
    when the user stops. It is not thrown away (the turn's Whisper queues behind it anyway): the reply starts with
    what it recalls, before the turn's own Whisper has all the words."""
    asked: list[float] = []
    looked: list[str] = []  # what each look heard
    real, transcribe = Ultravox.stream, WhisperTranscriber.transcribe
    wake = espeak("hey jarvis", "en-us+f3", 190)
    request = trim(say("My sister Ana, will she come to visit us this weekend?", voice))
    whole = len(wake) + len(request) + 0.2 * 16000  # (what the turn's Whisper hears, at least)

    def stream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(time.perf_counter())
        return real(self, *args, **kwargs)

    def slow_look(self, samples, *args, **kwargs):  # type: ignore[no-untyped-def]
        text = transcribe(self, samples, *args, **kwargs)
        if len(samples) < whole - 0.3 * 16000:  # a look (the turn hears all of the request)
            time.sleep(LOOK_S)
            looked.append(text)
        return text

    monkeypatch.setattr(Ultravox, "stream", stream)
    monkeypatch.setattr(WhisperTranscriber, "transcribe", slow_look)
    told = slow_turn_words(monkeypatch)
    pcm = join(silence(0.5), wake, silence(0.2), request, silence(3.0))
    # one look, about a second into the request, still in Whisper (LOOK_S more) when the user stops
    assert 1.5 + 0.3 < len(request) / 16000 < 1.5 + LOOK_S - 0.3
    folder = tmp_path / "memory"
    store_memories(folder, kit)
    run = run_listener(pcm, kit_config(memory=MemoryConfig(dir=str(folder))), paced=True)
    assert run.failure is None, run.failure
    assert len(looked) == 1 and looked[0].lower().replace(",", "").strip() not in ("", "hey jarvis")
    assert asked and told and asked[0] < told[-1] - SLOW_WHISPER_S / 2, "the reply waited for the turn's Whisper"
    (recalled,) = run.of(Recalled)  # the memories of all the words, whatever the look recalled
    assert recalled.memories[0]["text"] == MEMORIES[0]
    assert run.of(TurnMetrics)


def test_without_memory_nothing_is_looked_ahead() -> None:
    request = kokoro("Tell me something cheerful about the weather today, if you can think of anything.", "jf_alpha")
    pcm = join(silence(0.5), espeak("hey jarvis"), silence(0.3), request, silence(3.0))
    looks: list[int] = []
    run = run_listener(pcm, kit_config(), hooks={len(pcm) / 16000 - 0.1: lambda a: looks.append(a.foresight.looks)})
    assert run.failure is None and looks == [0] and run.of(TurnMetrics)


def test_long_speech_is_looked_at_only_while_one_whisper_pass_holds_it(tmp_path: Path, kit: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A look at 30 s of speech would take Whisper seconds, and the turn's Whisper would wait behind it."""
    from os1d.agent.foresight import LONGEST_S, Foresight

    store_memories(tmp_path / "memory", kit)
    looked: list[int] = []
    look = Foresight._look

    def counted(self, samples, *args, **kwargs):  # type: ignore[no-untyped-def]
        looked.append(len(samples))
        return look(self, samples, *args, **kwargs)

    monkeypatch.setattr(Foresight, "_look", counted)
    story = ("My sister Ana is coming this weekend, and I would love to cook something special for her, maybe a "
             "soup and some bread, and then we could take a long walk by the river if the weather stays dry.")
    pcm = join(silence(0.5), espeak("hey jarvis"), silence(0.3), kokoro(story, "jf_alpha", 0.9), silence(3.0))
    assert len(pcm) / 16000 > LONGEST_S + 4
    run = run_listener(pcm, kit_config(memory=MemoryConfig(dir=str(tmp_path / "memory"))))
    assert run.failure is None and run.of(TurnMetrics)
    assert looked and max(looked) <= LONGEST_S * 16000 < len(pcm)


def test_the_same_memories_in_another_order_make_the_same_prompt_start() -> None:
    """A look ahead ranks the memories by its words, the turn by all of them: the note must not depend on it."""
    from os1d.config import Config

    conv = Conversation(Config())
    conv.remember("hello there", "Hi! How are you?")
    memories = [{"id": i, "text": t, "cosine": 0.5, "score": 0.5} for i, t in enumerate(MEMORIES[:3], 1)]
    ahead = conv.context(Recollection(memories=memories[::-1], facts=[MEMORIES[3]]))
    turn = conv.messages(user := Message("user", "", audio=True), Recollection(memories=memories, facts=[MEMORIES[3]]))
    assert turn == [*ahead, user]
    note = ahead[-1].text.splitlines()
    assert note[1:] == [f"- {t}" for t in (MEMORIES[3], *MEMORIES[:3])]  # the facts, then oldest first
    other = conv.context(Recollection(memories=memories[:2], facts=[MEMORIES[3]]))
    assert other != ahead and other[:-1] == ahead[:-1]  # other memories: only the note differs
