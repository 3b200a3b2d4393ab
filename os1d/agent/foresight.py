"""While the user speaks: recall the memories for what they have said so far, and prefill them.

Every 1.5 s of speech, the first a second after the wake word (vad.Midway), Whisper hears the speech so far (its
first try only: a look's words are a guess, and where Whisper is unsure each retry costs as much again, which a turn
starting meanwhile would wait for), memory recalls for those words, and the prompt's start with the memories
recalled (persona, history, memory note) runs through the decoder in the LLM lane, while the cores are otherwise
idle. A turn that hears the audio starts its reply with the last look's memories (where no look heard words yet,
with the pinned facts alone), before Whisper has the last words, and recalls again for all the words when it has
them: the same memories (the usual case) and the reply, already under way, goes on; others, and it starts over with
them. So the memories are always those of all the words, and where the look got them right the model's cache already
holds them and Whisper is off the critical path. A look still hearing the user when they pause is not thrown away
(the turn's own Whisper would wait behind it anyway, in the same lane): it goes on to its recall, and the turn
starts with that, without the prefill (the turn needs the decoder now)."""

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
    """One look ahead at a time; when the user stops, a look still running ends with its recall (settle())."""

    def __init__(self, lanes: Lanes, conversation: Conversation) -> None:
        self.lanes, self.conv = lanes, conversation
        self.task: asyncio.Task[None] | None = None
        self.looks = 0
        """Looks that prefilled memories."""
        self._recalled: tuple[float, Recollection] | None = None
        """The last look's recollection, and where on the input clock its utterance began."""
        self._running: tuple[float, asyncio.Future[Recollection | None]] | None = None
        """The look under way: where its utterance began, and its recollection to come (None: it recalls nothing)."""
        self._settled = False
        """The user has stopped: the look under way ends with its recall."""

    def __call__(self, utterance: Utterance, hint: str = "") -> None:
        """The user is still speaking and has said `utterance` so far (beginning with the wake phrase `hint`)."""
        if self.conv.memory is not None and (self.task is None or self.task.done()) \
                and utterance.duration <= LONGEST_S:
            self._settled = False
            recalled: asyncio.Future[Recollection | None] = asyncio.get_running_loop().create_future()
            self._running = (utterance.start, recalled)
            self.task = asyncio.ensure_future(self._look(utterance.samples, utterance.start, hint, recalled))
            self.task.add_done_callback(lambda _: recalled.done() or recalled.set_result(None))  # (however it ends)

    def recalled(self, utterance: Utterance) -> Recollection | asyncio.Future[Recollection | None] | None:
        """What the last look at this utterance recalled, or will recall once the look under way has heard the
        words so far (None: no look at it got that far)."""
        if self._running is not None and self._running[0] == utterance.start and not self._running[1].done():
            return self._running[1]
        if self._recalled is None or self._recalled[0] != utterance.start:
            return None
        return self._recalled[1]

    def settle(self) -> None:
        """The user has stopped: a look that has its recall stops (the turn needs the decoder), one still hearing
        the words goes on to its recall, for the turn (recalled()), and prefills nothing."""
        self._settled = True
        if self._running is not None and self._running[1].done():
            self.cancel()

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _look(self, samples: np.ndarray, start: float, hint: str,
                    recalled: asyncio.Future[Recollection | None]) -> None:
        try:
            llm = await asyncio.shield(self.lanes.speech_llm)
            precache = getattr(llm, "precache", None)
            if precache is None or await self.conv.loaded_memory() is None:
                return
            stt = await asyncio.shield(self.lanes.transcriber)
            text = await self.lanes.stt(functools.partial(stt.transcribe, hint=hint, retries=False), samples)
            words = self.conv.words(text, woke=bool(hint))
            if not words:
                return
            recollection = await self.conv.recall(words)
            self._recalled = (start, recollection)
            if not recalled.done():
                recalled.set_result(recollection)
            if self._settled or (not recollection.memories and not recollection.facts):
                return
            await self.lanes.llm(self.lanes.share.first(precache), self.conv.context(recollection))
            self.looks += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # only a head start is lost: the turn does it all
            log.debug("could not look ahead at the user's words: %s", exc)
