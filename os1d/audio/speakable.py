"""Text as it should be read aloud: no markdown, emoji or stray symbols; numbers, times and
abbreviations in words."""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

ABBREVIATIONS = {
    "dr.": "Doctor", "mr.": "Mister", "mrs.": "Missus", "ms.": "Miz", "prof.": "Professor", "vs.": "versus",
    "e.g.": "for example", "i.e.": "that is", "approx.": "approximately",
}
"""Always followed by more of the sentence."""
LAST_WORDS = {"jr.": "Junior", "sr.": "Senior", "etc.": "et cetera", "min.": "minutes"}
"""May also end it: their full stop then stays."""
ENDS = re.compile(r"\s*(?:$|[A-Z\"“'‘])")
"""What follows a full stop that ends a sentence."""
SYMBOLS = {"&": " and ", "%": " percent", "+": " plus ", "=": " equals ", "@": " at ", "°C": " degrees Celsius",
           "°F": " degrees Fahrenheit", "°": " degrees", "/": " slash ", "~": " about "}
CURRENCY = {"$": ("USD", "dollar"), "€": ("EUR", "euro"), "£": ("GBP", "pound"), "¥": ("JPY", "yen")}
"""Sign → (ISO code for num2words, the unit said for whole amounts)."""
UNITS = {"km/h": "kilometers per hour", "kph": "kilometers per hour", "mph": "miles per hour", "km": "kilometers",
         "cm": "centimeters", "mm": "millimeters", "mi": "miles", "ft": "feet", "kg": "kilograms", "mg": "milligrams",
         "lbs": "pounds", "lb": "pounds", "oz": "ounces", "ml": "milliliters", "mL": "milliliters", "TB": "terabytes",
         "GB": "gigabytes", "MB": "megabytes", "KB": "kilobytes", "kB": "kilobytes", "GHz": "gigahertz",
         "MHz": "megahertz", "kHz": "kilohertz", "Hz": "hertz", "kWh": "kilowatt hours", "kW": "kilowatts",
         "hrs": "hours", "hr": "hours", "mins": "minutes", "min": "minutes", "secs": "seconds", "ms": "milliseconds",
         "x": "times"}
"""A unit written after a number → its words (plural; after exactly 1, singular)."""
SINGULAR = {"feet": "foot"}
"""Irregular ones (the rest lose the s of their first plural word)."""
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
SCALES = {"k": "thousand", "K": "thousand", "m": "million", "M": "million", "mn": "million", "b": "billion",
          "B": "billion", "bn": "billion", "thousand": "thousand", "million": "million", "billion": "billion",
          "trillion": "trillion"}
"""$2B, $1.5 million → two billion dollars, one point five million dollars."""
_NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"


def _words(number: str) -> str:
    """A written number in words, its decimals digit by digit; a code or an ID (more than 15 digits before any
    point, beyond what anyone says as one number) digit by digit too."""
    whole, _, decimals = number.replace(",", "").partition(".")
    said = " ".join(map(_digit, whole)) if len(whole) > 15 else num2words(int(whole or 0))
    return said + (" point " + " ".join(map(_digit, decimals)) if decimals else "")


def _digit(d: str) -> str:
    return num2words(int(d))


def _year(digits: str) -> str:
    """1999 → nineteen ninety-nine (four digits as a year), 80 → eighty."""
    return num2words(int(digits), to="year") if len(digits) == 4 else num2words(int(digits))


def _time(m: re.Match[str]) -> str:
    """3:05 pm → three oh five PM; 10:00 → ten o'clock; 3pm → three PM."""
    hour, minute, suffix = int(m.group(1)), int(m.group(2) or 0), m.group(3) or ""
    said = num2words(hour)
    if minute == 0:
        said += "" if suffix else " o'clock"
    else:
        said += (" oh " if minute < 10 else " ") + num2words(minute)
    if suffix:  # (as capitals: "a m" reads as "uh m"); a full stop that also ended the sentence stays
        said += " " + suffix.replace(".", "").upper()
        if suffix.endswith(".") and ENDS.match(m.string, m.end()):
            said += "."
    return said


