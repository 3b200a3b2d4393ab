"""The memories a store would hold: os1d never stores a near-duplicate of what it already remembers (recall.py
DUPLICATE), so a benchmark corpus keeps, in order, only the sentences with no kept one that close before them.

A corpus of documentation and dictionaries holds many near-identical sentences (repeated docstrings, dictionary
senses); a store never holds two, and their order among equals is arbitrary in the exact search too. Finding
them among a million takes minutes (an approximate index, then exact cosines), once: the result is cached in
~/.cache/os1d-bench under a digest of the vectors.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

NEIGHBOURS = 16


def _near(vectors: np.ndarray) -> np.ndarray:
    """Each vector's NEIGHBOURS nearest others (by an approximate index; -1 where fewer were found)."""
    import onnxruntime  # noqa: F401  (before usearch, as the store imports them)
    from usearch.index import Index

    index = Index(ndim=vectors.shape[1], metric="cos", dtype="f16", connectivity=16, expansion_add=64)
    index.add(np.arange(len(vectors)), vectors, threads=2)
    index.expansion_search = 64
    found = index.search(vectors, NEIGHBOURS + 1, threads=2)
    return np.asarray(found.keys, dtype=np.int64).reshape(len(vectors), -1)


def distinct(vectors: np.ndarray, threshold: float, cache: Path) -> np.ndarray:
    """Which vectors to keep: each one unless an earlier kept one has cosine ≥ threshold with it."""
    digest = hashlib.blake2b(np.ascontiguousarray(vectors).data, digest_size=16).hexdigest()
    kept = cache / f"distinct-{threshold}-{digest}.npy"
    if kept.exists():
        return np.load(kept)
    t0 = time.perf_counter()
    near = _near(vectors)
    keep = np.ones(len(vectors), dtype=bool)
    for i, others in enumerate(near):
        earlier = others[(others >= 0) & (others < i)]
        earlier = earlier[keep[earlier]]
        if len(earlier) and float((vectors[earlier] @ vectors[i]).max()) >= threshold:
            keep[i] = False
    print(f"{int(keep.sum()):,} of {len(keep):,} sentences distinct (cosine < {threshold}), "
          f"found in {time.perf_counter() - t0:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(kept.with_suffix(".tmp.npy"), keep)
    kept.with_suffix(".tmp.npy").replace(kept)
    return keep
