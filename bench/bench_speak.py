#!/usr/bin/env python3
"""Benchmarks of OS1's voice and of a whole turn; prints figures and writes them to BENCHMARKS.md.

Usage: .venv/bin/python bench/bench_speak.py
1. Kokoro (int8, the kit's model) time to first audio for the first pieces the chunker gives out, and its
   real-time factor on whole sentences; os1d's session against kokoro-onnx's own and against os1d's graph with
   the export's own Sin, STFT and norms (its integer rewrite alone), in turns in the same run.
2. The whole turn in real time through the daemon (stand-in LLM, 3–5 s requests in several voices):
   end of the user's speech → first reply audio sample, broken down by stage, against the same turns
   had they started only when the hangover confirmed the end, against a second run of them with the
   daemon's idle threads left spinning (as before os1d stopped them), against a third where a reply begun
   over starts from nothing (as before os1d/agent/reply.py kept what the first try had said and voiced), and
   against a fourth where the reply waits for Whisper's retries where it is unsure of the words (as before the
   first try's words could let it play).
3. Turns whose words Whisper is unsure of (it tries again, warmer), with os1d and waiting for the retries, in turns.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from report import kit_env, machine, table, write_section  # noqa: E402
from speech import join, kit_dir, silence  # noqa: E402
from wake_requests import say, trim  # noqa: E402

from os1d.audio.chunk import write_wav  # noqa: E402
from os1d.audio.chunker import Chunker  # noqa: E402
from os1d.audio.conv_integer import integer_graph  # noqa: E402
from os1d.audio.tts import RATE, KokoroVoice  # noqa: E402
from os1d.audio.vad import SPECULATE_MS  # noqa: E402
from os1d.config import TtsConfig  # noqa: E402

REPLIES = ["Hello from the tiny stand-in model, nice to hear you.", "Sure. I can set that timer for you.",
           "I think Paris is lovely in the spring, especially by the river.",
           "That sounds like a wonderful day. What did you enjoy most?",
           "Good morning! It is seven thirty, and it looks like rain."]
REQUESTS = [("What's the weather like tomorrow?", ("jm_kumo", 1.0)), ("Tell me a joke about cats.", ("jf_alpha", 0.9)),
            ("How far away is the moon?", ("en-us+m3", 160)), ("What should I cook tonight?", ("jf_nezumi", 1.1)),
            ("Can you remind me to call my mother on Sunday?", ("en-gb+f2", 170)),
            ("Do you know a good book about the sea?", ("jf_tebukuro", 1.0))]
UNSURE = [REQUESTS[0], ("Tell me a joke about cats.", ("jf_alpha", 0.9)),
          ("What should I cook tonight?", ("jf_alpha", 1.2)), ("Do you know a good book about the sea?", ("jf_alpha", 0.9))]
"""Requests whose words whisper-base is unsure of, in these voices, after a first turn (which waits for the models)."""


SPINNING = """
import os, runpy
os.environ["OPENBLAS_NUM_THREADS"] = str(os.cpu_count())  # (numpy's own default)
import onnxruntime
add = onnxruntime.SessionOptions.add_session_config_entry
onnxruntime.SessionOptions.add_session_config_entry = (
    lambda self, key, value: None if key == "session.force_spinning_stop" else add(self, key, value))
runpy.run_module("os1d", run_name="__main__")
"""
"""`python -c SPINNING …` runs the daemon with the threads that os1d stops from spinning once their work is done
left to spin: numpy's OpenBLAS on every core (a worker spins about 100 ms after each product it splits), the
speech LLM's onnxruntime pools spinning on after each run (a baseline)."""
FROM_SCRATCH = """
import runpy
from os1d.agent.reply import Take
init = Take.__init__
Take.halt = Take.drop
Take.__init__ = lambda self, *args, before=None: init(self, *args)
runpy.run_module("os1d", run_name="__main__")
"""
"""`python -c FROM_SCRATCH …`: a reply begun over (all the words recalled other memories than the words so far)
stops all of its first try and starts again with no draft, voicing every piece anew (a baseline). The stand-in
says one sentence to anything, so here every try begun over says what the first did: the most it can gain."""

WAIT_FOR_RETRIES = """
import runpy
from os1d.agent.turn_parts import Unsure
words = Unsure.words
Unsure.words = lambda self, transcript, sure, clean: words(self, transcript, True, clean)
runpy.run_module("os1d", run_name="__main__")
"""
"""`python -c WAIT_FOR_RETRIES …`: where Whisper is unsure of the words and tries again warmer, the reply waits for
the retries, though the first try's words recall what the look ahead did (a baseline)."""


