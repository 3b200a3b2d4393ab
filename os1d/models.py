"""Model registry: what each model is, where it comes from, and whether the copy here is whole.

Each model lives in its own folder under the models dir, with a manifest `.os1d-manifest.json`
(size and sha256 of every file) written when it was pulled or assembled; `verify` re-hashes against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .config import Config

MANIFEST = ".os1d-manifest.json"
OWW_URL = "https://github.com/dscripka/openWakeWord/releases/download/v0.5.1/"
KOKORO_URL = "https://github.com/thewh1teagle/kokoro-onnx/releases/download/model-files-v1.0/"
ONNX_SUFFIX = {"fp32": "", "fp16": "_fp16", "q8": "_quantized", "int8": "_int8", "uint8": "_uint8",
               "q4": "_q4", "q4f16": "_q4f16", "bnb4": "_bnb4"}
"""File-name suffix of each precision in onnx-community exports (onnx/<component><suffix>.onnx)."""
ULTRAVOX_COMPONENTS = {"embed_tokens": "embed", "audio_encoder": "encoder", "decoder_model_merged": "decoder"}
"""ONNX component → the [llm] key that picks its precision (llm.<key>_dtype)."""


def ultravox_file(component: str, dtype: str) -> str:
    return f"onnx/{component}{ONNX_SUFFIX[dtype]}.onnx"


def precision_problems(folder: Path, dtypes: dict[str, str]) -> list[str]:
    """For each ONNX component (→ precision) whose file is not in the Ultravox folder: what to do."""
    out = []
    for component, dtype in dtypes.items():
        rel, key = ultravox_file(component, dtype), f"llm.{ULTRAVOX_COMPONENTS[component]}_dtype"
        if not (folder / rel).is_file():
            here = [d for d in ONNX_SUFFIX if (folder / ultravox_file(component, d)).is_file()]
            out.append(f"{key} = {dtype!r} needs {rel}, which is not in {folder}; run `os1d models pull ultravox` "
                       f"to fetch it, or set {key} to a precision that is there ({', '.join(here) or 'none'})")
    return out


@dataclass(frozen=True)
class ModelSpec:
    """One model the daemon can use."""

    name: str
    """Folder name under the models dir, and the name users type."""
    role: str
    """wake | stt | llm | tts | embed"""
    source: str
    """hf:<repo> (Hugging Face hub) or a base URL that the file names are appended to."""
    files: tuple[str, ...]
    """Files to download, relative to the folder."""
    required: tuple[str, ...] = ()
    """Files that must be present to load the model (default: all of `files`)."""
    sha256: dict[str, str] = field(default_factory=dict)
    """Known hashes; files not listed are checked against the hub's hash or the manifest."""
    license: str = ""
    companions: bool = False
    """Also fetch ONNX external-data files (<file>.onnx_data*) the hub lists beside each .onnx."""

    def needed(self) -> tuple[str, ...]:
        return self.required or self.files


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="openwakeword",
            role="wake",
            source=OWW_URL,
            files=("melspectrogram.onnx", "embedding_model.onnx", "hey_jarvis_v0.1.onnx",
                   "hey_mycroft_v0.1.onnx", "alexa_v0.1.onnx"),
            required=("melspectrogram.onnx", "embedding_model.onnx"),
            license="Apache-2.0 (feature models); CC BY-NC-SA 4.0 (pretrained wake heads)",
        ),
        ModelSpec(
            name="whisper-base",
            role="stt",
            source="hf:Systran/faster-whisper-base",
            files=("config.json", "model.bin", "tokenizer.json", "vocabulary.txt"),
            required=("config.json", "model.bin", "tokenizer.json"),
            license="MIT",
        ),
        ModelSpec(
            name="ultravox",
            role="llm",
            source="hf:onnx-community/ultravox-v0_5-llama-3_2-1b-ONNX",
            files=("config.json", "generation_config.json", "preprocessor_config.json",
                   "tokenizer.json", "tokenizer_config.json", "onnx/embed_tokens.onnx",
                   "onnx/audio_encoder_q4.onnx", "onnx/decoder_model_merged_q4.onnx"),
            companions=True,
            license="Llama 3.2 Community License",
        ),
        ModelSpec(
            name="kokoro",
            role="tts",
            source=KOKORO_URL,
            files=("kokoro-v1.0.int8.onnx", "voices-v1.0.bin"),
            sha256={"kokoro-v1.0.int8.onnx": "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"},
            license="Apache-2.0",
        ),
        ModelSpec(
            name="minilm",
            role="embed",
            source="hf:sentence-transformers/all-MiniLM-L6-v2",
            files=("config.json", "onnx/model.onnx", "tokenizer.json", "sentence_bert_config.json",
                   "1_Pooling/config.json"),
            license="Apache-2.0",
        ),
    )
}


