"""llm.backend = "openai": the turn sent to a local server that follows vLLM's OpenAI-compatible API."""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import KIT_CONFIG, events_of, run_os1d
from os1d.agent.openai_backend import OpenAIBackend
from os1d.agent.prompt import Message, build_messages
from os1d.agent.ultravox import Sampling
from os1d.audio.chunk import write_wav
from os1d.errors import UserError
from speech import espeak, join, kokoro, silence

REPLY = ["Paris", " is", " lovely", " in", " spring", "."]


class VLLM(http.server.BaseHTTPRequestHandler):
    """/v1/models and streaming /v1/chat/completions, as `vllm serve` answers them."""

    requests: list[dict]
    mode: str
    last_prompt: list[str] = []

    def _json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "fixie-ai/ultravox-v0_5-llama-3_2-1b",
                                                         "object": "model"}]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        if self.mode == "bad_request":
            self._json(400, {"object": "error", "message": "audio too long", "code": 400})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunks = [{"role": "assistant", "content": ""}] + [{"content": p} for p in REPLY]
        for i, delta in enumerate(chunks):
            if self.mode == "stall" and i == 2:
                time.sleep(3)
            event = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": body["model"],
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        if self.mode == "garbage":
            self.wfile.write(b"data: {not json\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):  # as vLLM with prefix caching reports it
            tokens = prompt_tokens(body["messages"])
            cached = shared_start(self.last_prompt, tokens) // 16 * 16  # whole cache blocks of 16 tokens
            type(self).last_prompt = tokens
            usage = {"prompt_tokens": len(tokens), "completion_tokens": len(REPLY),
                     "total_tokens": len(tokens) + len(REPLY), "prompt_tokens_details": {"cached_tokens": cached}}
            self.wfile.write(f"data: {json.dumps({'id': 'chatcmpl-1', 'choices': [], 'usage': usage})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: object) -> None:
        pass


def prompt_tokens(messages: list[dict]) -> list[str]:
    """A rendering of the chat as a server's tokens (a word each; the audio as 50 tokens)."""
    out = []
    for m in messages:
        out += ["<|start|>", m["role"]]
        content = m["content"]
        out += ["<audio>"] * 50 if isinstance(content, list) else content.split()
    return out


def shared_start(a: list[str], b: list[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.fixture
def vllm() -> Iterator[tuple[str, type[VLLM]]]:
    handler = type("H", (VLLM,), {"requests": [], "mode": "ok"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def ask(backend: OpenAIBackend, audio: bool = True) -> str:
    samples = kokoro("What is Paris like?")
    user = Message("user", "", audio=True) if audio else Message("user", "What is Paris like?")
    messages = build_messages([Message("user", "hi"), Message("assistant", "hello")], user)
    return "".join(backend.stream(messages, backend.prepare_audio(samples) if audio else None, Sampling(64)))


def test_audio_goes_as_an_input_audio_part_and_the_reply_streams(vllm) -> None:
    url, handler = vllm
    backend = OpenAIBackend(url)
    assert backend.model == "fixie-ai/ultravox-v0_5-llama-3_2-1b"  # discovered from /v1/models
    assert ask(backend) == "".join(REPLY)
    body = handler.requests[0]
    assert body["stream"] is True and body["max_tokens"] == 64 and body["model"] == backend.model
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    part = body["messages"][-1]["content"][0]
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
    with wave.open(io.BytesIO(base64.b64decode(part["input_audio"]["data"]))) as wav:
        assert wav.getframerate() == 16000 and wav.getnchannels() == 1 and wav.getnframes() > 16000


def test_server_errors_are_one_clear_line(vllm) -> None:
    url, handler = vllm
    backend = OpenAIBackend(url + "/v1", model="m", timeout_s=1.0)
    handler.mode = "bad_request"
    with pytest.raises(UserError, match="answered HTTP 400: .*audio too long"):
        ask(backend, audio=False)
    handler.mode = "garbage"
    with pytest.raises(UserError, match="malformed event"):
        ask(backend)
    handler.mode = "stall"
    with pytest.raises(UserError, match="stopped answering for 1 s"):
        ask(backend)
    with pytest.raises(UserError, match=r"cannot reach the LLM server at http://127.0.0.1:9 .*is it running\?"):
        OpenAIBackend("http://127.0.0.1:9")
    with pytest.raises(UserError, match="must be an http"):
        OpenAIBackend("localhost:8000")


@pytest.mark.parametrize("hears", ["audio", "text"])
def test_daemon_uses_the_server(tmp_path: Path, user_env: dict[str, str], vllm, hears: str) -> None:
    """The voice to a speech model's server, or (llm.input = text) the transcript to any chat server."""
    url, handler = vllm
    config = tmp_path / "config.toml"
    config.write_text(KIT_CONFIG + f'[llm]\nbackend = "openai"\nurl = "{url}"\ninput = "{hears}"\n')
    write_wav(tmp_path / "in.wav", join(silence(1.0), espeak("hey jarvis"), silence(0.3),
                                        kokoro("What is Paris like in spring?"), silence(2.0)))
    models = tmp_path / "models"  # the wake word and Whisper, but no local Ultravox: not needed here
    models.mkdir()
    for name in ("openwakeword", "whisper-base", "kokoro", "minilm"):
        (models / name).symlink_to(Path(user_env["OS1D_MODELS_DIR"]) / name)
    result = run_os1d(["--config", str(config), "run", "--no-tray", "--input-file", str(tmp_path / "in.wav"),
                       "--fast", "--events", "-"], dict(user_env, OS1D_MODELS_DIR=str(models)))
    assert result.returncode == 0, result.stderr
    done = next(e for e in events_of(result.stdout) if e["event"] == "ReplyDone")
    assert done["text"] == "".join(REPLY)
    transcript = next(e for e in events_of(result.stdout) if e["event"] == "Transcript")
    assert handler.requests[0]["messages"][0]["role"] == "system" and "paris" in transcript["text"].lower()
    last = handler.requests[0]["messages"][-1]["content"]
    if hears == "audio":
        assert last[0]["type"] == "input_audio"
    else:
        assert last == transcript["text"] and "jarvis" not in last.lower()
        assert next(e for e in events_of(result.stdout) if e["event"] == "TurnMetrics")["audio_encoder"] is None


def test_unreachable_server_during_a_turn_is_reported_and_the_exit_code_says_so(
        tmp_path: Path, user_env: dict[str, str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(KIT_CONFIG + '[llm]\nbackend = "openai"\nurl = "http://127.0.0.1:9"\ntimeout_s = 2\n')
    write_wav(tmp_path / "in.wav", join(silence(1.0), espeak("hey jarvis"), silence(0.3),
                                        kokoro("Hello?"), silence(2.0)))
    result = run_os1d(["--config", str(config), "run", "--no-tray", "--input-file", str(tmp_path / "in.wav"),
                       "--fast", "--events", "-"], user_env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("os1d: error: cannot reach the LLM server at http://127.0.0.1:9")
    assert "Traceback" not in result.stderr
    events = events_of(result.stdout)
    assert any(e["event"] == "Transcript" for e in events)  # listening kept working


def test_the_prompt_layout_lets_the_server_reuse_its_prefix_cache(vllm) -> None:
    """Over a conversation with new memories every turn, the server prefills only the new part of each prompt
    (the exchange before, the memories, the new turn), as vLLM's prefix caching reports it."""
    from os1d.agent.conversation import Conversation, Recollection
    from os1d.agent.ultravox import Usage
    from os1d.config import parse_config

    url, handler = vllm
    backend = OpenAIBackend(url)
    conv = Conversation(parse_config({}))
    said = ["What should I cook tonight?", "My sister Maya likes pasta.", "What about dessert?",
            "Tell me about the sea.", "And the mountains?", "Good night."]
    for i, text in enumerate(said):
        memories = [{"text": f"Memory number {i} about something the person said on an earlier day."}]
        messages = conv.messages(Message("user", text), Recollection(memories))
        usage = Usage()
        assert "".join(backend.stream(messages, None, Sampling(64), usage=usage)) == "".join(REPLY)
        tokens = prompt_tokens(handler.requests[-1]["messages"])
        assert usage.prefill_tokens is not None and usage.cached_tokens is not None
        assert usage.prefill_tokens + usage.cached_tokens == len(tokens)
        if i:  # new: the exchange before, this turn's memories and words (and at most a part-filled cache block)
            new = len(prompt_tokens([{"role": "user", "content": said[i - 1]}, {"role": "assistant",
                                      "content": "".join(REPLY)}, *handler.requests[-1]["messages"][-2:]]))
            assert usage.prefill_tokens <= 1.1 * new + 16, (i, usage, new)
        conv.remember(text, "".join(REPLY))
