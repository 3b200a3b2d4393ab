"""Stable facts about the user, taken from what they say: their name, where they live, their work."""

from __future__ import annotations

import re

_WORD = r"[A-Z][\w'’-]*"
_NAME = rf"({_WORD}(?:\s+(?!And\b|But\b){_WORD})?)"
"""One or two capitalised words (Whisper capitalises names)."""
_PLACE = rf"({_WORD}(?:\s+(?:(?:de|da|del|do|of|on|upon)\s+)?(?!And\b|But\b){_WORD}){{0,2}})"
"""One to three capitalised words, perhaps joined by a particle: Paris, New York City, Rio de Janeiro."""
_LEAD = r"(?:^|[\s,.!?;:])"
_END = r"(?=\s*(?:[,.!?;:]|$|\s+(?i:and|but)\b))"
"""Where a clause ends: only then is what came before it the whole name."""
_SELF = "said_name"
"""The key of "I'm …", the weak way of giving a name (also how people say where they come from or what they
believe)."""
PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "name": [re.compile(_LEAD + r"(?i:my\s+name\s+is|my\s+name's|call\s+me|you\s+can\s+call\s+me)\s+" + _NAME),
             # typed in lower case (os1d ask): one word, and only where nothing follows it ("my name is theo.")
             re.compile(_LEAD + r"(?i:my\s+name\s+is|my\s+name's)\s+([a-z][\w'’-]*)" + _END)],
    _SELF: [re.compile(_LEAD + r"(?i:i\s+am|i'm|i’m|this\s+is)\s+" + _NAME + _END)],
    "home": [re.compile(_LEAD + r"(?i:i\s+live\s+in|i'm\s+living\s+in|i\s+moved\s+to)\s+" + _PLACE)],
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
_ASKS_NAME = re.compile(r"(?i)\bwhat\s+(?:should|shall|can|may|do)\s+i\s+call\s+you\b|"
                        r"\bwhat(?:'s|’s|\s+is)\s+your\s+name\b|\bhow\s+should\s+i\s+(?:call|address)\s+you\b|"
                        r"\bmay\s+i\s+(?:ask|have)\s+your\s+name\b")
_ANSWER = re.compile(r"^\W*(?:(?i:it's|it’s|it\s+is|just|oh|um|uh|hmm|well|sure|yes|yeah|okay|ok|hi|hello|hey)\W+)*"
                     rf"{_NAME}{_END}")
"""A name said on its own, as the answer to "what should I call you?": "Theo.", "It's Theo.", "Theo, hi."."""
NOT_AN_ANSWER = {"No", "Nope", "Nothing", "Anything", "Whatever", "Later", "Nobody", "Yes", "Yeah", "Why", "Who",
                 "Pass", "Skip", "Me", "You", "I", "Um", "Uh", "Hmm", "Well", "Thanks", "Thank", "Surprise", "Oh",
                 "Ah", "Am", "It's", "It’s"}
"""Words of an answer to that question that are not names ("Um, David" may come back as "Am David.")."""
NOT_SELF = {  # what "I'm …" says when it is not a name: Whisper capitalises these too
    "American", "Canadian", "Mexican", "Brazilian", "Argentinian", "Argentine", "Chilean", "Colombian", "Peruvian",
    "Cuban", "British", "English", "Scottish", "Welsh", "Irish", "French", "German", "Dutch", "Belgian", "Swiss",
    "Austrian", "Italian", "Spanish", "Portuguese", "Greek", "Swedish", "Norwegian", "Danish", "Finnish",
    "Icelandic", "Polish", "Czech", "Slovak", "Hungarian", "Romanian", "Bulgarian", "Serbian", "Croatian",
    "Ukrainian", "Russian", "Turkish", "Israeli", "Arab", "Arabic", "Egyptian", "Moroccan", "Nigerian", "Kenyan",
    "Ethiopian", "Ghanaian", "African", "Iranian", "Persian", "Iraqi", "Lebanese", "Syrian", "Pakistani", "Indian",
    "Bangladeshi", "Nepali", "Chinese", "Japanese", "Korean", "Vietnamese", "Thai", "Filipino", "Filipina",
    "Indonesian", "Malaysian", "Singaporean", "Taiwanese", "Australian", "Kiwi", "European", "Asian", "Latino",
    "Latina", "Hispanic", "Jewish", "Muslim", "Christian", "Catholic", "Protestant", "Buddhist", "Hindu", "Sikh",
    "Mormon", "Orthodox", "Atheist", "Agnostic", "Democrat", "Republican", "Libertarian", "Vegan", "Vegetarian",
}
"""Nationalities, languages, faiths and the like. "My name is …" and "call me …" still take any of them."""


def asks_name(said: str) -> bool:
    """Whether OS1's words ask the user's name (its first greeting does)."""
    return bool(_ASKS_NAME.search(said))


def _said_alone(text: str) -> str:
    """A name said on its own at the start of `text` (_ANSWER), or ""."""
    first = re.split(r"(?<=[.!?])\s+", text.strip())[0]  # "Theo, nice to meet you. …"
    m = _ANSWER.match(first)
    if m is None or len(first.split()) > 8:
        return ""
    words = m.group(1).split()  # (capitalised: a word Whisper wrote in lower case it did not take for a name)
    while words and words[0] in NOT_NAMES | NOT_AN_ANSWER:
        words.pop(0)
    return " ".join(words) if words and words[0] not in NOT_SELF else ""


def extract(text: str, asked_name: bool = False) -> dict[str, str]:
    """The facts a user's words state, by key: {"name": "Theo"}; the last statement of a key wins. asked_name: the
    words answer OS1's question of the user's name, so a name said on its own is theirs."""
    found: dict[str, tuple[int, str]] = {}
    for key, patterns in PATTERNS.items():
        for pattern in patterns:
            for m in pattern.finditer(text):
                value = m.group(1).strip(" '’-")
                if key == "name":
                    value = value[:1].upper() + value[1:]
                first = value.split()[0]
                if key != "work" and first in NOT_NAMES or key == _SELF and NOT_SELF & set(re.split("[-–]", first)):
                    continue
                fact = "name" if key == _SELF else key
                if fact == "name":
                    value = " ".join(w for w in value.split() if w not in NOT_NAMES)
                if value and (fact not in found or m.start() >= found[fact][0]):
                    found[fact] = (m.start(), value)
    if asked_name and "name" not in found and (name := _said_alone(text)):
        found["name"] = (0, name)
    return {k: v for k, (_, v) in found.items()}


def fact_text(key: str, value: str) -> str:
    return TEMPLATES[key].format(value)


def fact_value(key: str, text: str) -> str:
    """The value back out of a stored fact's text."""
    head, tail = TEMPLATES[key].split("{}")
    return text[len(head) : len(text) - len(tail)] if text.startswith(head) and text.endswith(tail) else text
