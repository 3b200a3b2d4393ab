"""The assistant's speaking side: what the speaker reports becomes events and states; stopping the voice
(barge-in, Stop, Mute); and once OS1 has spoken, the window in which the user may answer back without
the wake word."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from .agent.conversation import Conversation
from .agent.turn import Turn
from .audio.speaker import Speaker
from .config import Config
from .events import Event, SpeakingStarted, SpeakingStopped
from .pipeline import Listener
from .state import State, StateMachine

ECHO_TAIL_S = 0.5
"""After OS1 stops speaking, how long its own voice may still be in the room (the follow-up window
opens after it, unless the microphone is echo-cancelled)."""


class Speaking:
    """Mixed into the Assistant, whose attributes it uses."""

    cfg: Config
    speaker: Speaker
    clock: float
    state: StateMachine
    listener: Listener | None
    echo_cancelled: bool
    muted: bool
    emit: Callable[[Event], None]
    _on_segments: Callable[[list[Any]], None]
    _heard_all: bool
    _woke_by: str
    _answering_back: bool
    _fresh: bool
    _turn: Turn | None
    _greeting: asyncio.Future[None] | None
    conversation: Conversation
    _drop_spec: Callable[[], None]

    def _poll_speaker(self) -> None:
        heard = self.speaker.poll(self.clock)
        if heard.started is not None:
            self.emit(SpeakingStarted(heard.started, text=heard.text))
            self.state(State.SPEAKING)
            if self.echo_cancelled and self.listener is not None and not self.listener.listening:
                self._fresh = True  # the user talking over OS1 starts an exchange of its own
                self._on_segments(self.listener.segmenter.arm(self.clock, timeout_s=24 * 3600.0))
        if heard.finished is not None:
            self._heard_all = True
            self.emit(SpeakingStopped(heard.finished, reason="done"))
            self._open_follow_up(heard.finished)

    def _open_follow_up(self, ended: float) -> None:
        """After OS1 spoke, the user may answer without the wake word for conversation.follow_up_s."""
        window = self.cfg.conversation.follow_up_s
        if window <= 0 or self.listener is None or self.muted:
            self._rest()
            return
        since = ended + (0.0 if self.echo_cancelled else ECHO_TAIL_S)
        self.state(State.LISTENING, "follow-up")
        self._woke_by, self._answering_back, self._fresh = "", True, True
        self._on_segments(self.listener.segmenter.arm(since, timeout_s=max(0.1, window - (since - ended))))

    def _interrupt(self, reason: str, exchange: int = 0) -> None:
        """Stop the voice and the turn (barge-in, Stop): the history keeps what was heard. exchange: the one
        the voice belonged to, when a new one has begun."""
        self._drop_spec()
        if self._greeting is not None:
            self._greeting.cancel()
        turn, self._turn = self._turn, None
        speaking = self.speaker.speaking
        spoken = self.speaker.stop(self.clock)
        if speaking:
            self.emit(SpeakingStopped(self.clock, reason=reason, turn=exchange))
        if turn is None:
            return
        if turn.task is not None and not turn.task.done():
            turn.interrupt(spoken if turn.played else None)
        elif turn.played and not self._heard_all:
            self.conversation.cut_last_reply(spoken)

    def stop(self) -> None:
        """Stop speaking and cancel the turn, without opening a new one."""
        self._hush("stopped")
        self._rest()

    def set_muted(self, muted: bool) -> None:
        """Mute: the microphone is ignored and any speech stops; unmute: listening again."""
        if muted == self.muted:
            return
        self.muted = muted
        if muted:
            self._hush("muted")
        self._rest()

    def _hush(self, reason: str) -> None:
        """Stop the voice and the turn, and stop listening for an answer."""
        self._interrupt(reason)
        self._answering_back = self._fresh = False
        if self.listener is not None:
            self.listener.segmenter.disarm()

    def _rest(self) -> None:
        """Back to waiting: idle, or muted."""
        self.state(State.MUTED if self.muted else State.IDLE)

    async def _finish_speaking(self, serial: bool, limit_s: float = 600.0) -> None:
        """After the input: let the reply that is playing end (its voice goes to --output-file too)."""
        step, end = 0.08, self.clock + limit_s
        while self.speaker.busy and self.clock < end:
            if not serial:
                await asyncio.sleep(step)
            self.clock += step
            self._poll_speaker()


class Voice:
    """A turn's speech, onto the speaker at the current input time."""

    def __init__(self, assistant: Speaking) -> None:
        self._a = assistant

    def play(self, samples: np.ndarray, text: str) -> None:
        self._a.speaker.play(samples, text, self._a.clock)

    def complete(self) -> None:
        self._a.speaker.complete()
