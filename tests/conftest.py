"""Shared fixtures: the test kit, an isolated user environment, real virtual audio (PulseAudio)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speech import kit_dir  # noqa: E402

OS1D = [sys.executable, "-m", "os1d"]
OS1_CONFIG = '[tts]\nvoice = "jf_alpha"\n[conversation]\ngreet = false\n'
"""The kit's Kokoro voices are Japanese (they speak English phonemes well); the default af_heart is not there.
No greeting at start (the memory tests turn it on): each test's audio is all that is heard. The default wake
word (hey OS1)."""
KIT_CONFIG = '[wake]\nmodels = ["hey_jarvis"]\n' + OS1_CONFIG
"""The same with hey_jarvis as the wake word: what most tests say to wake os1d (another selectable head; the
end-to-end tests on real devices and tests/test_wake.py use hey OS1)."""


def with_key(config: str, table: str, line: str) -> str:
    """A config text with one more key in [table] (the table added if the text has none)."""
    head = f"[{table}]\n"
    return config.replace(head, f"{head}{line}\n", 1) if head in config else f"{config}{head}{line}\n"


def with_conversation(config: str, line: str) -> str:
    """A config text with one more key in its [conversation] table."""
    return with_key(config, "conversation", line)


@pytest.fixture(scope="session")
def kit() -> Path:
    return kit_dir()


@pytest.fixture(scope="session")
def whisper(kit: Path):  # type: ignore[no-untyped-def]
    """The kit's whisper-base, loaded once."""
    from os1d.agent.whisper import WhisperTranscriber
    from os1d.config import SttConfig

    return WhisperTranscriber(kit / "whisper-base", SttConfig())


@pytest.fixture(scope="session")
def voice_graphs(kit: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder with the kit voice's graph for this CPU, made once for the session (as os1d makes it at a
    user's first start and reuses it after; tests of the first start use a cache of their own)."""
    from os1d.audio.conv_integer import voice_model
    from os1d.audio.tts import MODEL

    cache = tmp_path_factory.mktemp("graphs")
    voice_model(kit / "kokoro" / MODEL, cache)
    return cache


def link_tree(source: Path, target: Path) -> None:
    """The files of `source` at the same places under `target`, hard-linked (copied across file systems)."""
    for made in source.rglob("*"):
        if made.is_file():
            link = target / made.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(made, link)
            except OSError:
                shutil.copyfile(made, link)


@pytest.fixture(scope="session", autouse=True)
def own_cache(voice_graphs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """os1d run in the tests' own process keeps its cache in a folder of the session's, never the user's
    ~/.cache (the voice's graph already in it)."""
    cache = tmp_path_factory.mktemp("xdg_cache_home")
    link_tree(voice_graphs, cache / "os1d" / "graphs")
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture
def user_env(tmp_path: Path, kit: Path, voice_graphs: Path) -> dict[str, str]:
    """Environment for an os1d subprocess: own config/cache/data folders (the voice's graph already in its
    cache, linked), the kit as models."""
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        (tmp_path / var.lower()).mkdir()
        env[var] = str(tmp_path / var.lower())
    link_tree(voice_graphs, tmp_path / "xdg_cache_home" / "os1d" / "graphs")
    env["OS1D_MODELS_DIR"] = str(kit)
    env["PYTHONUNBUFFERED"] = "1"
    (tmp_path / "xdg_config_home" / "os1d").mkdir()
    (tmp_path / "xdg_config_home" / "os1d" / "config.toml").write_text(KIT_CONFIG)
    return env


def run_os1d(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(OS1D + args, env=env, capture_output=True, text=True, timeout=timeout)


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@dataclass
class Pulse:
    """A private PulseAudio server: sink `spk` (speaker) and pipe source `mic` fed through a FIFO."""

    env: dict[str, str]
    fifo: Path
    proc: subprocess.Popen[bytes]

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pulse]:
    if not shutil.which("pulseaudio"):
        raise RuntimeError("pulseaudio is not installed: run scripts/setup --test")
    root = tmp_path_factory.mktemp("pulse")
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    fifo = runtime / "mic.fifo"
    script = root / "default.pa"
    script.write_text(
        "load-module module-native-protocol-unix auth-anonymous=1\n"
        "load-module module-null-sink sink_name=spk\n"
        f"load-module module-pipe-source source_name=mic file={fifo} format=s16le rate=16000 channels=1\n"
        "set-default-sink spk\nset-default-source mic\n"
    )
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), HOME=str(root), XDG_CONFIG_HOME=str(root / "cfg"),
               PULSE_RUNTIME_PATH=str(runtime / "pulse"))
    proc = subprocess.Popen(
        ["pulseaudio", "-n", "-F", str(script), "--exit-idle-time=-1", "--daemonize=no",
         "--disallow-exit", "--log-target=stderr", "--log-level=error"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0 and fifo.exists():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("PulseAudio did not start")
    yield Pulse(env, fifo, proc)
    proc.terminate()
    proc.wait(10)


class Heard:
    """A Voice (a turn's speaker) that notes the text of each piece played."""

    def __init__(self) -> None:
        self.played: list[str] = []

    def play(self, samples: np.ndarray, text: str) -> None:
        self.played.append(text)

    def complete(self) -> None:
        pass


class Mic:
    """A microphone that never stops, as a real one: silence flows into the pipe source at real-time pace,
    and `say` puts speech into that flow."""

    def __init__(self, pulse: Pulse) -> None:
        self.fifo, self.running = pulse.fifo, True
        self._queue: deque[tuple[np.ndarray, threading.Event]] = deque()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def say(self, pcm: np.ndarray, wait: bool = True) -> threading.Event:
        """Queue 16 kHz int16 speech; it plays after what is queued. The event is set once it is all written."""
        done = threading.Event()
        with self._lock:
            self._queue.append((pcm.astype("<i2"), done))
        if wait and not done.wait(len(pcm) / 16000 + 30):
            raise AssertionError("the microphone did not play the speech")
        return done

    def _next(self, step: int) -> bytes:
        with self._lock:
            if not self._queue:
                return bytes(2 * step)
            pcm, done = self._queue[0]
            chunk = pcm[:step]
            if len(pcm) <= step:
                self._queue.popleft()
                done.set()
            else:
                self._queue[0] = (pcm[step:], done)
        return chunk.tobytes() + bytes(2 * (step - len(chunk)))

    def _feed(self, step: int = 320) -> None:
        while self.running:
            try:
                fd = os.open(self.fifo, os.O_WRONLY)
                try:
                    t0, written = time.monotonic(), 0
                    while self.running:
                        os.write(fd, self._next(step))
                        written += step
                        time.sleep(max(0.0, t0 + written / 16000 - time.monotonic()))
                finally:
                    os.close(fd)
            except BrokenPipeError:  # the source was reopened (a sound server restarted): write on
                time.sleep(0.05)

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[str]:
    """A session bus of the test's own; its address."""
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    yield address
    proc.terminate()
    proc.wait(10)
