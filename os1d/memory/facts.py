"""Stable facts about the user, taken from what they say: their name, where they live, their work."""

from __future__ import annotations

import re

_NAME = r"([A-Z][\w'’-]*(?:\s+(?!And\b|But\b)[A-Z][\w'’-]*)?)"
"""One or two capitalised words (Whisper capitalises names)."""
_LEAD = r"(?:^|[\s,.!?;:])"
PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "name": [
        re.compile(_LEAD + r"(?i:my\s+name\s+is|my\s+name's|call\s+me|you\s+can\s+call\s+me)\s+" + _NAME),
        re.compile(_LEAD + r"(?i:i\s+am|i'm|i’m|this\s+is)\s+" + _NAME + r"(?=\s*(?:[,.!?;:]|$|\s+(?i:and|but)\b))"),
    ],
    "home": [re.compile(_LEAD + r"(?i:i\s+live\s+in|i'm\s+living\s+in|i\s+moved\s+to)\s+" + _NAME)],
    "work": [re.compile(_LEAD + r"(?i:i\s+work\s+as|i'm\s+working\s+as)\s+((?:a|an)\s+[\w\s'-]{2,40}?)"
                        r"(?=\s*(?:[,.!?;]|$|\s+(?i:and|but|at|for|in)\b))")],
}
TEMPLATES = {  # in the user's words, as their questions ask ("what's my name?")
    "name": "My name is {}.",
    "home": "I live in {}.",
    "work": "I work as {}.",
}
NOT_NAMES = {
    "Sorry", "Fine", "Good", "Great", "Okay", "Ok", "OK", "Here", "Back", "Not", "So", "Just", "Really", "Very",
    "Tired", "Happy", "Sad", "Glad", "Sure", "Going", "Trying", "Thinking", "Looking", "Feeling", "Still", "Also",
    "The", "A", "An", "It", "That", "What", "Hey", "Hi", "Hello", "Jarvis", "OS1", "Always", "Never", "Done",
}


def extract(text: str) -> dict[str, str]:
    """The facts a user's words state, by key: {"name": "Theo"}; the last statement of a key wins."""
    found: dict[str, tuple[int, str]] = {}
    for key, patterns in PATTERNS.items():
        for pattern in patterns:
            for m in pattern.finditer(text):
                value = m.group(1).strip(" '’-")
                if key in ("name", "home") and (value.split()[0] in NOT_NAMES):
                    continue
                if key == "name":
                    value = " ".join(w for w in value.split() if w not in NOT_NAMES)
                if value and (key not in found or m.start() >= found[key][0]):
                    found[key] = (m.start(), value)
    return {k: v for k, (_, v) in found.items()}


def fact_text(key: str, value: str) -> str:
    return TEMPLATES[key].format(value)


def fact_value(key: str, text: str) -> str:
    """The value back out of a stored fact's text."""
    head, tail = TEMPLATES[key].split("{}")
    return text[len(head) : len(text) - len(tail)] if text.startswith(head) and text.endswith(tail) else text
