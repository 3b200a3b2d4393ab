#!/usr/bin/env python3
"""Benchmarks of the listening path; prints figures and writes them to BENCHMARKS.md.

Usage: .venv/bin/python bench/bench_listen.py [--idle-seconds 60]
Needs the offline test kit (scripts/setup --test). Each figure is paired with a baseline measured
in the same run, since these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from speech import ESPEAK_VOICES, espeak, join, kit_dir, kokoro, ordinary_speech, silence, speech_bounds  # noqa: E402

from os1d.agent.whisper import WhisperTranscriber  # noqa: E402
from report import kit_env, machine, table, write_section  # noqa: E402
from os1d.audio.chunk import FRAME, RATE, AudioChunk, write_wav  # noqa: E402
from os1d.audio.vad import Segmenter, Utterance  # noqa: E402
from os1d.audio.wake import WakeWordDetector  # noqa: E402
from os1d.config import SttConfig, VadConfig  # noqa: E402


ENV: dict[str, str] = {}
"""The environment of os1d runs (kit models and voice), set in main()."""


def env() -> dict[str, str]:
    return ENV


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(seconds: float, tmp: Path) -> dict[str, float]:
    """Share of one core while the daemon listens to speech without its wake word, in real time."""
    wav = tmp / "background.wav"
    pcm = ordinary_speech(seconds + 5)
    write_wav(wav, pcm)
    proc = subprocess.Popen([sys.executable, "-m", "os1d", "run", "--no-tray", "--input-file", str(wav),
                             "--events", "-"], env=env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    loaded = set()
    for line in proc.stdout:  # measure from the end of loading (every model) to the end of the input
        if '"ModelLoaded"' in line:
            loaded.add(json.loads(line)["model"])
        if loaded >= {"openwakeword", "whisper-base", "ultravox", "kokoro", "minilm"}:
            break
    cpu0, t0 = cpu_of(proc.pid), time.monotonic()
    time.sleep(seconds)
    share = (cpu_of(proc.pid) - cpu0) / (time.monotonic() - t0)
    proc.terminate()
    proc.wait()
    # baseline: openWakeWord's own Model on the same audio, compute only
    per_frame_ours = frame_cost(pcm, ours=True)
    per_frame_ref = frame_cost(pcm, ours=False)
    return {"share": share, "ours_ms": per_frame_ours * 1000, "ref_ms": per_frame_ref * 1000}


def frame_cost(pcm: np.ndarray, ours: bool) -> float:
    folder = kit_dir() / "openwakeword"
    n = min(len(pcm), 30 * RATE) // FRAME
    if ours:
        d = WakeWordDetector(folder, ("hey_jarvis",))
        step = lambda f: d.scores(f)  # noqa: E731
    else:
        from openwakeword.model import Model

        m = Model(wakeword_models=[str(folder / "hey_jarvis_v0.1.onnx")], inference_framework="onnx",
                  melspec_model_path=str(folder / "melspectrogram.onnx"),
                  embedding_model_path=str(folder / "embedding_model.onnx"))
        step = lambda f: m.predict(f)  # noqa: E731
    t0 = time.process_time()
    for i in range(n):
        step(pcm[i * FRAME : (i + 1) * FRAME])
    return (time.process_time() - t0) / n


def wake_latency(model: str, said: str) -> list[float]:
    """End of the wake phrase → the frame on which `model` fired (input clock, its patience included), over many
    voices."""
    d = WakeWordDetector(kit_dir() / "openwakeword", (model,))
    clips = [espeak(said, v, 160) for v in ESPEAK_VOICES]
    clips += [kokoro(said[0].upper() + said[1:] + ".", v) for v in ("jf_alpha", "jf_nezumi", "jm_kumo")]
    out = []
    for clip in clips:
        d.reset()
        pcm = join(silence(1.0), clip, silence(1.5))
        end = 1.0 + speech_bounds(clip)[1]
        for i in range(0, len(pcm), FRAME):
            t0 = time.perf_counter()
            hit = d.detect(pcm[i : i + FRAME])
            if hit:
                out.append((i + FRAME) / RATE - end + (time.perf_counter() - t0))
                break
    return out


def endpoint_delay() -> list[float]:
    """End of speech → SpeechEnded (input clock), default hangover."""
    out = []
    for text in ("what is on my calendar today", "tell me a story about a small dragon",
                 "remind me to call my sister tomorrow at noon", "how far away is the moon"):
        said = kokoro(text)
        pcm = join(silence(0.8), said, silence(2.0))
        seg = Segmenter(VadConfig())
        for i in range(0, len(pcm), FRAME):
            chunk = AudioChunk(pcm[i : i + FRAME], i / RATE)
            events = seg.feed(chunk)
            if i == 4 * FRAME:
                seg.arm(chunk.end)
            if any(isinstance(e, Utterance) for e in events):
                out.append(chunk.end - (0.8 + speech_bounds(said)[1]))
                break
    return out


def transcription() -> dict[str, float]:
    w = WhisperTranscriber(kit_dir() / "whisper-base", SttConfig())
    clips = [kokoro("The weather tomorrow will be sunny with a light breeze from the west."),
             kokoro("Please remind me that my sister's birthday is on the fourth of July, and that she likes "
                    "books about gardening and old maps.", "jm_kumo")]
    w.transcribe(clips[0][:RATE])
    per_s = []
    for clip in clips:
        t0 = time.perf_counter()
        w.transcribe(clip)
        per_s.append((time.perf_counter() - t0) / (len(clip) / RATE))
    return {"per_second": statistics.mean(per_s)}


def start_to_listening(tmp: Path) -> dict[str, float]:
    wav = tmp / "quiet.wav"
    write_wav(wav, silence(6.0))
    runs, bare = [], []
    for _ in range(3):
        t0 = time.time()
        proc = subprocess.Popen([sys.executable, "-m", "os1d", "run", "--no-tray", "--input-file", str(wav),
                                 "--events", "-"], env=env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        assert proc.stdout is not None
        idle = ready = None
        for line in proc.stdout:
            e = json.loads(line)
            if e["event"] == "StateChanged" and e["state"] == "idle" and idle is None:
                idle = e["wall"] - t0
            if e["event"] == "ModelLoaded" and e["model"] == "whisper-base":
                ready = e["wall"] - t0
            if idle is not None and ready is not None:
                break
        proc.terminate()
        proc.wait()
        runs.append((idle, ready))
        t0 = time.time()
        subprocess.run([sys.executable, "-c", "import numpy, onnxruntime"], check=True)
        bare.append(time.time() - t0)
    return {"listening": statistics.median(r[0] for r in runs), "all_loaded": statistics.median(r[1] for r in runs),
            "bare_python": statistics.median(bare)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ENV.update(kit_env(Path(tmp) / "config"))
        idle = idle_cpu(args.idle_seconds, Path(tmp))
        start = start_to_listening(Path(tmp))
    lat = wake_latency("hey_os1", "hey O S one")
    jarvis = wake_latency("hey_jarvis", "hey jarvis")
    ends = endpoint_delay()
    stt = transcription()
    rows = [
        ("Idle listening, share of one core (real time, speech without the wake word)",
         f"{idle['share']:.1%}", "≤ 5 %", f"{args.idle_seconds:.0f} s of background speech"),
        ("Wake-word compute per 80 ms frame: os1d / openWakeWord's Model (same models, same audio)",
         f"{idle['ours_ms']:.2f} ms / {idle['ref_ms']:.2f} ms (×{idle['ours_ms'] / idle['ref_ms']:.2f})", "", ""),
        ("Wake latency, end of phrase → WakeDetected, hey OS1 (the default; median / max)",
         f"{statistics.median(lat) * 1000:.0f} ms / {max(lat) * 1000:.0f} ms", "median ≤ 300 ms",
         f"{len(lat)} detections of {len(ESPEAK_VOICES) + 3} voices; 3 frames in a row (its patience)"),
        ("… hey_jarvis, the same voices (median / max)",
         f"{statistics.median(jarvis) * 1000:.0f} ms / {max(jarvis) * 1000:.0f} ms", "",
         f"{len(jarvis)} detections; fires on its first frame"),
        ("Endpoint delay, end of speech → SpeechEnded (median)", f"{statistics.median(ends) * 1000:.0f} ms",
         "", "hangover_ms = 500"),
        ("Transcription time per second of speech (whisper-base int8, CPU)", f"{stt['per_second']:.3f} s", "", ""),
        ("Start → listening (state idle) / → Whisper loaded; bare `import numpy, onnxruntime`",
         f"{start['listening']:.2f} s / {start['all_loaded']:.2f} s; {start['bare_python']:.2f} s", "≤ 3 s", "median of 3"),
    ]
    write_section("bench_listen", f"## Listening path (`bench/bench_listen.py`)\n\n{machine()}.\n\n{table(rows)}\n")


if __name__ == "__main__":
    main()
