"""What OS1 says when it starts: an introduction the first time, a welcome back (by name) after."""

from __future__ import annotations

import time
from dataclasses import dataclass

FIRST_START = "first_start"
"""Memory metadata: when os1d first started for this user."""


@dataclass(frozen=True)
class Hello:
    first_time: bool
    name: str
    text: str


def greeting_text(first_time: bool, name: str, wake_phrase: str, hour: int) -> str:
    if first_time:
        call = f' Just say "{wake_phrase}" whenever you want to talk.' if wake_phrase else ""
        return f"Hi, I'm OS1.{call} What should I call you?"
    part = "morning" if 5 <= hour < 12 else "afternoon" if 12 <= hour < 18 else "evening"
    return f"Good {part}, {name}. It's good to have you back." if name else f"Good {part}. Welcome back."


def hello(memory: object | None, wake_phrase: str) -> Hello:
    """Blocking (the memory lane): decide the greeting, and note that os1d has now started once."""
    first_time, name = True, ""
    if memory is not None:
        store = memory.store  # type: ignore[attr-defined]
        first_time = store.meta(FIRST_START) is None
        name = memory.facts().get("name", "")  # type: ignore[attr-defined]
        if first_time:
            store.set_meta(FIRST_START, str(time.time()))
    return Hello(first_time, name, greeting_text(first_time, name, wake_phrase, time.localtime().tm_hour))
