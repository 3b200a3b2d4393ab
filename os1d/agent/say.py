"""Things said outside a turn: fixed text in the voice (a greeting), and a summary for memory."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..audio.chunker import Chunker
from ..errors import UserError
from .prompt import Message
from .turn import Lanes, Voice
from .ultravox import Sampling


async def speak_text(text: str, lanes: Lanes, speak: Voice) -> None:
    """Say fixed text (a greeting) in the voice, piece by piece: no LLM, nothing remembered."""
    try:
        voice = await asyncio.shield(lanes.voice) if lanes.voice is not None else None
    except UserError:  # reported when it failed to load
        return
    if voice is None:
        return
    chunker = Chunker()
    for piece in [*chunker.feed(text), *chunker.flush()]:
        samples = await lanes.tts(lanes.share.voiced(voice.synthesize), piece)
        if len(samples):
            speak.play(samples, piece)
    speak.complete()


SUMMARY_PROMPT = ("Summarise what the person said in one short sentence in the third person, keeping names, "
                  "places, dates and facts about them. Reply with the sentence only.")


def summarizer(lanes: Lanes) -> Callable[[str], Awaitable[str]]:
    """Long input → at most 64 tokens of summary for memory (memory.summarize), in the LLM lane."""
    async def summarize(text: str) -> str:
        llm = await asyncio.shield(lanes.speech_llm)
        messages = [Message("system", SUMMARY_PROMPT), Message("user", text)]
        return (await lanes.llm(lambda: "".join(llm.stream(messages, None, Sampling(64, 0.0, 1.0))))).strip()
    return summarize
