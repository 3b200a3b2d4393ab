"""The daemon on real (virtual) audio devices: a PulseAudio pipe source as the microphone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from conftest import KIT_CONFIG, OS1_CONFIG, OS1D, Mic, Pulse
from speech import espeak, join, kokoro, silence, words


class Daemon:
    """`os1d run` as a subprocess, its events collected from stdout as they arrive."""

    def __init__(self, env: dict[str, str], *args: str, tray: bool = False) -> None:
        headless = [] if tray else ["--no-tray"]
        self.proc = subprocess.Popen(OS1D + ["-v", "run", *headless, "--events", "-", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[dict] = []
        self.noise: list[str] = []
        """Lines on stdout that were not events (there should be none)."""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.noise.append(line)

    def wait_for(self, predicate, timeout: float) -> dict:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in list(self.events):
                if predicate(e):
                    return e
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.proc.poll() is None:  # its threads' stacks, to the log: where a hung daemon hangs
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(1.0)
        got, reading = [e["event"] for e in self.events], self._reader.is_alive()
        code, stderr = self.stop()
        raise AssertionError(f"no matching event; got {got} (still read: {reading}; other lines: {self.noise[:5]}); "
                             f"exit code {code}; stderr: {stderr[-8000:]}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100.0

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()


def env_with(user_env: dict[str, str], pulse: Pulse) -> dict[str, str]:
    return {**user_env, **{k: pulse.env[k] for k in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH")}}


def default_wake_word(user_env: dict[str, str]) -> None:
    """The user's config without a [wake] table: os1d wakes on its default, "hey OS1"."""
    (Path(user_env["XDG_CONFIG_HOME"]) / "os1d" / "config.toml").write_text(OS1_CONFIG)


