"""The running conversation: recent messages, what memory recalls, and what each turn leaves behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ..config import Config
from .prompt import Message, build_messages


class Recall(Protocol):
    def recall(self, text: str, k: int) -> list[dict]: ...


class NoMemory:
    """Recall until the memory store exists: nothing is remembered, and nothing waits for the transcript."""

    needs_transcript = False

    def recall(self, text: str, k: int) -> list[dict]:
        return []


class Conversation:
    """History and memory; a turn reads its prompt from here and writes its exchange back."""

    def __init__(self, cfg: Config, memory: Recall | None = None, clean: Callable[[str], str] = str.strip) -> None:
        self.cfg = cfg
        self.memory = memory or NoMemory()
        self.clean = clean
        """Turns a transcript into the user's words (the wake phrase removed)."""
        self.history: list[Message] = []

    def messages(self, user: Message, memories: list[str]) -> list[Message]:
        return build_messages(self.history, user, memories, self.cfg.conversation.history)

    async def recall(self, transcript: Awaitable[str]) -> tuple[list[dict], float]:
        """Memories for the user's words, and the milliseconds recall took (not the wait for the words)."""
        if not getattr(self.memory, "needs_transcript", True):
            return [], 0.0
        text = await transcript
        t0 = time.perf_counter()
        found = await asyncio.to_thread(self.memory.recall, text, self.cfg.memory.top_k) if text else []
        return found, round((time.perf_counter() - t0) * 1000, 1)

    def remember(self, user: str, reply: str) -> None:
        self.history += [Message("user", user), Message("assistant", reply)]
        keep = max(self.cfg.conversation.history, 0)
        self.history = self.history[-keep:] if keep else []

    def cut_last_reply(self, spoken: str) -> None:
        """The user interrupted OS1: the last reply is kept only as far as it was heard."""
        if self.history and self.history[-1].role == "assistant":
            self.history[-1] = Message("assistant", f"{spoken} …".strip())
