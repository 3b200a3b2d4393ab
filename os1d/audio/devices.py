"""Where audio comes from and goes to: pyaudio devices, or WAV files standing in for them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .chunk import FRAME, RATE, AudioChunk, read_wav, resample

Report = Callable[[str], None]
log = logging.getLogger("os1d")
BACKLOG_S = 60.0
"""Audio kept while os1d is busy elsewhere (a model loading, a slow machine): it is heard late, never lost.
Only a backlog longer than this loses its oldest audio."""
GRACE_S = 0.25
"""After stall_s without audio, how long the loop lets the device's callbacks run before it calls the device
stalled: when a model load holds Python's lock past stall_s, the loop and the callbacks both wait for it, and
the loop may get it first (reopening the device then would lose the audio it holds)."""


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    inputs: int
    outputs: int
    rate: float
    default_input: bool = False
    default_output: bool = False


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C-level chatter ALSA and JACK print while PortAudio probes devices."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_portaudio():  # -> pyaudio.PyAudio
    import pyaudio

    with _quiet_stderr():
        return pyaudio.PyAudio()


def list_devices() -> list[Device]:
    pa = open_portaudio()
    try:
        def default(kind: str) -> int:
            try:
                return int(getattr(pa, f"get_default_{kind}_device_info")()["index"])
            except OSError:
                return -1

        din, dout = default("input"), default("output")
        out = []
        for i in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(i)
            out.append(Device(i, str(info["name"]), int(info["maxInputChannels"]),
                              int(info["maxOutputChannels"]), float(info["defaultSampleRate"]),
                              i == din, i == dout))
        return out
    finally:
        pa.terminate()


def find_device(pa, spec: str, kind: str) -> dict:  # type: ignore[no-untyped-def]
    """Device info for "default", an index, or a case-insensitive part of a name."""
    channels = "maxInputChannels" if kind == "input" else "maxOutputChannels"
    if spec in ("", "default"):
        try:
            return pa.get_default_input_device_info() if kind == "input" else pa.get_default_output_device_info()
        except OSError:
            raise UserError(f"no default {kind} audio device; plug one in or set audio.{kind}_device") from None
    infos = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
    usable = [d for d in infos if d[channels] > 0]
    if spec.isdigit():
        match = [d for d in usable if d["index"] == int(spec)]
    else:
        match = [d for d in usable if spec.lower() in str(d["name"]).lower()]
    if not match:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in usable) or "none"
        raise UserError(f"no {kind} audio device matches {spec!r} (available: {names})")
    return match[0]


def device_rate(pa, info: dict, kind: str, rate: int, sample_format: int) -> int:  # type: ignore[no-untyped-def]
    """`rate` where the device takes it (one channel, `sample_format`), else the device's own rate."""
    try:
        if kind == "input":
            pa.is_format_supported(rate, input_device=info["index"], input_channels=1, input_format=sample_format)
        else:
            pa.is_format_supported(rate, output_device=info["index"], output_channels=1, output_format=sample_format)
        return rate
    except ValueError:
        return int(info["defaultSampleRate"])


