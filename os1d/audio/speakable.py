"""Text as it should be read aloud: no markdown, emoji or stray symbols; numbers, times and
abbreviations in words."""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

ABBREVIATIONS = {
    "dr.": "Doctor", "mr.": "Mister", "mrs.": "Missus", "ms.": "Miz", "prof.": "Professor", "jr.": "Junior",
    "sr.": "Senior", "st.": "Saint", "vs.": "versus", "etc.": "et cetera", "e.g.": "for example",
    "i.e.": "that is", "approx.": "approximately", "min.": "minutes", "no.": "number",
}
SYMBOLS = {"&": " and ", "%": " percent", "+": " plus ", "=": " equals ", "@": " at ", "°C": " degrees Celsius",
           "°F": " degrees Fahrenheit", "°": " degrees", "/": " slash ", "~": " about "}
CURRENCY = {"$": ("USD", "dollar"), "€": ("EUR", "euro"), "£": ("GBP", "pound"), "¥": ("JPY", "yen")}
"""Sign → (ISO code for num2words, the unit said for whole amounts)."""
_NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"


def _words(number: str, **kw: str) -> str:
    value = float(number.replace(",", "")) if "." in number else int(number.replace(",", ""))
    return num2words(value, lang="en", **kw)


def _time(m: re.Match[str]) -> str:
    hour, minute, suffix = int(m.group(1)), int(m.group(2)), (m.group(3) or "").replace(".", "").lower()
    said = num2words(hour)
    if minute == 0:
        said += "" if suffix else " o'clock"
    else:
        said += (" oh " if minute < 10 else " ") + num2words(minute)
    return said + (f" {' '.join(suffix)}" if suffix else "")


def _year_or_number(m: re.Match[str]) -> str:
    text = m.group(0)
    if re.fullmatch(r"1[1-9]\d\d|20\d\d", text):
        return num2words(int(text), to="year")
    return _words(text)


def strip_markdown(text: str) -> str:
    """Markdown out; what it decorated stays, and each line or list item ends as a sentence."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)  # code blocks are not read
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [text](link) → text
    text = re.sub(r"https?://\S+|www\.\S+", "a link", text)
    text = re.sub(r"(?m)^\s{0,3}(#{1,6}|>|[-*+]|\d+[.)])\s+", "", text)  # headings, quotes, list bullets
    text = re.sub(r"(\*\*|\*|~~|`)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"(?<!\w)(__|_)(?=\S)(.+?)(?<=\S)\1(?!\w)", r"\2", text)
    text = re.sub(r"(?<=[^\s.!?,;:])[ \t]*\n+", ". ", text)
    return text.replace("`", "").replace("*", " ").replace("#", " ").replace("_", " ")


def _is_pictograph(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("So", "Sk", "Cs", "Co") or ch in "\u200d\ufe0e\ufe0f" or 0x1F000 <= ord(ch) <= 0x1FAFF


def _money(m: re.Match[str], code: str, unit: str) -> str:
    amount = float(m.group(1).replace(",", ""))
    if amount != int(amount):
        return num2words(amount, to="currency", currency=code, lang="en")
    plural = "" if amount == 1 or unit == "yen" else "s"
    return f"{num2words(int(amount))} {unit}{plural}"


def speakable(text: str) -> str:
    """The words to synthesise for `text`."""
    text = strip_markdown(text)
    for abbrev, full in ABBREVIATIONS.items():
        text = re.sub(rf"(?i)(?<![\w.]){re.escape(abbrev)}(?=\s|$)", full, text)
    text = re.sub(r"\b(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?(?=\W|$)", _time, text, flags=re.I)
    for sign, (code, unit) in CURRENCY.items():
        text = re.sub(rf"{re.escape(sign)}\s?({_NUMBER})", lambda m, c=code, u=unit: _money(m, c, u), text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: num2words(int(m.group(1)), to="ordinal"), text)
    text = re.sub(rf"(?<![\w.])-(?={_NUMBER})", "minus ", text)
    text = re.sub(_NUMBER, _year_or_number, text)
    for sign, said in SYMBOLS.items():
        text = text.replace(sign, said)
    text = "".join(ch for ch in text if not _is_pictograph(ch))
    text = re.sub(r"[\"“”«»()\[\]{}<>|\\^]", " ", text)
    text = re.sub(r"\s*[—–]\s*", ", ", text)  # a dash is a pause
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"([,.!?;:])(?:\s*[,.;:])+", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()
