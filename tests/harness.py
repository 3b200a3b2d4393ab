"""run_listener(pcm) → events: the daemon's listening, turns and voice in-process, with the kit's real models."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from os1d.assistant import Assistant
from os1d.audio.chunk import FRAME, RATE, AudioChunk
from os1d.audio.speaker import TimelineSpeaker
from os1d.config import Config, ConversationConfig, MemoryConfig, TtsConfig, WakeConfig
from os1d.errors import UserError
from os1d.events import Event
from speech import kit_dir


def kit_config(**sections: Any) -> Config:
    """The default config with the kit's voice and hey_jarvis as the wake word (and any sections given)."""
    sections.setdefault("conversation", ConversationConfig(greet=False))
    sections.setdefault("memory", MemoryConfig(enabled=False))  # (a test that remembers gives its own folder)
    sections.setdefault("wake", WakeConfig(models=("hey_jarvis",)))  # (what these tests say to wake it)
    return dataclasses.replace(Config(), tts=TtsConfig(voice="jf_alpha"), **sections)


@dataclass
class Run:
    events: list[Event]
    failure: UserError | None
    """What `os1d run --input-file` would have exited with (None: exit 0)."""
    played: list[np.ndarray] = field(default_factory=list)
    """What the speaker played, 24 kHz, on the input's timeline (as --output-file holds it)."""

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def states(self) -> list[str]:
        return [e.state for e in self.events if type(e).__name__ == "StateChanged"]  # type: ignore[attr-defined]

    @property
    def output(self) -> np.ndarray:
        return np.concatenate(self.played) if self.played else np.zeros(0, dtype=np.float32)


Hook = Callable[[Assistant], Any]


async def _frames(pcm: np.ndarray, assistant: Assistant, hooks: dict[float, Hook],
                  paced: bool) -> AsyncIterator[AudioChunk]:
    due = sorted(hooks.items())
    t0 = asyncio.get_running_loop().time()
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        if paced:
            await asyncio.sleep(t0 + i / RATE - asyncio.get_running_loop().time())
        while due and due[0][0] <= i / RATE:
            due.pop(0)[1](assistant)
        yield AudioChunk(pcm[i : i + FRAME], i / RATE)


def run_listener(pcm: np.ndarray, cfg: Config | None = None, prepare: Hook | None = None,
                 echo_cancelled: bool = False, hooks: dict[float, Hook] | None = None, paced: bool = False) -> Run:
    """Feed pcm as fast as the turns allow (like --input-file --fast), or in real time (paced, like a
    microphone: nothing waits for the work the audio starts); prepare() runs once models load, each hook when
    the input reaches its time."""
    run = Run([], None)

    async def main() -> UserError | None:
        assistant = Assistant(cfg or kit_config(), kit_dir(), run.events.append, TimelineSpeaker(run.played.append),
                              echo_cancelled=echo_cancelled)
        try:
            await assistant.load()
            if prepare is not None:
                prepare(assistant)
            await assistant.run(_frames(pcm, assistant, hooks or {}, paced), serial=not paced)
        except UserError as exc:
            return exc
        finally:
            assistant.close()
        return None

    run.failure = asyncio.run(main())
    return run
