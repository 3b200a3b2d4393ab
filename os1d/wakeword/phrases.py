"""What to say: the wake phrase as speakable text, phrases that sound like it, and ordinary sentences."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from num2words import num2words

PRETRAINED = ("hey jarvis", "hey mycroft", "alexa", "okay google", "hey siri")
"""Other assistants' wake phrases: never ours."""
GENERIC_CONFUSABLES = ("hey there", "hey", "hey you", "okay", "hello", "hi there", "hey guys", "oh yes",
                       "hey listen", "one two three", "hey what's up", "so yes", "excuse me")
EXTRA_CONFUSABLES = {
    "hey o s one": ("hey O S", "hey Otis", "O S one", "hey Oswald", "hey OS", "hey Oz", "hey O S two", "hey Oscar",
                    "hey Jose", "hey oh yes", "okay S one", "hey Otis one", "hey O S X", "hey is one", "hey Ellis",
                    "hey Moses", "hey ocean", "hey OS ten", "the OS one", "hey Oswin", "hey Oswego"),
}
"""Hand-picked near misses for phrases we ship (keys: speakable text, lower case); the first six, the closest,
are drawn three times as often."""
CLOSEST = 6
HELD_OUT_CONFUSABLES = ("hey OS", "hey Otis", "OS one", "hey Oswald", "hey there", "hey jarvis", "hey mycroft",
                        "alexa")
"""The confusables of issue 11 for hey OS1, said by held-out voices in the evaluation."""
FOLLOW_UPS = ("what time is it", "do you remember me", "tell me a story", "can you hear me", "turn it down",
              "I'm home", "what's the weather like", "play some music", "how are you today", "good morning")
"""Requests said straight after the phrase (one breath), so the head fires with speech following."""

SENTENCES = (
    "I left the window open last night and the whole room smells of rain.",
    "Could you pass me the salt and the little jar of pepper?",
    "We took the early train to the coast and walked along the harbour.",
    "My brother fixes old bicycles in his garage on the weekends.",
    "The meeting moved to Thursday afternoon because Anna is travelling.",
    "There is a small bakery on the corner that sells warm bread at seven.",
    "I think the cat has learned how to open the kitchen door.",
    "Remember to water the tomatoes before the sun gets too high.",
    "He wrote three letters and forgot to post any of them.",
    "The library closes early on Sundays, so we should go now.",
    "She plays the cello in a quartet that practises every Tuesday.",
    "We painted the fence blue and the neighbours said it looked cheerful.",
    "Turn left after the bridge and look for the red door.",
    "The soup needs more time, and maybe a little more garlic.",
    "I have been reading a long novel about a family of lighthouse keepers.",
    "Our flight was delayed for two hours because of fog.",
    "The children built a castle of sand and defended it from the waves.",
    "Please bring your own cup, the office ran out of mugs again.",
    "In autumn the park is full of people collecting chestnuts.",
    "I would rather stay in tonight and listen to some records.",
    "The engineer explained the plan with a pencil and a napkin.",
    "Every morning the old man feeds the pigeons in the square.",
    "We need eggs, flour, butter and a lemon for the cake.",
    "The river rose so quickly that the path was under water by noon.",
    "My phone battery died just as the taxi arrived.",
    "They argued for an hour about the best way to fold a map.",
    "This year the garden gave us more courgettes than we could eat.",
    "The museum has a room full of clocks that all show different times.",
    "He whistled the same tune all the way home.",
    "Let's meet at the station at half past six and share a cab.",
    "The printer on the second floor jams whenever someone is in a hurry.",
    "A fox crossed the road in front of us and vanished into the hedge.",
    "I still have the postcard you sent me from Lisbon.",
    "The teacher asked everyone to write a poem about their street.",
    "Snow fell all night and the village woke up completely silent.",
    "We should call the plumber before the leak gets any worse.",
    "Her grandmother taught her to knit when she was nine.",
    "The concert was loud, crowded and absolutely wonderful.",
    "Put the blue folder on my desk, next to the lamp.",
    "On Fridays the market sells fish straight from the boats.",
    "I could not find my keys, so I climbed in through the window.",
    "The hotel lobby had a piano that nobody was allowed to play.",
    "Most of the apples fell before we had time to pick them.",
    "It took us three tries to get the tent to stand up.",
    "The baby laughed every time the dog sneezed.",
    "We watched the storm roll in from the top of the hill.",
    "The recipe says to let the dough rest for an hour.",
    "He keeps a notebook of every bird he has ever seen.",
    "Our neighbours are moving to a farm in the north.",
    "The radio played old songs while we cleaned the attic.",
)
"""Ordinary speech (written for os1d); the even ones for training, the odd ones held out."""


