"""The memory index's settings at 1M memories: p50 search time and recall@5 against the exact search for
usearch's graph connectivity and search expansion, in os1d's dtype (bf16) and in i8, all in one run.

Usage: .venv/bin/python bench/bench_memory_sweep.py [--size 1000000] [--layouts bf16:16,bf16:32,i8:32]

The same vectors as bench_memory.py (real MiniLM embeddings of real sentences, no two near-duplicates:
bench/corpus.py). os1d's store uses bf16, connectivity 32 and a search width that grows with the number of
memories (store.py); this shows what the 1M target would take. Each 1M graph takes 7–36 minutes to build on
2 cores (bench_memory.py also measures the store's own index at several widths).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import QUERIES, search_at  # noqa: E402
from corpus import dataset, real_note  # noqa: E402
from report import machine, table, write_section  # noqa: E402

from os1d.memory.store import BUILD_EXPANSION  # noqa: E402

SETTINGS = "bf16:32,i8:32,i8:48"
EXPANSIONS = (64, 96, 128, 160, 192, 256)


def sweep(vectors: np.ndarray, queries: np.ndarray, exact: list[set[int]], dtype: str,
          connectivity: int) -> list[dict[str, float]]:
    import onnxruntime  # noqa: F401  (before usearch, as the store imports them)
    from usearch.index import Index

    t0 = time.perf_counter()
    index = Index(ndim=vectors.shape[1], metric="cos", dtype=dtype, connectivity=connectivity,
                  expansion_add=BUILD_EXPANSION)
    index.add(np.arange(1, len(vectors) + 1), vectors)  # keys as the store's: SQLite ids, from 1
    build = time.perf_counter() - t0
    out = []
    for expansion in EXPANSIONS:
        times, hits = search_at(index, expansion, vectors, queries, exact)
        times += [t for _ in range(2) for t in search_at(index, expansion, vectors, queries, exact)[0]]
        out.append({"dtype": dtype, "connectivity": connectivity, "expansion": expansion, "build_s": build,
                    "p50_ms": statistics.median(times) * 1000, "recall5": hits / (5 * len(queries))})
        print(out[-1], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--layouts", default=SETTINGS, help="dtype:connectivity of each index to build")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from speech import kit_dir

    from os1d.memory.store import CONNECTIVITY, DTYPE, expansion

    _, queries, texts, vectors = dataset(args.size, QUERIES, kit_dir() / "minilm")
    exact = [set((1 + np.argpartition(-(vectors @ q), 5)[:5]).tolist()) for q in queries]
    rows = []
    for dtype, connectivity in ((d, int(c)) for d, c in (x.split(":") for x in args.layouts.split(","))):
        for r in sweep(vectors, queries, exact, dtype, connectivity):
            rows.append((f"{dtype}, connectivity {connectivity}, expansion {r['expansion']}",
                         f"{r['p50_ms']:.3f} ms, recall@5 {r['recall5']:.3f}", "≤ 1 ms with ≥ 0.99",
                         f"built in {r['build_s']:.0f} s" + (" (os1d's setting at this size)" if (dtype, connectivity,
                                                                r["expansion"]) == (DTYPE, CONNECTIVITY,
                                                                                    expansion(args.size)) else "")))
    write_section("bench_memory_sweep", f"## Memory index settings at {args.size:,} memories "
                  f"(`bench/bench_memory_sweep.py`)\n\n{machine()}. {real_note(len(texts), args.size, QUERIES)} The 32 "
                  f"nearest found, as recall asks, the best 5 of them by exact cosine.\n\n"
                  f"{table(rows)}\n")


if __name__ == "__main__":
    main()