def first_piece(text: str) -> str:
    chunker = Chunker()
    pieces = [p for word in text.split() for p in chunker.feed(word + " ")] + chunker.flush()
    return pieces[0]


def voice_figures() -> dict[str, float]:
    from kokoro_onnx import Kokoro

    folder = kit_dir() / "kokoro"
    ours = KokoroVoice(folder, TtsConfig(voice="jf_alpha"))
    operators = KokoroVoice(folder, TtsConfig(voice="jf_alpha"), graph=integer_graph(folder / "kokoro-v1.0.int8.onnx"))
    theirs = Kokoro(str(folder / "kokoro-v1.0.int8.onnx"), str(folder / "voices-v1.0.bin"))
    ours.warm_up()
    operators.warm_up()
    theirs.create("Hello.", voice="jf_alpha")
    first, first_ops, first_ref, rtf = [], [], [], []
    for reply in REPLIES:
        piece = first_piece(reply)
        for _ in range(3):
            for run, times in ((ours.synthesize, first), (operators.synthesize, first_ops),
                               (lambda text: theirs.create(text, voice="jf_alpha"), first_ref)):
                t0 = time.perf_counter()
                run(piece)
                times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        audio = ours.synthesize(reply)
        rtf.append((time.perf_counter() - t0) / (len(audio) / RATE))
    return {"first": statistics.median(first) * 1000, "first_max": max(first) * 1000,
            "first_ref": statistics.median(first_ref) * 1000, "first_ops": statistics.median(first_ops) * 1000,
            "rtf": statistics.median(rtf),
            "pieces": ", ".join(f'"{first_piece(r)}"' for r in REPLIES[:3])}


def turn_figures(tmp: Path, baseline: str = "", requests: list[tuple[str, tuple[str, float]]] = REQUESTS,
                 ) -> dict[str, float]:
    """The turns' figures, with os1d's daemon (or a baseline: `python -c` of SPINNING, FROM_SCRATCH or
    WAIT_FOR_RETRIES)."""
    tmp.mkdir(parents=True)
    parts = [silence(1.0)]
    for text, voice in requests:
        parts += [trim(say("Hey Jarvis.", voice)), silence(0.3), trim(say(text, voice)), silence(8.0)]
    write_wav(tmp / "turns.wav", join(*parts))
    env = kit_env(tmp / "config", conversation="follow_up_s = 0")
    daemon = [sys.executable, "-c", baseline] if baseline else [sys.executable, "-m", "os1d"]
    out = subprocess.run([*daemon, "-v", "run", "--no-tray", "--input-file", str(tmp / "turns.wav"), "--events", "-"],
                         capture_output=True, text=True, check=True, env=env)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    metrics = [e for e in events if e["event"] == "TurnMetrics"][1:]  # the first turn waits for models to load
    over = sum("starts over" in line for line in out.stderr.splitlines())
    unsure = sum("tries again; the reply goes on" in line for line in out.stderr.splitlines())
    ended = [e for e in events if e["event"] == "SpeechEnded"][1:]
    started = [e for e in events if e["event"] == "SpeakingStarted"][1:]
    heard = [s["t"] - (e["t"] - m["endpoint"] / 1000) for s, e, m in zip(started, ended, metrics, strict=True)]
    # without starting at the pause: the same work, begun when the hangover confirmed the end
    late = [m["endpoint"] + max(m["llm_first_token"] + m["tts_first_audio"], m["stt"]) for m in metrics]
    keys = ("endpoint", "stt", "audio_encoder", "llm_first_token", "tts_first_audio", "total")
    for (text, voice), m in zip(requests[1:], metrics, strict=True):
        print(f"{'baseline: ' if baseline else ''}turn {text!r} ({voice[0]}): total {m['total']:.0f} ms; Whisper "
              f"{m['stt']:.0f}, first token {m['llm_first_token']:.0f}, first token → first audio "
              f"{m['tts_first_audio']:.0f} ms")
    return {k: statistics.median(m[k] for m in metrics) for k in keys} | {
        "total_max": max(m["total"] for m in metrics), "heard": statistics.median(heard) * 1000,
        "late": statistics.median(late), "turns": len(metrics), "over": over, "unsure": unsure}


