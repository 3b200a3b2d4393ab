"""Where OS1's voice goes: the Microphone's counterpart.

Pieces of speech are queued and played back to back. The speaker knows, on the input clock, when it
started and stopped, and how much of each piece was heard, so that an interrupted reply is
remembered as far as it was spoken. `--output-file` receives exactly what was played, with silence
where nothing was, on the input's timeline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from .tts import RATE

log = logging.getLogger("os1d")
BLOCK = 1024
"""Samples per device callback (43 ms at 24 kHz): about how much may still sound after a stop."""


@dataclass(frozen=True)
class Heard:
    """What the speaker did since the last poll."""

    started: float | None = None
    """Input-clock time the first sample of a reply sounded."""
    finished: float | None = None
    """Input-clock time the reply's last sample ended."""
    text: str = ""
    """When it started: what its first piece says."""


@dataclass
class _Piece:
    samples: np.ndarray
    text: str
    played: int = 0


def spoken_text(pieces: list[_Piece]) -> str:
    """The words of the pieces as far as they were played (a piece's words in proportion to its samples)."""
    words: list[str] = []
    for p in pieces:
        part = p.text.split()
        words += part[: round(len(part) * p.played / max(1, len(p.samples)))]
    return " ".join(words)


class Speaker:
    """Base: the queue and its accounting; subclasses decide how samples leave (timeline or device)."""

    def __init__(self, record: Callable[[np.ndarray], None] | None = None) -> None:
        self._pieces: list[_Piece] = []
        self._lock = threading.Lock()
        self._record = record
        """Receives every played sample, silence included, in input-clock order (--output-file)."""
        self.speaking = False
        self._complete = False
        """No more pieces will come for this reply: once they have played, speech has finished (until then
        a queue that runs dry is a gap, not the end)."""

    @property
    def busy(self) -> bool:
        """Speech is queued or sounding."""
        return bool(self._pieces)

    def play(self, samples: np.ndarray, text: str, now: float) -> None:
        """Queue a piece (24 kHz float32) after whatever is queued."""
        raise NotImplementedError

    def complete(self) -> None:
        """The reply has no more pieces."""
        with self._lock:
            self._complete = True

    def poll(self, now: float) -> Heard:
        """Advance to input time `now`: record what sounded, say whether speech started or finished."""
        raise NotImplementedError

    def stop(self, now: float) -> str:
        """Silence at once; return the text heard of what was queued since speech started."""
        with self._lock:
            heard = spoken_text(self._pieces)
            self._pieces, self._complete = [], False
        self.speaking = False
        return heard

    def close(self) -> None:
        pass


class TimelineSpeaker(Speaker):
    """Plays on the input clock, for --input-file runs: a piece sounds from when it is queued (or when
    the one before ends) for its duration, and input frames move time forward."""

    def __init__(self, record: Callable[[np.ndarray], None] | None = None) -> None:
        super().__init__(record)
        self._start = 0.0
        """Input time of the first queued piece's first sample."""
        self._end = 0.0
        self._recorded = 0.0

    def play(self, samples: np.ndarray, text: str, now: float) -> None:
        if not self._pieces:
            self._start = self._end = max(now, self._recorded)
            self._complete = False
        elif now > self._end:  # the voice ran ahead of the words: a gap, then this piece
            self._pieces.append(_Piece(np.zeros(int((now - self._end) * RATE), dtype=np.float32), ""))
            self._end = now
        self._pieces.append(_Piece(samples, text))
        self._end += len(samples) / RATE

    def poll(self, now: float) -> Heard:
        started = finished = None
        if self._pieces:
            t = self._start
            for p in self._pieces:
                p.played = int(np.clip((now - t) * RATE, 0, len(p.samples)))
                t += len(p.samples) / RATE
            if not self.speaking and now > self._start:
                self.speaking, started = True, self._start
        text = next((p.text for p in self._pieces if p.text), "") if started is not None else ""
        self._write(now)
        if self.speaking and self._complete and now >= self._end:
            self.speaking, finished, self._pieces, self._complete = False, self._end, [], False
        return Heard(started, finished, text)

    def stop(self, now: float) -> str:
        self.poll(now)
        self._end = now
        return super().stop(now)

    def _write(self, now: float) -> None:
        """Record [recorded, now): the queued pieces where they sound, silence elsewhere."""
        n = int(round((now - self._recorded) * RATE))
        if n <= 0 or self._record is None:
            self._recorded = max(self._recorded, now)
            return
        out = np.zeros(n, dtype=np.float32)
        t = self._start
        for p in self._pieces:
            a = int(round((t - self._recorded) * RATE))
            lo, hi = max(a, 0), min(a + len(p.samples), n)
            if lo < hi:
                out[lo:hi] = p.samples[lo - a : hi - a]
            t += len(p.samples) / RATE
        self._record(out)
        self._recorded = now


