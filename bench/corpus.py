"""MiniLM embeddings of the real English sentences of bench/sentences.py, cached between runs, and the
benchmark datasets made of them.

Embedding a million sentences takes half an hour to over an hour on 2 cores (72 minutes on one machine, 34 on
an AMD EPYC), once: each sentence's vector is kept in ~/.cache/os1d-bench, saved as it goes (an interrupted run
resumes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distinct import distinct  # noqa: E402
from sentences import CACHE, real_sentences  # noqa: E402


def embeddings(texts: list[str], folder: Path) -> np.ndarray:
    """MiniLM vectors of texts (os1d's embedder, 2 threads, similar lengths batched together). Every sentence
    embedded is kept in ~/.cache/os1d-bench (its text beside its vector), saved every CHECKPOINT sentences: an
    interrupted run goes on where it stopped, and a machine whose documentation differs a little reuses all
    the sentences it shares."""
    known = _known()
    missing = sorted({t for t in texts if t not in known}, key=len)
    if missing:
        from os1d.memory.embed import MiniLMEmbedder

        embedder = MiniLMEmbedder(folder, threads=2)
        print(f"{len(texts) - len(missing):,} of {len(texts):,} sentences embedded before; embedding the rest",
              flush=True)
        t0, step = time.perf_counter(), 256
        for first in range(0, len(missing), CHECKPOINT):
            part = missing[first:first + CHECKPOINT]
            vectors = np.concatenate([embedder.embed(part[i:i + step]) for i in range(0, len(part), step)])
            known.update(zip(part, vectors))
            _keep(known)
            print(f"embedded {first + len(part):,} of {len(missing):,} in {time.perf_counter() - t0:.0f} s",
                  flush=True)
    return np.stack([known[t] for t in texts]).astype(np.float32)


CHECKPOINT = 25_000
VECTORS, TEXTS = CACHE / "minilm-vectors.npy", CACHE / "minilm-texts.json"


def _known() -> dict[str, np.ndarray]:
    """Every sentence embedded so far → its vector."""
    if not (VECTORS.exists() and TEXTS.exists()):
        return {}
    vectors, texts = np.load(VECTORS), json.loads(TEXTS.read_text())
    return dict(zip(texts, vectors))  # (the sentences only grow at the end: a run killed between the two
    # renames leaves one file longer, and the shorter one's sentences are still right)


def _keep(known: dict[str, np.ndarray]) -> None:
    """Save the sentences and their vectors (each file written aside, then renamed)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(VECTORS.with_suffix(".tmp.npy"), np.stack(list(known.values())))
    TEXTS.with_suffix(".tmp").write_text(json.dumps(list(known)))
    TEXTS.with_suffix(".tmp").replace(TEXTS)
    VECTORS.with_suffix(".tmp.npy").replace(VECTORS)


def grow(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n vectors: the real ones, then (only if there are too few) normalised mixtures of two real ones."""
    if n <= len(real):
        return real[:n]
    a, b = rng.integers(0, len(real), (2, n - len(real)))
    w = rng.uniform(0.3, 0.7, (n - len(real), 1)).astype(np.float32)
    mixed = w * real[a] + (1 - w) * real[b]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    return np.concatenate([real, mixed.astype(np.float32)])


SPARE = 0.1
"""Sentences read beyond those asked for, as a share: 4.1 % of the million sentences found here are
near-duplicates of another, which a store would not keep (distinct.py)."""


def dataset(size: int, queries: int, folder: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Query texts and vectors, then `size` memory texts and vectors, all real where enough sentences exist.

    The sentences are shuffled (fixed seed) before the queries are taken, so queries and memories come from
    the same sources, and a smaller set is a sample of the whole. The memories are those a store would hold:
    none a near-duplicate of one before it (distinct.py); a query may be close to any memory."""
    from os1d.memory.recall import DUPLICATE

    texts = real_sentences(queries + size + int(size * SPARE))
    vectors = embeddings(texts, folder)
    order = np.random.default_rng(0).permutation(len(texts))
    texts, vectors = [texts[i] for i in order], vectors[order]
    kept = queries + np.flatnonzero(distinct(vectors[queries:], DUPLICATE, CACHE))[:size]
    base = grow(vectors[kept], size, np.random.default_rng(1))
    return texts[:queries], vectors[:queries], [texts[i] for i in kept], base


def real_note(real: int, size: int, queries: int) -> str:
    """How real the memories of a benchmark are, for its header."""
    from os1d.memory.recall import DUPLICATE

    distinct = f"no two of them near-duplicates (cosine ≥ {DUPLICATE}), as a store keeps them"
    if real >= size:
        return (f"Every memory is a real sentence, embedded (MiniLM); {size:,} of them, from documentation and "
                f"dictionaries (bench/sentences.py), {distinct}; the queries are {queries:,} other real sentences.")
    return (f"{real:,} real sentences embedded (MiniLM), {distinct}; beyond that, memories are mixtures of two "
            "real embeddings (install the packages bench/sentences.py lists for a million real ones); the queries "
            f"are {queries:,} other real sentences.")
