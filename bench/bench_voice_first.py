#!/usr/bin/env python3
"""The voice beside the full-size LLM on the CPU: whole turns (os1d's Turn, lanes and VoiceFirst gate) with the
full-size Ultravox stand-in and the kit's Kokoro, the gate on (the daemon's default where the LLM runs on the
CPU) against the gate off, alternating in the same run.

Usage: .venv/bin/python bench/bench_voice_first.py [FOLDER] [--turns 8] [--no-write]
FOLDER defaults to .cache/ultravox-fullsize (scripts/ultravox_fullsize.py). The stand-in's replies are random
tokens, so the voice says natural text of the same shape instead: each piece the chunker gives out is voiced as
as many words of a real reply (the work Kokoro does is a real reply's). Figures per turn: first
token → first audio (Kokoro's first piece while the LLM goes on, or waits), the voice's stalls (a piece not ready
when the one before has finished playing), and the LLM's tokens per second over the reply.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from bench_fullsize import DEFAULT_FOLDER, USER_TURNS  # noqa: E402
from conftest import Heard  # noqa: E402
from report import machine, table, write_section  # noqa: E402
from speech import kit_dir  # noqa: E402

from os1d.agent.conversation import Conversation  # noqa: E402
from os1d.agent.turn import Lanes, Request, Turn  # noqa: E402
from os1d.agent.ultravox import Sampling, Ultravox  # noqa: E402
from os1d.agent.voice_first import VoiceFirst  # noqa: E402
from os1d.audio.tts import RATE, KokoroVoice, Stop  # noqa: E402
from os1d.config import Config, TtsConfig  # noqa: E402
from os1d.events import TurnMetrics  # noqa: E402
from os1d.lanes import Lane  # noqa: E402

NATURAL = ("Sure, I can help with that. Start with the vegetables that cook slowest, then add the rest a few "
           "minutes later, and keep the heat low so nothing burns while you set the table. A little lemon at the "
           "end brings it all together, and any leftovers will keep well for lunch tomorrow.").split()
REPLY_TOKENS = 64


class Natural:
    """Kokoro voicing as many words of the natural reply as each piece has, noting when each piece was ready and
    how long it plays."""

    def __init__(self, voice: KokoroVoice) -> None:
        self.voice, self.ready, self.said = voice, [], 0  # type: ignore[var-annotated]

    def synthesize(self, text: str, stop: Stop | None = None) -> np.ndarray:
        n = max(1, len(text.split()))
        words = [NATURAL[(self.said + k) % len(NATURAL)] for k in range(n)]
        self.said += n
        samples = self.voice.synthesize(" ".join(words), stop)
        self.ready.append((time.perf_counter(), len(samples) / RATE))
        return samples


def stalls(ready: list[tuple[float, float]]) -> float:
    """Seconds of silence inside the reply had each piece played as soon as it was ready, the last one done."""
    end, silent = ready[0][0], 0.0
    for at, seconds in ready:
        silent += max(0.0, at - end)
        end = max(end, at) + seconds
    return silent


def one_turn(model: Ultravox, voice: KokoroVoice, text: str, enabled: bool) -> dict[str, float]:
    natural, metrics, tokens = Natural(voice), [], []
    stream = model.stream

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        for piece in stream(*args, **kwargs):
            tokens.append(time.perf_counter())
            yield piece

    async def scenario() -> None:
        lanes = [Lane("stt"), Lane("llm"), Lane("tts")]
        ready = asyncio.get_running_loop().create_future()
        ready.set_result(model)
        spoken = asyncio.get_running_loop().create_future()
        spoken.set_result(natural)
        try:
            turn = Turn(Request(text=text), Conversation(Config()), Lanes(
                lanes[0].run, lanes[1].run, lanes[2].run, ready, ready, spoken, VoiceFirst(enabled=enabled)),
                lambda e: metrics.append(e) if isinstance(e, TurnMetrics) else None, lambda: 0.0, Heard(),
                Sampling(REPLY_TOKENS))
            turn.start()
            turn.commit(0.0)
            await turn.task
        finally:
            for lane in lanes:
                lane.close()

    model.stream = counted  # type: ignore[method-assign]
    try:
        asyncio.run(scenario())
    finally:
        model.stream = stream  # type: ignore[method-assign]
    m = metrics[0]
    return {"first_audio_ms": float(m.tts_first_audio or 0), "stalls_s": stalls(natural.ready),
            "tokens_per_s": (len(tokens) - 1) / (tokens[-1] - tokens[0]), "reply_s": tokens[-1] - tokens[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--turns", type=int, default=8, help="turns with the gate on, and as many with it off")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    if not (args.folder / "config.json").is_file():
        raise SystemExit(f"no model in {args.folder}: build it with scripts/ultravox_fullsize.py {args.folder}")
    model = Ultravox(args.folder.resolve(), int8_cache=Config().int8_cache())  # as the daemon loads it
    model.stop_ids = set()  # random weights: every reply runs its full length, as a real one would
    model.warm_up()
    voice = KokoroVoice(kit_dir() / "kokoro", TtsConfig(voice="jf_alpha"))
    voice.warm_up()
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i in range(2 * args.turns):
        enabled = i % 2 == 0
        runs[enabled].append(one_turn(model, voice, USER_TURNS[(i // 2) % len(USER_TURNS)], enabled))
        print(f"turn {i + 1}: gate {'on ' if enabled else 'off'} {runs[enabled][-1]}", flush=True)

    def med(enabled: bool, key: str) -> float:
        return statistics.median(r[key] for r in runs[enabled])

    on, off = med(True, "first_audio_ms"), med(False, "first_audio_ms")
    rows = [
        ("First token → first audio, voice first (the default on a CPU) vs sharing the cores (median)",
         f"{on:.0f} ms vs {off:.0f} ms (×{off / on:.2f})", "", f"{args.turns} turns each, alternating"),
        ("Silence inside the reply while a piece is not ready yet (median per turn)",
         f"{med(True, 'stalls_s') * 1000:.0f} ms vs {med(False, 'stalls_s') * 1000:.0f} ms", "",
         "each piece played as soon as it is ready; random tokens make fewer words per token than real text, "
         "so a real reply's LLM is further ahead"),
        ("LLM decoding over the reply, tokens/s (median)",
         f"{med(True, 'tokens_per_s'):.1f} vs {med(False, 'tokens_per_s'):.1f}", "",
         f"{REPLY_TOKENS}-token replies; speech needs about 4"),
    ]
    text = (f"## The voice beside the full-size LLM on the CPU (`bench/bench_voice_first.py`)\n\n{machine()}; "
            f"full-size Ultravox stand-in (random weights), text requests, the kit's Kokoro int8.\n\n{table(rows)}\n")
    print(text)
    if not args.no_write:
        write_section("bench_voice_first", text)


if __name__ == "__main__":
    main()
