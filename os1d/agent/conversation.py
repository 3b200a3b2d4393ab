"""The running conversation: recent messages, what memory recalls, and what each turn leaves behind."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..memory.facts import asks_name
from .prompt import Message, build_messages, stable_messages

log = logging.getLogger("os1d")
Run = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Recollection:
    """What memory brings to a turn."""

    memories: list[dict] = field(default_factory=list)
    """Recalled for the user's words: id, text, cosine, score (best first)."""
    facts: list[str] = field(default_factory=list)
    """Pinned facts about the user, always in the prompt."""
    ms: float = 0.0
    """Time recall took (not the wait for the words)."""


class Conversation:
    """History and memory; a turn reads its prompt from here and writes its exchange back."""

    def __init__(self, cfg: Config, clean: Callable[[str], str] = str.strip) -> None:
        self.cfg = cfg
        self.clean = clean
        """Turns a transcript into the user's words (the wake phrase removed)."""
        self.history: list[Message] = []
        self.memory: Awaitable[Any] | None = None
        """The long-term memory (os1d.memory.recall.Memories) once loaded; None: remember nothing."""
        self.run: Run | None = None
        """The memory lane."""
        self.summarize: Callable[[str], Awaitable[str]] | None = None
        """Summarises long input for memory.summarize."""
        self.on_remembered: Callable[[list[int]], None] = lambda ids: None
        self.on_history: Callable[..., None] = lambda forgotten=False: None
        """Called whenever the recent messages change (the next prompt's start can then be prefilled);
        forgotten=True when they were wiped."""
        self._writes: set[asyncio.Task[None]] = set()

    def words(self, transcript: str, woke: bool) -> str:
        """The user's words in a transcript: the wake phrase removed where a wake word opened the utterance."""
        return self.clean(transcript) if woke else transcript.strip()

    def messages(self, user: Message, recollection: Recollection) -> list[Message]:
        return build_messages(self.history, user, self._noted(recollection), self.cfg.conversation.history)

    def context(self, recollection: Recollection) -> list[Message]:
        """The prompt's start before the user's turn: persona, history and these memories (to prefill ahead)."""
        return build_messages(self.history, None, self._noted(recollection), self.cfg.conversation.history)

    @staticmethod
    def _noted(recollection: Recollection) -> list[str]:
        """The memory note's lines: the facts, then the memories oldest first (not by score: the same memories
        recalled in another order give the same note, whose cache a look ahead may already hold)."""
        memories = sorted(recollection.memories, key=lambda m: m.get("id", 0))
        return list(dict.fromkeys([*recollection.facts, *(m["text"] for m in memories)]))

    def stable_messages(self) -> list[Message]:
        """The start of the next turn's prompt, as far as it is known before the user speaks."""
        return stable_messages(self.history, self.cfg.conversation.history)

    async def loaded_memory(self) -> Any:
        """The memory once loaded, or None (not configured, or it failed to load: reported then)."""
        if self.memory is None or self.run is None:
            return None
        try:
            return await asyncio.shield(self.memory)  # (a turn dropped must not cancel the load)
        except Exception:
            return None

    async def recall(self, transcript: Awaitable[str] | str) -> Recollection:
        """Memories for the user's words, and the pinned facts."""
        memory = await self.loaded_memory()
        if memory is None:
            return Recollection()
        text = transcript if isinstance(transcript, str) else await transcript
        t0 = time.perf_counter()
        assert self.run is not None
        memories, facts = await self.run(lambda: (memory.recall(text) if text else [], memory.fact_texts()))
        return Recollection(memories, facts, round((time.perf_counter() - t0) * 1000, 1))

    def remember(self, user: str, reply: str, turn: str = "", interrupted: bool = False) -> None:
        """Add the exchange to the history, and (in the background) to long-term memory."""
        asked_name = bool(self.history) and self.history[-1].role == "assistant" and asks_name(self.history[-1].text)
        self.history += [Message("user", user), Message("assistant", f"{reply} …".strip() if interrupted else reply)]
        keep = max(self.cfg.conversation.history, 0)
        if len(self.history) > keep:  # the oldest half at once: the prompt's start then stays the same for a
            left = keep // 4 * 2 if keep >= 4 else keep  # while, and its cache is reused (whole exchanges kept)
            self.history = self.history[-left:] if left else []
        self.on_history()
        if self.memory is not None and user.strip():
            task = asyncio.ensure_future(self._store(user, reply, turn, asked_name))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    def said(self, text: str) -> None:
        """OS1 spoke on its own (a greeting): part of the conversation's context."""
        self.history.append(Message("assistant", text))
        self.on_history()

    async def _store(self, user: str, reply: str, turn: str, asked_name: bool) -> None:
        memory = await self.loaded_memory()
        if memory is None:
            return
        summary = ""
        if self.cfg.memory.summarize and self.summarize is not None and len(user.split()) > 30:
            try:
                summary = await self.summarize(user)
            except Exception as exc:  # the words are kept anyway
                log.warning("could not summarise for memory: %s", exc)
        try:
            assert self.run is not None
            ids = await self.run(memory.remember, user, reply, turn, summary, asked_name)
        except Exception as exc:
            log.warning("could not store the memory: %s", exc)
            return
        self.on_remembered(ids)

    async def flush(self) -> None:
        """Wait until every exchange so far is on disk."""
        while self._writes:
            await asyncio.wait(list(self._writes))

    async def forget_everything(self) -> int | None:
        """Wipe long-term memory and the recent messages; the memories removed (None: memory is off)."""
        memory = await self.loaded_memory()
        if memory is None:
            return None
        assert self.run is not None
        gone = await self.run(memory.store.forget_all)
        self.history.clear()
        self.on_history(forgotten=True)
        return int(gone)

    def cut_last_reply(self, spoken: str) -> None:
        """The user interrupted OS1: the last reply is kept only as far as it was heard."""
        if self.history and self.history[-1].role == "assistant":
            self.history[-1] = Message("assistant", f"{spoken} …".strip())
            self.on_history()
