"""OS1 itself: hears the user, answers out loud, stops when interrupted, and listens for the answer back.

Frames come in; the listener turns them into wake words and utterances; turns answer them; the speaker
plays the answers. Everything runs on the input clock, so a replayed file behaves as the microphone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from .agent.conversation import Conversation
from .agent.foresight import Foresight
from .agent.greeting import hello
from .agent.precache import Precache
from .agent.say import speak_text, summarizer
from .agent.turn import Lanes, NothingHeard, Request, Turn
from .agent.ultravox import Sampling
from .agent.wake_phrase import remove_wake_phrase, spoken_phrase
from .audio.chunk import AudioChunk
from .audio.speaker import Speaker
from .audio.vad import Midway, Paused, Resumed, Started, TimedOut, Utterance
from .config import Config
from .errors import UserError, first_line
from .events import (Error, Event, Greeting, ListenTimeout, Remembered, SpeechEnded, SpeechStarted,
                     WakeDetected)
from .lanes import Models
from .pipeline import Listener
from .speaking import Speaking, Voice
from .state import State, StateMachine

log = logging.getLogger("os1d")


class Assistant(Speaking):
    """The composition of listening, turns and speaking, driven frame by frame."""

    def __init__(self, cfg: Config, models_dir: Path, emit: Callable[[Event], None], speaker: Speaker,
                 echo_cancelled: bool = False) -> None:
        self.cfg, self.speaker, self.echo_cancelled = cfg, speaker, echo_cancelled
        self._emit = emit
        self.clock = 0.0
        self.turn_id = 0
        """The current exchange (stamped on every event until the next one begins)."""
        self._fresh = False
        """The next speech heard begins an exchange of its own (listening without a wake word)."""
        self.state = StateMachine(self.emit, lambda: self.clock)
        self.models = Models(cfg, models_dir, self.emit, lambda: self.clock)
        self.conversation = Conversation(cfg)
        self.listener: Listener | None = None
        self.precache: Precache | None = None
        """Prefills the next prompt's start between turns."""
        self.foresight: Foresight | None = None
        """Recalls and prefills memories while the user speaks."""
        self._turn: Turn | None = None
        """The committed turn (answering, or done and still being heard)."""
        self._spec: Turn | None = None
        """A turn started at a pause, not yet committed."""
        self._woke_by = ""
        self._heard_all = False
        """The committed turn's voice has been heard to its end."""
        self._answering_back = False
        """Listening without a wake word (after OS1 spoke): a wake word still opens a turn of its own."""
        self._greeting: asyncio.Future[None] | None = None
        self.muted = False
        """Nothing heard, nothing said (typed turns still answer, in text)."""
        self.failure: UserError | None = None
        """The first error a turn hit: the exit status of an --input-file run."""

    def emit(self, event: Event) -> None:
        if self.turn_id and not event.turn:
            event = dataclasses.replace(event, turn=self.turn_id)
        self._emit(event)

    def _emitter(self) -> Callable[[Event], None]:
        """For a turn: its events belong to the exchange it began in, even once another has begun."""
        exchange = self.turn_id
        return lambda event: self.emit(dataclasses.replace(event, turn=event.turn or exchange))

    def _next_exchange(self) -> int:
        """A new exchange begins; returns the one before."""
        self.turn_id += 1
        self._fresh = False
        return self.turn_id - 1

    async def load(self) -> None:
        m = self.models
        await m.load()
        assert m.wake is not None and m.transcriber and m.speech_llm and m.voice
        self.listener = Listener(self.cfg.vad, m.wake, m.wake_lane.run)
        names = m.wake.names
        conv = self.conversation
        conv.clean = lambda text: remove_wake_phrase(text, names)
        conv.memory, conv.run = m.memory, m.memory_lane.run
        conv.on_remembered = lambda ids: self.emit(Remembered(self.clock, ids=ids))
        self.lanes = Lanes(m.stt_lane.run, m.llm_lane.run, m.tts_lane.run, m.transcriber, m.speech_llm, m.voice,
                           m.share)
        conv.summarize = summarizer(self.lanes)
        self.precache = conv.on_history = Precache(self.lanes, conv.stable_messages)
        self.precache()  # the persona, once the model is loaded: the first turn runs only its own part
        self.foresight = Foresight(self.lanes, conv)

    async def greet(self) -> None:
        """Say hello (memory decides how); spoken once the voice has loaded."""
        memory = await self.conversation.loaded_memory() if self.models.memory is not None else None
        names = self.models.wake.names if self.models.wake is not None else []
        run = self.models.memory_lane.run
        hi = await run(hello, memory, spoken_phrase(names[0]) if names else "")
        self.emit(Greeting(self.clock, first_time=hi.first_time, name=hi.name, text=hi.text))
        self.conversation.said(hi.text)
        await self.say(hi.text)

    async def say(self, text: str) -> None:
        """Speak `text` (no turn, nothing remembered)."""
        await speak_text(text, self.lanes, Voice(self))

    # -- the loop ------------------------------------------------------------------------------------------
    async def run(self, frames: AsyncIterator[AudioChunk], serial: bool = False) -> None:
        """Listen until the source ends, finish the last turn and let its voice end.

        serial: finish each turn's work before reading on (a file replayed as fast as possible).
        """
        assert self.listener is not None, "load() first"
        greeting = None
        if self.cfg.conversation.greet:
            greeting = self._greeting = asyncio.ensure_future(self.greet())
            if serial:
                await asyncio.wait([greeting])
        try:
            async for chunk in frames:
                await self.on_frame(chunk)
                if serial:
                    await self.settle()
                    if self.foresight is not None and self.foresight.task is not None:
                        await asyncio.wait([self.foresight.task])
            while True:  # the input ended: hand over speech in progress (a turn may listen on, once)
                self._on_segments([u] if (u := self.listener.segmenter.finish()) else [])
                await self.settle()
                if not self.listener.listening:
                    break
            await self._finish_speaking(serial)
            if self.state.state == State.LISTENING:
                self.state(State.IDLE)
            self.failure = self.failure or await self.models.failure()
            if self.failure is not None:
                raise self.failure
        finally:  # on a signal: stop the reply (within one token) before the lanes shut down
            for turn in (self._turn, self._spec):
                if turn is not None:
                    turn.interrupt(None)
            pending = [t for t in [*self.models.loading, *(x.task for x in (self._turn, self._spec) if x), greeting,
                                   *(x.task for x in (self.precache, self.foresight) if x)]
                       if t is not None and not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
            await self.conversation.flush()  # what was said is on disk before os1d goes

    async def settle(self) -> None:
        """Wait for the work of the committed turn (not for its voice to be heard; not for a turn started at
        a pause, which may yet be dropped)."""
        if self._turn is not None and self._turn.task is not None and not self._turn.task.done():
            await asyncio.wait([self._turn.task])

    async def on_frame(self, chunk: AudioChunk) -> None:
        assert self.listener is not None
        if self.state.state in (State.STARTING, State.ERROR):
            self._rest()
        if self.muted:  # the microphone is not listened to at all
            self.clock = chunk.end
            self._poll_speaker()
            return
        heard = await self.listener.hear(chunk)
        self.clock = chunk.end
        self._poll_speaker()
        if heard.wake is not None and (self._answering_back or not self.listener.listening):
            before = self._next_exchange()
            self.emit(WakeDetected(self.clock, model=heard.wake.model, score=round(heard.wake.score, 4)))
            self._woke_by, self._answering_back = heard.wake.model, False
            self._interrupt("interrupted", before)  # barge-in: the user wants to say something new
            self.state(State.LISTENING)
            self._on_segments(self.listener.segmenter.arm_after_wake(self.clock))
        else:
            self._on_segments(heard.segments)

    # -- listening -----------------------------------------------------------------------------------------
    def _on_segments(self, segments: list[Any]) -> None:
        for seg in segments:
            if isinstance(seg, Started):
                before = self._next_exchange() if self._fresh else 0
                self.emit(SpeechStarted(self.clock, start=round(seg.start, 3)))
                if self.speaker.speaking:  # only while echo-cancelled: the user talks over OS1
                    self._interrupt("interrupted", before)
                    self.state(State.LISTENING)
            elif isinstance(seg, Midway):
                if self.foresight is not None:
                    self.foresight(seg.utterance, self._hint(seg.utterance))
            elif isinstance(seg, Paused):
                self._drop_spec()
                if self.foresight is not None:
                    self.foresight.settle()  # (the turn started now needs the decoder)
                self._spec = self._new_turn(seg.utterance)
                self._spec.start()
            elif isinstance(seg, Resumed):
                self._drop_spec()
            elif isinstance(seg, TimedOut):
                self.emit(ListenTimeout(self.clock, waited=round(seg.waited, 3)))
                self._answering_back = self._fresh = False
                self.state(State.IDLE)
            elif isinstance(seg, Utterance):
                self._on_utterance(seg)

    def _on_utterance(self, utt: Utterance) -> None:
        self.emit(SpeechEnded(self.clock, duration=round(utt.duration, 3), reason=utt.reason))
        if self.foresight is not None:
            self.foresight.settle()
        self._answering_back = False
        turn, self._spec = self._spec, None
        self._interrupt("interrupted")
        self.state(State.THINKING)
        if turn is None or turn.request.speech_end != utt.speech_end:
            if turn is not None:
                turn.interrupt(None)
            turn = self._new_turn(utt)
            turn.start()
        self._commit(turn)

    def _hint(self, utt: Utterance) -> str:
        """The wake phrase the utterance begins with, if a wake word opened it."""
        return spoken_phrase(self._woke_by) if utt.wake_at is not None else ""

    def _new_turn(self, utt: Utterance) -> Turn:
        request = Request(utt.samples, hint=self._hint(utt), speech_end=utt.speech_end, started_at=self.clock,
                          wake_at=utt.wake_at, audio_end=utt.end,
                          recalled=self.foresight.recalled(utt) if self.foresight is not None else None)
        return Turn(request, self.conversation, self.lanes, self._emitter(), lambda: self.clock, Voice(self),
                    self.sampling)

    @property
    def sampling(self) -> Sampling:
        llm = self.cfg.llm
        return Sampling(llm.max_new_tokens, llm.temperature, llm.top_p)

    def _drop_spec(self) -> None:
        if self._spec is not None:
            self._spec.interrupt(None)
            self._spec = None

    # -- turns ---------------------------------------------------------------------------------------------
    def _commit(self, turn: Turn) -> None:
        self._turn = turn
        self._heard_all = False
        turn.commit(self.clock)
        assert turn.task is not None
        turn.task.add_done_callback(lambda _t, turn=turn: self._turn_done(turn))

    def _turn_done(self, turn: Turn) -> None:
        if turn is not self._turn or turn.task is None or turn.task.cancelled():
            return
        exc = turn.task.exception()
        listening = self.listener is not None and self.listener.listening
        if isinstance(exc, NothingHeard):
            self._turn = None
            req = turn.request
            if req.wake_at is not None and req.audio_end is not None and not listening:
                # only the wake phrase so far (the user paused after it): listen on from where it ended
                log.debug("heard only the wake phrase; still listening")
                self.state(State.LISTENING)
                assert self.listener is not None
                self._on_segments(self.listener.segmenter.arm(req.audio_end))
                return
        elif isinstance(exc, UserError):
            self.emit(Error(self.clock, source="llm", message=str(exc)))
            self.failure = self.failure or exc
        elif exc is not None:  # a bug or an unforeseen failure: reported, and listening goes on
            message = f"this turn failed unexpectedly ({type(exc).__name__}: {first_line(exc)}); still listening"
            log.debug("the turn failed", exc_info=exc)
            self.emit(Error(self.clock, source="turn", message=message))
            self.failure = self.failure or UserError(f"a turn failed unexpectedly ({type(exc).__name__}: "
                                                     f"{first_line(exc)}); run with -v for details")
        if exc is not None and turn.played:
            self.speaker.complete()  # what was queued still plays to its end
        if (exc is not None or not turn.played) and not listening and not self.speaker.busy:
            self._rest()

    async def ask(self, text: str, speak: bool = True) -> str:
        """A typed turn; cancels a spoken one in progress."""
        self._interrupt("interrupted")
        self._next_exchange()
        if not self.muted:
            self.state(State.THINKING)
        voice = None if self.muted or not speak else Voice(self)
        turn = Turn(Request(text=text, started_at=self.clock), self.conversation, self.lanes, self._emitter(),
                    lambda: self.clock, voice, self.sampling)
        turn.start()
        self._commit(turn)
        assert turn.task is not None
        return await turn.task

    def close(self) -> None:
        for ahead in (self.precache, self.foresight):
            if ahead is not None:
                ahead.cancel()
        self.models.close()
        self.speaker.close()
