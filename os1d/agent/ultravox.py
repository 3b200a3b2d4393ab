"""Ultravox on onnxruntime: Whisper log-mel → audio encoder → rows merged at <|audio|> → decoder with KV cache.

The user's audio goes straight to the language model; this module is the generation loop for the ONNX
export (onnx-community/ultravox-*-ONNX). Text-only prompts skip the encoder.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError, first_line
from ..models import ONNX_SUFFIX, precision_problems, ultravox_file
from .prompt import Message, llama3_prompt

DEFAULT_DTYPES = {"embed_tokens": "fp32", "audio_encoder": "q4", "decoder_model_merged": "q4"}
"""As callbacked/os1 loads them."""
log = logging.getLogger("os1d")
MAX_FRAMES = 3000
"""30 s of log-mel frames: the encoder's limit."""


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 256
    temperature: float = 0.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class Trace:
    """What the loop fed the decoder, step by step (for tests and benchmarks)."""

    past_lengths: list[int] = field(default_factory=list)
    positions: list[list[int]] = field(default_factory=list)
    mask_lengths: list[int] = field(default_factory=list)
    merged_rows: np.ndarray | None = None


def pick_providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise UserError("llm.device is cuda but onnxruntime has no CUDA provider; install os1d[gpu]")
    return ["CPUExecutionProvider"]


