"""What OS1 reads aloud: the reply cut into pieces as it streams (os1d.audio.chunker) and each piece in words
(os1d.audio.speakable), heard through the real voice and Whisper."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

from os1d.audio.chunk import resample
from os1d.audio.chunker import Chunker
from os1d.audio.speakable import speakable
from os1d.audio.tts import KokoroVoice
from os1d.config import TtsConfig

SAID = [
    ("No. I don't think so.", "No. I don't think so."),
    ("No. 5 is my favourite.", "number five is my favourite."),
    ("The meeting is at 3pm.", "The meeting is at three PM."),
    ("See you at 11 a.m. tomorrow.", "See you at eleven AM tomorrow."),
    ("We open at 7:05 am. Come early!", "We open at seven oh five AM. Come early!"),
    ("It is 5:30pm in Lisbon.", "It is five thirty PM in Lisbon."),
    ("Lunch at 12:00.", "Lunch at twelve o'clock."),
    ("Open 9am-5pm, 9 AM – 5 PM.", "Open nine AM to five PM, nine AM to five PM."),
    ("It is about 10km away, 1 km from here.", "It is about ten kilometers away, one kilometer from here."),
    ("He is 6 ft tall; 1 ft is 30 cm.", "He is six feet tall; one foot is thirty centimeters."),
    ("It has 1.5 GB and a 3.2GHz CPU, 2x faster; 2 x-rays.",
     "It has one point five gigabytes and a three point two gigahertz CPU, two times faster; two x-rays."),
    ("It took 5 min. Then 30 ms.", "It took five minutes. Then thirty milliseconds."),
    ("It was built in the 1990s, not the '80s.", "It was built in the nineteen nineties, not the eighties."),
    ("Between 2010-2020, pages 5–10.", "Between twenty ten to twenty twenty, pages five to ten."),
    ("Tickets cost $3–$5.", "Tickets cost three dollars to five dollars."),
    ("10 - 5 is 5.", "ten minus five is five."),
    ("Call me on 555-1234 or (555) 123-4567.",
     "Call me on five five five, one two three four or five five five, one two three, four five six seven."),
    ("On 2024-12-25 and 12/25/2024 and 25/12/2024.",
     "On December twenty-fifth, twenty twenty-four and December twenty-fifth, twenty twenty-four and December "
     "twenty-fifth, twenty twenty-four."),
    ("Half of it, 1/2, is done: 2/3 of a cup, 50/50, 24/7.",
     "Half of it, one half, is done: two thirds of a cup, fifty-fifty, twenty-four seven."),
    ("It plays MP3 in 4K, version v1.2.3.", "It plays MP three in four K, version v one point two point three."),
    ("It costs $1.5 million, or $2B; $0.99 and £5.50.",
     "It costs one point five million dollars, or two billion dollars; ninety-nine cents and five pounds, "
     "fifty pence."),
    ("Prices rose 5%-10% by Jan 5 and December 25th, 2024.",
     "Prices rose five percent to ten percent by January fifth and December twenty-fifth, twenty twenty-four."),
    ("The #1 tip: call 911, drink .5 liters.", "The number one tip: call nine one one, drink point five liters."),
    ("Apples, pears, etc.", "Apples, pears, et cetera."),
    ("Apples, etc. and pears.", "Apples, et cetera and pears."),
    ("I live on Main St. near St. Paul's.", "I live on Main Street near Saint Paul's."),
    ("Dr. Smith, e.g. a doctor, vs. Mr. Jones.", "Doctor Smith, for example a doctor, versus Mister Jones."),
    ("It costs $5.50, or $1,000,000 for 100% of it.",
     "It costs five dollars, fifty cents, or one million dollars for one hundred percent of it."),
    ("It is -3°C, the 21st coldest day since 1999.",
     "It is minus three degrees Celsius, the twenty-first coldest day since nineteen ninety-nine."),
    ("**Sure!** Here's a [link](https://example.com) 👋 — enjoy.", "Sure! Here's a link, enjoy."),
    ("Your code is 12345678901234567890.",
     "Your code is one two three four five six seven eight nine zero one two three four five six seven eight nine "
     "zero."),
    ("It costs ¥47.4 or ¥500, about $0.30.",
     "It costs forty-seven point four yen or five hundred yen, about thirty cents."),
    ("# Plan\n- Buy milk\n- Call Anna", "Plan. Buy milk. Call Anna"),
]


@pytest.mark.parametrize("text,said", SAID)
def test_a_reply_is_read_as_a_person_would_say_it(text: str, said: str) -> None:
    assert speakable(text) == said


def test_any_text_at_all_can_be_read() -> None:
    """A reply is never lost to its reading: a number too long for words (pi to 400 digits, a hash) is read digit
    by digit, yen with decimals in words (num2words has no yen currency), and so on for any mixture."""
    assert speakable("3." + "1" * 400).split()[:3] == ["three", "point", "one"]
    assert speakable("1" * 400).split() == ["one"] * 400
    rng = random.Random(7)
    parts = [*"0123456789" * 6, *".,:-–—/$€£¥%#@&+=()[]\"' apmAPMkKbBxs*_`~\n", "st", "km", "No.", "St.",
             "Jan ", "1990s", "'80s", "a.m.", " ", "👋", "é", "**"]
    for _ in range(2000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 80)))
        assert isinstance(speakable(text), str)
        assert re.sub(r"\s", "", "".join(pieces(text, 3))) == re.sub(r"\s", "", text)  # (nothing lost)


def pieces(text: str, step: int) -> list[str]:
    """The chunker's pieces for `text` streamed `step` characters at a time."""
    chunker, out = Chunker(), []
    for i in range(0, len(text), step):
        out += chunker.feed(text[i:i + step])
    return out + chunker.flush()


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_the_reply_is_cut_into_a_short_first_clause_then_sentences_however_it_streams(step: int) -> None:
    assert pieces("Sure. I can set that timer for you. Anything else?", step) == \
        ["Sure.", "I can set that timer for you.", "Anything else?"]
    assert pieces("Hello from the tiny stand-in model, nice to hear you.", step) == \
        ["Hello from the tiny", "stand-in model, nice to hear you."]
    assert pieces("No. I don't think so. No. 5 is my favourite. Dr. Smith agrees.", step) == \
        ["No.", "I don't think so.", "No. 5 is my favourite.", "Dr. Smith agrees."]
    assert pieces("It costs $3.50 per day. Fine!", step) == ["It costs $3.50 per", "day.", "Fine!"]
    assert pieces("Yes. It opens on Sept. 5 this year.", step) == ["Yes.", "It opens on Sept. 5 this year."]
    long = ("Well, I think that the best way to do this is to start early and keep going until you are done, "
            "and then rest a while before you start the next thing on your list of things to do today.")
    got = pieces(long, step)
    assert " ".join(got) == long and got[0] == "Well,"
    assert [len(p.split()) for p in got[1:3]] == [8, 12]  # (each may be twice the one before: gapless)


