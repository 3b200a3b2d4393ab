"""`os1d models pull` from a Hugging Face hub (a local server speaking the hub's HTTP API)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from urllib.parse import parse_qs
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_os1d

REPO = "Systran/faster-whisper-base"
COMMIT = "a" * 40


class Hub(http.server.BaseHTTPRequestHandler):
    """paths-info, tree and resolve endpoints for one repo; `lie` files get a wrong sha256 in metadata."""

    repo: str = REPO
    files: dict[str, bytes]
    lie: set[str]
    gets: list[str]

    def _meta(self, name: str) -> dict:
        data = b"other" if name in self.lie else self.files[name]
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's id of a small file
        if len(data) < 1000:
            return {"type": "file", "path": name, "size": len(data), "oid": blob}
        return {"type": "file", "path": name, "size": len(data), "oid": blob,
                "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}}

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
        body = json.loads(raw) if raw.startswith("{") else parse_qs(raw)  # the client sends a form
        if self.path != f"/api/models/{self.repo}/paths-info/main":
            self.send_error(404)
            return
        self._json([self._meta(p) for p in body.get("paths", []) if p in self.files])

    def _json(self, data: object) -> None:
        out = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def _resolve(self, head: bool) -> None:
        if self.path.startswith(f"/api/models/{self.repo}/tree/main"):
            self._json([self._meta(p) for p in sorted(self.files)])
            return
        prefix = f"/{self.repo}/resolve/main/"
        name = self.path[len(prefix):] if self.path.startswith(prefix) else ""
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.gets.append(name)
            self.wfile.write(data)

    def do_HEAD(self) -> None:  # noqa: N802
        self._resolve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._resolve(head=False)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[tuple[str, type[Hub]]]:
    files = {"config.json": b'{"a": 1}', "model.bin": bytes(range(256)) * 4000,
             "tokenizer.json": b'{"t": 2}', "vocabulary.txt": b"a\nb\n"}
    handler = type("H", (Hub,), {"files": files, "lie": set(), "gets": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_pull_from_the_hub_verifies_and_is_idempotent(tmp_path: Path, user_env: dict[str, str], hub) -> None:
    url, handler = hub
    env = dict(user_env, HF_ENDPOINT=url, OS1D_MODELS_DIR=str(tmp_path / "models"), HF_HUB_DISABLE_XET="1")
    result = run_os1d(["models", "pull", "whisper-base"], env)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "models" / "whisper-base"
    assert (folder / "model.bin").read_bytes() == handler.files["model.bin"]
    assert not (folder / ".cache").exists()
    assert sorted(handler.gets) == sorted(handler.files)
    verify = run_os1d(["models", "verify", "whisper-base"], env)
    assert verify.returncode == 0 and "whisper-base: ok" in verify.stdout
    handler.gets.clear()
    assert run_os1d(["models", "pull", "whisper-base"], env).returncode == 0
    assert handler.gets == []  # whole already: nothing downloaded again


@pytest.mark.parametrize("name", ["model.bin", "config.json"])
def test_hub_file_with_a_wrong_hash_is_rejected(tmp_path: Path, user_env: dict[str, str], hub, name: str) -> None:
    url, handler = hub
    handler.lie.add(name)
    env = dict(user_env, HF_ENDPOINT=url, OS1D_MODELS_DIR=str(tmp_path / "models"), HF_HUB_DISABLE_XET="1")
    result = run_os1d(["models", "pull", "whisper-base"], env)
    assert result.returncode == 1
    assert f"{name} failed its hash check" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "models" / "whisper-base" / name).exists()


def test_unreachable_hub_is_one_line(tmp_path: Path, user_env: dict[str, str]) -> None:
    env = dict(user_env, HF_ENDPOINT="http://127.0.0.1:9", OS1D_MODELS_DIR=str(tmp_path / "m"),
               HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
    result = run_os1d(["models", "pull", "whisper-base"], env, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("os1d: error: cannot download Systran/faster-whisper-base")
    assert "Traceback" not in result.stderr


def test_pull_fetches_the_precisions_the_config_names(tmp_path: Path, user_env: dict[str, str]) -> None:
    """llm.decoder_dtype = "fp16": `os1d models pull ultravox` fetches the fp16 decoder (and its external
    data), not the default q4 one."""
    names = ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
             "tokenizer_config.json", "onnx/embed_tokens.onnx", "onnx/audio_encoder_q4.onnx",
             "onnx/decoder_model_merged_q4.onnx", "onnx/decoder_model_merged_fp16.onnx",
             "onnx/decoder_model_merged_fp16.onnx_data"]
    files = {n: n.encode() * (200 if n.endswith(("onnx", "_data")) else 1) for n in names}
    handler = type("H", (Hub,), {"repo": "onnx-community/ultravox-v0_5-llama-3_2-1b-ONNX", "files": files,
                                 "lie": set(), "gets": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (Path(user_env["XDG_CONFIG_HOME"]) / "os1d" / "config.toml").write_text('[llm]\ndecoder_dtype = "fp16"\n')
        env = dict(user_env, HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}",
                   OS1D_MODELS_DIR=str(tmp_path / "models"), HF_HUB_DISABLE_XET="1")
        result = run_os1d(["models", "pull", "ultravox"], env)
        assert result.returncode == 0, result.stderr
        assert sorted(handler.gets) == sorted(n for n in names if "decoder_model_merged_q4" not in n)
        assert run_os1d(["models", "verify", "ultravox"], env).returncode == 0
    finally:
        server.shutdown()
