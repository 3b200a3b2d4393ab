"""Training and held-out data: synthetic clips → openWakeWord features → labelled head inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..audio.chunk import FRAME, RATE
from . import augment
from ..audio.wake import WARMUP_FRAMES
from .features import WINDOW, FeatureExtractor, window_at
from .phrases import (FOLLOW_UPS, HELD_OUT_CONFUSABLES, SENTENCES, babble, confusables, near_miss, speakable,
                      spoken_forms)
from .voices import Speaker, Voices

STEP = FRAME / RATE
"""Seconds per frame (80 ms)."""
POSITIVE_SPAN = (-0.04, 0.32)
"""Head inputs whose last frame ends this many seconds around the end of the phrase are positives."""
PARTIAL_BEFORE = 0.35
"""Head inputs of a positive clip that end this long or more before the phrase's end are negatives (the phrase
without its last word, "hey O S", must not fire)."""
NEAR_MISS = 3.0
"""Weight of a near miss (confusable phrase, part of the phrase) against ordinary speech and noise."""


@dataclass(frozen=True)
class Budget:
    """How much to synthesise; `for_minutes` scales it to a training time on a 2-core CPU."""

    positives: int
    confusables: int
    speech_s: float
    """Seconds of ordinary speech (negatives)."""
    noise_s: float
    babble_s: float
    """Seconds of random words (negatives, see phrases.babble)."""
    kokoro_share: float
    """Share of clips said by Kokoro (slower to synthesise than espeak-ng)."""
    eval_positives: int
    eval_confusables: int
    eval_speech_s: float

    @classmethod
    def for_minutes(cls, minutes: float) -> Budget:
        m = max(minutes, 0.05)
        return cls(positives=max(8, int(75 * m)), confusables=max(8, int(75 * m)), speech_s=max(10.0, 90 * m),
                   noise_s=max(5.0, 15 * m), babble_s=max(10.0, 60 * m), kokoro_share=0.25,
                   eval_positives=max(4, int(10 * m)), eval_confusables=max(4, int(6 * m)),
                   eval_speech_s=max(10.0, 24 * m))


@dataclass
class Examples:
    """Head inputs and their labels."""

    x: np.ndarray
    """[n, 16, 96] float16."""
    y: np.ndarray
    """[n] float32, 1 for the wake phrase."""
    w: np.ndarray
    """[n] float32, how much each counts within its class (near misses more than ordinary speech)."""


@dataclass
class Clip:
    """A held-out clip: its features and what it is."""

    kind: str
    """"positive", "confusable" or "speech"."""
    label: str
    """Speaker and text."""
    emb: np.ndarray
    """[frames, 96]."""


def trim(pcm: np.ndarray, level: float = 0.02) -> np.ndarray:
    """Speech without the leading and trailing silence (relative to its peak)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > level * (np.abs(pcm.astype(np.int32)).max() + 1))
    return pcm[loud[0] : loud[-1] + 1] if len(loud) else pcm


