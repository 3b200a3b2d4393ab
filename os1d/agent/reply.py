"""One try at a turn's reply: the LLM's text as it comes, cut into speakable pieces that Kokoro voices beside it,
all of it out of one queue in order.

A reply begun over (all the words recalled other memories than the words so far) is a second try, made with the
first try at hand: the first try's text is its draft (the LLM checks it in one prefill and takes, at no step of
its own, what it would have said anyway), and each piece that comes out the same as the first try's is not
voiced again: the first try's audio is used, often ready by then. From the first word that differs, the first
try's voice stops, and what it had not voiced is voiced anew.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio.chunker import Chunker
from ..audio.tts import Stop
from ..errors import first_line
from .decoding import Sampling
from .prompt import Message
from .turn_parts import Lanes, SpeechLLM, Synthesizer
from .ultravox import Usage

log = logging.getLogger("os1d")


class _End:
    """Marks the end of a stream."""


@dataclass
class Voiced:
    """A piece handed to the voice; its audio once voiced (None: the voice failed on it, or was stopped)."""

    text: str
    audio: asyncio.Future[np.ndarray | None]
    same: Voiced | None = None
    """The first try's piece with the same words, in the same place: its audio is this one's."""


class Take:
    """One try at the reply, started at once. Out of `out` come ("delta", text), ("audio", (samples, piece)) in
    order, and ("end", None) once from each of its `ends` workers."""

    def __init__(self, lanes: Lanes, llm: SpeechLLM, messages: list[Message], audio: Any,
                 voice: Synthesizer | None, sampling: Sampling, usage: Usage, times: dict[str, float],
                 failed: Callable[[str], None], before: Take | None = None) -> None:
        self.lanes, self._sampling, self._usage, self._times, self._failed = lanes, sampling, usage, times, failed
        self._before = before
        self.out: asyncio.Queue[Any] = asyncio.Queue()
        self.text: list[str] = []
        """The deltas so far."""
        self.voiced: list[Voiced] = []
        """The pieces handed to the voice so far."""
        self._pieces: asyncio.Queue[Any] = asyncio.Queue()
        self._cancel, self._stop = threading.Event(), Stop()
        self._same = 0
        """How many of the first pieces are the first try's."""
        self._keep: int | None = None
        """Voice only this many pieces (set by a try begun after this one)."""
        self._voicing: int | None = None
        for name in ("first_token", "first_audio"):
            times.pop(name, None)
        draft = "".join(before.text) if before is not None else ""
        if before is not None:  # (its voice's timings are no longer the reply's)
            before._times = {}
        self._llm = asyncio.ensure_future(self._generate(llm, messages, audio, draft))
        self._voice = asyncio.ensure_future(self._synthesize(voice)) if voice is not None else None
        self.ends = 1 + (self._voice is not None)

    async def halt(self) -> None:
        """Stop the LLM (within one step); the voice goes on with the pieces it has. Its text is then final."""
        self._cancel.set()
        await asyncio.wait([self._llm])

    def keep(self, pieces: int) -> None:
        """Voice no more than the first `pieces` (the one being voiced stops at once if it is not among them)."""
        self._keep = pieces
        if self._voicing is not None and self._voicing >= pieces:
            self._stop()

    async def drop(self) -> None:
        """Stop all of it (the LLM within one step, a synthesis between two nodes) and wait until it has."""
        self._cancel.set()
        self._stop()
        work = [w for w in (self._llm, self._voice) if w is not None]
        for w in work:
            w.cancel()
        await asyncio.wait(work)
        for w in work:  # (retrieved: the failure of a try dropped or begun over is nobody's news)
            if not w.cancelled():
                w.exception()

    async def finished(self) -> None:
        """Wait for its workers; their errors, if any, are raised."""
        for w in (self._llm, self._voice):
            if w is not None:
                await w

    # -- the text ------------------------------------------------------------------------------------------
    async def _generate(self, llm: SpeechLLM, messages: list[Message], audio: Any, draft: str) -> None:
        """LLM text → deltas (in order, through `out`) and speakable pieces for the voice."""
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[Any] = asyncio.Queue()
        cancel = self._cancel

        def work() -> None:
            try:
                for piece in llm.stream(messages, audio, self._sampling, cancel, self._usage, draft):
                    loop.call_soon_threadsafe(deltas.put_nowait, piece)
                    self.lanes.share.wait(cancel)  # (the next token only once no piece is being voiced)
            except BaseException as exc:  # handed to the loop, raised there
                loop.call_soon_threadsafe(deltas.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(deltas.put_nowait, _End())

        producer = asyncio.ensure_future(self.lanes.llm(work))
        chunker, agreed = Chunker(), 0  # (agreed: the characters said so far, all as the draft has them)
        try:
            while not isinstance(item := await deltas.get(), _End):
                if isinstance(item, BaseException):
                    raise item
                self._times.setdefault("first_token", time.perf_counter())
                self.text.append(item)
                self.out.put_nowait(("delta", item))
                for piece in chunker.feed(item):
                    self._piece(piece)
                if self._before is not None:
                    if draft.startswith(item, agreed):
                        agreed += len(item)
                    else:
                        self._parted()
            if not cancel.is_set():  # (a try halted midway leaves its last words to the next try)
                for piece in chunker.flush():
                    self._piece(piece)
            await producer
        finally:
            self._parted()
            cancel.set()
            self._pieces.put_nowait(_End())
            self.out.put_nowait(("end", None))
            await asyncio.wait([producer])

    def _piece(self, text: str) -> None:
        before, same = self._before, None
        if before is not None and self._same == len(self.voiced) < len(before.voiced):
            if before.voiced[self._same].text == text:
                same, self._same = before.voiced[self._same], self._same + 1
            else:
                self._parted()
        voiced = Voiced(text, asyncio.get_running_loop().create_future(), same)
        self.voiced.append(voiced)
        self._pieces.put_nowait(voiced)

    def _parted(self) -> None:
        """The words went another way than the first try's (or ended): its voice keeps only the same pieces."""
        if self._before is not None:
            self._before.keep(self._same)
            self._before = None

    # -- the voice -----------------------------------------------------------------------------------------
    async def _synthesize(self, voice: Synthesizer) -> None:
        """Each piece voiced in the TTS lane, the next while the one before plays. A piece the voice fails on is
        left unsaid (reported once): the rest of the reply is still spoken, and all of it shown and kept."""
        failed, index = False, 0
        try:
            while not isinstance(voiced := await self._pieces.get(), _End):
                samples = await asyncio.shield(voiced.same.audio) if voiced.same is not None else None
                if samples is None and (self._keep is None or index < self._keep):
                    self._voicing = index
                    try:
                        samples = await self.lanes.tts(self.lanes.share.voiced(voice.synthesize), voiced.text,
                                                       self._stop)
                    except Exception as exc:
                        if self._stop.stopped:  # dropped, or kept from what a later try says otherwise
                            break
                        log.warning("could not say %r (%s: %s)", voiced.text, type(exc).__name__, first_line(exc))
                        if not failed:
                            self._failed(f"OS1 could not say part of its reply ({first_line(exc)}); "
                                         "the text is complete")
                        failed = True
                    finally:
                        self._voicing = None
                voiced.audio.set_result(samples)
                index += 1
                if samples is not None:
                    self._times.setdefault("first_audio", time.perf_counter())
                    if len(samples):
                        self.out.put_nowait(("audio", (samples, voiced.text)))
        finally:
            for v in self.voiced:  # (a try begun after this one must not wait for what this one will not voice)
                if not v.audio.done():
                    v.audio.set_result(None)
            self.out.put_nowait(("end", None))