def main() -> None:
    voice = voice_figures()
    with tempfile.TemporaryDirectory() as tmp:
        turn = turn_figures(Path(tmp) / "os1d")
        spin = turn_figures(Path(tmp) / "spinning", SPINNING)
        scratch = turn_figures(Path(tmp) / "from-scratch", FROM_SCRATCH)
        waiting = turn_figures(Path(tmp) / "waiting", WAIT_FOR_RETRIES)
        unsure = [turn_figures(Path(tmp) / f"unsure-{i}-{j}", baseline, UNSURE)
                  for i in range(2) for j, baseline in enumerate(("", WAIT_FOR_RETRIES))]
    unsure_os1d, unsure_waiting = (statistics.median(u["total"] for u in unsure[i::2]) for i in (0, 1))
    unsure_max = [max(u["total_max"] for u in unsure[i::2]) for i in (0, 1)]
    rows = [
        ("Kokoro int8, first piece → its audio (median / max)", f"{voice['first']:.0f} ms / {voice['first_max']:.0f} ms",
         "≤ 300 ms", f"first pieces such as {voice['pieces']}"),
        ("… kokoro-onnx's own session (its ConvInteger), same pieces (median)", f"{voice['first_ref']:.0f} ms "
         f"(os1d ×{voice['first'] / voice['first_ref']:.2f})", "", "baseline"),
        ("… os1d's graph with the export's Sin, STFT and norms, same pieces (median)",
         f"{voice['first_ops']:.0f} ms (os1d ×{voice['first'] / voice['first_ops']:.2f})", "",
         "baseline: os1d/audio/snake.py, stft.py and adain.py undone"),
        ("Kokoro int8 real-time factor (synthesis time / audio time), whole replies", f"{voice['rtf']:.2f}", "< 1", ""),
        ("Turn: end of speech → first reply audio (median / max)", f"{turn['total']:.0f} ms / {turn['total_max']:.0f} ms",
         "median ≤ 800 ms, max ≤ 1,000 ms", f"{turn['turns']} warm turns in real time, stand-in LLM, 6 voices"),
        ("… as heard on the input clock (SpeakingStarted − end of speech), median", f"{turn['heard']:.0f} ms", "", ""),
        ("… had the turn started only at the end of the hangover (median)", f"{turn['late']:.0f} ms "
         f"(×{turn['late'] / turn['total']:.2f})", "", "baseline: the same stages, in sequence"),
        ("… the same turns with idle threads left spinning: median / max; Whisper (median)",
         f"{spin['total']:.0f} / {spin['total_max']:.0f} ms; {spin['stt']:.0f} ms "
         f"(os1d ×{turn['total'] / spin['total']:.2f}; Whisper ×{turn['stt'] / spin['stt']:.2f})", "",
         "baseline: numpy's OpenBLAS on every core, the LLM's onnxruntime pools spinning after each run (as before "
         "2026-12-05)"),
        ("… the same turns with replies begun over from nothing: median / max", f"{scratch['total']:.0f} / "
         f"{scratch['total_max']:.0f} ms (os1d ×{turn['total'] / scratch['total']:.2f}, max "
         f"×{turn['total_max'] / scratch['total_max']:.2f})", "", f"baseline: {turn['over']} of the turns began over "
         "(os1d: the first try's words as the draft, its voice where they are the same; the stand-in says the same "
         "to any memories, as a real model may not)"),
        ("… the same turns waiting for Whisper's retries: median / max", f"{waiting['total']:.0f} / "
         f"{waiting['total_max']:.0f} ms (os1d ×{turn['total'] / waiting['total']:.2f}, max "
         f"×{turn['total_max'] / waiting['total_max']:.2f})", "", f"baseline: in {turn['unsure']} of the turns "
         "Whisper was unsure of its first try (os1d: where those words recall what the look ahead did, the reply "
         "plays while Whisper tries again)"),
        ("… stages: hangover (endpoint) / Whisper / audio encoder", f"{turn['endpoint']:.0f} / {turn['stt']:.0f} / "
         f"{turn['audio_encoder']:.0f} ms", "", f"the turn starts at a {SPECULATE_MS} ms pause"),
        ("… stages: turn start → first token / first token → first audio", f"{turn['llm_first_token']:.0f} / "
         f"{turn['tts_first_audio']:.0f} ms", "", ""),
        ("Turns whose words Whisper is unsure of: end of speech → first reply audio, median (max)",
         f"{unsure_os1d:.0f} ({unsure_max[0]:.0f}) ms against {unsure_waiting:.0f} ({unsure_max[1]:.0f}) ms "
         f"(×{unsure_os1d / unsure_waiting:.2f})", "",
         f"baseline: waiting for the retries; {len(UNSURE) - 1} requests in Kokoro's jf_alpha, two runs each in turns, "
         f"in {sum(u['unsure'] for u in unsure[::2])} of {len(unsure) // 2 * (len(UNSURE) - 1)} turns os1d let the "
         "reply play while Whisper tried again (where the first try's words recalled other memories, it waits too)"),
    ]
    write_section("bench_speak", f"## Voice and whole turn (`bench/bench_speak.py`)\n\n{machine()}.\n\n{table(rows)}\n")


if __name__ == "__main__":
    main()
