"""Settings that only this machine and its models can confirm, checked before the daemon starts listening.

Each problem is one line naming the key, what is wrong and what to do, so that a mistake shows at start
and not in the middle of the first turn.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import models
from .config import Config
from .errors import UserError

LANGUAGE_TOKEN = re.compile(r"^<\|([a-z]{2,3})\|>$")


def whisper_languages(folder: Path) -> set[str]:
    """Language codes of a CTranslate2 Whisper folder, from its tokenizer (empty if unreadable)."""
    try:
        tokens = json.loads((folder / "tokenizer.json").read_text())["added_tokens"]
        return {m.group(1) for t in tokens if (m := LANGUAGE_TOKEN.match(str(t.get("content", ""))))}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def stt_problems(cfg: Config, folder: Path) -> list[str]:
    import ctranslate2

    from .agent.whisper import pick_device

    stt, out = cfg.stt, []
    languages = whisper_languages(folder)
    if stt.language and languages and stt.language not in languages:
        out.append(f"stt.language = {stt.language!r} is not a language {folder.name} knows; use a code such as "
                   f"en, de, fr, es or ja, or \"\" to detect it")
    if stt.device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        out.append('stt.device = "cuda" but CTranslate2 finds no usable CUDA GPU here; set stt.device = "auto" '
                   'or "cpu"')
        return out
    device, compute_type = pick_device(stt.device, stt.compute_type)
    try:
        supported = ctranslate2.get_supported_compute_types(device)
    except (RuntimeError, ValueError):
        return out
    if compute_type not in supported:
        out.append(f"stt.compute_type = {stt.compute_type!r} is not supported on {device} here "
                   f"(supported: {', '.join(sorted(supported))}, or \"auto\")")
    return out


def llm_problems(cfg: Config, folder: Path | None) -> list[str]:
    out = []
    if cfg.llm.backend != "ultravox-onnx":
        return out
    if cfg.llm.device == "cuda":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            out.append('llm.device = "cuda" but onnxruntime has no CUDA provider; install the gpu extra '
                       '(onnxruntime-gpu) or set llm.device = "auto"')
    if folder is not None:
        out += models.precision_problems(folder, cfg_dtypes(cfg))
    return out


def cfg_dtypes(cfg: Config) -> dict[str, str]:
    """ONNX component → the precision the config names for it."""
    return {c: getattr(cfg.llm, f"{key}_dtype") for c, key in models.ULTRAVOX_COMPONENTS.items()}


def problems(cfg: Config, models_dir: Path) -> list[str]:
    """Every problem found (for `os1d doctor`); models that are missing are reported elsewhere."""
    from .audio.tts import voice_problem

    stt_dir = models_dir / cfg.stt.model
    llm_dir = models_dir / "ultravox"
    voice = voice_problem(models_dir / "kokoro", cfg.tts.voice)
    return (stt_problems(cfg, stt_dir) + llm_problems(cfg, llm_dir if llm_dir.is_dir() else None)
            + ([voice] if voice else []))


def check(cfg: Config, models_dir: Path) -> None:
    """Raise the first problem as a one-line error."""
    found = problems(cfg, models_dir)
    if found:
        raise UserError(found[0])
