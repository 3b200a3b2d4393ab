#!/usr/bin/env python3
"""A reply begun over, on the full-size Ultravox stand-in (random weights at the real sizes): the time to the
first piece's tokens once all the words recalled other memories, with the first try's words as the draft (os1d)
against decoding them one by one (the baseline), where they are the words the model says again and where they
are not (the cost of a useless draft). The prompt is a typical turn's: persona, five memories, ten history
messages, 4 s of speech; the history is in the cache, as the daemon prefills it between turns.

Usage: .venv/bin/python bench/bench_begun_over.py [FOLDER] [--repeats 3] [--no-write]
FOLDER defaults to .cache/ultravox-fullsize (scripts/ultravox_fullsize.py); about 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_fullsize import DEFAULT_FOLDER, MEMORIES, REPLY, USER_TURNS, speech  # noqa: E402
from report import machine, table, write_section  # noqa: E402

from os1d.agent.conversation import Conversation, Recollection  # noqa: E402
from os1d.agent.prompt import Message, llama3_prompt  # noqa: E402
from os1d.agent.ultravox import Sampling, Trace, Ultravox, Usage  # noqa: E402
from os1d.config import Config  # noqa: E402

FIRST_PIECE = 8
"""Tokens of a first piece (the chunker's first clause: up to four words)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    cfg = Config()
    model = Ultravox(args.folder.resolve(), int8_cache=cfg.int8_cache())  # as the daemon loads it
    model.stop_ids = set()  # random weights: never stop early
    model.warm_up()
    conv = Conversation(cfg)
    for words in USER_TURNS[-5:]:
        conv.remember(words, REPLY)
    rows = model.prepare_audio(speech(4.0, 4))
    user = Message("user", "", audio=True)

    def prompt(first: int) -> np.ndarray:
        memories = [{"id": k, "text": MEMORIES[k]} for k in range(first, first + 5)]
        return model.tokenize(llama3_prompt(conv.messages(user, Recollection(memories=memories)), len(rows)))

    looked, final = prompt(0), prompt(3)  # the look's memories; those of all the words

    def said(ids: np.ndarray, tokens: int) -> list[int]:
        trace = Trace()
        for _ in model.generate(ids, rows, Sampling(max_new_tokens=tokens), trace=trace):
            pass
        return [int(np.argmax(row)) for row in trace.logits]

    def begun_over(draft: list[int]) -> tuple[float, Usage]:
        """As a turn: history in the cache, the first try's prefill and first piece, then the reply begun over."""
        model.forget_cache()
        model.precache(conv.stable_messages())
        said(looked, FIRST_PIECE)
        usage = Usage()
        t0 = time.perf_counter()
        for _ in model.generate(final, rows, Sampling(max_new_tokens=FIRST_PIECE), usage=usage, draft=draft):
            pass
        return time.perf_counter() - t0, usage

    same, other = said(final, FIRST_PIECE), said(looked, FIRST_PIECE)
    if other[0] == same[0]:  # (the random model began both alike: the useless draft must differ from its start)
        other[0] = same[0] + 1
    runs: dict[str, list[float]] = {"none": [], "same": [], "other": []}
    taken = {}
    for _ in range(args.repeats):
        for name, draft in (("none", []), ("same", same), ("other", other)):
            seconds, usage = begun_over(draft)
            runs[name].append(seconds)
            taken[name] = usage
    best = {name: min(times) for name, times in runs.items()}
    print({name: [round(t, 3) for t in times] for name, times in runs.items()})
    prefill = taken["none"].prefill_tokens
    rows_out = [
        ("Reply begun over: new prompt → first piece's tokens, decoded one by one", f"{best['none']:.2f} s", "",
         f"baseline: {prefill} tokens prefilled ({taken['none'].cached_tokens} cached), then {FIRST_PIECE - 1} steps"),
        ("… with the first try's words as the draft, the model saying them again",
         f"{best['same']:.2f} s (×{best['same'] / best['none']:.2f})", "",
         f"{taken['same'].accepted} of {taken['same'].drafted} draft tokens taken in the prefill"),
        ("… with a draft the model does not say from its first token (other memories, another answer)",
         f"{best['other']:.2f} s (×{best['other'] / best['none']:.2f})", "",
         f"{taken['other'].accepted} of {taken['other'].drafted} taken: the cost of checking it"),
    ]
    section = (f"## A reply begun over, full-size Ultravox stand-in (`bench/bench_begun_over.py`)\n\n{machine()}. "
               f"Best of {args.repeats}, each way in turn. A first piece is {FIRST_PIECE} tokens; the voice of the "
               f"pieces that come out the same is the first try's too (bench_speak).\n\n{table(rows_out)}\n")
    if args.no_write:
        print(section)
    else:
        write_section("bench_begun_over", section)


if __name__ == "__main__":
    main()
