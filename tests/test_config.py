"""Config: defaults, a full valid file, and one clear line naming key and file for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import KIT_CONFIG, run_os1d, with_key
from os1d.config import Config, config_to_toml, load_config, parse_config
from os1d.errors import UserError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()


def test_values_are_read_and_typed(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """
[audio]
input_device = 3
[wake]
models = ["hey_jarvis", "alexa"]
threshold = 0.7
[vad]
hangover_ms = 700
max_utterance_s = 12
[models]
offline = true
"""))
    assert cfg.audio.input_device == "3"
    assert cfg.wake.models == ("hey_jarvis", "alexa")
    assert cfg.wake.threshold == 0.7
    assert cfg.vad.hangover_ms == 700 and cfg.vad.max_utterance_s == 12.0
    assert isinstance(cfg.vad.max_utterance_s, float)
    assert cfg.offline() is True
    assert cfg.stt.model == "whisper-base"  # untouched keys keep their defaults


def test_effective_config_round_trips(tmp_path: Path) -> None:
    cfg = parse_config({"wake": {"models": ["alexa"], "threshold": 0.4}, "tts": {"voice": 'a"b'}})
    assert load_config(write(tmp_path, config_to_toml(cfg))) == cfg


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[wake]\nthreshold = 2.0", "wake.threshold = 2.0 is out of range"),
        ("[wake]\nthreshold = 'high'", "wake.threshold must be a number"),
        ("[vad]\nhangover_ms = 0.5", "vad.hangover_ms must be an integer"),
        ("[vad]\nmax_utterance_s = 45", "vad.max_utterance_s = 45 is out of range"),
        ("[wake]\nmodels = []", "wake.models must not be empty"),
        ("[wake]\nmodels = 'hey_jarvis'", "wake.models must be a list of strings"),
        ("[stt]\ndevice = 'tpu'", "stt.device = 'tpu' is not one of auto, cpu, cuda"),
        ("[stt]\nmodle = 'x'", "unknown key stt.modle"),
        ("[sttt]\nmodel = 'x'", "unknown section [sttt]"),
        ("[models]\noffline = 'yes'", "models.offline must be true or false"),
        ("[wake\nthreshold = 1", "not valid TOML"),
        ("wake = 3", "[wake] must be a table"),
    ],
)
def test_mistakes_name_key_and_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_cli_reports_bad_config_in_one_line(tmp_path: Path, user_env: dict[str, str]) -> None:
    path = write(tmp_path, "[vad]\naggressiveness = 9\n")
    result = run_os1d(["--config", str(path), "doctor"], user_env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [f"os1d: error: {path}: vad.aggressiveness = 9 is out of range (0 to 3)"]


def test_config_file_in_the_user_config_folder_is_used(user_env: dict[str, str]) -> None:
    folder = Path(user_env["XDG_CONFIG_HOME"]) / "os1d"
    folder.mkdir(exist_ok=True)
    (folder / "config.toml").write_text(with_key(KIT_CONFIG, "wake", "threshold = 0.65"))
    result = run_os1d(["doctor", "--json"], user_env)
    import json

    report = json.loads(result.stdout)
    assert report["config"]["wake"]["threshold"] == 0.65
    assert report["config_file"] == str(folder / "config.toml")
