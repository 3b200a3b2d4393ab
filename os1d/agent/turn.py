"""One turn: Whisper and the audio encoder side by side, recall, the reply streamed from the LLM, cut into
speakable pieces and voiced by Kokoro while the pieces before them play.

A turn may start before the user has surely finished (when a short silence begins). Until it is
committed, everything it would say or play is held back by its gate; if the user goes on, it is
dropped. So the reply never starts before the user has finished, and is ready soon after.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import UserError
from ..events import Error, Event, Recalled, ReplyDelta, ReplyDone, Transcript, TurnMetrics
from .conversation import Conversation
from .prompt import Message
from .reply import Take
from .turn_parts import Gate, Lanes, NothingHeard, Request, Run, SpeechLLM, Synthesizer, Transcriber, Unsure, Voice
from .ultravox import Sampling, Usage

__all__ = ["Lanes", "NothingHeard", "Request", "SpeechLLM", "Synthesizer", "Transcriber", "Turn", "Voice"]


_TURNS = itertools.count(1)
log = logging.getLogger("os1d")


class Turn:
    """One exchange. start() it, commit() it once the user has finished; interrupt() stops it."""

    def __init__(self, request: Request, conversation: Conversation, lanes: Lanes, emit: Callable[[Event], None],
                 clock: Callable[[], float], speak: Voice | None, sampling: Sampling) -> None:
        self.request, self.conv, self.lanes, self._emit, self._clock = request, conversation, lanes, emit, clock
        self._speak, self._sampling = speak, sampling
        self.gate = Gate()
        self.id = f"{int(time.time())}-{next(_TURNS)}"
        self.task: asyncio.Task[str] | None = None
        self.committed_at: float | None = None
        self.spoken: str | None = None
        """What the user heard of the reply, once it was interrupted (None: not interrupted, or no voice)."""
        self.played = False
        """Some of the reply went to the speaker."""
        self._times: dict[str, float] = {}
        self._spans: dict[str, tuple[float, float]] = {}
        self._user_text = request.text
        self._unsure = Unsure()
        self.usage = Usage()
        """What the prompt cost the model (filled in by the backend)."""

    def start(self) -> asyncio.Task[str]:
        self.task = asyncio.ensure_future(self._run())
        return self.task

    def commit(self, at: float) -> None:
        """The user has finished (the hangover confirmed it): say and play what the turn has, and the rest."""
        self.committed_at = at
        self.gate.commit()

    def interrupt(self, spoken: str | None = None) -> None:
        """Cancel; `spoken` is what was heard of the reply (kept in the history, marked interrupted)."""
        self.spoken = spoken
        if self.task is None:
            return
        if not self.task.done():
            self.task.cancel()
        elif not self.task.cancelled():
            self.task.exception()  # retrieved: a dropped turn's failure is nobody's news

    def _say(self, make: Callable[[], Event]) -> None:
        """Emit an event, made (and so timed) when the gate lets it through."""
        self.gate(lambda: self._emit(make()))

    # -- the turn ------------------------------------------------------------------------------------------
    async def _run(self) -> str:
        req, lanes = self.request, self.lanes
        for loading in (lanes.transcriber if req.samples is not None else None, lanes.speech_llm):
            if loading is not None:
                await asyncio.wait([asyncio.ensure_future(loading)])
        self._times["start"] = time.perf_counter()  # (waiting for models still loading is not the turn's)
        transcript = await self._transcript()
        takes: list[Take] = []
        reply: list[str] = []
        said: asyncio.Future[None] | None = None
        try:
            llm = await asyncio.shield(lanes.speech_llm)
            audio, heard_text = None, req.text
            if req.samples is not None and llm.hearing.mode == "text":
                heard_text = await transcript  # the model hears the words: no encoder at all
                if not heard_text:
                    raise NothingHeard
            elif req.samples is not None:
                audio = await self._timed("encoder", lanes.llm, llm.prepare_audio, req.samples)
            guess = req.recalled if audio is not None else None  # (the model hears the audio, not the words)
            if isinstance(guess, asyncio.Future):  # a look still hearing the words so far (before the turn's own)
                guess = await asyncio.shield(guess)
            if guess is None and audio is not None:  # no look heard words: the pinned facts, and no memories yet
                guess = await self.conv.recall("")
            recollection = guess if guess is not None else await self.conv.recall(transcript)
            user = Message("user", heard_text, audio=audio is not None)
            messages = self.conv.messages(user, recollection)
            voice = await self._voice()
            take = self._take(takes, llm, messages, audio, voice)
            final, sure = messages, guess is None
            while True:
                self._user_text = await self._unsure.words(transcript, sure, self._clean)
                if req.samples is not None and not self._user_text:
                    raise NothingHeard
                if guess is None:
                    break
                # begun with the memories of the words so far: are they those of all the words?
                recollection = await self.conv.recall(self._user_text)
                final = self.conv.messages(user, recollection)
                if final == messages or transcript.done():
                    break
                sure = True  # words Whisper is unsure of that recall other memories: its retries decide
            if final != messages:
                log.debug("all the words recalled other memories than the look ahead: the reply starts over")
                await take.halt()
                take = self._take(takes, llm, final, audio, voice, before=take)
            if req.samples is not None:
                self._times["heard"] = time.perf_counter()
            memories, recall_ms = recollection.memories, recollection.ms
            if transcript.done():
                self._introduce(memories)
            else:  # the first try's words agree with the look ahead: the reply goes on while Whisper tries again
                log.debug("Whisper is unsure of %r and tries again; the reply goes on meanwhile", self._user_text)
                said = asyncio.ensure_future(self._introduce_later(transcript, memories))
                if voice is None:
                    self._unsure.retry.set()
            await self._deliver(take, reply, said)
            await take.finished()  # (its errors, if any)
        except BaseException as exc:
            self._unsure.retry.set()
            transcript.cancel()
            if said is not None:
                said.cancel()
            await asyncio.gather(*(t.drop() for t in takes))
            await asyncio.wait([transcript] + ([said] if said is not None else []))
            if isinstance(exc, asyncio.CancelledError) and self.gate.open:
                heard = self.spoken if self.spoken is not None else "".join(reply).strip()
                self._emit(ReplyDone(self._clock(), text=heard, interrupted=True))
                self.conv.remember(self._user_text, heard, self.id, interrupted=True)
            raise
        await asyncio.gather(*(t.drop() for t in takes[:-1]))  # (the first try's voice has ended or been stopped)
        text = "".join(reply).strip()
        if self.played and self._speak is not None:
            self.gate(self._speak.complete)
        self.gate(lambda: self._finish(text, recall_ms))
        return text

    def _take(self, takes: list[Take], llm: SpeechLLM, messages: list[Message], audio: Any,
              voice: Synthesizer | None, before: Take | None = None) -> Take:
        """Start a try at the reply (the LLM, and the voice beside it)."""
        self.usage = Usage()
        takes.append(Take(self.lanes, llm, messages, audio, voice, self._sampling, self.usage, self._times,
                          self._voice_failed, before=before))
        return takes[-1]

    def _clean(self, text: str) -> str:
        """Whisper's text → the user's words (the wake phrase removed where a wake word opened the turn)."""
        return self.conv.words(text, woke=bool(self.request.hint))

    def _introduce(self, memories: list[str]) -> None:
        """Say what the user said, and the memories recalled for it."""
        words, seconds = self._user_text, self._seconds("stt")
        self._say(lambda: Transcript(self._clock(), role="user", text=words, seconds=seconds))
        if memories:
            self._say(lambda: Recalled(self._clock(), memories=memories))

    async def _introduce_later(self, transcript: asyncio.Future[str], memories: list[str]) -> None:
        """Once Whisper's retries end: its words (those of its first try, if the retries heard none)."""
        self._user_text = await transcript or self._user_text
        self._introduce(memories)

    def _voice_failed(self, message: str) -> None:
        self._say(lambda: Error(self._clock(), source="tts", message=message))

    async def _transcript(self) -> asyncio.Future[str]:
        """The user's words: typed, or Whisper's (started now, beside the audio encoder)."""
        req = self.request
        if req.samples is None:
            done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            done.set_result(req.text)
            return done
        stt = await asyncio.shield(self.lanes.transcriber)
        try:
            llm = await asyncio.shield(self.lanes.speech_llm)
        except UserError:  # no model to answer with: still show what the user said
            text = self.conv.clean(await self.lanes.stt(functools.partial(stt.transcribe, hint=req.hint), req.samples))
            self._say(lambda: Transcript(self._clock(), role="user", text=text))
            raise

        # (only a reply that hears the audio can go on before Whisper has all the words: one that hears the words
        # needs them all, and Whisper need not stop for it)
        first = self._unsure.listen() if llm.hearing.mode != "text" else None

        def hear(samples: np.ndarray) -> str:  # (the wake phrase is removed only where a wake word opened the turn)
            heard = self._clean(stt.transcribe(samples, hint=req.hint, unsure=first))
            if not heard and (request := req.after_wake()) is not None:  # a request Whisper took for background
                log.debug("Whisper heard only the wake phrase, though speech followed it; hearing that alone")
                heard = self.conv.words(stt.transcribe(request), woke=True)
            return heard

        return asyncio.ensure_future(self._timed("stt", self.lanes.stt, hear, req.samples))

    async def _voice(self) -> Synthesizer | None:
        if self._speak is None or self.lanes.voice is None:
            return None
        try:
            return await asyncio.shield(self.lanes.voice)  # (a turn dropped must not cancel the load)
        except UserError:  # reported when it failed to load; the reply is text only
            return None

    async def _timed(self, name: str, run: Run, fn: Callable[..., Any], *args: Any) -> Any:
        def work() -> Any:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self._spans[name] = (start, time.perf_counter())
        return await run(work)

    def _seconds(self, name: str) -> float:
        a, b = self._spans.get(name, (0.0, 0.0))
        return round(b - a, 3)

    async def _deliver(self, take: Take, reply: list[str], said: asyncio.Future[None] | None) -> None:
        """Say the deltas and play the pieces, in order, through the gate, until every worker ended. Until `said`
        (the user's words shown) is done, the deltas are held back; the pieces play."""
        held: list[str] = []

        def release(_: object = None) -> None:
            for v in held:
                self._say(lambda v=v: ReplyDelta(self._clock(), text=v))
            held.clear()

        if said is not None:
            said.add_done_callback(release)
        ended = 0
        while ended < take.ends:
            kind, value = await take.out.get()
            if kind == "end":
                ended += 1
            elif kind == "delta":
                reply.append(value)
                if said is not None and (held or not said.done()):
                    held.append(value)
                else:
                    self._say(lambda v=value: ReplyDelta(self._clock(), text=v))
            elif self._speak is not None:
                self._unsure.retry.set()
                speak, (samples, piece) = self._speak, value
                self.played = True
                self.gate(lambda s=samples, p=piece: speak.play(s, p))
        self._unsure.retry.set()
        if said is not None:
            await said
            release()

    def _finish(self, text: str, recall_ms: float) -> None:
        self._emit(ReplyDone(self._clock(), text=text))
        self.conv.remember(self._user_text, text, self.id)
        self._emit(self.metrics(recall_ms))

    def metrics(self, recall_ms: float) -> TurnMetrics:
        """Latency in milliseconds; total = end of the user's speech → first reply audio (token, without voice)."""
        t, req = self._times, self.request
        ms = lambda a, b: None if a is None or b is None else round((b - a) * 1000, 1)  # noqa: E731
        stt, heard = self._spans.get("stt"), t.get("heard")
        first = t.get("first_audio") if self.played else t.get("first_token")
        ready = max(first, heard) if first is not None and heard is not None else first
        endpoint = total = None
        if req.speech_end is not None and self.committed_at is not None:
            endpoint = round((self.committed_at - req.speech_end) * 1000, 1)
            head = (req.started_at - req.speech_end) * 1000
            after = ms(t["start"], ready)
            total = None if after is None else round(max(endpoint, head + after), 1)
        enc = self._spans.get("encoder")
        both = max(0.0, min(stt[1], enc[1]) - max(stt[0], enc[0])) if stt and enc else None
        return TurnMetrics(self._clock(), endpoint=endpoint, stt=ms(*stt) if stt else None, recall=recall_ms,
                           llm_first_token=ms(t["start"], t.get("first_token")),
                           tts_first_audio=ms(t.get("first_token"), t.get("first_audio")) if self.played else None,
                           total=total, audio_encoder=ms(*enc) if enc else None,
                           parallel=None if both is None else round(both * 1000, 1),
                           prefill_tokens=self.usage.prefill_tokens, cached_tokens=self.usage.cached_tokens)

