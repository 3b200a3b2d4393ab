"""The package installs with plain pip on Python 3.10–3.13: every dependency resolves there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ONLY = {"pyaudio"}
"""Built from source against PortAudio on Linux (no wheels there): checked for an sdist instead."""


PLATFORMS = [arg for minor in range(17, 29) for arg in ("--platform", f"manylinux_2_{minor}_x86_64")]
"""A glibc 2.28 x86_64 Linux (pip does not widen an explicit --platform to older manylinux tags)."""


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"]


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_dependencies_resolve_to_wheels(version: str, tmp_path: Path) -> None:
    reqs = [r for r in requirements() if r.split(">")[0].split("=")[0].strip().lower() not in SOURCE_ONLY]
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--disable-pip-version-check", "--report", str(report), "--python-version", version,
         "--only-binary=:all:", *PLATFORMS, "--implementation", "cp",
         "--target", str(tmp_path / "t"), *reqs],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"onnxruntime", "faster-whisper", "webrtcvad-wheels", "ctranslate2"} <= names
    assert "tflite-runtime" not in names


def test_source_only_dependencies_have_an_sdist(tmp_path: Path) -> None:
    for name in SOURCE_ONLY:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "-q",
             "--disable-pip-version-check", "-d", str(tmp_path), name],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert list(tmp_path.glob("*.tar.gz")), f"no sdist of {name}"
