"""While the user speaks: recall the memories for what they have said so far, and prefill them.

Every 1.5 s of speech (vad.Midway), Whisper hears the speech so far, memory recalls for those words, and the
prompt's start with the memories recalled (persona, history, memory note) runs through the decoder in the LLM
lane, while the cores are otherwise idle. The turn still recalls for the whole utterance and builds its own
prompt: where it recalls the same memories, the model's cache already holds them and only the user's turn is
left to prefill after they finish (about 60 tokens fewer: 0.2 s on 2 cores with the full-size model); where
it recalls others, the persona and history are reused, as before.
"""

from __future__ import annotations

import asyncio
import functools
import logging

import numpy as np

from .conversation import Conversation
from .turn_parts import Lanes

log = logging.getLogger("os1d")


class Foresight:
    """One look ahead at a time; a look still running when the user stops is cancelled (the turn goes first)."""

    def __init__(self, lanes: Lanes, conversation: Conversation) -> None:
        self.lanes, self.conv = lanes, conversation
        self.task: asyncio.Task[None] | None = None
        self.looks = 0
        """Looks that prefilled memories."""

    def __call__(self, samples: np.ndarray, hint: str = "") -> None:
        """The user is still speaking and has said `samples` so far (beginning with the wake phrase `hint`)."""
        if self.conv.memory is not None and (self.task is None or self.task.done()):
            self.task = asyncio.ensure_future(self._look(samples, hint))

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _look(self, samples: np.ndarray, hint: str) -> None:
        try:
            llm = await asyncio.shield(self.lanes.speech_llm)
            precache = getattr(llm, "precache", None)
            if precache is None or await self.conv.loaded_memory() is None:
                return
            stt = await asyncio.shield(self.lanes.transcriber)
            text = await self.lanes.stt(functools.partial(stt.transcribe, hint=hint), samples)
            words = self.conv.words(text, woke=bool(hint))
            if not words:
                return
            recollection = await self.conv.recall(words)
            if not recollection.memories and not recollection.facts:
                return
            await self.lanes.llm(self.lanes.share.first(precache), self.conv.context(recollection))
            self.looks += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # only a head start is lost: the turn does it all
            log.debug("could not look ahead at the user's words: %s", exc)
