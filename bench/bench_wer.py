#!/usr/bin/env python3
"""Word error rate of what the user said after the wake phrase: through the daemon, against Whisper on
the request audio alone (same run, same voices, same model). Writes its section of BENCHMARKS.md.

Usage: .venv/bin/python bench/bench_wer.py
The cases are those of tests/test_wake_to_request.py: 11 voices (Kokoro at 0.8–1.2, espeak-ng accents
and variants), the request after a gap of 0–800 ms, in one breath with a comma, or with no pause.
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
import jiwer  # noqa: E402
from report import kit_env, machine, table, write_section  # noqa: E402
from speech import join, kit_dir, silence, words  # noqa: E402
from wake_requests import cases, stream  # noqa: E402

from os1d.agent.whisper import WhisperTranscriber  # noqa: E402
from os1d.audio.chunk import RATE, write_wav  # noqa: E402
from os1d.config import SttConfig  # noqa: E402

NUMBERS = dict(zip("zero one two three four five six seven eight nine ten".split(), map(str, range(11)), strict=True))


def normal(text: str) -> str:
    """Lower-case words, numbers as digits: "seven" and "7" are the same word here."""
    return " ".join(NUMBERS.get(w, w) for w in words(text)) or "∅"


def through_daemon(wav: Path) -> list[dict]:
    env = kit_env(wav.parent / "config", conversation="follow_up_s = 0")  # every case opens with the wake word
    result = subprocess.run([sys.executable, "-m", "os1d", "run", "--no-tray", "--input-file", str(wav), "--fast",
                             "--events", "-"], env=env, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    items = cases()
    pcm, spans = stream(items)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "matrix.wav"
        write_wav(wav, pcm)
        events = through_daemon(wav)
    whisper = WhisperTranscriber(kit_dir() / "whisper-base", SttConfig())
    refs, daemon, alone, missed, first_words = [], [], [], [], 0
    alone_s, daemon_s = [], []
    for case, (start, end) in zip(items, spans, strict=True):
        here = [e for e in events if start <= e["t"] < end]
        if not any(e["event"] == "WakeDetected" for e in here):
            missed.append(case.name)
            continue
        texts = [e for e in here if e["event"] == "Transcript"]
        refs.append(normal(case.request))
        daemon.append(normal(" ".join(t["text"] for t in texts)))
        daemon_s += [t["seconds"] for t in texts]
        first_words += words(daemon[-1])[:2] == words(refs[-1])[:2]
        t0 = time.perf_counter()
        alone.append(normal(whisper.transcribe(join(silence(0.3), case.request_audio, silence(0.5)))))
        alone_s.append(time.perf_counter() - t0)
    wer_daemon, wer_alone = jiwer.wer(refs, daemon), jiwer.wer(refs, alone)
    n = len(refs)
    rows = [
        ("Word error rate of the request: through the daemon / Whisper on the request audio alone",
         f"{wer_daemon:.1%} / {wer_alone:.1%} ({(wer_daemon - wer_alone) * 100:+.1f} points)",
         "≤ +1 point", f"{n} requests, {len(items)} cases"),
        ("Requests whose first two words reach the transcript", f"{first_words}/{n}", f"{n}/{n}", ""),
        ("Cases where the wake word did not fire (not counted above)", f"{len(missed)}", "",
         ", ".join(missed) or "none"),
        ("Whisper time per request: through the daemon (wake phrase included) / request alone (median)",
         f"{statistics.median(daemon_s) * 1000:.0f} ms / {statistics.median(alone_s) * 1000:.0f} ms", "", ""),
        ("Audio per case (mean)", f"{statistics.mean(len(c.audio) for c in items) / RATE:.2f} s", "", ""),
    ]
    write_section("bench_wer", f"## Every word after the wake phrase (`bench/bench_wer.py`)\n\n{machine()}. "
                               f"Voices, gaps and pacing as in `tests/wake_requests.py`.\n\n{table(rows)}\n")


if __name__ == "__main__":
    main()
