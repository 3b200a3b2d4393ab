"""Models: verify, corrupt, missing, offline, and resumable, verified, atomic downloads."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from conftest import run_os1d
from os1d import models
from os1d.audio.chunk import write_wav
from os1d.audio.wake import WakeWordDetector
from os1d.download import pull
from os1d.errors import UserError


@pytest.fixture
def wake_copy(tmp_path: Path, kit: Path) -> Path:
    """A models dir holding a private copy of the (small) openwakeword folder."""
    root = tmp_path / "models"
    shutil.copytree(kit / "openwakeword", root / "openwakeword")
    return root


def test_kit_models_verify(kit: Path) -> None:
    for name in ("openwakeword", "whisper-base", "kokoro", "minilm"):
        assert models.check(kit, name, deep=True).state == "ok", name


def test_flipped_byte_is_caught_by_verify(wake_copy: Path, user_env: dict[str, str]) -> None:
    target = wake_copy / "openwakeword" / "hey_jarvis_v0.1.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    assert models.check(wake_copy, "openwakeword").state == "ok"  # same size: only a deep check sees it
    status = models.check(wake_copy, "openwakeword", deep=True)
    assert status.state == "corrupt" and "hey_jarvis_v0.1.onnx" in status.detail
    result = run_os1d(["models", "verify", "openwakeword"], dict(user_env, OS1D_MODELS_DIR=str(wake_copy)))
    assert result.returncode == 1
    assert "openwakeword: corrupt (hey_jarvis_v0.1.onnx fails its sha256 check)" in result.stdout
    assert "os1d models pull NAME --force" in result.stderr


def test_truncated_or_missing_file_blocks_loading(wake_copy: Path) -> None:
    target = wake_copy / "openwakeword" / "embedding_model.onnx"
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(UserError, match=r"openwakeword is corrupt .*run `os1d models pull openwakeword`"):
        models.locate(wake_copy, "openwakeword")
    target.unlink()
    with pytest.raises(UserError, match=r"openwakeword is missing .*embedding_model.onnx"):
        models.locate(wake_copy, "openwakeword")


def test_damaged_onnx_file_is_a_clear_load_error(wake_copy: Path) -> None:
    (wake_copy / "openwakeword" / "melspectrogram.onnx").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(UserError) as err:
        WakeWordDetector(wake_copy / "openwakeword", ("hey_jarvis",))
    assert "cannot be loaded" in str(err.value) and "os1d models pull openwakeword --force" in str(err.value)


def test_unknown_wake_model_lists_the_available_ones(kit: Path) -> None:
    with pytest.raises(UserError, match=r"wake word model 'hey_os2' not found .*available: alexa, hey_jarvis, hey_mycroft"):
        WakeWordDetector(kit / "openwakeword", ("hey_os2",))


def test_offline_pull_of_a_missing_model_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="offline mode"):
        pull(tmp_path, models.spec("whisper-base"), offline=True)


def test_run_with_missing_models_offline_is_one_line(tmp_path: Path, user_env: dict[str, str]) -> None:
    env = dict(user_env, OS1D_MODELS_DIR=str(tmp_path / "empty"), HF_HUB_OFFLINE="1")
    write_wav(tmp_path / "x.wav", np.zeros(16000, dtype=np.int16))
    result = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "x.wav")], env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("os1d: error: model openwakeword is missing")
    assert "Traceback" not in result.stderr


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves a folder with HTTP Range support, recording the Range headers it was sent."""

    root: Path
    ranges: list[str | None]
    corrupt: set[str]

    def do_GET(self) -> None:  # noqa: N802
        path = self.root / self.path.rsplit("/", 1)[-1]
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        if path.name in self.corrupt:
            data = data[::-1]
        self.ranges.append(self.headers.get("Range"))
        start = int(self.headers["Range"][6:].split("-")[0]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def file_server(kit: Path) -> Iterator[tuple[str, type[_Files]]]:
    handler = type("H", (_Files,), {"root": kit / "openwakeword", "ranges": [], "corrupt": set()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    server.shutdown()


def test_url_download_resumes_verifies_and_writes_a_manifest(tmp_path: Path, kit: Path, file_server) -> None:
    url, handler = file_server
    spec = dataclasses.replace(models.spec("openwakeword"), source=url)
    folder = tmp_path / "openwakeword"
    folder.mkdir()
    original = (kit / "openwakeword" / "embedding_model.onnx").read_bytes()
    (folder / "embedding_model.onnx.part").write_bytes(original[:500_000])  # an interrupted download
    pull(tmp_path, spec)
    assert "bytes=500000-" in handler.ranges
    assert (folder / "embedding_model.onnx").read_bytes() == original
    assert not list(folder.glob("*.part"))
    assert models.check(tmp_path, "openwakeword", deep=True).state == "ok"
    handler.ranges.clear()
    pull(tmp_path, spec)  # already whole: nothing is fetched again
    assert handler.ranges == []


def test_url_download_with_wrong_hash_leaves_no_file(tmp_path: Path, kit: Path, file_server) -> None:
    url, handler = file_server
    handler.corrupt.add("hey_jarvis_v0.1.onnx")
    good = models.sha256_file(kit / "openwakeword" / "hey_jarvis_v0.1.onnx")
    spec = dataclasses.replace(models.spec("openwakeword"), source=url, files=("hey_jarvis_v0.1.onnx",),
                               required=("hey_jarvis_v0.1.onnx",), sha256={"hey_jarvis_v0.1.onnx": good})
    with pytest.raises(UserError, match="failed its sha256 check"):
        pull(tmp_path, spec)
    assert not list((tmp_path / "openwakeword").iterdir())


def test_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    spec = dataclasses.replace(models.spec("openwakeword"), source="http://127.0.0.1:9/")
    with pytest.raises(UserError, match="cannot download http://127.0.0.1:9/melspectrogram.onnx"):
        pull(tmp_path, spec)


def test_models_list_shows_states(user_env: dict[str, str], tmp_path: Path) -> None:
    result = run_os1d(["models", "list", "--json"], user_env)
    import json

    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {name: r["state"] for name, r in rows.items()} == dict.fromkeys(models.REGISTRY, "ok")
    empty = run_os1d(["models", "list", "--json"], dict(user_env, OS1D_MODELS_DIR=str(tmp_path)))
    assert {r["state"] for r in json.loads(empty.stdout)} == {"missing"}