def _date(year: str, month: str, day: str) -> str | None:
    if not 1 <= int(month) <= 12 or not 1 <= int(day) <= 31:
        return None
    return f"{MONTHS[int(month) - 1]} {num2words(int(day), to='ordinal')}, {_year(year)}"


def _slashed_date(m: re.Match[str]) -> str:
    """12/25/2024 → December twenty-fifth, twenty twenty-four (25/12/2024 the same: day first where it must be)."""
    first, second, year = m.groups()
    said = _date(year, first, second) if int(first) <= 12 else _date(year, second, first)
    return said or m.group(0)


def _fraction(m: re.Match[str]) -> str:
    """2/3 → two thirds, 1/2 → one half, 24/7 → twenty-four seven, 50/50 → fifty-fifty; else as it is."""
    top, bottom = int(m.group(1)), int(m.group(2))
    if top == bottom:
        return f"{num2words(top)}-{num2words(top)}"
    if (top, bottom) == (24, 7):
        return "twenty-four seven"
    if not 0 < top < bottom <= 10:
        return m.group(0)
    part = {2: "half", 4: "quarter"}.get(bottom) or num2words(bottom, to="ordinal")
    if top > 1:
        part = "halves" if part == "half" else part + "s"
    return f"{num2words(top)} {part}"


def _decade(m: re.Match[str]) -> str:
    """1990s → nineteen nineties; '80s, 80s → eighties."""
    said = _year(m.group(1) or m.group(2))
    return said[:-1] + "ies" if said.endswith("y") else said + "s"


def _measure(m: re.Match[str]) -> str:
    unit = UNITS[m.group(2)]
    if m.group(1) == "1":
        unit = SINGULAR.get(unit) or re.sub(r"s\b", "", unit, count=1)
    return f"{_words(m.group(1))} {unit}"


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
    amount, scale = float(m.group(1).replace(",", "")), SCALES.get(m.group(2) or "")
    plural = "" if unit == "yen" or (amount == 1 and not scale) else "s"
    if scale:
        return f"{_words(m.group(1))} {scale} {unit}{plural}"
    if amount == int(amount) or amount >= 1e15 or unit == "yen":  # (no cents in a yen)
        return f"{_words(m.group(1))} {unit}{plural}"
    said = num2words(amount, to="currency", currency=code, lang="en").replace(" sterling", "")
    return re.sub(r"^zero \w+, ", "", said)  # ($0.99: ninety-nine cents)


def _month_day(m: re.Match[str]) -> str:
    """Jan 5, December 25th → January fifth, December twenty-fifth."""
    month = next(name for name in MONTHS if name.startswith(m.group(1)[:3]))
    return f"{month} {num2words(int(m.group(2)), to='ordinal')}"


def _abbreviations(text: str) -> str:
    """Dr. → Doctor, etc. → et cetera (its full stop kept where it also ends the sentence); No. 5 → number five
    but "No. I don't." as it is; St. Paul → Saint Paul, Main St. → Main Street."""
    text = re.sub(r"(?i)(?<![\w.])no\.(?=\s*\d)", "number", text)
    text = re.sub(r"(?<![\w.])St\.(?=\s+[A-Z])", "Saint", text)
    for abbrev, full in [*ABBREVIATIONS.items(), *LAST_WORDS.items(), ("St.", "Street")]:
        ends = abbrev in LAST_WORDS or abbrev == "St."
        text = re.sub(rf"(?<![\w.])(?<!\d )(?<!\d){re.escape(abbrev)}(?=\s|$)",  # (not a unit: 5 ms.)
                      lambda m, f=full, e=ends: f + "." if e and ENDS.match(m.string, m.end()) else f, text,
                      flags=0 if abbrev == "St." else re.I)
    return text


