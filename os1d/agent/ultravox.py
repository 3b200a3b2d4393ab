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
from typing import Any

import numpy as np

from ..errors import UserError, first_line
from .decoding import Detokenizer, Sampling, checked, choose
from .hearing import Hearing
from .prompt import Message, llama3_prompt
from .ultravox_parts import AudioEncoder, feature_extractor, load_part, pick_providers

DEFAULT_DTYPES = {"embed_tokens": "fp32", "audio_encoder": "q4", "decoder_model_merged": "q4"}
"""As callbacked/os1 loads them."""
log = logging.getLogger("os1d")
MOST_DRAFTED = 48
"""Tokens of a draft checked at once (a few sentences: more would lengthen the prefill for little)."""
KEEP_PREFIXES = 2
"""Prompt caches kept: the conversation's, and one other (a summary prompt)."""


@dataclass
class Usage:
    """What a reply's prompt cost: the tokens run through the decoder, and those whose cache was reused."""

    prefill_tokens: int | None = None
    cached_tokens: int | None = None
    drafted: int = 0
    """Tokens of a draft checked in the prefill (a reply begun over: what the first try said)."""
    accepted: int = 0
    """Of those, the ones the model chose too (they cost no step of their own)."""


@dataclass
class Trace:
    """What the loop fed the decoder, step by step (for tests and benchmarks)."""

    past_lengths: list[int] = field(default_factory=list)
    positions: list[list[int]] = field(default_factory=list)
    mask_lengths: list[int] = field(default_factory=list)
    merged_rows: np.ndarray | None = None
    logits: list[np.ndarray] = field(default_factory=list)
    present: dict[str, np.ndarray] = field(default_factory=dict)
    """The cache after the prompt's prefill (the whole prompt's keys and values)."""


@dataclass
class _Prefix:
    """The decoder cache of the last prompt's reusable start: its token ids and their keys and values."""

    ids: list[int]
    past: dict[str, np.ndarray]


