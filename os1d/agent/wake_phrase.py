"""The wake phrase in a transcript: an utterance starts before the phrase, so its text is removed here.

Whisper spells the phrase in many ways ("Hey Jarvis,", "Hey, Jarvis.", "Hi Jarvis", "Hey Travis",
"A Jarvis", "Jarvis"), so it is matched loosely, on letters, and only near the start of the text.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

MATCH = 0.7
"""Similarity (0..1, on letters) from which a span of the transcript is taken for the wake phrase…"""
TAIL_MATCH = 0.8
"""…and for the phrase's end alone ("Jarvis", "Javis", "Travis"; not "Paris")."""
LEAD_WORDS = 2
"""Words that may come before the whole phrase (the end of something said just before it)."""
DIGITS = dict(zip("0123456789", "zero one two three four five six seven eight nine".split(), strict=True))


def phrase_words(model_name: str) -> list[str]:
    """hey_jarvis → ["hey", "jarvis"]; hey_os1 → ["hey", "os1"]."""
    return [w for w in re.split(r"[_\s-]+", model_name.lower()) if w]


def spoken_phrase(model_name: str) -> str:
    """hey_jarvis → "Hey Jarvis,", hey_os1 → "Hey OS1,": how the phrase is written, as a hint for Whisper."""
    return " ".join(w.upper() if any(c.isdigit() for c in w) else w.capitalize()
                    for w in phrase_words(model_name)) + ","


def _letters(words: list[str]) -> str:
    text = "".join(words).lower()
    return re.sub(r"[^a-z]", "", re.sub(r"\d", lambda m: DIGITS[m.group()], text))


def _similar(heard: str, target: str) -> float:
    if abs(len(heard) - len(target)) > max(2, 0.3 * len(target)):
        return 0.0  # "Jarviston" is not "Jarvis"
    return SequenceMatcher(None, heard, target).ratio()


def remove_wake_phrase(text: str, wake_names: list[str]) -> str:
    """The transcript without the wake phrase it begins with (and anything heard before the phrase), and
    without the phrase said again at once ("Hey Jarvis, hey Jarvis.": people repeat it; Whisper, on a
    pause after it, sometimes hears it twice)."""
    rest = _without_phrase(text, wake_names, LEAD_WORDS)
    if rest is None:
        return text.strip()
    while rest and (again := _without_phrase(rest, wake_names, 0)) is not None:
        rest = again
    starts = {_letters(phrase_words(name)[:k]) for name in wake_names for k in range(1, len(phrase_words(name)))}
    if _letters(re.findall(r"[\w']+", rest)) in starts:  # "Hey Jarvis. Hey." (the phrase begun again)
        return ""
    return rest


def _without_phrase(text: str, wake_names: list[str], lead: int) -> str | None:
    """The text after the wake phrase, found within its first `lead` words and the phrase's length; None
    when it is not there."""
    tokens = list(re.finditer(r"[\w']+", text))
    words = [t.group() for t in tokens]
    best: tuple[float, int] | None = None  # (score, words to drop)
    for name in wake_names:
        phrase = phrase_words(name)
        whole = _letters(phrase)
        tails = [_letters(phrase[k:]) for k in range(1, len(phrase))]
        for i in range(min(lead, len(words)) + 1):
            for j in range(i + 1, min(i + len(phrase) + 1, len(words)) + 1):
                heard = _letters(words[i:j])
                score = _similar(heard, whole)
                if i == 0:  # only the phrase's end was heard ("Jarvis, …")
                    tail = max((_similar(heard, t) for t in tails), default=0.0)
                    score = max(score, tail if tail >= TAIL_MATCH else 0.0)
                if score >= MATCH and (best is None or score > best[0] + 0.02
                                       or (score > best[0] - 0.02 and j < best[1])):
                    best = (score, j)
    if best is None:
        return None
    rest = text[tokens[best[1] - 1].end():] if best[1] else text
    rest = re.sub(r"^[\s,.!?;:\-–—]+", "", rest).strip()
    return rest[:1].upper() + rest[1:]
