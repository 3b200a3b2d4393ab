#!/usr/bin/env python3
"""Benchmarks of the speech-LLM generation loop; prints figures and writes them to BENCHMARKS.md.
(The whole turn, end of speech → first reply audio, is measured by bench/bench_speak.py.)

Usage: .venv/bin/python bench/bench_llm.py
Runs on the Ultravox stand-in of the offline test kit (scripts/setup --test): its compute is tiny, so
what is left is the loop's own cost. Each figure is compared with a baseline from the same run.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from report import machine, table, write_section  # noqa: E402
from speech import kit_dir  # noqa: E402

from os1d.agent.ultravox import Sampling, Ultravox  # noqa: E402

TOKENS = 200


class Timed:
    """Wraps a session method, adding up the seconds spent inside it."""

    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


def loop_overhead(model: Ultravox, context: int) -> tuple[float, float]:
    """(ms per token outside the model, ms per token inside it) at a given prompt length."""
    ids = model.tokenize("<|begin_of_text|>" + " hello" * (context - 1))
    dec, emb = model.sessions["decoder_model_merged"], model.sessions["embed_tokens"]
    best = (float("inf"), 0.0)
    for _ in range(3):
        dec.run_with_iobinding = Timed(type(dec).run_with_iobinding.__get__(dec))
        emb.run = Timed(type(emb).run.__get__(emb))
        t0 = time.perf_counter()
        n = sum(1 for _ in model.generate(ids, sampling=Sampling(max_new_tokens=TOKENS)))
        total = time.perf_counter() - t0
        inside = dec.run_with_iobinding.seconds + emb.run.seconds
        assert n > TOKENS // 2
        best = min(best, ((total - inside) / TOKENS * 1000, inside / TOKENS * 1000))
    del dec.run_with_iobinding, emb.run
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ultravox"
        shutil.copytree(kit_dir() / "ultravox", folder)
        (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [128001]}))  # never stops
        model = Ultravox(folder)
        model.warm_up()
        short, short_in = loop_overhead(model, 100)
        long, long_in = loop_overhead(model, 2000)
    rows = [
        ("Generation loop's own time per token (outside onnxruntime), 100-token prompt",
         f"{short:.3f} ms (model: {short_in:.3f} ms)", "≤ 1 ms", f"{TOKENS} tokens, stand-in model, best of 3"),
        ("… with a 2,000-token prompt (flat: no per-step copy of the cache)",
         f"{long:.3f} ms (model: {long_in:.3f} ms), ×{long / short:.2f} of the short prompt", "flat", ""),
    ]
    write_section("bench_llm", f"## Speech LLM loop (`bench/bench_llm.py`)\n\n{machine()}.\n\n{table(rows)}\n")


if __name__ == "__main__":
    main()
