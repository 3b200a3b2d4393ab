"""`os1d run --input-file`: the whole listening path through the real CLI, as a black box."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from conftest import events_of, run_os1d, with_conversation
from os1d.audio.chunk import write_wav
from speech import espeak, join, kokoro, silence, speech_bounds, words



def test_wake_word_then_transcript(tmp_path: Path, user_env: dict[str, str]) -> None:
    wake = espeak("hey jarvis")
    said = kokoro("My name is Alice and I live in Paris.")
    pcm = join(silence(1.5), wake, silence(0.15), said, silence(2.0))
    write_wav(tmp_path / "in.wav", pcm)
    out = tmp_path / "out.wav"
    result = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "in.wav"), "--fast",
                       "--events", "-", "--output-file", str(out)], user_env)
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    names = [e["event"] for e in events]
    assert names.index("WakeDetected") < names.index("SpeechStarted") < names.index("SpeechEnded") < names.index("Transcript")
    states = [e["state"] for e in events if e["event"] == "StateChanged"]
    assert states[:4] == ["starting", "idle", "listening", "thinking"] and states[-1] == "idle"
    wake_ev = next(e for e in events if e["event"] == "WakeDetected")
    assert wake_ev["model"] == "hey_jarvis" and wake_ev["score"] >= 0.5
    wake_end = 1.5 + speech_bounds(wake)[1]
    assert wake_end <= wake_ev["t"] <= wake_end + 0.5  # on the input-audio clock
    transcript = next(e for e in events if e["event"] == "Transcript")
    assert transcript["role"] == "user"
    assert words(transcript["text"]) == "my name is alice and i live in paris".split()
    ts = [e["t"] for e in events]
    assert ts == sorted(ts)
    with wave.open(str(out)) as wav:  # OS1's voice, 24 kHz, as long as the input and its reply
        assert wav.getframerate() == 24000 and wav.getnchannels() == 1
        assert wav.getnframes() / 24000 >= len(pcm) / 16000


def test_two_turns_and_a_wake_word_without_speech(tmp_path: Path, user_env: dict[str, str]) -> None:
    pcm = join(silence(1.0), espeak("hey jarvis"), silence(0.3), kokoro("What is the capital of France?", "jm_kumo"),
               silence(3.0), espeak("hey jarvis"), silence(8.0),
               kokoro("Hey Jarvis.", "jm_kumo"), silence(0.3), kokoro("Set a timer for ten minutes.", "jm_kumo"),
               silence(2.0))
    write_wav(tmp_path / "in.wav", pcm)
    events_file = tmp_path / "events.jsonl"
    result = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "in.wav"), "--fast",
                       "--events", str(events_file)], user_env)
    assert result.returncode == 0, result.stderr
    events = events_of(events_file.read_text())
    assert [e["event"] for e in events].count("WakeDetected") == 3
    assert [e["event"] for e in events].count("ListenTimeout") == 1
    texts = [words(e["text"]) for e in events if e["event"] == "Transcript"]
    assert len(texts) == 2
    assert {"capital", "france"} <= set(texts[0])
    # ("timer" in this voice is heard as "time of" on some CPUs: Kokoro's float arithmetic differs a little)
    assert {"set", "minutes"} <= set(texts[1]) and {"ten", "10"} & set(texts[1])
    assert "you: " in result.stderr  # a person reading the log sees what was heard


def test_five_minute_utterance_is_capped_at_thirty_seconds(tmp_path: Path, user_env: dict[str, str]) -> None:
    sentence = espeak("and we kept talking about the weather and the garden and the trip", speed=210)
    long = np.tile(sentence, int(np.ceil(300 * 16000 / len(sentence))))[: 300 * 16000]
    long = long + np.random.default_rng(0).normal(0, 600, len(long)).astype(np.int16)
    write_wav(tmp_path / "in.wav", join(silence(1.0), espeak("hey jarvis"), silence(0.3), long, silence(1.0)))
    config = Path(user_env["XDG_CONFIG_HOME"]) / "os1d" / "config.toml"
    config.write_text(with_conversation(config.read_text(), "follow_up_s = 0"))  # no answering back: one turn
    result = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "in.wav"), "--fast", "--events", "-"],
                      user_env)
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    ended = [e for e in events if e["event"] == "SpeechEnded"]
    assert ended[0]["reason"] == "max_length" and abs(ended[0]["duration"] - 30.0) < 0.05
    transcript = next(e["text"] for e in events if e["event"] == "Transcript")
    assert "weather" in transcript.lower(), transcript


def test_unreadable_input_is_one_line(tmp_path: Path, user_env: dict[str, str]) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    for path, expected in ((tmp_path / "bad.wav", "is not a readable WAV file"),
                           (tmp_path / "none.wav", "does not exist")):
        result = run_os1d(["run", "--no-tray", "--input-file", str(path), "--fast"], user_env)
        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("os1d: error: ") and expected in last
        assert "Traceback" not in result.stderr


def test_fast_without_input_file_is_refused(user_env: dict[str, str]) -> None:
    result = run_os1d(["run", "--fast"], user_env)
    assert result.returncode == 1 and "--fast only applies with --input-file" in result.stderr


def test_input_file_plays_in_real_time_without_fast(tmp_path: Path, user_env: dict[str, str]) -> None:
    import time

    write_wav(tmp_path / "in.wav", join(silence(1.0), espeak("hey jarvis"), silence(0.3),
                                        kokoro("Good morning."), silence(1.5)))
    t0, launched = time.monotonic(), time.time()
    result = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "in.wav"), "--events", "-"], user_env)
    wall = time.monotonic() - t0
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    heard = [e for e in events if e["event"] in ("WakeDetected", "SpeechStarted", "SpeechEnded")]
    assert [e["event"] for e in heard] == ["WakeDetected", "SpeechStarted", "SpeechEnded"]
    # no part of the input was heard before its time had come on the wall clock (--fast would hear these 4 s
    # in a fraction of a second; a busy machine may hear them later, never sooner)
    for e in heard:
        assert e["wall"] - launched >= e["t"], e
    assert wall >= 4.0
    assert any(e["event"] == "Transcript" and "morning" in e["text"].lower() for e in events)
    assert "Traceback" not in result.stderr


def test_a_file_is_replayed_at_the_pace_of_the_wall_clock(tmp_path: Path) -> None:
    """Each frame comes when its end is due (here, with nothing else running: within 50 ms); with fast, at once."""
    import asyncio

    from os1d.audio.devices import WavFileSource

    async def arrivals(source: WavFileSource) -> list[tuple[float, float]]:
        loop = asyncio.get_running_loop()
        t0, out = loop.time(), []
        async for chunk in source.frames():
            out.append((chunk.end, loop.time() - t0))
        return out

    write_wav(tmp_path / "in.wav", join(silence(0.5), espeak("good morning"), silence(0.5)))
    paced = asyncio.run(arrivals(WavFileSource(tmp_path / "in.wav")))
    assert paced[-1][0] > 2.0  # (the file, and a second of silence after it)
    assert all(-0.005 <= came - due <= 0.05 for due, came in paced), max(came - due for due, came in paced)
    fast = asyncio.run(arrivals(WavFileSource(tmp_path / "in.wav", fast=True)))
    assert [due for due, _ in fast] == [due for due, _ in paced] and fast[-1][1] < 0.2


def test_a_stop_that_hangs_still_ends_os1d_with_its_stacks_in_the_log() -> None:
    """SIGTERM (Quit, the tray's Quit) ends os1d even where some part of it ignores the stop."""
    import signal
    import subprocess
    import sys
    import time

    stubborn = ("import asyncio, os1d.daemon as d\n"
                "d.STOP_GRACE_S = 1.0\n"
                "async def work():\n"
                "    print('ready', flush=True)\n"
                "    while True:\n"
                "        try:\n"
                "            await asyncio.sleep(60)\n"
                "        except asyncio.CancelledError:\n"
                "            pass  # (a part that swallows the stop)\n"
                "asyncio.run(d._until_stopped(work()))\n")
    proc = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1 and time.monotonic() - t0 < 10
    assert "os1d did not stop within 1 s; it stops now" in stderr and "most recent call first" in stderr


def test_a_stop_that_comes_as_audio_arrives_is_never_lost() -> None:
    """The microphone's wait for audio, cancelled (a stop) in the very step its next frame arrives: the stop
    goes through. (asyncio.wait_for returns the frame there on Python 3.10 and 3.11, and os1d ran on.)"""
    import asyncio

    from os1d.audio.devices import next_within

    async def stopped_as_audio_arrives() -> bool:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        waiting = asyncio.ensure_future(next_within(queue, 5.0))
        await asyncio.sleep(0)  # (it waits for a frame)
        queue.put_nowait(b"\0" * 1024)
        waiting.cancel()
        try:
            await waiting
        except asyncio.CancelledError:
            return True
        return False

    async def timed_out() -> bytes | None:
        return await next_within(asyncio.Queue(), 0.05)

    assert asyncio.run(stopped_as_audio_arrives())
    assert asyncio.run(timed_out()) is None


def test_a_stop_does_not_wait_for_a_model_still_loading() -> None:
    """A lane whose job runs on (a model still loading: minutes, for a first run's int8 conversion) is left to
    it, and the process ends at once with os1d's exit code; a lane at rest is closed as usual."""
    import subprocess
    import sys

    script = ("import sys, time, threading\n"
              "from os1d.lanes import ABANDONED, Lane, abandon_at_exit\n"
              "idle, busy = Lane('idle'), Lane('llm')\n"
              "idle.run_blocking(lambda: None)\n"
              "started = threading.Event()\n"
              "job = lambda: (started.set(), time.sleep(120))\n"
              "threading.Thread(target=busy.run_blocking, args=(job,), daemon=True).start()  # (a model loading)\n"
              "started.wait()\n"
              "idle.close(wait=False)\n"
              "busy.close(wait=False)\n"
              "print(ABANDONED, flush=True)\n"
              "abandon_at_exit(3)\n"
              "print('not reached', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)  # (the job takes 120 s: waiting for it fails here)
    assert done.returncode == 3 and done.stdout == "['llm']\n", (done.stdout, done.stderr)