def test_hears_the_wake_word_and_the_question_on_the_default_microphone(user_env, pulse: Pulse) -> None:
    default_wake_word(user_env)
    mic = Mic(pulse)
    daemon = Daemon(env_with(user_env, pulse))
    try:
        daemon.wait_for(lambda e: e.get("state") == "idle", 30)
        mic.say(join(silence(1.0), espeak("hey O S one"), silence(0.3),
                     kokoro("What's the weather like tomorrow?"), silence(3.0)))
        wake = daemon.wait_for(lambda e: e["event"] == "WakeDetected", 10)
        assert wake["model"] == "hey_os1"
        text = daemon.wait_for(lambda e: e["event"] == "Transcript", 20)["text"].lower()
        assert "weather" in text and "tomorrow" in text and "hey" not in text
    finally:
        code, stderr = daemon.stop()
        mic.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_missing_microphone_is_reported_and_retried_without_spinning(user_env, pulse: Pulse, tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(KIT_CONFIG + '[audio]\ninput_device = "no such microphone"\nretry_s = 0.5\n')
    daemon = Daemon(env_with(user_env, pulse), "--config", str(config))
    try:
        error = daemon.wait_for(lambda e: e["event"] == "Error", 30)
        assert error["source"] == "audio"
        assert "no input audio device matches 'no such microphone'" in error["message"]
        assert "retrying" in error["message"]
        daemon.wait_for(lambda e: e["event"] == "ModelLoaded" and e["model"] == "ultravox", 60)  # loads done
        cpu0, t0 = daemon.cpu_seconds(), time.monotonic()
        time.sleep(4.0)
        share = (daemon.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        assert daemon.proc.poll() is None  # still running
        assert share < 0.5, f"retrying used {share:.0%} of a core"
        assert [e["event"] for e in daemon.events].count("Error") == 1  # said once, not every retry
        assert [e["state"] for e in daemon.events if e["event"] == "StateChanged"][-1] == "error"
    finally:
        code, stderr = daemon.stop()
    assert code == 0
    assert stderr.count("still no microphone") >= 4  # it kept trying, every 0.5 s (debug log)


def hears_a_ramp_whole(pulse: Pulse, source, hold) -> None:  # type: ignore[no-untyped-def]
    """The Microphone `source` hears all of 10 s of a ramp (each sample tells where it belongs), in order, said
    once the device is open; hold() is called once a second of it was heard."""
    ramp = (np.arange(16000 * 10) % 20000 + 1).astype(np.int16)
    mic = Mic(pulse)

    async def listen() -> np.ndarray:
        got: list[np.ndarray] = []
        heard, held = 0, False
        async with contextlib.aclosing(source.frames()) as frames:
            async for chunk in frames:
                if not got:  # the device is open: say it now
                    mic.say(ramp, wait=False)
                got.append(chunk.samples)
                heard += int(np.count_nonzero(chunk.samples))
                if heard > 16000 and not held:
                    hold()
                    held = True
                if heard >= len(ramp) or chunk.start > 30:
                    return np.concatenate(got)
        raise AssertionError("the microphone ended")

    try:
        pcm = asyncio.run(asyncio.wait_for(listen(), 40))
    finally:
        mic.stop()
    heard = pcm[pcm != 0].astype(np.int64)
    gaps = np.flatnonzero(np.diff(heard) % 20000 != 1)
    assert len(gaps) == 0, f"audio lost at {gaps[:5] / 16000} s: {heard[gaps[0]-2:gaps[0]+3]}"
    assert len(heard) == len(ramp)


def test_audio_said_while_os1d_is_busy_is_heard_late_and_whole(pulse: Pulse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The event loop held up for 7 s (a slow machine, a long step): the audio meanwhile is all heard once it is
    free, in order, none dropped."""
    from os1d.audio.devices import Microphone

    for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
        monkeypatch.setenv(key, pulse.env[key])
    problems: list[str] = []
    source = Microphone("default", problems.append)
    hears_a_ramp_whole(pulse, source, lambda: time.sleep(7.0))  # (the loop busy: no frame is read meanwhile)
    assert source.overruns == 0 and not problems


def numbers_that_take_to_sort(seconds: float) -> list[float]:
    """Random numbers that take about `seconds` to sort on this machine (timed on a sample: sorting takes a
    fast machine well under a second for a size that a slow one needs two for)."""
    rng = np.random.default_rng(0)
    sample = rng.random(1_000_000).tolist()
    t0 = time.perf_counter()
    sample.sort()
    took = time.perf_counter() - t0
    return rng.random(int(len(sample) * seconds / took)).tolist()


def test_a_load_holding_python_past_the_stall_time_is_not_a_stalled_microphone(pulse: Pulse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A thread holds Python's lock for longer than the stall time (as loading a tokenizer or an onnx graph does
    on a busy machine): the loop and the device's callbacks both wait, and the device is not reopened (which
    would lose the audio it holds)."""
    from os1d.audio.devices import Microphone

    for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
        monkeypatch.setenv(key, pulse.env[key])
    problems: list[str] = []
    source = Microphone("default", problems.append, stall_s=0.5)
    numbers = numbers_that_take_to_sort(4 * source.stall_s)
    held: list[float] = []

    def sort() -> None:  # list.sort holds the lock from start to end
        t0 = time.perf_counter()
        numbers.sort()
        held.append(time.perf_counter() - t0)

    hears_a_ramp_whole(pulse, source, lambda: threading.Thread(target=sort).start())
    assert held and held[0] > 2 * source.stall_s, held
    assert source.overruns == 0 and not problems, problems


def test_microphone_that_goes_silent_is_reopened(user_env, pulse: Pulse) -> None:
    daemon = Daemon(env_with(user_env, pulse))
    mic = Mic(pulse)
    try:
        mic.say(silence(3.0))
        mic.stop()  # the writer stops: the source stops producing
        daemon.wait_for(lambda e: e["event"] == "Error" and "stopped delivering audio" in e["message"], 15)
        time.sleep(5.0)  # reopened and stalled again, twice: said once
        assert [e["event"] for e in daemon.events].count("Error") == 1
        mic = Mic(pulse)
        mic.say(join(silence(4.0), espeak("hey jarvis"), silence(0.3), kokoro("What's the weather like tomorrow?"),
                     silence(3.0)), wait=False)
        text = daemon.wait_for(lambda e: e["event"] == "Transcript", 30)["text"].lower()
        assert "weather" in text
    finally:
        code, stderr = daemon.stop()
        mic.stop()
    assert code == 0, stderr


def test_doctor_reports_devices_models_and_providers(user_env, pulse: Pulse) -> None:
    result = subprocess.run(OS1D + ["doctor", "--json"], env=env_with(user_env, pulse),
                            capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["problems"]
    assert not report["audio"]["input"].startswith("PROBLEM") and not report["audio"]["output"].startswith("PROBLEM")
    assert any(d["default_input"] and d["inputs"] > 0 for d in report["audio"]["devices"])
    states = {m["name"]: m["state"] for m in report["models"]}
    assert states["openwakeword"] == "ok" and states["whisper-base"] == "ok"
    assert "CPUExecutionProvider" in report["onnxruntime"]["providers"]
    text = subprocess.run(OS1D + ["doctor"], env=env_with(user_env, pulse), capture_output=True, text=True,
                          timeout=120).stdout
    assert "[wake]\nmodels = [\"hey_jarvis\"]\nthreshold = 0.5" in text
    bad = subprocess.run(OS1D + ["doctor"], env={**env_with(user_env, pulse), "OS1D_MODELS_DIR": "/nonexistent"},
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "PROBLEM: model whisper-base is missing" in bad.stdout


class Recorder:
    """`parec` on the null sink's monitor: what OS1 said through the default speaker, 16 kHz."""

    def __init__(self, pulse: Pulse, path: Path) -> None:
        self.path = path
        self.t0 = time.time()
        self.proc = subprocess.Popen(["parec", "-d", "spk.monitor", "--format=s16le", "--rate=16000", "--channels=1",
                                      "--latency-msec=20", str(path)], env=pulse.env, stderr=subprocess.DEVNULL)

    def stop(self) -> np.ndarray:
        self.proc.terminate()
        self.proc.wait(10)
        return np.frombuffer(self.path.read_bytes(), dtype="<i2")


def test_answers_out_loud_on_the_default_speaker_and_stops_when_interrupted(user_env, pulse: Pulse, tmp_path,
                                                                            whisper) -> None:
    """Hears "hey OS1, …" on the pipe source, answers through the null sink; the wake word said while it
    speaks silences it within 150 ms."""
    default_wake_word(user_env)
    mic = Mic(pulse)
    daemon = Daemon(env_with(user_env, pulse))
    recorder = Recorder(pulse, tmp_path / "spoken.raw")
    try:
        daemon.wait_for(lambda e: e["event"] == "ModelLoaded" and e["model"] == "kokoro", 60)
        question = join(silence(0.5), kokoro("Hey O S one.", "jm_kumo"), silence(0.3),
                        kokoro("What's the weather like tomorrow?"))
        mic.say(question, wait=False)
        done = daemon.wait_for(lambda e: e["event"] == "SpeakingStopped", 40)
        assert done["reason"] == "done"
        first = daemon.wait_for(lambda e: e["event"] == "SpeakingStarted", 1)
        # again, and this time interrupt it mid-sentence
        mic.say(join(silence(1.0), question, silence(2.5), espeak("hey O S one", "en-gb+f2")), wait=False)
        cut = daemon.wait_for(lambda e: e["event"] == "SpeakingStopped" and e["reason"] == "interrupted", 40)
        spoken = recorder.stop()
    finally:
        code, stderr = daemon.stop()
        mic.stop()
    assert code == 0, stderr
    rate = 16000
    # the recording starts a little after `recorder.t0` and holds nothing before the first reply: align its
    # clock on that reply's first loud sample (the device latency is the same for both replies)
    loud = np.flatnonzero(np.abs(spoken.astype(np.int32)) > 200) / rate
    offset = loud[0] - (first["wall"] - recorder.t0)

    def at(event: dict) -> float:
        return event["wall"] - recorder.t0 + offset

    heard = spoken[int((at(first) - 0.2) * rate) : int((at(done) + 0.5) * rate)]
    assert words(whisper.transcribe(heard))[:4] == ["hello", "from", "the", "tiny"]
    # how long the voice went on after the wake word stopped it
    second = [e for e in daemon.events if e["event"] == "SpeakingStarted"][-1]
    voiced = loud[(loud >= at(second) - 0.2) & (loud <= at(cut) + 2.0)]
    assert len(voiced) and voiced[0] < at(cut) and voiced[-1] - at(cut) <= 0.15


def test_a_speaker_that_goes_away_leaves_the_conversation_going(pulse: Pulse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The device fails when OS1 starts to speak: nothing sounds, but the reply counts as said, so states and
    turns go on (and the next reply tries the device again)."""
    from os1d.audio.speaker import DeviceSpeaker
    from os1d.errors import UserError

    for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
        monkeypatch.setenv(key, pulse.env[key])
    speaker = DeviceSpeaker("default")
    try:
        speaker._stream.close()  # the sound server dropped it
        gone = UserError("cannot open speaker 'default': device unavailable")
        monkeypatch.setattr(speaker, "_new_stream", lambda: (_ for _ in ()).throw(gone))
        speaker._stream = None
        tone = np.sin(np.arange(24000) / 24000 * 2 * np.pi * 440).astype(np.float32)
        speaker.play(tone, "Hello there", 1.0)
        speaker.complete()
        assert speaker.poll(1.1).started == 1.1
        assert speaker.poll(1.2).finished == 1.2 and not speaker.busy
        monkeypatch.undo()  # the device is back
        for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
            monkeypatch.setenv(key, pulse.env[key])
        speaker.play(tone, "Hello again", 2.0)
        assert speaker._stream is not None and speaker._stream.is_active()
        assert speaker.stop(2.1) in ("", "Hello", "Hello again")
    finally:
        speaker.close()