def speakable(phrase: str) -> str:
    """Text a TTS voice says as the user would: "hey OS1" → "hey O S one" (capitals spelled, digits as words)."""
    words = []
    for token in re.findall(r"[A-Za-z']+|\d+", phrase.replace("-", " ")):
        if token.isdigit():
            words.append(num2words(int(token)))
        elif token.isupper() and len(token) <= 4:
            words.append(" ".join(token))
        else:
            words.append(token)
    return " ".join(words)


def model_name(phrase: str) -> str:
    """The head's name: "hey OS1" → "hey_os1"."""
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_") or "wakeword"


def spoken_forms(phrase: str) -> list[str]:
    """A few ways of writing the phrase that make the voices vary their stress and pauses."""
    said = speakable(phrase)
    cap = said[:1].upper() + said[1:]
    forms = [said, cap + ".", cap.replace(" ", ", ", 1) + "!"]
    if said.count(" ") >= 2:
        forms.append(cap + "?")
    return forms


def confusables(phrase: str) -> list[str]:
    """Phrases that share sounds with the wake phrase but must not wake it."""
    said = speakable(phrase)
    words = said.split()
    near = [" ".join(words[:-1]), " ".join(words[1:])] if len(words) > 1 else []
    for k, w in enumerate(words):  # one word changed: a digit for another, a letter dropped
        if w in ("one", "two", "three", "four", "five"):
            other = {"one": "two", "two": "three", "three": "four", "four": "five", "five": "one"}[w]
            near.append(" ".join(words[:k] + [other] + words[k + 1 :]))
    out = [*near, *EXTRA_CONFUSABLES.get(said.lower(), ()), *PRETRAINED, *GENERIC_CONFUSABLES]
    key = said.lower()
    return list(dict.fromkeys(c for c in out if c and speakable(c).lower() != key))


def _vocabulary() -> list[str]:
    words = {w.lower() for line in SENTENCES[::2] for w in re.findall(r"[A-Za-z']+", line)}
    return sorted(w for w in words if len(w) > 1 and not w.endswith(("ay", "ey", "ei")))


VOCABULARY = _vocabulary()
"""Words of the training sentences (none that rhymes with "hey")."""


def whisper_words(folder: Path | None, most: int = 12000) -> list[str]:
    """The most frequent whole words of Whisper's tokenizer (in the STT model's folder), for babble: far more
    sounds than the written sentences. The sentences' own words when the folder has no tokenizer."""
    try:
        vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"] if folder else {}
    except (OSError, ValueError, KeyError, TypeError):
        vocab = {}
    words = [t[1:] for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])
             if t.startswith("\u0120") and re.fullmatch(r"[a-z]{2,}", t[1:])][:most]
    return words if len(words) >= 1000 else VOCABULARY


def babble(words: Sequence[str], rng: np.random.Generator, count: int) -> list[str]:
    """Sentences of 3 to 14 random words: ordinary-sounding speech with no meaning (negatives)."""
    return [" ".join(rng.choice(words, rng.integers(3, 15))).capitalize() + "." for _ in range(count)]


def near_miss(phrase: str, rng: np.random.Generator) -> str:
    """A random negative that shares most of its sounds with the phrase: a listed confusable, or the phrase with its
    first or last word swapped for another, or its first word followed by something else."""
    listed = confusables(phrase)
    words = speakable(phrase).split()
    near = [c for c in listed if c not in PRETRAINED and c not in GENERIC_CONFUSABLES]
    closest = [c for c in EXTRA_CONFUSABLES.get(speakable(phrase).lower(), ())[:CLOSEST] if c in near]
    pick = rng.random()
    if pick < 0.45 or len(words) < 2:
        return str(rng.choice(near + 2 * closest if near and rng.random() < 0.8 else listed))
    if pick < 0.5:  # a part of the phrase alone
        return " ".join(words[1:] if rng.random() < 0.6 else words[:-1])
    other = " ".join(rng.choice(VOCABULARY, rng.integers(1, 3)))
    if pick < 0.65:
        text = " ".join([other, *words[1:]])
    elif pick < 0.8:
        text = " ".join([*words[:-1], other])
    else:
        text = " ".join([words[0], other])
    return text if speakable(text).lower() != speakable(phrase).lower() else listed[0]