def spec(name: str, cfg: Config | None = None) -> ModelSpec:
    """The model's spec; with a config, the files that config needs (the Ultravox precisions it names)."""
    try:
        s = REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}") from None
    if name == "ultravox" and cfg is not None:
        onnx = tuple(ultravox_file(c, getattr(cfg.llm, f"{key}_dtype")) for c, key in ULTRAVOX_COMPONENTS.items())
        s = dataclasses.replace(s, files=tuple(f for f in s.files if not f.startswith("onnx/")) + onnx)
    return s


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, files: list[str]) -> None:
    """Record size and sha256 of `files` in the folder's manifest, atomically."""
    entries = {}
    for rel in files:
        p = folder / rel
        entries[rel] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"files": entries}, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)


def read_manifest(folder: Path) -> dict[str, dict[str, object]]:
    """{file: {size, sha256}}; a one-line error when the manifest is damaged or can't be read."""
    damaged = UserError(f"model manifest {folder / MANIFEST} is damaged; run `os1d models pull {folder.name}`")
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UserError(f"cannot read model folder {folder}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise damaged from None
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        raise damaged
    return files


@dataclass(frozen=True)
class ModelStatus:
    name: str
    path: Path
    state: str
    """ok | missing | corrupt | unverified"""
    detail: str = ""


def check(models_dir: Path, name: str, deep: bool = False, cfg: Config | None = None) -> ModelStatus:
    """Is the model present and whole? Quick (sizes) by default, sha256 of every file with deep."""
    return check_spec(spec(name, cfg), models_dir / name, deep)


def check_spec(s: ModelSpec, folder: Path, deep: bool = False) -> ModelStatus:
    """check() for a spec in a given folder; never raises for what it finds there."""
    try:
        return _check(s, folder, deep)
    except UserError as exc:
        return ModelStatus(s.name, folder, "corrupt", str(exc))
    except OSError as exc:  # an unreadable folder or file
        return ModelStatus(s.name, folder, "unreadable", f"{exc.filename or folder}: {exc.strerror}")


def _check(s: ModelSpec, folder: Path, deep: bool) -> ModelStatus:
    if folder.exists() and not folder.is_dir():
        return ModelStatus(s.name, folder, "corrupt", f"{folder} is a file, not a folder")
    absent = [rel for rel in s.needed() if not (folder / rel).is_file()]
    if absent:
        more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
        return ModelStatus(s.name, folder, "missing", f"{absent[0]}{more} not found")
    manifest = read_manifest(folder)
    if not manifest:
        return ModelStatus(s.name, folder, "unverified", "no manifest (not pulled by os1d)")
    for rel, info in manifest.items():
        p = folder / rel
        if not p.is_file():
            return ModelStatus(s.name, folder, "missing", f"{rel} not found")
        if p.stat().st_size != info.get("size"):
            return ModelStatus(s.name, folder, "corrupt", f"{rel} has the wrong size")
        known = s.sha256.get(rel) or info.get("sha256")
        if deep and sha256_file(p) != known:
            return ModelStatus(s.name, folder, "corrupt", f"{rel} fails its sha256 check")
    return ModelStatus(s.name, folder, "ok")


def locate(models_dir: Path, name: str, cfg: Config | None = None) -> Path:
    """The folder of a model that is ready to load, or a one-line error naming the fix."""
    status = check(models_dir, name, cfg=cfg)
    if status.state in ("ok", "unverified"):
        return status.path
    fix = f"run `os1d models pull {name}`"
    if status.state == "unreadable":
        fix = "make it readable, or set [models] dir to another folder"
    raise UserError(f"model {name} is {status.state} in {models_dir} ({status.detail}); {fix}")


def models_for(stt: str = "whisper-base", llm_backend: str = "ultravox-onnx", memory: bool = True) -> list[str]:
    """The models the daemon needs, in load order."""
    return (["openwakeword", stt] + (["ultravox"] if llm_backend == "ultravox-onnx" else []) + ["kokoro"]
            + (["minilm"] if memory else []))
