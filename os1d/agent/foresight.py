"""While the user speaks: recall the memories for what they have said so far, and prefill them.

Every 1.5 s of speech (vad.Midway), Whisper hears the speech so far, memory recalls for those words, and the
prompt's start with the memories recalled (persona, history, memory note) runs through the decoder in the LLM
lane, while the cores are otherwise idle. A turn that hears the audio starts its reply with the last look's
memories, before Whisper has the last words, and recalls again for all the words when it has them: the same
memories (the usual case) and the reply, already under way, goes on; others, and it starts over with them. So
the memories are always those of all the words, and where the look got them right the model's cache already
holds them and Whisper is off the critical path."""

from __future__ import annotations

import asyncio
import functools
import logging

import numpy as np

from ..audio.vad import Utterance
from .conversation import Conversation, Recollection
from .turn_parts import Lanes

log = logging.getLogger("os1d")
LONGEST_S = 10.0
"""Speech so far longer than this is not looked at: one Whisper pass (whisper.PIECE_S) no longer holds it, and
its cost grows with it. A look can't be stopped midway, so the turn's own Whisper would wait behind it."""


class Foresight:
    """One look ahead at a time; a look still running when the user stops is cancelled (the turn goes first)."""

    def __init__(self, lanes: Lanes, conversation: Conversation) -> None:
        self.lanes, self.conv = lanes, conversation
        self.task: asyncio.Task[None] | None = None
        self.looks = 0
        """Looks that prefilled memories."""
        self._recalled: tuple[float, Recollection] | None = None
        """The last look's recollection, and where on the input clock its utterance began."""

    def __call__(self, utterance: Utterance, hint: str = "") -> None:
        """The user is still speaking and has said `utterance` so far (beginning with the wake phrase `hint`)."""
        if self.conv.memory is not None and (self.task is None or self.task.done()) \
                and utterance.duration <= LONGEST_S:
            self.task = asyncio.ensure_future(self._look(utterance.samples, utterance.start, hint))

    def recalled(self, utterance: Utterance) -> Recollection | None:
        """What the last look at this utterance recalled (None: no look at it got that far)."""
        if self._recalled is None or self._recalled[0] != utterance.start:
            return None
        return self._recalled[1]

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _look(self, samples: np.ndarray, start: float, hint: str) -> None:
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
            self._recalled = (start, recollection)
            if not recollection.memories and not recollection.facts:
                return
            await self.lanes.llm(self.lanes.share.first(precache), self.conv.context(recollection))
            self.looks += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # only a head start is lost: the turn does it all
            log.debug("could not look ahead at the user's words: %s", exc)
