"""One conversation turn: transcript and audio encoding side by side, recall, then the streamed reply."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..config import Config
from ..errors import UserError
from ..events import Event, Recalled, ReplyDelta, ReplyDone, Transcript, TurnMetrics
from .prompt import Message, build_messages
from .ultravox import Sampling


class SpeechLLM(Protocol):
    """A model that hears audio and answers in text (Ultravox on ONNX, or on a vLLM server)."""

    def prepare_audio(self, samples: np.ndarray) -> Any: ...

    def stream(self, messages: Sequence[Message], audio: Any, sampling: Sampling,
               cancel: threading.Event | None = None) -> Iterator[str]: ...


class Transcriber(Protocol):
    def transcribe(self, samples: np.ndarray, hint: str = "") -> str: ...


class Recall(Protocol):
    def recall(self, text: str, k: int) -> list[dict]: ...


class NoMemory:
    """Recall until the memory store exists: nothing is remembered."""

    def recall(self, text: str, k: int) -> list[dict]:
        return []


Run = Callable[..., Awaitable[Any]]


@dataclass
class Lanes:
    """Where each model runs, and the models once loaded."""

    stt: Run
    llm: Run
    transcriber: Awaitable[Transcriber]
    speech_llm: Awaitable[SpeechLLM]


class _Done:
    """Marks the end of a reply stream."""


class NothingHeard(Exception):
    """The utterance held no words for OS1 (only the wake phrase, or noise): there is nothing to answer."""


class Conversation:
    """The running conversation: history, and one turn at a time (a new turn cancels the old one)."""

    def __init__(self, cfg: Config, lanes: Lanes, emit: Callable[[Event], None], clock: Callable[[], float],
                 recall: Recall | None = None, clean: Callable[[str], str] = str.strip) -> None:
        self.cfg = cfg
        self.lanes = lanes
        self.emit = emit
        self.clock = clock
        self.memory = recall or NoMemory()
        self.clean = clean
        self.history: list[Message] = []

    @property
    def sampling(self) -> Sampling:
        llm = self.cfg.llm
        return Sampling(llm.max_new_tokens, llm.temperature, llm.top_p)

    async def audio_turn(self, samples: np.ndarray, endpoint_ms: float | None = None, hint: str = "") -> str:
        """The user spoke: Whisper and the audio encoder start at once; the reply streams.

        hint: the wake phrase the audio begins with, if a wake word opened the turn (helps Whisper spell it,
        so that it can be removed from the text).
        """
        stt = await self.lanes.transcriber
        transcribe = functools.partial(stt.transcribe, hint=hint)
        try:
            llm = await self.lanes.speech_llm
        except UserError:  # no model to answer with: still show what the user said
            self.emit(Transcript(self.clock(), role="user", text=self.clean(await self.lanes.stt(transcribe, samples))))
            raise
        t0 = time.perf_counter()  # (time spent waiting for models still loading is not the turn's)
        spans: dict[str, tuple[float, float]] = {}

        async def timed(name: str, run: Run, fn: Callable[..., Any]) -> Any:
            def work() -> Any:
                start = time.perf_counter()
                try:
                    return fn(samples)
                finally:
                    spans[name] = (start, time.perf_counter())
            return await run(work)

        encoding = asyncio.ensure_future(timed("encoder", self.lanes.llm, llm.prepare_audio))
        try:
            text = self.clean(await timed("stt", self.lanes.stt, transcribe))
            if not text:
                raise NothingHeard
            self.emit(Transcript(self.clock(), role="user", text=text,
                                 seconds=round(spans["stt"][1] - spans["stt"][0], 3)))
            memories, recall_ms = await self._recall(text)
            audio = await encoding
        except BaseException:
            encoding.cancel()
            raise
        (s0, s1), (e0, e1) = spans["stt"], spans["encoder"]
        user = Message("user", text, audio=True)
        reply, first = await self._reply(build_messages(self.history, user, memories, self.cfg.conversation.history),
                                         audio, llm)
        first_ms = None if first is None else (first - t0) * 1000
        self.emit(TurnMetrics(self.clock(), endpoint=endpoint_ms, stt=_ms(s1 - s0), recall=recall_ms,
                              llm_first_token=_round(first_ms), tts_first_audio=None,
                              total=_round(None if first_ms is None else first_ms + (endpoint_ms or 0.0)),
                              audio_encoder=_ms(e1 - e0), parallel=_ms(max(0.0, min(s1, e1) - max(s0, e0)))))
        self._remember(Message("user", text), reply)
        return reply

    async def text_turn(self, text: str) -> str:
        """A typed question (`os1d ask`): same conversation, no audio."""
        llm = await self.lanes.speech_llm
        t0 = time.perf_counter()
        self.emit(Transcript(self.clock(), role="user", text=text))
        memories, recall_ms = await self._recall(text)
        user = Message("user", text)
        reply, first = await self._reply(build_messages(self.history, user, memories, self.cfg.conversation.history),
                                         None, llm)
        self.emit(TurnMetrics(self.clock(), endpoint=None, stt=None, recall=recall_ms,
                              llm_first_token=_round(None if first is None else (first - t0) * 1000),
                              tts_first_audio=None, total=None))
        self._remember(user, reply)
        return reply

    async def _recall(self, text: str) -> tuple[list[str], float]:
        t0 = time.perf_counter()
        found = self.memory.recall(text, self.cfg.memory.top_k) if text else []
        if found:
            self.emit(Recalled(self.clock(), memories=found))
        return [m["text"] for m in found], _ms(time.perf_counter() - t0)

    async def _reply(self, messages: list[Message], audio: Any, llm: SpeechLLM) -> tuple[str, float | None]:
        """Stream the reply from the LLM lane as ReplyDelta events; ReplyDone at the end or on cancel."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | _Done] = asyncio.Queue()
        cancel = threading.Event()

        def work() -> None:
            try:
                for piece in llm.stream(messages, audio, self.sampling, cancel):
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except BaseException as exc:  # handed to the loop, raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _Done())

        producer = asyncio.ensure_future(self.lanes.llm(work))
        pieces: list[str] = []
        first: float | None = None
        try:
            while not isinstance(item := await queue.get(), _Done):
                if isinstance(item, BaseException):
                    raise item
                first = first or time.perf_counter()
                pieces.append(item)
                self.emit(ReplyDelta(self.clock(), text=item))
        except asyncio.CancelledError:
            cancel.set()  # the generation loop stops within one step
            await asyncio.wait([producer])
            reply = "".join(pieces).strip()
            self.emit(ReplyDone(self.clock(), text=reply, interrupted=True))
            self._remember(messages[-1], reply + " …")
            raise
        await producer
        reply = "".join(pieces).strip()
        self.emit(ReplyDone(self.clock(), text=reply))
        return reply, first

    def _remember(self, user: Message, reply: str) -> None:
        self.history += [Message("user", user.text), Message("assistant", reply)]
        keep = max(self.cfg.conversation.history, 0)
        self.history = self.history[-keep:] if keep else []


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)