@pytest.fixture(scope="module")
def voices(kit: Path, voice_graphs: Path) -> dict[str, KokoroVoice]:
    return {v: KokoroVoice(kit / "kokoro", TtsConfig(voice=v), cache=voice_graphs)
            for v in ("jm_kumo", "jf_nezumi", "jf_alpha")}


HEARD = [
    ("No. I don't think so.", r"^no(?!.*number)"),
    ("The meeting is at 3pm.", r"3pm"),
    ("It is about 10km away.", r"10(km|kilometers)away"),
    ("It is on Main St.", r"mainstreet"),
    ("Read pages 5–10 first.", r"5(to)?10first"),
    ("We open at 9 a.m. tomorrow.", r"9amtomorrow"),
]


@pytest.mark.parametrize("voice", ["jm_kumo", "jf_nezumi", "jf_alpha"])
def test_what_os1_says_is_what_it_wrote(voices: dict[str, KokoroVoice], whisper, voice: str) -> None:  # type: ignore
    """Read as written, "3pm" came out as "threepum" (Whisper: "the toilet"), "10km" as "tenkum", "Main St." as
    "Main Saint" and "No." as "number"."""
    for text, heard in HEARD:
        audio = voices[voice].synthesize(text)
        pcm = resample(np.clip(audio * 32767, -32768, 32767).astype(np.int16), 24000)
        transcript = whisper.transcribe(pcm)
        assert re.search(heard, re.sub(r"[^a-z0-9]", "", transcript.lower())), (text, transcript)
