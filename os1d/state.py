"""The daemon's state: one enum, the transitions allowed, and the only way state changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum

from .events import StateChanged

log = logging.getLogger("os1d")


class State(str, Enum):
    STARTING = "starting"
    IDLE = "idle"
    LISTENING = "listening"
    """After the wake word, or in the follow-up window after OS1 spoke."""
    THINKING = "thinking"
    SPEAKING = "speaking"
    MUTED = "muted"
    ERROR = "error"
    """The microphone is missing or silent; os1d retries."""


S = State
ALLOWED: dict[State, frozenset[State]] = {
    S.STARTING: frozenset({S.IDLE, S.ERROR, S.MUTED}),
    S.IDLE: frozenset({S.LISTENING, S.THINKING, S.SPEAKING, S.MUTED, S.ERROR}),
    S.LISTENING: frozenset({S.IDLE, S.THINKING, S.SPEAKING, S.MUTED, S.ERROR}),
    S.THINKING: frozenset({S.IDLE, S.LISTENING, S.SPEAKING, S.MUTED, S.ERROR}),
    S.SPEAKING: frozenset({S.IDLE, S.LISTENING, S.THINKING, S.MUTED, S.ERROR}),
    S.MUTED: frozenset({S.IDLE, S.ERROR}),
    S.ERROR: frozenset({S.IDLE, S.LISTENING, S.THINKING, S.SPEAKING, S.MUTED}),
}


class StateMachine:
    """Holds the state; every change is checked against ALLOWED and announced as a StateChanged event."""

    def __init__(self, emit: Callable[[StateChanged], None], clock: Callable[[], float]) -> None:
        self.state = State.STARTING
        self._emit = emit
        self._clock = clock

    def __call__(self, state: State, detail: str = "") -> None:
        """Move to `state` (nothing happens if already there)."""
        if state == self.state:
            return
        if state not in ALLOWED[self.state]:
            raise ValueError(f"state {self.state.value} cannot become {state.value}")  # a bug, not a user error
        self.state = state
        self._emit(StateChanged(self._clock(), state=state.value, detail=detail))
