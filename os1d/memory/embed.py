"""Sentence embeddings for memory: all-MiniLM-L6-v2 on onnxruntime, as sentence-transformers computes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, first_line

MODEL = "onnx/model.onnx"
BATCH = 32
"""Texts per model run: bounds the memory a long list takes, padding only within a batch."""


class MiniLMEmbedder:
    """Text → 384-d unit vectors (cosine = dot product); embed() is blocking (run it in an executor)."""

    dim = 384

    def __init__(self, folder: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        fix = f"run `os1d models pull {folder.name} --force`"
        path = folder / MODEL
        if not path.is_file():
            raise UserError(f"memory model file {path} does not exist; run `os1d models pull {folder.name}`")
        max_length = _max_seq_length(folder, fix)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # onnxruntime and tokenizers raise their own types for damaged files
            raise UserError(f"memory model {folder.name} cannot be loaded ({first_line(exc)}); {fix}") from None
        inputs = {i.name for i in self._session.get_inputs()}
        width = self._session.get_outputs()[0].shape[-1]  # an int, or a name when the export left it open
        if not {"input_ids", "attention_mask"} <= inputs or isinstance(width, int) and width != self.dim:
            raise UserError(f"memory model {path} is not a {self.dim}-d sentence encoder; {fix}")
        self._type_ids = "token_type_ids" in inputs
        # tokenizer.json pads every text to 128 tokens and cuts at 128; sentence-transformers uses neither
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), 384): mean of the token vectors over the attention mask, L2-normalised."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            out[start:start + BATCH] = self._embed_batch(list(texts[start:start + BATCH]))
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed: dict[str, Any] = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                                "attention_mask": mask}
        if self._type_ids:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        tokens = self._session.run(None, feed)[0]  # (batch, sequence, 384)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _max_seq_length(folder: Path, fix: str) -> int:
    """Tokens per text the model was trained to read (sentence_bert_config.json; 256 for this model)."""
    path = folder / "sentence_bert_config.json"
    try:
        return int(json.loads(path.read_text())["max_seq_length"])
    except FileNotFoundError:
        raise UserError(f"memory model file {path} does not exist; run `os1d models pull {folder.name}`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"memory model file {path} cannot be read ({first_line(exc)}); {fix}") from None
