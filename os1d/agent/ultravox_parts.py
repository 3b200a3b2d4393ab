"""Loading an Ultravox export's ONNX parts, and its audio encoder (Whisper log-mel → rows for <|audio|>)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, first_line
from ..models import ONNX_SUFFIX, precision_problems, ultravox_file

log = logging.getLogger("os1d")

MAX_FRAMES = 3000
"""30 s of log-mel frames: the encoder's limit."""


def pick_providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise UserError("llm.device is cuda but onnxruntime has no CUDA provider; install os1d[gpu]")
    return ["CPUExecutionProvider"]


def load_part(folder: Path, component: str, dtype: str, providers: list[str], threads: int = 0,
              int8_matmul: bool = True, int8_cache: Path | None = None) -> Any:
    """One ONNX component in the given precision, as an onnxruntime session (one line if it can't be); its graph
    tuned for this machine as it loads (graph_tuning: int8 4-bit matmuls, logits for the last position only)
    and, on the CPU with an int8_cache folder, its 4-bit matmuls on int8 weights made once (int8_weights)."""
    import onnxruntime as ort

    from .graph_tuning import tuned

    if dtype not in ONNX_SUFFIX:
        raise UserError(f"unknown dtype {dtype!r} for {component} (known: {', '.join(ONNX_SUFFIX)})")
    if missing := precision_problems(folder, {component: dtype}):
        raise UserError(missing[0])
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # its threads may spin between a run's steps (the decoder's speed) but not after it: idle, each pool spun on
    # for about 40 ms of CPU after every run, taken from Whisper and the voice working beside it
    opts.add_session_config_entry("session.force_spinning_stop", "1")
    if threads:
        opts.intra_op_num_threads = threads
    path = folder / ultravox_file(component, dtype)
    try:
        graph = tuned(path, int8_matmul)
        if int8_cache is not None and providers == ["CPUExecutionProvider"]:
            session = _int8_session(path, graph, int8_cache, opts)
            if session is not None:
                return session
        if graph is None:
            return ort.InferenceSession(str(path), opts, providers=providers)
        opts.add_session_config_entry("session.model_external_initializers_file_folder_path", str(path.parent))
        return ort.InferenceSession(graph, opts, providers=providers)
    except Exception as exc:  # onnxruntime's own error types for damaged graphs
        raise UserError(f"{path} cannot be loaded ({first_line(exc)}); "
                        f"run `os1d models pull ultravox --force`") from None


def _int8_session(path: Path, graph: bytes | None, cache: Path, opts: Any) -> Any:
    """The part on int8 weights (made and cached on first use), or None: nothing to convert, or it can't be made
    here (the 4-bit weights are then used)."""
    import onnxruntime as ort

    from ..graph_cache import forget
    from .int8_weights import int8_model

    source = graph if graph is not None else path.read_bytes()
    for attempt in range(2):
        try:
            model = int8_model(path, source, cache)
        except Exception as exc:  # a full disk, a folder that can't be written, a graph it can't read: 4 bits
            log.warning("could not make int8 weights of %s (%s); using its 4-bit weights", path.name, first_line(exc))
            return None
        if model is None:
            return None
        try:
            return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged cached file: made again, once
            log.warning("the int8 weights cached in %s cannot be loaded (%s); making them again", model.parent,
                        first_line(exc))
            forget(model)
    return None


def feature_extractor(folder: Path) -> Any:
    """Whisper's log-mel, as the export's preprocessor_config.json sets it up, computed by faster-whisper's
    vectorised extractor (the same values as transformers' WhisperFeatureExtractor to 1e-5, about 8× faster)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    cfg = json.loads((folder / "preprocessor_config.json").read_text())
    return FeatureExtractor(feature_size=int(cfg.get("feature_size", 128)), sampling_rate=16000,
                            hop_length=int(cfg.get("hop_length", 160)), n_fft=int(cfg.get("n_fft", 400)))


class AudioEncoder:
    """16 kHz speech → the audio-feature rows that take the place of the prompt's <|audio|> tokens."""

    def __init__(self, session: Any, features: Any) -> None:
        self.session, self.features = session, features
        self._input = session.get_inputs()[0].name

    @classmethod
    def load(cls, folder: Path, dtype: str, device: str = "auto", int8_matmul: bool = True,
             int8_cache: Path | None = None) -> AudioEncoder:
        """The encoder alone (for `os1d doctor`)."""
        try:
            features = feature_extractor(folder)
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"Ultravox model in {folder} is incomplete ({first_line(exc)})") from None
        return cls(load_part(folder, "audio_encoder", dtype, pick_providers(device), int8_matmul=int8_matmul,
                             int8_cache=int8_cache), features)

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """16 kHz int16 (≤ 30 s) → rows [rows, hidden]."""
        audio = samples[: MAX_FRAMES * 160].astype(np.float32) / 32768.0
        frames = max(len(audio) // 160, 1)
        mel = np.ascontiguousarray(self.features(audio)[None, :, :frames], dtype=np.float32)
        rows = self.session.run(None, {self._input: mel})[0]
        return rows.reshape(-1, rows.shape[-1])
