"""hey OS1: the shipped head hears held-out voices and not its near misses; `os1d wakeword test` and `train`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import run_os1d
from speech import espeak, join, kokoro, ordinary_speech, silence
from os1d.audio.chunk import FRAME, write_wav
from os1d.audio.wake import WakeWordDetector, resolve_heads
from os1d.onnx import cpu_session
from os1d.wakeword import BUNDLED
from os1d.wakeword.features import FeatureExtractor, stream_scores
from os1d.wakeword.voices import HELD_OUT_VARIANTS

# espeak-ng variants (and the Kokoro voice) that training never heard, at several speeds
HELD_OUT_ESPEAK = [("en-us+m3", 150), ("en-gb+f2", 175), ("en-gb-scotland+m1", 160), ("en-gb-x-rp+f4", 140),
                   ("en-us+m1", 190), ("en-us-nyc+f2", 130), ("en-029+john", 160), ("en-gb+linda", 150)]
HELD_OUT_KOKORO = [("jf_nezumi", 0.85), ("jf_nezumi", 1.0), ("jf_nezumi", 1.2)]
CONFUSABLES = ["hey OS", "hey Otis", "OS one", "hey Oswald", "hey there", "hey jarvis", "hey mycroft", "alexa"]


def say(text: str, voice: tuple[str, float]) -> np.ndarray:
    name, speed = voice
    return kokoro(text, name, speed) if name.startswith("jf_") else espeak(text, name, int(speed))


def fires(d: WakeWordDetector, pcm: np.ndarray) -> list[float]:
    """Scores of the detections in a clip heard after a reset."""
    d.reset()
    pcm = join(silence(1.0), pcm, silence(1.0))
    return [hit.score for i in range(0, len(pcm), FRAME) for hit in d.detect(pcm[i : i + FRAME])]


@pytest.fixture(scope="module")
def hey_os1(kit: Path) -> WakeWordDetector:
    return WakeWordDetector(kit / "openwakeword", ("hey_os1",))


def test_the_shipped_head_is_found_by_name_and_has_the_pretrained_format(kit: Path) -> None:
    (path,) = resolve_heads(kit / "openwakeword", ("hey_os1",))
    assert path.parent == BUNDLED and path.name == "hey_os1_v0.2.onnx"
    ours, theirs = cpu_session(path), cpu_session(kit / "openwakeword" / "hey_jarvis_v0.1.onnx")
    for a, b in ((ours.get_inputs()[0], theirs.get_inputs()[0]), (ours.get_outputs()[0], theirs.get_outputs()[0])):
        assert (a.name, a.shape, a.type) == (b.name, b.shape, b.type)
    assert {v.split("+")[1] for v, _ in HELD_OUT_ESPEAK} <= HELD_OUT_VARIANTS


def test_hey_os1_is_heard_in_held_out_voices(hey_os1: WakeWordDetector) -> None:
    clips = {f"{v}@{s}": say("hey O S one", (v, s)) for v, s in HELD_OUT_ESPEAK + HELD_OUT_KOKORO}
    clips["jf_nezumi one breath"] = kokoro("Hey O S one, what time is it?", "jf_nezumi")
    clips["en-gb+f2 one breath"] = espeak("hey O S one, what time is it?", "en-gb+f2", 160)
    missed = [name for name, pcm in clips.items() if not fires(hey_os1, pcm)]
    assert not missed, f"hey_os1 missed {missed}"


def test_hey_os1_ignores_its_near_misses(hey_os1: WakeWordDetector) -> None:
    voices = [HELD_OUT_ESPEAK[0], HELD_OUT_ESPEAK[1], HELD_OUT_ESPEAK[6], HELD_OUT_KOKORO[1]]
    fired = [f"{text} ({v[0]}: {max(s):.2f})" for text in CONFUSABLES for v in voices
             if (s := fires(hey_os1, say(text, v)))]
    assert not fired, f"hey_os1 fired on {fired}"


def test_hey_os1_is_silent_in_ordinary_speech(hey_os1: WakeWordDetector) -> None:
    assert fires(hey_os1, ordinary_speech(120)) == []


def test_training_features_are_the_detectors(kit: Path) -> None:
    folder = kit / "openwakeword"
    pcm = join(silence(0.7), espeak("hey O S one, what time is it", "en-us+m3"), silence(0.5))
    fe = FeatureExtractor(folder)
    ours = stream_scores(cpu_session(BUNDLED / "hey_os1_v0.2.onnx"), fe.embeddings(pcm), fe.initial)
    d = WakeWordDetector(folder, ("hey_os1",))
    theirs = np.array([d.scores(pcm[i : i + FRAME])["hey_os1"] for i in range(0, len(pcm), FRAME)])
    assert ours.max() > 0.5 and np.abs(ours - theirs).max() < 1e-5


def test_wakeword_test_reports_detections_and_peaks(tmp_path: Path, user_env: dict[str, str]) -> None:
    yes, no = tmp_path / "yes.wav", tmp_path / "no.wav"
    write_wav(yes, join(silence(1.0), espeak("hey O S one", "en-us+m3", 150), silence(1.0)))
    write_wav(no, join(silence(1.0), espeak("hey Otis, how are you", "en-us+m3", 150), silence(1.0)))
    result = run_os1d(["wakeword", "test", "--model", "hey_os1", "--model", "hey_jarvis", str(yes), str(no)],
                      user_env)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith(f"{yes}: 1 detection(s): hey_os1 at ")
    assert float(first.split("peak: hey_os1 ")[1].split()[0]) >= 0.5
    assert second.startswith(f"{no}: 0 detection(s) | peak: hey_os1 ") and "hey_jarvis" in second
    peak = float(second.split("peak: hey_os1 ")[1].split()[0])
    assert peak < 0.5


def test_wakeword_test_fails_in_one_line_on_a_bad_wav(tmp_path: Path, user_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    result = run_os1d(["wakeword", "test", str(bad)], user_env)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"os1d: error: {bad} is not a readable WAV file") and result.stderr.count("\n") == 1


def test_a_tiny_training_run_makes_a_model_the_daemon_loads(tmp_path: Path, user_env: dict[str, str],
                                                            kit: Path) -> None:
    out = tmp_path / "models" / "hey_computer_v0.1.onnx"
    result = run_os1d(["wakeword", "train", "hey computer", "--minutes", "0.05", "--epochs", "1", "--out", str(out)],
                      user_env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "held-out recall at 0.5" in result.stdout and "false accepts" in result.stdout
    assert f"model: {out}" in result.stdout
    d = WakeWordDetector(kit / "openwakeword", (str(out),))
    assert d.names == ["hey_computer"]
    scores = [d.scores(f)["hey_computer"] for f in np.zeros((20, FRAME), np.int16)]
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_training_without_any_voice_fails_in_one_line(tmp_path: Path, user_env: dict[str, str], kit: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "openwakeword").symlink_to(kit / "openwakeword")
    env = dict(user_env, OS1D_MODELS_DIR=str(models), PATH=str(tmp_path / "empty"))
    result = run_os1d(["wakeword", "train", "hey computer", "--out", str(tmp_path / "x.onnx")], env)
    assert result.returncode == 1 and not (tmp_path / "x.onnx").exists()
    assert result.stderr.strip().splitlines()[-1] == (
        "os1d: error: no voices to train with: install espeak-ng, or run `os1d models pull kokoro`")