class Builder:
    """Makes the clips of one phrase from a set of speakers."""

    def __init__(self, phrase: str, voices: Voices, features: FeatureExtractor, speakers: list[Speaker],
                 seed: int, progress: bool = True) -> None:
        self.phrase, self.voices, self.features = phrase, voices, features
        self.kokoro = [s for s in speakers if s.engine == "kokoro"]
        self.espeak = [s for s in speakers if s.engine == "espeak"]
        self.rng = np.random.default_rng(seed)
        self.progress = progress

    def speaker(self, kokoro_share: float) -> Speaker:
        pool = self.kokoro if self.kokoro and (not self.espeak or self.rng.random() < kokoro_share) else self.espeak
        return pool[self.rng.integers(len(pool))]

    def say(self, text: str, speaker: Speaker) -> np.ndarray:
        return trim(self.voices.say(text, speaker, self.voices.delivery(speaker, self.rng)))

    def bar(self, n: int, what: str):  # type: ignore[no-untyped-def]
        return tqdm(range(n), desc=what, unit="clip", disable=not self.progress, leave=False)

    def positive(self, kokoro_share: float) -> tuple[np.ndarray, float, float]:
        """One clip of the phrase (sometimes with a request straight after): features, where the phrase starts
        and where it ends (seconds)."""
        speaker = self.speaker(kokoro_share)
        speech = self.say(str(self.rng.choice(spoken_forms(self.phrase))), speaker)
        phrase_len, after = len(speech), 0.5
        if self.rng.random() < 0.3:
            gap = np.zeros(int(self.rng.uniform(0.0, 0.25) * RATE), np.int16)
            rest = self.say(str(self.rng.choice(FOLLOW_UPS)), speaker)[: int(1.5 * RATE)]
            speech, after = np.concatenate([speech, gap, rest]), 0.1
        before = self.rng.uniform(0.9, 1.8)
        pcm, _ = augment.scene(speech, before, after, self.rng)
        return self.features.embeddings(pcm), before, before + phrase_len / RATE

    def positives(self, n: int, kokoro_share: float) -> Examples:
        """Head inputs that end just after the phrase (1), and a couple that end inside it (0)."""
        xs, ys, ws = [], [], []
        for _ in self.bar(n, "positive clips"):
            emb, start_s, end_s = self.positive(kokoro_share)
            ends = (np.arange(len(emb)) + 1) * STEP
            usable = np.arange(len(emb)) >= WINDOW - 1
            pos = np.flatnonzero(usable & (ends >= end_s + POSITIVE_SPAN[0]) & (ends <= end_s + POSITIVE_SPAN[1]))
            partial = np.flatnonzero(usable & (ends <= end_s - PARTIAL_BEFORE) & (ends >= start_s + 0.25))
            neg = self.rng.choice(partial, min(2, len(partial)), replace=False) if len(partial) else partial
            idx = np.concatenate([pos, neg]).astype(np.int64)
            xs.append(window_at(emb, idx + 1, self.features.initial))
            ys.append(np.r_[np.ones(len(pos)), np.zeros(len(neg))])
            ws.append(np.r_[np.ones(len(pos)), np.full(len(neg), NEAR_MISS)])
        return _examples(xs, ys, ws)

    def negatives(self, n: int, kokoro_share: float) -> Examples:
        """Clips of near misses; every frame's head input is a negative."""
        xs = []
        for _ in self.bar(n, "confusable clips"):
            speech = self.say(near_miss(self.phrase, self.rng), self.speaker(kokoro_share))
            pcm, _ = augment.scene(speech, self.rng.uniform(0.9, 1.6), self.rng.uniform(0.2, 0.8), self.rng)
            xs.append(self.features.windows(self.features.embeddings(pcm), start=WARMUP_FRAMES + 1))
        return _examples(xs, [np.zeros(len(x)) for x in xs], [np.full(len(x), NEAR_MISS) for x in xs])

    def stream(self, texts: list[str], seconds: float, kokoro_share: float, noise_s: float = 0.0) -> np.ndarray:
        """Sentences one after another, each in its own room and noise, with noise-only stretches between."""
        parts, total = [], 0
        bar = tqdm(total=int(seconds + noise_s), desc="ordinary speech", unit="s", disable=not self.progress,
                   leave=False)
        while total < seconds * RATE:
            speech = self.say(str(self.rng.choice(texts)), self.speaker(kokoro_share))
            pcm, _ = augment.scene(speech, self.rng.uniform(0.1, 0.6), self.rng.uniform(0.1, 0.6), self.rng)
            parts.append(pcm)
            bar.update(int((total + len(pcm)) / RATE) - int(total / RATE))
            total += len(pcm)
        left = noise_s
        while left > 0:
            parts.append(augment.background(min(left, 20.0), self.rng))
            bar.update(int(min(left, 20.0)))
            left -= 20.0
        bar.close()
        order = self.rng.permutation(len(parts))
        pcm = np.concatenate([parts[i] for i in order]) if parts else np.zeros(0, np.int16)
        return pcm[: len(pcm) // FRAME * FRAME]


def _examples(xs: list[np.ndarray], ys: list[np.ndarray], ws: list[np.ndarray]) -> Examples:
    if not xs:
        return Examples(np.zeros((0, WINDOW, 96), np.float16), np.zeros(0, np.float32), np.zeros(0, np.float32))
    return Examples(np.concatenate(xs).astype(np.float16), np.concatenate(ys).astype(np.float32),
                    np.concatenate(ws).astype(np.float32))


def training_set(b: Builder, budget: Budget, words: Sequence[str] = ()) -> Examples:
    """Positives, near misses, other wake phrases, ordinary speech, babble of `words` and noise, from the
    training speakers."""
    parts = [b.positives(budget.positives, budget.kokoro_share),
             b.negatives(budget.confusables, budget.kokoro_share)]
    streams = [b.stream(list(SENTENCES[::2]), budget.speech_s, 0.2, budget.noise_s)]
    if words:
        streams.append(b.stream(babble(words, b.rng, 400), budget.babble_s, 0.1))
    for pcm in streams:
        x = b.features.windows(b.features.embeddings(pcm))
        parts.append(_examples([x], [np.zeros(len(x))], [np.ones(len(x))]))
    return Examples(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("x", "y", "w")))


def held_out_set(b: Builder, budget: Budget) -> list[Clip]:
    """Clips for the evaluation: held-out speakers, sentences and random draws."""
    clips = []
    said = speakable(b.phrase)
    forms = [*spoken_forms(b.phrase), f"{said[:1].upper() + said[1:]}, what time is it?"]
    for k in b.bar(budget.eval_positives, "held-out positives"):
        speaker = b.speaker(0.3)
        text = forms[k % len(forms)]
        pcm, _ = augment.scene(b.say(text, speaker), b.rng.uniform(1.0, 2.0), 1.0, b.rng)
        clips.append(Clip("positive", f"{speaker.name}: {text}", b.features.embeddings(pcm)))
    near = list(HELD_OUT_CONFUSABLES) if said.lower() == "hey o s one" else confusables(b.phrase)[:8]
    for k in b.bar(budget.eval_confusables * len(near) // 4, "held-out confusables"):
        speaker, text = b.speaker(0.3), near[k % len(near)]
        pcm, _ = augment.scene(b.say(text, speaker), b.rng.uniform(1.0, 2.0), 1.0, b.rng)
        clips.append(Clip("confusable", f"{speaker.name}: {text}", b.features.embeddings(pcm)))
    pcm = b.stream(list(SENTENCES[1::2]), budget.eval_speech_s, 0.15, budget.eval_speech_s / 5)
    clips.append(Clip("speech", "ordinary speech and noise", b.features.embeddings(pcm)))
    return clips
