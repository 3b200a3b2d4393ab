#!/usr/bin/env python3
"""The real cost of a turn on this machine: the full-size Ultravox stand-in (random weights at the real sizes,
scripts/ultravox_fullsize.py) run through the daemon's own Ultravox class.

Usage: .venv/bin/python bench/bench_fullsize.py [FOLDER] [--threads N] [--turns 10] [--no-write]
FOLDER defaults to .cache/ultravox-fullsize (build it with `scripts/ultravox_fullsize.py .cache/ultravox-fullsize`;
about 2.3 GB). Figures: audio encoder time for 2, 5 and 10 s of speech; prefill time per token; decode tokens per
second (and both again with the files' own MatMulNBits accuracy level, in the same run); end of speech →
first token of a typical turn (persona, five memories, ten history messages, a 4 s utterance) over a 10-turn
conversation as the daemon runs it (prompt cache, history prefilled between turns), with the cache alone, and
without it; the tokens prefilled and reused per turn; text mode (no encoder: the transcript goes to the decoder
as text); peak RSS. The section goes into BENCHMARKS.md only for a full-size folder (a `--small` build's figures
are printed only). A --small folder takes about 15 s; full size about 6 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import machine, table, write_section  # noqa: E402

from os1d.agent.conversation import Conversation, Recollection  # noqa: E402
from os1d.agent.prompt import Message, llama3_prompt  # noqa: E402
from os1d.agent.ultravox import Sampling, Ultravox, Usage  # noqa: E402
from os1d.config import Config  # noqa: E402

DEFAULT_FOLDER = ROOT / ".cache" / "ultravox-fullsize"
UTTERANCE_S = 4.0
DECODE_TOKENS = 64
USER_TURNS = [
    "What should I cook tonight with the vegetables that are left in the fridge?",
    "Can you remind me what time my sister's train gets in on Saturday morning?",
    "I'm a bit tired today, do you think a short walk would help before lunch?",
    "Tell me something interesting about octopuses that most people don't know.",
    "How long should I let the bread dough rise if the kitchen is quite cold?",
    "I finished the book you suggested last week, and I really liked the ending.",
    "What's a good way to stop procrastinating on the tax forms I have to fill in?",
    "Could you help me think of a name for the new kitten we're bringing home?",
    "My knee hurts a little after running, should I take a few days off?",
    "Let's plan a quiet Sunday: what could we do if it rains all day?",
    "Remind me to call the dentist tomorrow, and what should I ask about?",
]
REPLY = ("That sounds like a lovely idea. I would start with something simple and see how you feel, "
         "and if it works out we can make a real plan together tomorrow morning.")
MEMORIES = [
    "The person's name is Sam.", "Sam lives in Lisbon with a cat called Miso.", "Sam is learning to bake bread.",
    "Sam's sister Ana visits most weekends.", "Sam prefers tea to coffee, without sugar.",
    "Sam runs three times a week along the river.", "Sam works as a primary school teacher.",
    "Sam is reading a novel by Ursula K. Le Guin.", "Sam is allergic to peanuts.", "Sam's birthday is in April.",
]


class FirstCall:
    """Wraps the decoder's run_with_iobinding: the time each call ended (the first is the prompt's prefill)."""

    def __init__(self, session: Any) -> None:
        self.session, self.fn = session, type(session).run_with_iobinding.__get__(session)
        self.ends: list[float] = []
        session.run_with_iobinding = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.ends.append(time.perf_counter())

    def remove(self) -> None:
        del self.session.run_with_iobinding


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """16 kHz int16 noise of speech-like loudness (the encoder's cost depends only on the length)."""
    return np.random.default_rng(seed).normal(0, 2000, int(seconds * 16000)).clip(-32768, 32767).astype(np.int16)


def best(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(model: Ultravox, ids: np.ndarray, rows: np.ndarray | None, tokens: int, usage: Usage | None = None) -> int:
    return sum(1 for _ in model.generate(ids, rows, Sampling(max_new_tokens=tokens), usage=usage))


def text_ids(model: Ultravox, n: int) -> np.ndarray:
    """A prompt of exactly n tokens of ordinary text."""
    words = " ".join(USER_TURNS * 40)
    ids = model.tokenize("<|begin_of_text|>" + words)[:, :n]
    assert ids.shape[1] == n, "not enough text for the prompt length"
    return ids


def conversation(cfg: Config, model: Ultravox, turns: int, audio: bool, cache: str,
                 samples: np.ndarray) -> list[dict[str, float]]:
    """`turns` turns of one conversation that starts with ten history messages; per turn: end of speech →
    first token (encoder included in audio mode), tokens prefilled and reused. cache: none (every prompt whole),
    kept (the prompt cache), ahead (as the daemon: also the history prefilled between turns, timed apart), look
    (as the daemon where the memories recalled while the user spoke are the turn's: those prefilled too)."""
    model.reuse_cache = cache != "none"
    model.forget_cache()
    conv = Conversation(cfg)
    for i in range(5):
        conv.remember(USER_TURNS[-1 - i], REPLY)
    assert len(conv.history) == 10
    ahead = {"tokens": 0, "s": 0.0}

    def prefill_ahead() -> None:
        t = time.perf_counter()
        ahead["tokens"] = model.precache(conv.stable_messages())
        ahead["s"] = time.perf_counter() - t

    if cache in ("ahead", "look"):
        prefill_ahead()
    dec = FirstCall(model.sessions["decoder_model_merged"])
    out = []
    try:
        for turn in range(turns):
            words = USER_TURNS[turn % len(USER_TURNS)]
            memories = [{"id": (turn + k) % len(MEMORIES), "text": MEMORIES[(turn + k) % len(MEMORIES)]}
                        for k in range(5)]
            if cache == "look":  # (os1d.agent.foresight, while the user speaks)
                model.precache(conv.context(Recollection(memories=memories)))
            dec.ends.clear()
            t0 = time.perf_counter()
            rows = model.prepare_audio(samples) if audio else None
            t_enc = time.perf_counter() - t0
            user = Message("user", "" if audio else words, audio=audio)
            messages = conv.messages(user, Recollection(memories=memories))
            ids = model.tokenize(llama3_prompt(messages, 0 if rows is None else len(rows)))
            usage = Usage()
            run(model, ids, rows, 1, usage)
            first = dec.ends[0] - t0
            row = {"turn": turn + 1, "first_token_s": first, "encoder_s": t_enc, "prompt_tokens": ids.shape[1],
                   "prefill_tokens": usage.prefill_tokens or 0, "cached_tokens": usage.cached_tokens or 0,
                   "ahead_tokens": ahead["tokens"], "ahead_s": ahead["s"]}
            conv.remember(words, REPLY)  # (the daemon keeps the transcript and the reply)
            if cache in ("ahead", "look"):
                prefill_ahead()
            out.append({**row, "history": len(conv.history)})
    finally:
        dec.remove()
    return out


def whisper_s(samples_text: str) -> tuple[float, str] | None:
    """Whisper-base (the daemon's STT) on a spoken sentence, if the offline test kit and espeak-ng are here."""
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from speech import espeak, kit_dir

        from os1d.agent.whisper import WhisperTranscriber
        from os1d.config import SttConfig

        stt = WhisperTranscriber(kit_dir() / "whisper-base", SttConfig())
        audio = espeak(samples_text)
    except Exception as exc:  # optional: the text-mode figure is then the LLM's part only
        print(f"(no Whisper figure: {exc})")
        return None
    stt.transcribe(audio[:16000])
    t = best(lambda: stt.transcribe(audio), 2)
    return t, f"{len(audio) / 16000:.1f} s of espeak speech"


def model_level(model: Ultravox) -> str:
    """The decoder's MatMulNBits accuracy levels as loaded (ORT keeps the rewritten graph's attributes)."""
    from os1d.agent.graph_tuning import tuned

    path = model.folder / "onnx" / "decoder_model_merged_q4.onnx"
    graph = tuned(path, model.int8_matmul)
    if graph is None:
        return "unchanged"
    import onnx

    levels = {a.i for n in onnx.load_from_string(graph).graph.node if n.op_type == "MatMulNBits"
              for a in n.attribute if a.name == "accuracy_level"}
    return "/".join(map(str, sorted(levels))) or "unchanged"


def compare(folder: Path, threads: int, repeats: int, int8_matmul: bool, turns: int = 0) -> dict[str, float]:
    """The same files on their 4-bit weights (llm.int8_weights = false), with int8 compute or the files' own
    accuracy level: the audio encoder on 4 s, a prefill of 150 tokens, decode speed; with turns, also end of
    speech → first token in audio and text mode as the daemon runs (turns 2–10, median)."""
    model = Ultravox(folder, threads=threads, int8_matmul=int8_matmul)
    model.stop_ids, model.reuse_cache = set(), False
    samples = speech(UTTERANCE_S, 4)
    model.encode_audio(samples)
    ids = text_ids(model, 150)
    run(model, ids, None, 1)
    enc = best(lambda: model.encode_audio(samples), repeats)
    pre = best(lambda: run(model, ids, None, 1), repeats)
    many = best(lambda: run(model, ids, None, 33), 2)
    out = {"encoder_s": enc, "prefill_150_s": pre, "decode_tokens_per_s": 32 / (many - pre)}
    for mode in ("audio", "text") if turns else ():
        ts = conversation(Config(), model, turns, mode == "audio", "ahead", samples)
        out[f"{mode}_first_token_s"] = statistics.median(t["first_token_s"] for t in ts[1:])
    return out


def int8_summary(cfg: Config) -> str:
    """How many of the decoder's 4-bit matmuls run on int8 weights (the cached conversion)."""
    import onnx

    cache = cfg.int8_cache()
    made = sorted(cache.glob("decoder_model_merged_q4-*/model.onnx")) if cache else []
    if not made:
        return "4-bit matmuls on their 4-bit weights"
    ops = [n.op_type for n in onnx.load(str(made[-1]), load_external_data=False).graph.node]
    return (f"{ops.count('MatMulInteger')} of {ops.count('MatMulInteger') + ops.count('MatMulNBits')} decoder "
            f"matmuls on int8 weights (llm.int8_weights)")


def fmt_turns(turns: list[dict[str, float]]) -> str:
    return ", ".join(f"{int(t['prefill_tokens'])}/{int(t['cached_tokens'])}" for t in turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the same files loaded with their exported MatMulNBits accuracy level")
    args = parser.parse_args()
    folder = args.folder.resolve()
    if not (folder / "config.json").is_file():
        raise SystemExit(f"no model in {folder}: build it with scripts/ultravox_fullsize.py {folder}")
    info = json.loads((folder / "config.json").read_text())
    if not info.get("os1d_fullsize_standin"):
        print(f"warning: {folder} is not the full-size stand-in (figures are that model's)")
    build = info.get("os1d_fullsize_build", {})
    small = bool(build.get("small"))
    cfg = Config()

    t0 = time.perf_counter()
    model = Ultravox(folder, threads=args.threads, int8_cache=cfg.int8_cache())  # as the daemon loads it
    load_s = time.perf_counter() - t0
    model.stop_ids = set()  # random weights: never stop early, every step costs what a real one does
    model.warm_up()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fig: dict[str, Any] = {"folder": str(folder), "small": small, "threads": args.threads, "load_s": load_s,
                           "build": build}

    # audio encoder
    enc = {}
    for s in (2, 5, 10):
        samples = speech(s, s)
        n_rows = len(model.encode_audio(samples))
        enc[s] = (best(lambda samples=samples: model.encode_audio(samples), args.repeats), n_rows)
    fig["encoder"] = {f"{s}s": {"seconds": t, "rows": r} for s, (t, r) in enc.items()}

    # prefill (whole prompt, and new tokens on a reused cache) and decode
    model.reuse_cache = False
    pre = {}
    for n in (150, 600):
        ids = text_ids(model, n)
        pre[n] = best(lambda ids=ids: run(model, ids, None, 1), args.repeats)
    model.reuse_cache = True
    long, start = text_ids(model, 600), text_ids(model, 450)

    def cached_prefill() -> None:
        model.forget_cache()
        run(model, start, None, 1)
        t = time.perf_counter()
        usage = Usage()
        run(model, long, None, 1, usage)
        assert usage.cached_tokens == 450, usage
        cached_times.append(time.perf_counter() - t)

    cached_times: list[float] = []
    for _ in range(args.repeats):
        cached_prefill()
    pre_cached = min(cached_times)
    model.reuse_cache = False
    ids = text_ids(model, 600)
    t_one = best(lambda: run(model, ids, None, 1), 2)
    t_many = best(lambda: run(model, ids, None, DECODE_TOKENS + 1), 2)
    tok_s = DECODE_TOKENS / (t_many - t_one)
    fig["prefill"] = {"150_s": pre[150], "600_s": pre[600], "150_on_450_cached_s": pre_cached}
    fig["decode_tokens_per_s"] = tok_s

    # typical turns
    samples = speech(UTTERANCE_S, 4)
    turns = {}
    for mode in ("audio", "text"):
        for cache in ("look", "ahead", "kept", "none"):
            turns[(mode, cache)] = conversation(cfg, model, args.turns, mode == "audio", cache, samples)
    fig["turns"] = {f"{m}_{c}": v for (m, c), v in turns.items()}
    whisper = whisper_s(USER_TURNS[0])
    fig["whisper_s"] = whisper[0] if whisper else None
    enc4_alone = best(lambda: model.encode_audio(samples), args.repeats)
    four_bit = None if args.no_compare else compare(folder, args.threads, args.repeats, True, args.turns)
    exact = None if args.no_compare else compare(folder, args.threads, args.repeats, False)
    fig["four_bit"], fig["exact_matmul"] = four_bit, exact
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fig["peak_rss_mb"], fig["rss_after_load_mb"] = rss, rss_loaded

    def later(mode: str, cache: str, key: str = "first_token_s") -> float:
        return statistics.median(t[key] for t in turns[(mode, cache)][1:])

    def every(mode: str, cache: str) -> float:
        return statistics.median(t["first_token_s"] for t in turns[(mode, cache)])

    a_ahead, a_none = turns[("audio", "ahead")], turns[("audio", "none")]
    prompt_len = statistics.median(t["prompt_tokens"] for t in a_none)
    enc4 = statistics.median(t["encoder_s"] for t in a_ahead)
    wh = whisper[0] if whisper else 0.0
    w = f" + Whisper {wh:.2f} s = {later('text', 'ahead') + wh:.2f} s" if whisper else ""
    scale = "SMALL (--small) build: pipeline check, not the real cost" if small else "full size (random weights)"
    level = build.get("accuracy_level", "?")
    rows = [
        ("Model", f"{scale}; {int8_summary(cfg)}; MatMulNBits accuracy_level {level} in the files, "
                  f"{model_level(model)} as loaded (llm.int8_matmul); threads {args.threads or 'onnxruntime default'}",
         "", f"loaded in {load_s:.1f} s (int8 weights cached)"),
        ("Audio encoder, 2 / 5 / 10 s of speech",
         " / ".join(f"{enc[s][0]:.2f} s" for s in (2, 5, 10)), "", f"rows {enc[2][1]} / {enc[5][1]} / {enc[10][1]}"),
        ("Prefill, 600-token prompt", f"{pre[600]:.2f} s ({pre[600] / 600 * 1000:.2f} ms/token)", "",
         f"150 tokens: {pre[150]:.2f} s ({pre[150] / 150 * 1000:.2f} ms/token)"),
        ("Prefill, 150 new tokens on 450 cached", f"{pre_cached:.2f} s", "", "model.reuse_cache = True"),
        ("Decode", f"{tok_s:.1f} tokens/s", "", f"{DECODE_TOKENS} tokens after a 600-token prompt"),
    ]
    for name, other in (("4-bit weights, int8 compute (llm.int8_weights = false)", four_bit),
                        ("4-bit weights, the files' own accuracy level (llm.int8_matmul = false too)", exact)):
        if other is not None:
            rows.append((f"… {name}, same run: encoder 4 s / prefill 150 tokens / decode",
                         f"{other['encoder_s']:.2f} s / {other['prefill_150_s']:.2f} s / "
                         f"{other['decode_tokens_per_s']:.1f} tokens/s", "",
                         f"int8 weights ×{other['encoder_s'] / enc4_alone:.2f} / "
                         f"×{other['prefill_150_s'] / pre[150]:.2f} faster / decode "
                         f"×{tok_s / other['decode_tokens_per_s']:.2f}"))
    if four_bit is not None:
        rows.append(("… end of speech → first token with 4-bit weights (as before), audio / text mode, same run",
                     f"{four_bit['audio_first_token_s']:.2f} s / {four_bit['text_first_token_s']:.2f} s"
                     + (f" + Whisper {wh:.2f} s" if whisper else ""), "", "turns 2–10, median, as the daemon runs"))
    rows += [
        ("End of speech → first token, audio mode, as the daemon runs (turns 2–10, median)",
         f"{later('audio', 'ahead'):.2f} s", "≤ 1.2 s",
         f"encoder {enc4:.2f} s of it; turn 1 {turns[('audio', 'ahead')][0]['first_token_s']:.2f} s; history "
         f"prefilled between turns: {later('audio', 'ahead', 'ahead_tokens'):.0f} tokens in "
         f"{later('audio', 'ahead', 'ahead_s'):.2f} s"),
        ("… memories recalled and prefilled while the user spoke (os1d.agent.foresight), when the turn recalls "
         "the same", f"{later('audio', 'look'):.2f} s", "≤ 1.2 s",
         f"prefilled/cached tokens per turn: {fmt_turns(turns[('audio', 'look')])}"),
        ("… prompt cache only, nothing prefilled between turns", f"{later('audio', 'kept'):.2f} s", "", ""),
        ("… no cache (median of every turn)", f"{every('audio', 'none'):.2f} s", "",
         f"prompt ≈ {prompt_len:.0f} tokens (persona, 5 memories, 10+ history messages, 4 s utterance)"),
        ("Text mode (no encoder), as the daemon runs (turns 2–10, median)", f"{later('text', 'ahead'):.2f} s{w}",
         "≤ 0.7 s", f"cache only: {later('text', 'kept') + wh:.2f} s; no cache: {every('text', 'none') + wh:.2f} s "
                    f"(Whisper included)"),
        ("… memories prefilled while the user spoke, when the turn recalls the same",
         f"{later('text', 'look'):.2f} s" + (f" + Whisper {wh:.2f} s = {later('text', 'look') + wh:.2f} s"
                                              if whisper else ""), "≤ 0.7 s", ""),
        ("Prefilled/cached tokens per turn, audio mode, as the daemon runs", fmt_turns(a_ahead),
         "after turn 1: only new", ""),
        ("… prompt cache only", fmt_turns(turns[("audio", "kept")]), "", ""),
        ("… no cache", fmt_turns(a_none), "", ""),
        ("Peak RSS", f"{rss:.0f} MB", "", f"{rss_loaded:.0f} MB after loading and warm-up"
                                          + (" (three models loaded in turn for the comparisons)" if exact else "")),
    ]
    command = f".venv/bin/python bench/bench_fullsize.py {folder if folder != DEFAULT_FOLDER else ''}".rstrip()
    section = (f"## Full-size Ultravox stand-in on the CPU (`bench/bench_fullsize.py`)\n\n{machine()}; "
               f"`{command}`. Random weights at the real sizes (scripts/ultravox_fullsize.py), through the "
               f"daemon's Ultravox class. End of speech → first token counts the audio encoder and the prefill "
               f"(Whisper runs beside them in audio mode; in text mode it comes first).\n\n{table(rows)}\n")
    for (mode, cache), ts in turns.items():
        print(f"{mode:5s} cache={cache:5s}: " + "  ".join(
            f"{t['turn']}:{t['first_token_s']:.2f}s {t['prefill_tokens']}/{t['cached_tokens']}" for t in ts))
    if args.json:
        args.json.write_text(json.dumps(fig, indent=1, default=str))
    if small or args.no_write:
        print(section)
    else:
        write_section("bench_fullsize", section)


if __name__ == "__main__":
    main()
