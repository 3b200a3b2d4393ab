"""run_listener(pcm) → events: the daemon's listening path and turns in-process, with the kit's real models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from os1d.audio.chunk import FRAME, RATE, AudioChunk
from os1d.config import Config
from os1d.errors import UserError
from os1d.events import Event
from os1d.pipeline import Listener
from speech import kit_dir


@dataclass
class Run:
    events: list[Event]
    failure: UserError | None
    """What `os1d run --input-file` would have exited with (None: exit 0)."""

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def states(self) -> list[str]:
        return [e.state for e in self.events if type(e).__name__ == "StateChanged"]  # type: ignore[attr-defined]


async def _frames(pcm: np.ndarray) -> AsyncIterator[AudioChunk]:
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        yield AudioChunk(pcm[i : i + FRAME], i / RATE)


def run_listener(pcm: np.ndarray, cfg: Config | None = None,
                 prepare: Callable[[Listener], None] | None = None) -> Run:
    """Feed pcm as fast as the turns allow (like --input-file --fast); prepare() runs once models load."""
    events: list[Event] = []

    async def main() -> UserError | None:
        listener = Listener(cfg or Config(), kit_dir(), events.append)
        try:
            await listener.load()
            if prepare is not None:
                prepare(listener)
            await listener.run(_frames(pcm), serial=True)
        except UserError as exc:
            return exc
        finally:
            listener.close()
        return None

    failure = asyncio.run(main())
    return Run(events, failure)
