"""What the speech LLM is told: the persona, remembered facts, recent turns, and the user's turn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PERSONA = """You are OS1, a voice companion that lives on this computer. You talk with one person, out loud.

How you speak:
- Warm, curious and natural, like a thoughtful friend. Keep replies short: one to three sentences, unless
  you are asked for more.
- Everything you say is turned into speech, so never use markdown, lists, headings, code, emoji or
  symbols that can't be read aloud. Write numbers and times the way people say them.
- Answer the person's last message. Earlier turns are context, not questions to answer again.
- What they say to you may begin with your wake phrase (like "hey Jarvis"): that is them calling you.
  Don't answer the greeting itself; answer what follows it.
- If you didn't catch or understand something, say so briefly and ask.

What you remember:
- Facts the person told you on earlier days may be given to you just before their message. Use them
  naturally when they help, without announcing that you remember.
- Never invent memories or claim to know things about the person that are not listed or said in
  this conversation. If you don't know, say so."""


@dataclass(frozen=True)
class Message:
    """One message of the conversation."""

    role: str
    """system | user | assistant"""
    text: str
    """The words (for an audio turn: the Whisper transcript, or empty before it is known)."""
    audio: bool = False
    """True for the user turn whose audio goes to the model with this message."""


def system_prompt() -> str:
    return PERSONA


def memory_note(memories: Sequence[str]) -> Message:
    facts = "\n".join(f"- {m}" for m in memories)
    return Message("system", f"Things the person told you before:\n{facts}")


def stable_messages(history: Sequence[Message], keep: int = 20) -> list[Message]:
    """The start every prompt of the conversation shares until the history changes: the persona and the last
    `keep` messages."""
    return [Message("system", system_prompt()), *(list(history)[-keep:] if keep > 0 else [])]


def build_messages(history: Sequence[Message], user: Message | None, memories: Sequence[str] = (),
                   keep: int = 20) -> list[Message]:
    """The persona, the last `keep` messages of history, the memories recalled for this turn, the user's turn
    (None: the prompt's start without it).

    What stays the same from turn to turn comes first, so that the model's cache of it (or a server's prefix
    cache) is reused and only the new part is prefilled."""
    return [*stable_messages(history, keep), *([memory_note(memories)] if memories else []),
            *([user] if user is not None else [])]


def llama3_prompt(messages: Sequence[Message], audio_rows: int = 0, reply: bool = True) -> str:
    """Llama 3 chat format; the audio message carries one <|audio|> per encoder row. reply: end with the header
    of the assistant's reply (False: the messages alone, the start of a later prompt)."""
    parts = ["<|begin_of_text|>"]
    for m in messages:
        content = "<|audio|>" * audio_rows if m.audio else m.text
        parts.append(f"<|start_header_id|>{m.role}<|end_header_id|>\n\n{content}<|eot_id|>")
    if reply:
        parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)