class Ultravox:
    """One loaded Ultravox export. Methods are blocking: call them from one executor thread."""

    def __init__(self, folder: Path, dtypes: dict[str, str] | None = None, device: str = "auto",
                 threads: int = 0) -> None:
        import onnxruntime as ort
        import transformers
        from transformers import AutoTokenizer, WhisperFeatureExtractor

        transformers.logging.set_verbosity_error()
        self.folder = folder
        dtypes = {**DEFAULT_DTYPES, **(dtypes or {})}
        try:
            self.config = json.loads((folder / "config.json").read_text())
            gen = json.loads((folder / "generation_config.json").read_text())
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self.features = WhisperFeatureExtractor.from_pretrained(str(folder))
        except (OSError, ValueError) as exc:
            raise UserError(f"Ultravox model in {folder} is incomplete ({first_line(exc)}); "
                            f"run `os1d models pull ultravox --force`") from None
        if self.config.get("os1d_standin"):
            log.warning("using the Ultravox test stand-in in %s: it only ever says one sentence", folder)
        eos = gen.get("eos_token_id", [])
        self.stop_ids = set(eos if isinstance(eos, list) else [eos])
        self.audio_token_id = self._audio_token_id()
        self.providers = pick_providers(device)
        self.device = "cuda" if self.providers[0].startswith("CUDA") else "cpu"
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        self.sessions = {}
        for component, dtype in dtypes.items():
            if dtype not in ONNX_SUFFIX:
                raise UserError(f"unknown dtype {dtype!r} for {component} (known: {', '.join(ONNX_SUFFIX)})")
            if missing := precision_problems(folder, {component: dtype}):
                raise UserError(missing[0])
            path = folder / ultravox_file(component, dtype)
            try:
                self.sessions[component] = ort.InferenceSession(str(path), opts, providers=self.providers)
            except Exception as exc:  # onnxruntime's own error types for damaged graphs
                raise UserError(f"{path} cannot be loaded ({first_line(exc)}); "
                                f"run `os1d models pull ultravox --force`") from None
        dec = self.sessions["decoder_model_merged"]
        self._dec_inputs = {i.name: i for i in dec.get_inputs()}
        self._past_names = [n for n in self._dec_inputs if n.startswith("past_key_values.")]
        self._dec_outputs = [o.name for o in dec.get_outputs()]
        first = self._dec_inputs[self._past_names[0]]
        self.kv_dtype = np.float16 if "float16" in first.type else np.float32
        text = self.config.get("text_config", {})
        self.kv_heads = int(first.shape[1]) if isinstance(first.shape[1], int) else int(text["num_key_value_heads"])
        self.head_dim = int(first.shape[3]) if isinstance(first.shape[3], int) else int(text["head_dim"])
        self._enc_input = self.sessions["audio_encoder"].get_inputs()[0].name

    def _audio_token_id(self) -> int:
        for key in ("audio_token_id", "audio_token_index"):
            if isinstance(self.config.get(key), int) and self.config[key] >= 0:
                return int(self.config[key])
        token_id = self.tokenizer.convert_tokens_to_ids("<|audio|>")
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise UserError(f"the Ultravox tokenizer in {self.folder} has no <|audio|> token")
        return int(token_id)

    # -- audio -------------------------------------------------------------------------------------
    def encode_audio(self, samples: np.ndarray) -> np.ndarray:
        """16 kHz int16 (≤ 30 s) → audio-feature rows [rows, hidden] for the <|audio|> tokens."""
        audio = samples.astype(np.float32) / 32768.0
        frames = min(len(audio) // 160, MAX_FRAMES)
        mel = self.features(audio, sampling_rate=16000, return_tensors="np", padding="max_length")["input_features"]
        mel = np.ascontiguousarray(mel[:, :, : max(frames, 1)], dtype=np.float32)
        rows = self.sessions["audio_encoder"].run(None, {self._enc_input: mel})[0]
        return rows.reshape(-1, rows.shape[-1])

    # -- text --------------------------------------------------------------------------------------
    def tokenize(self, prompt: str) -> np.ndarray:
        return np.array([self.tokenizer.encode(prompt, add_special_tokens=False)], dtype=np.int64)

    def embed(self, ids: np.ndarray, audio_rows: np.ndarray | None = None) -> np.ndarray:
        """Token embeddings, with audio rows in place of the <|audio|> tokens (counts must match)."""
        embeds = self.sessions["embed_tokens"].run(None, {"input_ids": ids})[0]
        slots = np.flatnonzero(ids[0] == self.audio_token_id)
        n_rows = 0 if audio_rows is None else len(audio_rows)
        if len(slots) != n_rows:
            raise ValueError(f"prompt has {len(slots)} <|audio|> tokens but the encoder gave {n_rows} rows")
        if n_rows:
            embeds[0, slots] = audio_rows.astype(embeds.dtype)
        return embeds

    # -- generation --------------------------------------------------------------------------------
    def generate(self, ids: np.ndarray, audio_rows: np.ndarray | None = None, sampling: Sampling = Sampling(),
                 cancel: threading.Event | None = None, trace: Trace | None = None) -> Iterator[str]:
        """Stream the reply as text pieces; stops at a stop id, max_new_tokens or `cancel`."""
        import onnxruntime as ort

        dec = self.sessions["decoder_model_merged"]
        embeds = self.embed(ids, audio_rows)
        if trace is not None and audio_rows is not None:
            trace.merged_rows = embeds[0, ids[0] == self.audio_token_id].copy()
        prompt_len = ids.shape[1]
        mask = np.ones((1, prompt_len + sampling.max_new_tokens), dtype=np.int64)
        positions = np.arange(prompt_len, dtype=np.int64)[None]
        empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=self.kv_dtype)
        past = {name: ort.OrtValue.ortvalue_from_numpy(empty, self.device) for name in self._past_names}
        binding = dec.io_binding()
        rng = np.random.default_rng(sampling.seed)
        text = _Detokenizer(self.tokenizer)
        length = prompt_len
        for _step in range(sampling.max_new_tokens):
            if cancel is not None and cancel.is_set():
                return
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
            binding.bind_cpu_input("inputs_embeds", np.ascontiguousarray(embeds, dtype=np.float32))
            binding.bind_cpu_input("attention_mask", mask[:, :length])
            binding.bind_cpu_input("position_ids", positions)
            if "use_cache_branch" in self._dec_inputs:
                binding.bind_cpu_input("use_cache_branch", np.array([length > prompt_len]))
            if "num_logits_to_keep" in self._dec_inputs:
                binding.bind_cpu_input("num_logits_to_keep", np.array(1, dtype=np.int64))
            for name, value in past.items():
                binding.bind_ortvalue_input(name, value)
            binding.bind_output("logits", "cpu")
            for name in past:  # the cache stays where it was computed (the GPU under CUDA)
                binding.bind_output(name.replace("past_key_values.", "present."), self.device)
            if trace is not None:
                trace.past_lengths.append(past[self._past_names[0]].shape()[2])
                trace.positions.append(positions[0].tolist())
                trace.mask_lengths.append(length)
            dec.run_with_iobinding(binding)
            outputs = dict(zip(self._dec_outputs, binding.get_outputs(), strict=True))
            past = {name: outputs[name.replace("past_key_values.", "present.")] for name in past}
            token = _choose(outputs["logits"].numpy()[0, -1], sampling, rng)
            if token in self.stop_ids:
                break
            if piece := text.add(token):
                yield piece
            embeds = self.sessions["embed_tokens"].run(None, {"input_ids": np.array([[token]], dtype=np.int64)})[0]
            positions = np.array([[length]], dtype=np.int64)
            length += 1
        if piece := text.flush():
            yield piece

    # -- the SpeechLLM interface used by turns ----------------------------------------------------------
    def prepare_audio(self, samples: np.ndarray) -> np.ndarray:
        return self.encode_audio(samples)

    def stream(self, messages: Sequence[Message], audio: np.ndarray | None, sampling: Sampling,
               cancel: threading.Event | None = None) -> Iterator[str]:
        """The reply to a conversation, as text pieces."""
        ids = self.tokenize(llama3_prompt(messages, 0 if audio is None else len(audio)))
        return self.generate(ids, audio, sampling, cancel)

    def warm_up(self) -> None:
        """A short silent clip and one token, so the first real turn is not slow."""
        rows = self.encode_audio(np.zeros(160, dtype=np.int16))
        ids = self.tokenize("<|start_header_id|>user<|end_header_id|>\n\n" + "<|audio|>" * len(rows))
        for _ in self.generate(ids, rows, Sampling(max_new_tokens=1)):
            pass


def _choose(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    if sampling.temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / sampling.temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if sampling.top_p < 1.0:
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), sampling.top_p)) + 1]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(len(p), p=p))


class _Detokenizer:
    """Turns token ids into text pieces without ever splitting a multi-byte character."""

    def __init__(self, tokenizer) -> None:  # type: ignore[no-untyped-def]
        self._tok = tokenizer
        self._ids: list[int] = []
        self._sent = 0

    def add(self, token: int) -> str:
        self._ids.append(token)
        text = self._decode()
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for its other bytes
            return ""
        piece, self._sent = text[self._sent :], len(text)
        return piece

    def _decode(self) -> str:
        return self._tok.decode(self._ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def flush(self) -> str:
        text = self._decode()
        piece, self._sent = text[self._sent :], len(text)
        return piece
