"""Long speech cut at the 30 s cap still comes back whole; and a run writes nothing outside os1d's folders."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from conftest import KIT_CONFIG, run_os1d
from harness import kit_config, run_listener
from os1d.audio.chunk import RATE, write_wav
from os1d.config import ConversationConfig
from os1d.events import SpeechEnded, Transcript
from speech import espeak, join, kokoro, silence, words

GPL = Path("/usr/share/common-licenses/GPL-3")


def texts(n: int) -> list[str]:
    """n texts of two GPL-3 paragraphs each: well over 30 s when read."""
    found = [re.sub(r"\s+", " ", p).strip() for p in GPL.read_text().split("\n\n") if len(p.strip()) > 500]
    return [f"{found[3 + k]} {found[3 + n + k]}" for k in range(n)]


def test_speech_cut_at_thirty_seconds_is_transcribed_whole_without_loops() -> None:
    """Four long texts in four voices, each still going when the 30 s cap cuts it."""
    voices = [lambda t: espeak(t, "en-us+m3", 175), lambda t: espeak(t, "en-gb+f2", 170),
              lambda t: espeak(t, "en-us+f4", 180), lambda t: kokoro(t[:900], "jm_kumo")]
    parts, expected = [silence(1.0)], []
    for say, text in zip(voices, texts(4), strict=True):
        wake, speech = espeak("hey jarvis"), say(text)
        assert len(speech) > 34 * RATE  # still talking when the cap cuts
        parts += [wake, silence(0.3), speech[: 34 * RATE], silence(3.0)]
        heard_s = 30.0 - (len(wake) / RATE + 0.3)  # the cap counts the wake phrase too
        expected.append(len(words(text if say is not voices[3] else text[:900])) * heard_s / (len(speech) / RATE))
    run = run_listener(join(*parts), kit_config(conversation=ConversationConfig(follow_up_s=0.0, greet=False)))
    ended = run.of(SpeechEnded)
    heard = [words(t.text) for t in run.of(Transcript) if t.role == "user"]
    assert [e.reason for e in ended] == ["max_length"] * 4 and all(abs(e.duration - 30.0) < 0.1 for e in ended)
    assert len(heard) == 4
    for got, want in zip(heard, expected, strict=True):
        assert 0.75 * want <= len(got) <= 1.25 * want, f"{len(got)} words of about {want:.0f}: {' '.join(got)}"
        trigrams = [tuple(got[k : k + 3]) for k in range(len(got) - 2)]
        assert max(trigrams.count(t) for t in set(trigrams)) <= 4, f"a loop: {' '.join(got)}"


def test_a_run_writes_nothing_outside_its_own_folders(tmp_path: Path, user_env: dict[str, str]) -> None:
    """No telemetry (onnxruntime's device id and event queue), no stray caches, no temporary files left."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = dict(user_env, HOME=str(home), TMPDIR=str(tmp))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env.pop(var)  # the defaults under HOME, as on a user's machine
    (home / ".config" / "os1d").mkdir(parents=True)
    (home / ".config" / "os1d" / "config.toml").write_text(KIT_CONFIG)
    write_wav(tmp_path / "in.wav", join(silence(1.0), espeak("hey jarvis"), silence(0.3),
                                        kokoro("What is the capital of France?"), silence(2.0)))
    unused = {d: sorted(map(str, (tmp_path / d).rglob("*"))) for d in ("xdg_cache_home", "xdg_data_home")}
    result = run_os1d(["run", "--no-tray", "--fast", "--input-file", str(tmp_path / "in.wav"), "--events",
                       str(tmp_path / "events.jsonl"), "--output-file", str(tmp_path / "out.wav")], env)
    assert result.returncode == 0, result.stderr
    assert "os1d: you: " in result.stderr and "os1d: os1: " in result.stderr  # a whole turn ran
    own = [home / ".config" / "os1d", home / ".cache" / "os1d", home / ".local" / "share" / "os1d",
           home / ".local" / "state" / "os1d"]
    stray = [p for p in home.rglob("*") if p.is_file() and not any(o in p.parents for o in own)]
    assert stray == [], stray
    assert list(tmp.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "home", "in.wav", "out.wav", "tmp",
                                                           "xdg_cache_home", "xdg_config_home", "xdg_data_home",
                                                           "xdg_state_home"]
    assert {d: sorted(map(str, (tmp_path / d).rglob("*"))) for d in unused} == unused  # (HOME's folders were used)
    assert list((home / ".cache" / "os1d" / "graphs").glob("kokoro-*/model.onnx"))  # (a first start: made there)