class DeviceSpeaker(Speaker):
    """Plays through a pyaudio output device at its own rate (24 kHz audio resampled when needed)."""

    def __init__(self, device: str, record: Callable[[np.ndarray], None] | None = None) -> None:
        super().__init__(record)
        self._played: list[np.ndarray] = []
        """Samples the device has taken since the last poll (for the recording)."""
        self._started = self._drained = False
        self._pa, self._index, self.rate, self.name = self._open(device)
        try:
            self._stream: Any = self._new_stream()
        except UserError:
            self._pa.terminate()
            raise

    def _open(self, device: str):  # type: ignore[no-untyped-def]
        import pyaudio

        from .devices import device_rate, find_device, open_portaudio

        pa = open_portaudio()
        try:
            info = find_device(pa, device, "output")
            rate = device_rate(pa, info, "output", RATE, pyaudio.paFloat32)
            return pa, int(info["index"]), rate, str(info["name"])
        except UserError:
            pa.terminate()
            raise
        except (OSError, ValueError) as exc:
            pa.terminate()
            raise UserError(f"cannot open speaker {device!r}: {exc}") from None

    def _new_stream(self):  # type: ignore[no-untyped-def]
        """A stopped output stream; it runs only while OS1 speaks."""
        import pyaudio

        from .devices import _quiet_stderr

        try:
            with _quiet_stderr():
                return self._pa.open(format=pyaudio.paFloat32, channels=1, rate=self.rate, output=True,
                                     output_device_index=self._index, frames_per_buffer=BLOCK * self.rate // RATE,
                                     stream_callback=self._callback, start=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot open speaker {self.name!r}: {exc}") from None

    def _reopen(self) -> Any:
        """A new stream, or None while the device is gone (the voice is lost, the conversation goes on)."""
        try:
            return self._new_stream()
        except UserError as exc:
            log.warning("%s; OS1 speaks silently until it is back", exc)
            return None

    def _silently(self) -> None:
        """No device: what is queued counts as said at once (so turns and states go on as if heard)."""
        with self._lock:
            for p in self._pieces:
                p.played = len(p.samples)
            self._started = bool(self._pieces)
            self._drained = self._started and self._complete

    def _callback(self, data, frames, time_info, status):  # type: ignore[no-untyped-def]
        import pyaudio

        out = np.zeros(frames, dtype=np.float32)
        with self._lock:
            filled = 0
            for p in self._pieces:
                take = min(frames - filled, len(p.samples) - p.played)
                if take > 0:
                    out[filled : filled + take] = p.samples[p.played : p.played + take]
                    p.played += take
                    filled += take
            if filled:
                self._started = True
            elif self._started and self._complete:
                self._drained = True
            self._played.append(out)
        return out.tobytes(), pyaudio.paContinue

    def play(self, samples: np.ndarray, text: str, now: float) -> None:
        from .chunk import resample_float

        with self._lock:
            if not self._pieces:
                self._started = self._drained = False
                self._complete = False
            self._pieces.append(_Piece(resample_float(samples, RATE, self.rate), text))
        if self._stream is None:
            self._stream = self._reopen()
        if self._stream is not None and not self._stream.is_active():  # the device runs only while OS1 speaks
            if not self._run(self._stream.start_stream):
                self._run(self._stream.close)
                self._stream = None
        if self._stream is None:
            self._silently()

    def complete(self) -> None:
        super().complete()
        if self._stream is None:
            self._silently()

    def poll(self, now: float) -> Heard:
        from .chunk import resample_float

        with self._lock:
            played, self._played = self._played, []
            started = not self.speaking and self._started
            finished = self.speaking and self._drained
            text = next((p.text for p in self._pieces if p.text), "") if started else ""
            if finished:
                self._pieces, self._started, self._drained, self._complete = [], False, False, False
        if started:
            self.speaking = True
        if finished:
            self.speaking = False
            if self._stream is not None:
                self._run(self._stream.stop_stream)
        if self._record is not None and played:
            self._record(resample_float(np.concatenate(played), self.rate, RATE))
        return Heard(now if started else None, now if finished else None, text)

    def stop(self, now: float) -> str:
        heard = super().stop(now)
        with self._lock:
            self._started = self._drained = False
        if self._stream is not None and self._stream.is_active():  # closing drops what the device holds, at once
            self._run(self._stream.close)
            self._stream = self._reopen()
        return heard

    def _run(self, action: Callable[[], None]) -> bool:
        from .devices import _quiet_stderr

        try:
            with _quiet_stderr():
                action()
            return True
        except OSError as exc:  # the device went away: the voice is lost, the conversation goes on
            log.warning("speaker %s: %s", self.name, exc)
            return False

    def close(self) -> None:
        if self._stream is not None:
            self._run(self._stream.close)  # closing an active stream aborts it
        self._pa.terminate()
