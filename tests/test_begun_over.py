"""A reply begun over, because all the words recall other memories than the look ahead had (os1d/agent/reply.py):
the first try's words are the second's draft, and the first try's voice is used for every piece that comes out
the same, through the daemon's own listening and turns with the kit's real models (Whisper, MiniLM, usearch,
Kokoro, the tiny Ultravox stand-in)."""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_foresight import MEMORIES, store_memories

from harness import kit_config, run_listener
from os1d.agent.conversation import Recollection
from os1d.agent.prompt import llama3_prompt
from os1d.agent.ultravox import Ultravox
from os1d.audio.chunker import Chunker
from os1d.audio.tts import KokoroVoice
from os1d.config import MemoryConfig
from os1d.events import ReplyDone
from speech import espeak, join, silence
from wake_requests import say, trim

SENTENCE = "Hello from the tiny stand-in model — nice to hear you, café ☕."
"""What the stand-in says to anything."""
FIRST_TRIES = [  # what the first try said (begun with the cello's memory), and who asks
    (None, ("jf_nezumi", 1.1)),  # the same as the second try: the stand-in says one sentence to anything
    ("Hello from the tiny stand-in model — my cello friend!", ("en-us+m3", 165)),  # the same first piece only
    ("Your cello, of course. Lovely.", ("jf_alpha", 0.95)),  # nothing the same
]


def pieces(text: str) -> list[str]:
    chunker = Chunker()
    return chunker.feed(text) + chunker.flush()


@pytest.mark.parametrize("first_try,voice", FIRST_TRIES, ids=["same", "same-start", "other"])
def test_a_reply_begun_over_keeps_the_first_tries_voice_where_its_words_are_the_same(
        first_try: str | None, voice: tuple[str, float], tmp_path: Path, kit: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_stream, real_synthesize = Ultravox.stream, KokoroVoice.synthesize
    asked: list[tuple[float, str, str, object]] = []  # when, the prompt, the draft, and the usage it filled
    voiced: list[tuple[float, str]] = []

    def stream(self, messages, audio, sampling, cancel=None, usage=None, draft=""):  # type: ignore[no-untyped-def]
        prompt = llama3_prompt(messages, len(audio))
        asked.append((time.perf_counter(), prompt, draft, usage))
        if first_try is not None and MEMORIES[0] not in prompt:  # (without the sister's memory: another answer)
            return iter(re.findall(r"\S+\s*", first_try))
        return real_stream(self, messages, audio, sampling, cancel, usage, draft)

    def synthesize(self, text, stop=None):  # type: ignore[no-untyped-def]
        voiced.append((time.perf_counter(), text))
        return real_synthesize(self, text, stop)

    monkeypatch.setattr(Ultravox, "stream", stream)
    monkeypatch.setattr(KokoroVoice, "synthesize", synthesize)
    cello = {"id": 2, "text": MEMORIES[1], "cosine": 0.6, "score": 0.6}

    def stale(assistant) -> None:  # type: ignore[no-untyped-def]
        assistant.foresight.recalled = lambda utterance: Recollection(memories=[cello], facts=[MEMORIES[3]])

    pcm = join(silence(0.5), espeak("hey jarvis", "en-us+f3", 165), silence(0.3),
               trim(say("After my cello lesson, is my sister Ana coming to visit us this weekend?", voice)),
               silence(3.0))
    runs = {}
    for ahead in (True, False):
        folder = tmp_path / f"memory-{ahead}"
        store_memories(folder, kit)
        asked.clear()
        voiced.clear()
        off = stale if ahead else lambda assistant: setattr(assistant, "foresight", None)
        runs[ahead] = (run := run_listener(pcm, kit_config(memory=MemoryConfig(dir=str(folder))), prepare=off))
        assert run.failure is None, run.failure
        assert [e.text for e in run.of(ReplyDone)] == [SENTENCE]
        if not ahead:
            break
        whole = max(p.count("<|audio|>") for _, p, _, _ in asked)  # (turns begun at a pause and dropped: less)
        began, again = [(t, p, d, u) for t, p, d, u in asked if p.count("<|audio|>") == whole][-2:]
        assert MEMORIES[1] in began[1] and MEMORIES[0] not in began[1] and MEMORIES[0] in again[1]
        said_first, draft, usage = first_try if first_try is not None else SENTENCE, again[2], again[3]
        assert draft and said_first.startswith(draft)  # the draft: what the first try had said when it was halted
        shared = len(model_tokens(kit, SENTENCE, draft))  # (taken: as much of it as the model says too)
        assert (usage.drafted, usage.accepted) == (len(model_tokens(kit, draft, draft)), shared)
        assert shared > 0 if said_first.startswith("Hello") else shared == 0
        # each piece of the reply was voiced once, by one try or the other (and the first try's other pieces at most
        # once, or stopped once they were no use)
        ours = Counter(text for t, text in voiced if t > began[0])
        assert all(ours[p] == 1 for p in pieces(SENTENCE)), ours
        assert all(ours[p] <= 1 for p in pieces(said_first)), ours
        if first_try is None:
            assert sorted(ours) == sorted(pieces(SENTENCE))
    played = [r.output for r in runs.values()]  # the same reply, the same sound, where it began over or not
    assert len(played[0]) == len(played[1]) and np.abs(played[0] - played[1]).max() < 1e-3


@functools.cache
def tokenizer(kit: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(kit / "ultravox"))


def model_tokens(kit: Path, text: str, other: str) -> list[int]:
    """The tokens `text` begins with that `other` begins with too."""
    a, b = (tokenizer(kit).encode(t, add_special_tokens=False) for t in (text, other))
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return a[:n]