def speakable(text: str) -> str:
    """The words to synthesise for `text`."""
    text = re.sub(r"(?<![\w#])#(?=\d)", "number ", text)  # #1
    text = _numbers(_abbreviations(strip_markdown(text)))
    for sign, said in SYMBOLS.items():
        text = text.replace(sign, said)
    text = "".join(ch for ch in text if not _is_pictograph(ch))
    text = re.sub(r"[\"“”«»()\[\]{}<>|\\^]", " ", text)
    text = re.sub(r"\s*[—–]\s*", ", ", text)  # a dash is a pause
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"([,.!?;:])(?:\s*[,.;:])+", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _numbers(text: str) -> str:
    """Dates, phone numbers, ranges, times, money, ordinals, decades, fractions, measures and numbers in words."""
    text = re.sub(r"(?<=[A-Za-z])(?=\d)", " ", text)  # MP3, v1.2
    text = re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b", lambda m: _date(*m.groups()) or m.group(0), text)
    text = re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b", _slashed_date, text)
    text = re.sub(rf"\b({'|'.join(MONTHS)}|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?\s+(\d{{1,2}})"
                  r"(?:st|nd|rd|th)?\b(?![:.,]\d)", _month_day, text)
    text = re.sub(r"(?<![\d.])\d+(?:\.\d+){2,}(?!\.?\d)",  # version 1.2.3
                  lambda m: " point ".join(_words(part) for part in m.group(0).split(".")), text)
    text = re.sub(r"\b911\b", "nine one one", text)
    text = re.sub(r"(?<![\d\-$€£¥])\(?(\d{3})\)?[-. ](\d{3})-(\d{4})\b|(?<![\d\-$€£¥])(\d{3})-(\d{4})\b",
                  lambda m: ", ".join(" ".join(map(_digit, g)) for g in m.groups() if g), text)  # phone
    after_number = r"(?:(?<=\d)|(?<=\d%)|(?<=\d[ap]m)|(?<=\d[AP]M)|(?<=\d [ap]m)|(?<=\d [AP]M))"  # (9am-5pm)
    text = re.sub(after_number + r"(?:-|\s?–\s?)(?=[$€£¥]?\d)", " to ", text)  # 2010-2020, $3–$5
    text = re.sub(r"(?<=\d) - (?=\d)", " minus ", text)  # 10 - 5
    text = re.sub(r"\b(\d{1,2}):(\d{2})\s*([ap]\.?m\b\.?)?(?=\W|$)", _time, text, flags=re.I)
    text = re.sub(r"\b(1[0-2]|[1-9])()\s?([ap]\.?m\b\.?)(?=\W|$)", _time, text, flags=re.I)
    for sign, (code, unit) in CURRENCY.items():
        text = re.sub(rf"{re.escape(sign)}\s?({_NUMBER})(?:\s?({'|'.join(SCALES)})\b)?",
                      lambda m, c=code, u=unit: _money(m, c, u), text)
    text = re.sub(r"\b(\d{1,15})(st|nd|rd|th)\b", lambda m: num2words(int(m.group(1)), to="ordinal"), text)
    text = re.sub(r"\b(1[1-9]\d0|20\d0)s\b|(?<![\w'’])['’]?([2-9]0)s\b", lambda m: _decade(m), text)
    text = re.sub(r"(?<![\w/.])(\d{1,6})/(\d{1,6})(?![\w/]|\.\d)", _fraction, text)
    text = re.sub(rf"({_NUMBER})\s?({'|'.join(re.escape(u) for u in UNITS)})(?![\w/-])", _measure, text)
    text = re.sub(r"(?<=\d)(?=[A-Za-z])", " ", text)  # 4K, 3D
    text = re.sub(rf"(?<![\w.])-(?={_NUMBER})", "minus ", text)
    text = re.sub(r"(?<![\w.])\.(?=\d)", "point ", text)  # .5
    return re.sub(_NUMBER, _year_or_number, text)