class Ultravox:
    """One loaded Ultravox export. Methods are blocking: call them from one executor thread."""

    def __init__(self, folder: Path, dtypes: dict[str, str] | None = None, device: str = "auto",
                 threads: int = 0, int8_matmul: bool = True, int8_cache: Path | None = None) -> None:
        import transformers
        from transformers import AutoTokenizer

        transformers.logging.set_verbosity_error()
        self.folder, self.int8_matmul = folder, int8_matmul
        dtypes = {**DEFAULT_DTYPES, **(dtypes or {})}
        try:
            self.config = json.loads((folder / "config.json").read_text())
            gen = json.loads((folder / "generation_config.json").read_text())
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
            features = feature_extractor(folder)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise UserError(f"Ultravox model in {folder} is incomplete ({first_line(exc)}); "
                            f"run `os1d models pull ultravox --force`") from None
        if self.config.get("os1d_standin"):
            log.warning("using the Ultravox test stand-in in %s: it only ever says one sentence", folder)
        if self.config.get("os1d_fullsize_standin"):
            log.warning("using the full-size Ultravox stand-in in %s: random weights, for benchmarks (it speaks "
                        "gibberish)", folder)
        eos = gen.get("eos_token_id", [])
        self.stop_ids = set(eos if isinstance(eos, list) else [eos])
        self.audio_token_id = self._audio_token_id()
        self.providers = pick_providers(device)
        self.device = "cuda" if self.providers[0].startswith("CUDA") else "cpu"
        self.sessions = {component: load_part(folder, component, dtype, self.providers, threads, int8_matmul,
                                              int8_cache) for component, dtype in dtypes.items()}
        self.encoder = AudioEncoder(self.sessions["audio_encoder"], features)
        self.hearing = Hearing("audio", "the default")
        """What the model hears in turns (set once loaded, from llm.input)."""
        dec = self.sessions["decoder_model_merged"]
        self._dec_inputs = {i.name: i for i in dec.get_inputs()}
        self._past_names = [n for n in self._dec_inputs if n.startswith("past_key_values.")]
        self._dec_outputs = [o.name for o in dec.get_outputs()]
        first = self._dec_inputs[self._past_names[0]]
        self.kv_dtype = np.float16 if "float16" in first.type else np.float32
        text = self.config.get("text_config", {})
        self.kv_heads = int(first.shape[1]) if isinstance(first.shape[1], int) else int(text["num_key_value_heads"])
        self.head_dim = int(first.shape[3]) if isinstance(first.shape[3], int) else int(text["head_dim"])
        self._prefixes: list[_Prefix] = []
        """The caches of the last prompts' starts, newest first (a summary asked between turns keeps its own)."""
        self.reuse_cache = True
        """Keep the prompt's cache for the next turn and prefill only what is new (False: always all of it)."""

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
        return self.encoder.encode(samples)

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
                 cancel: threading.Event | None = None, trace: Trace | None = None,
                 usage: Usage | None = None, draft: Sequence[int] = ()) -> Iterator[str]:
        """Stream the reply as text pieces; stops at a stop id, max_new_tokens or `cancel`.

        The cache of the longest start this prompt shares with the last one (up to its first <|audio|>) is
        reused: only the rest is prefilled. A `draft` (what the reply is likely to begin with) is run in the same
        prefill, and as much of it as greedy decoding would have chosen is taken without a step per token: the
        reply is the same with any draft or none (with sampling, the draft is not used)."""
        import onnxruntime as ort

        dec = self.sessions["decoder_model_merged"]
        checks = sampling.temperature <= 0 and "num_logits_to_keep" in self._dec_inputs  # (logits of the draft's rows)
        drafted = [int(t) for t in draft][: sampling.max_new_tokens - 1] if checks else []
        embeds = self.embed(ids, audio_rows)
        if trace is not None and audio_rows is not None:
            trace.merged_rows = embeds[0, ids[0] == self.audio_token_id].copy()
        prompt_len = ids.shape[1]
        cached, past_arrays = self._reusable(ids[0])
        embeds = embeds[:, cached:]
        if drafted:
            embeds = np.concatenate([embeds, self._embed_tokens(drafted)], axis=1)
        if usage is not None:
            usage.prefill_tokens, usage.cached_tokens = prompt_len - cached, cached
            usage.drafted, usage.accepted = len(drafted), 0
        mask = np.ones((1, prompt_len + sampling.max_new_tokens), dtype=np.int64)
        length = prompt_len + len(drafted)
        positions = np.arange(cached, length, dtype=np.int64)[None]
        past = {name: ort.OrtValue.ortvalue_from_numpy(past_arrays[name], self.device) for name in self._past_names}
        binding = dec.io_binding()
        rng = np.random.default_rng(sampling.seed)
        text = Detokenizer(self.tokenizer)
        made = 0
        while made < sampling.max_new_tokens:
            if cancel is not None and cancel.is_set():
                return
            if trace is not None:
                trace.past_lengths.append(past[self._past_names[0]].shape()[2])
                trace.positions.append(positions[0].tolist())
                trace.mask_lengths.append(length)
            outputs = self._step(binding, embeds, mask[:, :length], positions, past, keep=len(drafted) + 1)
            past = {name: outputs[name.replace("past_key_values.", "present.")] for name in past}
            if not made:
                self._keep_prefix(ids[0], past, trace)
            rows = outputs["logits"].numpy()[0, -len(drafted) - 1 :]
            tokens = checked(rows, drafted) if drafted else [choose(rows[-1], sampling, rng)]
            if trace is not None:
                trace.logits += [row.copy() for row in rows[: len(tokens)]]
            if drafted:  # the cache keeps the prompt and the draft's tokens taken (the rest is dropped)
                if usage is not None:
                    usage.accepted = len(tokens) - 1
                length -= len(drafted) - (len(tokens) - 1)
                if len(tokens) - 1 < len(drafted):
                    past = {n: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v.numpy()[:, :, :length]),
                                                                self.device) for n, v in past.items()}
                drafted = []
            ended = False
            for token in tokens[: sampling.max_new_tokens - made]:
                if ended := token in self.stop_ids:
                    break
                made += 1
                if piece := text.add(token):
                    yield piece
            if ended:
                break
            embeds = self._embed_tokens(tokens[-1:])
            positions = np.array([[length]], dtype=np.int64)
            length += 1
        if piece := text.flush():
            yield piece

    def _embed_tokens(self, tokens: list[int]) -> np.ndarray:
        return self.sessions["embed_tokens"].run(None, {"input_ids": np.array([tokens], dtype=np.int64)})[0]

    def _step(self, binding: Any, embeds: np.ndarray, mask: np.ndarray, positions: np.ndarray,
              past: dict[str, Any], keep: int = 1) -> dict[str, Any]:
        """One decoder run: the new rows on the cache `past` → logits (of the last `keep` positions, where the
        export can choose) and the grown cache."""
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        binding.bind_cpu_input("inputs_embeds", np.ascontiguousarray(embeds, dtype=np.float32))
        binding.bind_cpu_input("attention_mask", mask)
        binding.bind_cpu_input("position_ids", positions)
        if "use_cache_branch" in self._dec_inputs:
            binding.bind_cpu_input("use_cache_branch", np.array([mask.shape[1] - embeds.shape[1] > 0]))
        if "num_logits_to_keep" in self._dec_inputs:
            binding.bind_cpu_input("num_logits_to_keep", np.array(keep, dtype=np.int64))
        for name, value in past.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output("logits", "cpu")
        for name in past:  # the cache stays where it was computed (the GPU under CUDA)
            binding.bind_output(name.replace("past_key_values.", "present."), self.device)
        self.sessions["decoder_model_merged"].run_with_iobinding(binding)
        return dict(zip(self._dec_outputs, binding.get_outputs(), strict=True))

    def precache(self, messages: Sequence[Message]) -> int:
        """Prefill the start that the next prompt will share with `messages` (the persona and the history, once a
        turn has ended), so that the next turn prefills only what is new; the tokens run (0: all were cached)."""
        import onnxruntime as ort

        ids = self.tokenize(llama3_prompt(messages, reply=False))
        if not self.reuse_cache or any(_shared(p.ids, ids[0].tolist()) == ids.shape[1] for p in self._prefixes):
            return 0
        cached, past_arrays = self._reusable(ids[0])
        past = {name: ort.OrtValue.ortvalue_from_numpy(past_arrays[name], self.device) for name in self._past_names}
        mask = np.ones((1, ids.shape[1]), dtype=np.int64)
        positions = np.arange(cached, ids.shape[1], dtype=np.int64)[None]
        dec = self.sessions["decoder_model_merged"]
        outputs = self._step(dec.io_binding(), self.embed(ids)[:, cached:], mask, positions, past)
        self._keep_prefix(ids[0], {n: v for n, v in outputs.items() if n.startswith("present.")}, None)
        return ids.shape[1] - cached

    def forget_cache(self) -> None:
        """Drop the kept prompt caches (the next prompt is prefilled whole; what they held is gone from memory)."""
        self._prefixes = []

    def _reusable(self, ids: np.ndarray) -> tuple[int, dict[str, np.ndarray]]:
        """How many of the prompt's first tokens have their cache from the last prompt, and that cache."""
        best, n = None, 0
        for prefix in self._prefixes if self.reuse_cache else []:
            same = min(_shared(prefix.ids, ids.tolist()), len(ids) - 1)  # at least one token is run, for logits
            if same > n:
                best, n = prefix, same
        if best is None:
            empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=self.kv_dtype)
            return 0, {name: empty for name in self._past_names}
        return n, {name: np.ascontiguousarray(v[:, :, :n]) for name, v in best.past.items()}

    def _keep_prefix(self, ids: np.ndarray, present: dict[str, Any], trace: Trace | None) -> None:
        """After the prompt's prefill: keep the cache of its start, up to the first <|audio|> (this turn's
        audio is never in the next prompt: its words are, as text)."""
        audio = np.flatnonzero(ids == self.audio_token_id)
        end = int(audio[0]) if len(audio) else len(ids)
        arrays = {name.replace("present.", "past_key_values."): value.numpy() for name, value in present.items()}
        if trace is not None:
            trace.present = arrays
        if not self.reuse_cache or not end:
            return
        kept = _Prefix([int(t) for t in ids[:end]], {name: v[:, :, :end].copy() for name, v in arrays.items()})
        others = [p for p in self._prefixes if _shared(p.ids, kept.ids) < min(len(p.ids), len(kept.ids)) // 2]
        self._prefixes = [kept, *others][:KEEP_PREFIXES]  # (a prompt that grew out of a kept one replaces it)

    # -- the SpeechLLM interface used by turns ----------------------------------------------------------
    def prepare_audio(self, samples: np.ndarray) -> np.ndarray:
        return self.encode_audio(samples)

    def stream(self, messages: Sequence[Message], audio: np.ndarray | None, sampling: Sampling,
               cancel: threading.Event | None = None, usage: Usage | None = None, draft: str = "") -> Iterator[str]:
        """The reply to a conversation, as text pieces (`draft`: text it is likely to begin with, checked at once;
        the reply is the same without it)."""
        ids = self.tokenize(llama3_prompt(messages, 0 if audio is None else len(audio)))
        tokens = self.tokenizer.encode(draft, add_special_tokens=False)[:MOST_DRAFTED] if draft else []
        return self.generate(ids, audio, sampling, cancel, usage=usage, draft=tokens)

    def warm_up(self) -> None:
        """A short silent clip and one token, so the first real turn is not slow."""
        rows = self.encode_audio(np.zeros(160, dtype=np.int16))
        ids = self.tokenize("<|start_header_id|>user<|end_header_id|>\n\n" + "<|audio|>" * len(rows))
        for _ in self.generate(ids, rows, Sampling(max_new_tokens=1)):
            pass


def _shared(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
