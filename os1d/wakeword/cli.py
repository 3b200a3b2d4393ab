"""`os1d wakeword train PHRASE` and `os1d wakeword test WAV…`."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np

from ..audio.chunk import FRAME, RATE, read_wav
from ..errors import UserError
from . import trained_dir
from .phrases import model_name, speakable, whisper_words

PATIENCE = 3
"""Frames in a row (80 ms each) a trained head must score at the threshold to fire (kept in the model's metadata):
most false accepts in noisy speech are one or two frames long, the phrase itself three or more."""


def train_verb(cfg, phrase: str, out: Path | None, minutes: float, epochs: int, seed: int,  # type: ignore[no-untyped-def]
               data: Path | None = None, threads: int = 2) -> int:
    """Synthesise, train, export, evaluate; prints progress and a held-out summary."""
    from .. import models
    from .dataset import Budget, Builder, held_out_set, training_set
    from .evaluate import evaluate
    from .features import FeatureExtractor
    from .train import export, train
    from .voices import Voices, espeak_speakers, kokoro_speakers

    if not any(ch.isalnum() for ch in speakable(phrase)):
        raise UserError(f"the wake phrase {phrase!r} has no words in it")
    if minutes <= 0 or epochs <= 0:
        raise UserError("--minutes and --epochs must be positive")
    t0 = time.monotonic()
    root = cfg.models_dir()
    features = FeatureExtractor(models.locate(root, "openwakeword", cfg), threads=1)
    try:
        stt_folder: Path | None = models.locate(root, cfg.stt.model, cfg)
    except UserError:
        stt_folder = None
        print(f"no Whisper model in {root}: the babble negatives use the sentences' words alone")
    kokoro_dir = root / "kokoro"
    if not kokoro_dir.is_dir():
        print(f"no Kokoro voices in {root} (`os1d models pull kokoro` adds them); using espeak-ng alone")
    voices = Voices(kokoro_dir if kokoro_dir.is_dir() else None, threads)
    rng = np.random.default_rng(seed)
    speakers = kokoro_speakers(voices.kokoro_styles, rng, blends=60) + espeak_speakers()
    train_speakers = [s for s in speakers if not s.held_out]
    held_out = [s for s in speakers if s.held_out]
    if not train_speakers:
        voices.close()
        raise UserError("no voices to train with: install espeak-ng, or run `os1d models pull kokoro`")
    if not held_out:
        voices.close()
        raise UserError("too few voices to keep some for the evaluation: install espeak-ng")
    name = model_name(phrase)
    out = (out or trained_dir() / f"{name}_v0.1.onnx").expanduser().resolve()
    print(f"training {name!r} (said as {speakable(phrase)!r}) from {len(train_speakers)} voices "
          f"({sum(s.engine == 'kokoro' for s in train_speakers)} Kokoro); {len(held_out)} voices held out")
    budget = Budget.for_minutes(minutes)
    cache = (data / f"{name}-{minutes}-{seed}.pkl") if data else None
    try:
        if cache and cache.is_file():
            examples, clips = pickle.loads(cache.read_bytes())
        else:
            examples = training_set(Builder(phrase, voices, features, train_speakers, seed), budget,
                                    whisper_words(stt_folder))
            clips = held_out_set(Builder(phrase, voices, features, held_out, seed + 1), budget)
            if cache:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_bytes(pickle.dumps((examples, clips)))
    finally:
        voices.close()
    t_data = time.monotonic() - t0
    print(f"data: {int(examples.y.sum())} positive and {int((examples.y == 0).sum())} negative examples "
          f"in {t_data / 60:.1f} min")
    head = train(examples, epochs=epochs, seed=seed, threads=threads)
    t_all = time.monotonic() - t0
    export(head, out, phrase, {"patience": str(PATIENCE), "minutes": str(minutes), "seed": str(seed),
                               "epochs": str(epochs),
                               "train_seconds": f"{t_all:.0f}", "positives": str(int(examples.y.sum())),
                               "negatives": str(int((examples.y == 0).sum()))})
    print(f"trained in {(t_all - t_data) / 60:.1f} min; total {t_all / 60:.1f} min")
    for line in evaluate(out, clips, features.initial).lines():
        print(line)
    print(f"model: {out}")
    print(f'use it: [wake] models = ["{name}"] (or the path above)')
    return 0


def test_verb(cfg, wavs: list[Path], names: list[str] | None, threshold: float | None) -> int:  # type: ignore[no-untyped-def]
    """Each file: detections (time and score) and each model's peak score."""
    from .. import models
    from ..audio.wake import WakeWordDetector
    from .evaluate import detections

    folder = models.locate(cfg.models_dir(), "openwakeword", cfg)
    heads = tuple(names) if names else cfg.wake.models
    thr = cfg.wake.threshold if threshold is None else threshold
    detector = WakeWordDetector(folder, heads, thr, cfg.wake.refractory_s)
    clips = [(wav, read_wav(wav)) for wav in wavs]  # every file read first: a bad one fails before any output
    for wav, pcm in clips:
        detector.reset()
        pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, np.int16)])
        scores = {n: [] for n in detector.names}
        for i in range(0, len(pcm), FRAME):
            for n, s in detector.scores(pcm[i : i + FRAME]).items():
                scores[n].append(s)
        hits, peaks = [], []
        for n, row in scores.items():
            row_a = np.asarray(row or [0.0])
            hits += [f"{n} at {(k + 1) * FRAME / RATE:.2f} s ({row_a[k]:.3f})"
                     for k in detections(row_a, thr, cfg.wake.refractory_s, detector.patience[n])]
            top = int(row_a.argmax())
            peaks.append(f"{n} {row_a[top]:.3f} at {(top + 1) * FRAME / RATE:.2f} s")
        print(f"{wav}: {len(hits)} detection(s){': ' + '; '.join(hits) if hits else ''} | peak: {', '.join(peaks)}")
    return 0
