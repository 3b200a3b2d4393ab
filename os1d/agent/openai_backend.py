"""The same turn sent to an OpenAI-compatible server hosting Ultravox (vLLM), for larger models.

Audio goes as an `input_audio` content part (base64 WAV); the reply streams back as server-sent events.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

import numpy as np

from ..audio.chunk import write_wav
from ..errors import UserError
from .hearing import Hearing
from .prompt import Message
from .ultravox import Sampling, Usage


class OpenAIBackend:
    """Talks to `<url>/v1/chat/completions`; methods are blocking (run them in an executor)."""

    def __init__(self, url: str, model: str = "", timeout_s: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"llm.url must be an http(s) URL of an OpenAI-compatible server, got {url!r}")
        self.base = url.rstrip("/").removesuffix("/v1")
        self.timeout = timeout_s
        self.model = model or self._served_model()
        self.hearing = Hearing("audio", "the default")
        """audio: the user's voice goes to the server; text: only Whisper's transcript (any chat model)."""

    def _open(self, path: str, body: dict | None = None):  # type: ignore[no-untyped-def]
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data,
                                         headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip().replace("\n", " ")
            raise UserError(f"the LLM server at {self.base} answered HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"cannot reach the LLM server at {self.base} ({reason}); is it running?") from None

    def _served_model(self) -> str:
        with self._open("/v1/models") as response:
            models = json.load(response).get("data", [])
        if not models:
            raise UserError(f"the LLM server at {self.base} serves no model")
        return str(models[0]["id"])

    def prepare_audio(self, samples: np.ndarray) -> str:
        """16 kHz int16 → base64 WAV."""
        buf = io.BytesIO()
        write_wav(buf, samples)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def request_body(self, messages: Sequence[Message], audio: str | None, sampling: Sampling) -> dict:
        out = []
        for m in messages:
            if m.audio and audio is not None:
                content: object = [{"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]
            else:
                content = m.text
            out.append({"role": m.role, "content": content})
        return {"model": self.model, "messages": out, "stream": True, "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature, "top_p": sampling.top_p,
                "stream_options": {"include_usage": True}}  # (prompt and cached tokens, where the server says)

    def stream(self, messages: Sequence[Message], audio: str | None, sampling: Sampling,
               cancel: threading.Event | None = None, usage: Usage | None = None, draft: str = "") -> Iterator[str]:
        """The reply as it streams from the server (a draft is of no use to it: the server decodes at its pace)."""
        with self._open("/v1/chat/completions", self.request_body(messages, audio, sampling)) as response:
            try:
                for raw in response:
                    if cancel is not None and cancel.is_set():
                        return
                    line = raw.decode("utf-8").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                        if usage is not None and isinstance(event.get("usage"), dict):
                            _note_usage(event["usage"], usage)
                        if not event["choices"]:  # the usage-only last event
                            continue
                        choice = event["choices"][0]
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                        raise UserError(f"the LLM server at {self.base} sent a malformed event: {data[:120]}") from None
                    if piece := (choice.get("delta") or {}).get("content"):
                        yield piece
            except TimeoutError:
                raise UserError(f"the LLM server at {self.base} stopped answering for {self.timeout:g} s") from None
            except (http.client.HTTPException, OSError) as exc:
                raise UserError(f"the connection to the LLM server at {self.base} was lost ({exc!r})") from None


def _note_usage(reported: dict, usage: Usage) -> None:
    """The server's token counts: prompt tokens, of which cached (vLLM with prefix caching reports them)."""
    prompt = reported.get("prompt_tokens")
    details = reported.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if isinstance(prompt, int):
        usage.cached_tokens = cached if isinstance(cached, int) else None
        usage.prefill_tokens = prompt - (usage.cached_tokens or 0)
