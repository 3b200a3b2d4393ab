"""The voice goes first on a shared CPU: while a piece of the reply is being voiced, the local LLM waits.

On a CPU the speech LLM and Kokoro compete for the same cores: on 2 cores, the first sound of a reply comes
about 1.2× later after the first token while the full-size LLM decodes beside Kokoro (bench/bench_voice_first.py).
The LLM is far ahead of speech anyway (about 24 tokens a second against about 4 that
are spoken), so it pauses between tokens while Kokoro runs, and resumes as soon as the piece is voiced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MOST_S = 5.0
"""The longest the LLM waits for one piece (a guard: a piece takes well under a second)."""
CHECK_S = 0.01
"""How often a waiting LLM looks whether its reply was stopped (a reply begun over waits for the first try's LLM
to let go of the lane)."""


class VoiceFirst:
    """A gate between the TTS lane and the LLM lane. Disabled (a no-op) until `enabled` is set, which the
    models do when the speech LLM runs on this machine's CPU and `llm.yield_to_voice` is on."""

    def __init__(self, enabled: bool = False, most_s: float = MOST_S) -> None:
        self.enabled, self.most_s = enabled, most_s
        self._free = threading.Event()
        self._free.set()

    def voiced(self, fn: Callable[..., T]) -> Callable[..., T]:
        """`fn` (a synthesis, run in the one-thread TTS lane) wrapped so that the LLM waits while it runs."""
        def run(*args: Any) -> T:
            if not self.enabled:
                return fn(*args)
            self._free.clear()
            try:
                return fn(*args)
            finally:
                self._free.set()
        return run

    def wait(self, cancel: threading.Event | None = None) -> None:
        """Called by the LLM between tokens: returns at once unless a piece is being voiced (then when it is,
        when the turn is cancelled, or after `most_s`)."""
        if not self.enabled or self._free.is_set():
            return
        deadline = time.perf_counter() + self.most_s
        while not self._free.wait(CHECK_S):
            if (cancel is not None and cancel.is_set()) or time.perf_counter() >= deadline:
                break

    def first(self, fn: Callable[..., T]) -> Callable[..., T]:
        """`fn` (LLM work that can't pause midway, such as a prefill) wrapped to start once no piece is voiced."""
        def run(*args: Any) -> T:
            self.wait()
            return fn(*args)
        return run
