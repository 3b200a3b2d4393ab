"""What a run writes on request: the --events log and the --output-file WAV.

Checked before anything runs (never over the input, never into a file that is something else), and
unable to take the assistant down: a reader that goes away or a full disk is reported, not fatal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import wave
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from .audio.chunk import RATE
from .errors import UserError
from .events import Event

log = logging.getLogger("os1d")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(input_file: Path | None, output_file: Path | None, events: str | None) -> None:
    """One-line errors for outputs that would destroy a file or can't be written, before the run starts."""
    outputs = [("--output-file", output_file), ("--events", Path(events) if events and events != "-" else None)]
    for flag, path in outputs:
        if path is None:
            continue
        if input_file is not None and (_same(input_file, path) or input_file.resolve() == path.resolve()):
            raise UserError(f"{flag} {path} is the input file; choose another file (os1d never writes over its input)")
        if not path.parent.is_dir():
            raise UserError(f"cannot write {flag} {path}: the folder {path.parent} does not exist")
        if path.is_dir():
            raise UserError(f"cannot write {flag} {path}: it is a folder")
    if outputs[0][1] is not None and outputs[1][1] is not None and \
            (outputs[0][1].resolve() == outputs[1][1].resolve() or _same(outputs[0][1], outputs[1][1])):
        raise UserError("--output-file and --events name the same file; give each its own")
    if outputs[1][1] is not None:
        _check_events_file(outputs[1][1])


def _check_events_file(path: Path) -> None:
    """Events are appended to a new file or to an events log, never to some other file."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with path.open("rb") as fh:
            first = fh.readline(65536)
        ok = isinstance(json.loads(first.decode("utf-8")).get("event"), str)
    except (OSError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise UserError(f"--events {path} exists and is not an os1d events log; name a new file "
                        f"(events are only ever appended to an events log)")


def open_events(events: str) -> IO[str]:
    if events == "-":
        return sys.stdout
    try:
        return open(events, "a", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write events to {events}: {exc.strerror}") from None


class EventLog:
    """Writes events as JSON lines, flushed per line; stops (without stopping the daemon) if it can't."""

    def __init__(self, stream: IO[str], name: str, trouble: Callable[[str], None]) -> None:
        self._stream: IO[str] | None = stream
        self._name = name
        self._trouble = trouble
        """Called once with a one-line message if writing fails for a reason other than a closed reader."""

    def __call__(self, event: Event) -> None:
        if self._stream is None:
            return
        try:
            self._stream.write(event.to_json() + "\n")
            self._stream.flush()
        except BrokenPipeError:  # `os1d run --events - | head -1`: the reader has what it wanted
            self._stop()
            log.info("the events reader went away; events are no longer written")
        except (OSError, ValueError) as exc:  # a full disk, a closed file
            self._stop()
            self._trouble(f"cannot write events to {self._name} ({getattr(exc, 'strerror', None) or exc}); "
                          f"events are no longer written")

    def _stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is sys.stdout:  # so that Python's own flush at exit does not fail on the closed pipe
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        elif stream is not None:
            try:
                stream.close()
            except OSError:
                pass


class WavSink:
    """What was played, as a WAV file that appears whole under its name when the run ends."""

    def __init__(self, path: Path, rate: int = RATE) -> None:
        self.path = path
        regular = not path.exists() or path.is_file()  # a device or pipe is written in place
        self._part = path.with_name(f".{path.name}.{os.getpid()}.part") if regular else None
        try:
            self._file = open(self._part or path, "wb")
        except OSError as exc:
            raise UserError(f"cannot write output file {path}: {exc.strerror}") from None
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)

    def write(self, samples: np.ndarray) -> None:
        """int16 samples, or float samples in -1..1."""
        if samples.dtype.kind == "f":
            samples = np.clip(np.round(samples * 32767), -32768, 32767)
        try:
            self._wav.writeframes(samples.astype("<i2").tobytes())
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        try:
            try:
                self._wav.close()
            finally:
                self._file.close()
            if self._part is not None:
                os.replace(self._part, self.path)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        if self._part is not None:
            self._part.unlink(missing_ok=True)
        raise UserError(f"cannot write output file {self.path}: {exc.strerror or exc}") from None