class Microphone:
    """Frames from a pyaudio input device; reopens it when it is missing, fails or goes silent."""

    def __init__(self, device: str, report: Report, retry_s: float = 2.0, stall_s: float = 2.0) -> None:
        self.device = device
        self.report = report
        self.retry_s = retry_s
        self.stall_s = stall_s
        self.overruns = 0
        """Frames dropped because os1d fell BACKLOG_S behind, or lost before it read them (the device's own
        buffer overflowed)."""

    def _open(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]):  # type: ignore[no-untyped-def]
        import pyaudio

        pa = open_portaudio()
        try:
            info = find_device(pa, self.device, "input")
            rate = device_rate(pa, info, "input", RATE, pyaudio.paInt16)

            def on_audio(data, frames, time_info, status):  # type: ignore[no-untyped-def]
                loop.call_soon_threadsafe(self._put, queue, data, bool(status & pyaudio.paInputOverflow))
                return None, pyaudio.paContinue

            with _quiet_stderr():
                stream = pa.open(format=pyaudio.paInt16, channels=1, rate=rate, input=True,
                                 input_device_index=info["index"], frames_per_buffer=rate * FRAME // RATE,
                                 stream_callback=on_audio)
            return pa, stream, rate, str(info["name"])
        except UserError:
            pa.terminate()
            raise
        except (OSError, ValueError) as exc:
            pa.terminate()
            raise UserError(f"cannot open microphone {self.device!r}: {exc}") from None

    def _put(self, queue: asyncio.Queue[bytes], data: bytes, overflowed: bool = False) -> None:
        lost = "the microphone's buffer overflowed before os1d read it" if overflowed else ""
        if queue.full():  # far behind: drop the oldest audio, never block the callback
            queue.get_nowait()
            lost = f"os1d fell {BACKLOG_S:g} s behind the microphone; its oldest audio was dropped"
        if lost:
            self.overruns += 1
            (log.warning if self.overruns == 1 or self.overruns % 100 == 0 else log.debug)(
                "%s (%d times so far): words said now may be missed", lost, self.overruns)
        queue.put_nowait(data)

    async def frames(self) -> AsyncIterator[AudioChunk]:
        loop = asyncio.get_running_loop()
        clock = 0
        problem = ""
        while True:
            queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=math.ceil(BACKLOG_S * RATE / FRAME))
            try:
                pa, stream, rate, name = await asyncio.to_thread(self._open, loop, queue)
            except UserError as exc:
                problem = self._say_once(problem, f"{exc}; retrying every {self.retry_s:g} s")
                await asyncio.sleep(self.retry_s)
                continue
            pending = np.zeros(0, dtype=np.int16)
            try:
                while True:
                    data = await next_within(queue, self.stall_s)
                    if data is None:  # (os1d itself may have been held up: the device's callbacks get a turn)
                        data = await next_within(queue, GRACE_S)
                    if data is None:  # reopened at once: the stall already waited stall_s
                        problem = self._say_once(problem, f"microphone {name!r} stopped delivering audio; reopening it")
                        break
                    if problem:
                        log.info("microphone %r delivers audio again", name)
                        problem = ""
                    pending = np.concatenate([pending, resample(np.frombuffer(data, "<i2"), rate)])
                    while len(pending) >= FRAME:
                        yield AudioChunk(pending[:FRAME].copy(), clock / RATE)
                        clock += FRAME
                        pending = pending[FRAME:]
            finally:
                await _close(pa, stream)

    def _say_once(self, said: str, problem: str) -> str:
        """Report a problem once; while it lasts, retries only log it."""
        if problem != said:
            self.report(problem)
        else:
            log.debug("still no microphone: %s", problem)
        return problem


async def next_within(queue: asyncio.Queue[bytes], seconds: float) -> bytes | None:
    """The queue's next item, or None when none came within `seconds`. Not asyncio.wait_for: on Python 3.10
    and 3.11 it swallows a cancellation that comes just as the item arrives (and with audio every 32 ms, a
    stop was sometimes never heard: os1d ran on after Quit)."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    try:
        done, _ = await asyncio.wait([getter], timeout=seconds)
    finally:
        getter.cancel()  # (on a timeout or a cancellation; an item it took then is not wanted)
    return getter.result() if done else None


async def _close(pa, stream, wait_s: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    """Abort and close the stream; a device that hangs (ALSA on a stalled source) can't block exit."""

    def close() -> None:
        with contextlib.suppress(OSError):
            stream.close()  # closing an active stream aborts it; stop_stream() would wait for a stalled read
        pa.terminate()
        done.set()

    done = threading.Event()
    threading.Thread(target=close, name="os1d-mic-close", daemon=True).start()
    await asyncio.to_thread(done.wait, wait_s)


class WavFileSource:
    """A WAV file replayed as if it were the microphone: in real time, or as fast as it is read."""

    def __init__(self, path: Path, fast: bool = False, tail_s: float = 1.0) -> None:
        self.pcm = read_wav(path)
        self.fast = fast
        self.tail = int(tail_s * RATE)
        """Silence appended so that an utterance at the very end is endpointed like any other."""

    async def frames(self) -> AsyncIterator[AudioChunk]:
        pcm = np.concatenate([self.pcm, np.zeros(self.tail, dtype=np.int16)])
        pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, dtype=np.int16)])
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(0, len(pcm), FRAME):
            chunk = AudioChunk(pcm[i : i + FRAME], i / RATE)
            if not self.fast:
                await asyncio.sleep(max(0.0, t0 + chunk.end - loop.time()))
            yield chunk
