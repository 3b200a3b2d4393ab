"""Hostile but ordinary input: each case ends in its one `os1d: error:` line, no traceback, no file changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from conftest import KIT_CONFIG, OS1D, events_of, run_os1d
from os1d.audio.chunk import write_wav
from speech import espeak, join, silence

LONG = "a" * 300


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    """The command line; {tmp} and {kit} are filled in."""
    error: str
    """The expected error line, without "os1d: error: "."""
    config: str = ""
    """config.toml for the run."""
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    """Makes the files the case needs under tmp."""
    before_run: bool = True
    """The error comes before anything runs: it is the only line on stderr."""


def _notes(tmp: Path) -> None:
    (tmp / "notes.txt").write_text("my notes, not an events log\n")


def _link(tmp: Path) -> None:
    (tmp / "link.wav").symlink_to(tmp / "rec.wav")


def _rate0(tmp: Path) -> None:
    data = b"\x00\x00" * 16000
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 0, 0, 2, 16)
    (tmp / "rate0.wav").write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + fmt + b"data"
                                    + struct.pack("<I", len(data)) + data)


def _file_as_models_dir(tmp: Path) -> None:
    (tmp / "models-file").write_text("not a folder")


def _linked_kit(tmp: Path, kit: Path, manifest: dict[str, str]) -> None:
    """tmp/models: the kit as folders of symbolic links, with the manifests given replaced."""
    for folder in kit.iterdir():
        for path in folder.rglob("*"):
            if path.is_file():
                target = tmp / "models" / folder.name / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(path)
    for name, text in manifest.items():
        manifest_file = tmp / "models" / name / ".os1d-manifest.json"
        manifest_file.unlink()
        manifest_file.write_text(text)


RUN = ["run", "--no-tray", "--fast", "--input-file", "{tmp}/rec.wav"]
CASES = [
    Case("output over the input", RUN + ["--output-file", "{tmp}/rec.wav"],
         "--output-file {tmp}/rec.wav is the input file; choose another file (os1d never writes over its input)"),
    Case("output over the input by a link", RUN + ["--output-file", "{tmp}/link.wav"],
         "--output-file {tmp}/link.wav is the input file; choose another file (os1d never writes over its input)",
         prepare=_link),
    Case("events into the input", RUN + ["--events", "{tmp}/rec.wav"],
         "--events {tmp}/rec.wav is the input file; choose another file (os1d never writes over its input)"),
    Case("events appended to some other file", RUN + ["--events", "{tmp}/notes.txt"],
         "--events {tmp}/notes.txt exists and is not an os1d events log; name a new file (events are only ever "
         "appended to an events log)", prepare=_notes),
    Case("events and output into one file", RUN + ["--events", "{tmp}/o.wav", "--output-file", "{tmp}/o.wav"],
         "--output-file and --events name the same file; give each its own"),
    Case("output in a missing folder", RUN + ["--output-file", "{tmp}/nowhere/out.wav"],
         "cannot write --output-file {tmp}/nowhere/out.wav: the folder {tmp}/nowhere does not exist"),
    Case("output is a folder", RUN + ["--output-file", "{tmp}"], "cannot write --output-file {tmp}: it is a folder"),
    Case("input name too long", ["run", "--no-tray", "--fast", "--input-file", "{tmp}/" + LONG + ".wav"],
         "cannot read input file {tmp}/" + LONG + ".wav: File name too long"),
    Case("WAV with rate 0", ["run", "--no-tray", "--fast", "--input-file", "{tmp}/rate0.wav"],
         "{tmp}/rate0.wav is not a readable WAV file (its header says the sample rate is 0 Hz)", prepare=_rate0),
    Case("unknown language", RUN, "stt.language = 'klingon' is not a language whisper-base knows; use a code such "
         'as en, de, fr, es or ja, or "" to detect it', config='[stt]\nlanguage = "klingon"\n'),
    Case("bogus compute type", RUN, "stt.compute_type = 'bogus' is not supported on cpu here (supported: float32, "
         'int8, int8_float32, or "auto")', config='[stt]\ncompute_type = "bogus"\n'),
    Case("precision that is not downloaded", RUN, "llm.decoder_dtype = 'fp16' needs "
         "onnx/decoder_model_merged_fp16.onnx, which is not in {kit}/ultravox; run `os1d models pull ultravox` "
         "to fetch it, or set llm.decoder_dtype to a precision that is there (q4)",
         config='[llm]\ndecoder_dtype = "fp16"\n', env={"HF_HUB_OFFLINE": "1"}),
    Case("models dir is a file", ["models", "pull", "whisper-base"],
         "cannot create the model folder {tmp}/models-file/whisper-base: Not a directory; set [models] dir or "
         "OS1D_MODELS_DIR to a folder os1d can write", env={"OS1D_MODELS_DIR": "{tmp}/models-file"},
         prepare=_file_as_models_dir),
    Case("events on a full disk", RUN + ["--events", "/dev/full"],
         "cannot write events to /dev/full (No space left on device); events are no longer written",
         before_run=False),
    Case("output on a full disk", RUN + ["--output-file", "/dev/full"],
         "cannot write output file /dev/full: No space left on device", before_run=False),
]
if subprocess.run([sys.executable, "-c", "import ctranslate2, sys; sys.exit(ctranslate2.get_cuda_device_count())"],
                  check=False).returncode == 0:  # this machine has no GPU (CI's has none)
    CASES.append(Case("Whisper on a GPU that is not there", RUN, 'stt.device = "cuda" but CTranslate2 finds no usable '
                      'CUDA GPU here; set stt.device = "auto" or "cpu"', config='[stt]\ndevice = "cuda"\n'))


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under folder (links not followed) and a hash of its content."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def recording() -> np.ndarray:
    return join(silence(0.5), espeak("hey jarvis, what is the capital of France?"), silence(1.0))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case: Case, tmp_path: Path, user_env: dict[str, str],
                                                   kit: Path, recording: np.ndarray) -> None:
    fill = lambda s: s.replace("{tmp}", str(tmp_path)).replace("{kit}", str(kit))  # noqa: E731
    write_wav(tmp_path / "rec.wav", recording)
    if case.prepare:
        case.prepare(tmp_path)
    env = {**user_env, **{k: fill(v) for k, v in case.env.items()}}
    if case.config:
        (Path(env["XDG_CONFIG_HOME"]) / "os1d" / "config.toml").write_text(KIT_CONFIG + case.config)
    before = snapshot(tmp_path)
    result = run_os1d([fill(a) for a in case.args], env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("os1d: error:")]
    assert errors == ["os1d: error: " + fill(case.error)], result.stderr[-2000:]
    if case.before_run:
        assert result.stderr.strip() == errors[0]
    after = snapshot(tmp_path)
    if not case.before_run:  # a run that got going remembers what was said: that is not a change to the inputs
        after = {k: v for k, v in after.items() if not k.startswith("xdg_data_home/os1d/memory/")}
    assert after == before  # the config file and the recording included


@pytest.mark.parametrize("verb", [["models", "list"], ["models", "verify"], ["doctor"], RUN])
def test_a_manifest_of_the_wrong_shape_is_reported_not_a_crash(verb: list[str], tmp_path: Path, kit: Path,
                                                               user_env: dict[str, str],
                                                               recording: np.ndarray) -> None:
    _linked_kit(tmp_path, kit, {"whisper-base": "[1, 2, 3]"})
    write_wav(tmp_path / "rec.wav", recording)
    env = dict(user_env, OS1D_MODELS_DIR=str(tmp_path / "models"), HF_HUB_OFFLINE="1")
    result = run_os1d([a.replace("{tmp}", str(tmp_path)) for a in verb], env)
    assert "Traceback" not in result.stderr
    damaged = f"model manifest {tmp_path}/models/whisper-base/.os1d-manifest.json is damaged"
    if verb == ["models", "list"]:
        assert result.returncode == 0
        line = next(x for x in result.stdout.splitlines() if x.startswith("whisper-base"))
        assert "corrupt" in line and damaged in line
    else:
        assert result.returncode == 1
        assert damaged in result.stdout + result.stderr
    assert not [line for line in result.stdout.splitlines() if line.count("PROBLEM") > 1]


def test_an_unreadable_model_folder_is_one_line(tmp_path: Path, kit: Path, user_env: dict[str, str],
                                               recording: np.ndarray) -> None:
    _linked_kit(tmp_path, kit, {})
    write_wav(tmp_path / "rec.wav", recording)
    locked = tmp_path / "models" / "whisper-base"
    locked.chmod(0)
    # root reads anything; without these capabilities it is held to the permissions like anyone
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    env = dict(user_env, OS1D_MODELS_DIR=str(tmp_path / "models"))
    try:
        for verb, code in ((["models", "list"], 0), (["models", "verify"], 1), (RUN, 1)):
            args = [a.replace("{tmp}", str(tmp_path)) for a in verb]
            result = subprocess.run(drop + OS1D + args, env=env, capture_output=True, text=True, timeout=180)
            assert result.returncode == code and "Traceback" not in result.stderr, result.stderr
            assert "unreadable" in result.stdout + result.stderr
            assert "Permission denied" in result.stdout + result.stderr
    finally:
        locked.chmod(0o755)


def test_verify_counts_a_missing_model(tmp_path: Path, kit: Path, user_env: dict[str, str]) -> None:
    _linked_kit(tmp_path, kit, {})
    shutil.rmtree(tmp_path / "models" / "whisper-base")
    result = run_os1d(["models", "verify"], dict(user_env, OS1D_MODELS_DIR=str(tmp_path / "models")))
    assert result.returncode == 1
    assert "whisper-base: missing" in result.stdout and "openwakeword: ok" in result.stdout


def test_events_to_a_reader_that_goes_away(tmp_path: Path, user_env: dict[str, str],
                                           recording: np.ndarray) -> None:
    """`os1d run --events - | head -1`: the turn still finishes, quietly, and the run ends well."""
    write_wav(tmp_path / "rec.wav", recording)
    run = subprocess.Popen(OS1D + ["run", "--no-tray", "--fast", "--input-file", str(tmp_path / "rec.wav"),
                                   "--events", "-"], env=user_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=run.stdout, capture_output=True, check=True, timeout=120)
    assert run.stdout is not None
    run.stdout.close()  # only head reads the pipe; once head exits, nobody does
    stderr = run.stderr.read().decode() if run.stderr else ""
    assert run.wait(120) == 0, stderr
    assert events_of(head.stdout.decode())[0]["event"] == "StateChanged"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert "os1d: you: what is the capital of france" in stderr.lower()  # the turn ran to its end
    assert "os1d: os1: " in stderr and "the events reader went away" in stderr


def test_sighup_stops_the_daemon_cleanly(tmp_path: Path, user_env: dict[str, str]) -> None:
    import signal
    import time

    write_wav(tmp_path / "long.wav", silence(60.0))
    proc = subprocess.Popen(OS1D + ["run", "--no-tray", "--input-file", str(tmp_path / "long.wav"), "--events",
                                    str(tmp_path / "events.jsonl")], env=user_env, stderr=subprocess.PIPE, text=True)
    events = tmp_path / "events.jsonl"
    deadline = time.monotonic() + 60
    while not (events.exists() and '"idle"' in events.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, "the daemon never got to idle"
        time.sleep(0.2)
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(30) == 0
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "os1d: stopping (SIGHUP)" in stderr and "Traceback" not in stderr
