"""Between turns, prefill the start of the next prompt (persona and history) in the LLM lane.

When a turn ends, its user words and reply join the history: the next prompt starts with them. Running
them through the decoder now, while OS1 speaks or nobody talks, leaves the next turn only the memories
and the user's new words to prefill after they finish speaking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .prompt import Message
from .turn_parts import Lanes

log = logging.getLogger("os1d")


class Precache:
    """Conversation.on_history → the model's precache, one at a time, always for the newest history."""

    def __init__(self, lanes: Lanes, messages: Callable[[], list[Message]]) -> None:
        self.lanes, self.messages = lanes, messages
        self._latest: list[Message] | None = None
        self._forget = False
        self.task: asyncio.Task[None] | None = None
        self.tokens = 0
        """Tokens prefilled ahead of turns so far."""

    def __call__(self, forgotten: bool = False) -> None:
        """The history changed; forgotten: it was wiped, and the model's cache of it must go too."""
        self._latest = self.messages()
        self._forget = self._forget or forgotten
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            llm = await asyncio.shield(self.lanes.speech_llm)
        except Exception:  # no model: nothing to prefill (its load error is reported where it is loaded)
            return
        precache = getattr(llm, "precache", None)
        while precache is not None and (messages := self._latest) is not None:
            try:
                if self._forget:
                    self._forget = False
                    await self.lanes.llm(llm.forget_cache)
                self.tokens += await self.lanes.llm(self.lanes.share.first(precache), messages)
            except Exception as exc:  # only a head start is lost: the turn prefills it
                log.warning("could not prefill the conversation ahead of the next turn: %s", exc)
                return
            if self._latest is messages:
                self._latest = None

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
