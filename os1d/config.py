"""TOML config → frozen dataclasses, validated with one clear line per mistake."""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from .errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

APP = "os1d"


@dataclass(frozen=True)
class AudioConfig:
    input_device: str = "default"
    """Microphone: "default", a device index, or part of its name."""
    output_device: str = "default"
    """Speaker: "default", a device index, or part of its name."""
    retry_s: float = 2.0
    """Seconds between attempts to (re)open a missing microphone."""


@dataclass(frozen=True)
class WakeConfig:
    models: tuple[str, ...] = ("hey_os1",)
    """Wake-word heads: os1d's own hey_os1, names in the openwakeword model folder (hey_jarvis, alexa, …) or in
    `os1d wakeword train`'s folder, or paths to .onnx files."""
    threshold: float = 0.5
    """Score (0..1) at which a wake word fires (see BENCHMARKS.md for the trade-off)."""
    refractory_s: float = 2.0
    """Seconds after a detection during which the same model cannot fire again."""


@dataclass(frozen=True)
class VadConfig:
    aggressiveness: int = 2
    """webrtcvad mode, 0 (lenient) to 3 (strict)."""
    hangover_ms: int = 500
    """Silence after speech that ends the utterance."""
    max_utterance_s: float = 30.0
    """Longest utterance; longer speech is cut here (the Ultravox limit)."""
    pre_roll_ms: int = 300
    """Audio kept before the detected start of speech, so the first syllable is not lost."""
    listen_timeout_s: float = 6.0
    """After the wake word, how long to wait for speech before going back to sleep."""


@dataclass(frozen=True)
class SttConfig:
    model: str = "whisper-base"
    """Model name in the models folder (a faster-whisper / CTranslate2 folder)."""
    device: str = "auto"
    """auto, cpu or cuda."""
    compute_type: str = "auto"
    """auto (int8 on CPU, float16 on CUDA) or any CTranslate2 compute type."""
    language: str = "en"
    """Spoken language code, or "" to detect it."""
    beam_size: int = 1
    """1 is greedy decoding (fastest)."""


@dataclass(frozen=True)
class LlmConfig:
    backend: str = "ultravox-onnx"
    """ultravox-onnx (local) or openai (an OpenAI-compatible server such as vLLM)."""
    device: str = "auto"
    """auto, cpu or cuda."""
    max_new_tokens: int = 256
    """Longest reply in tokens."""
    url: str = ""
    """Server URL for the openai backend (e.g. http://localhost:8000 for `vllm serve`)."""
    server_model: str = ""
    """Model name on that server; empty: the first one it serves."""
    timeout_s: float = 30.0
    """openai backend: seconds to wait for the server before giving up."""
    temperature: float = 0.0
    """0 is greedy decoding (as callbacked/os1)."""
    top_p: float = 1.0
    embed_dtype: str = "fp32"
    """Precision of each ONNX component (files onnx/<component><suffix>.onnx)."""
    encoder_dtype: str = "q4"
    decoder_dtype: str = "q4"
    int8_matmul: bool = True
    """Multiply 4-bit weights in int8 on the CPU (onnxruntime's MatMulNBits accuracy level 4, set at load where the
    export leaves it unset): about 1.4× faster prefill and 2× faster decoding, within rounding of fp32. Applies
    to the matmuls that stay 4-bit (all of them with int8_weights off)."""
    int8_weights: bool = True
    """On the CPU, run the 4-bit matmuls on int8 weights, made once from the 4-bit files and cached (about 2 GB
    for Ultravox 1B): prefill and the audio encoder about 2.4× faster, decoding about 0.75×, about 1 GB more
    memory. A matmul whose weights int8 can't hold within 1 % keeps its 4-bit kernel."""
    input: str = "auto"
    """What the model hears: audio (the user's voice, through its audio encoder), text (Whisper's transcript;
    the encoder never runs) or auto (text where the encoder is too slow, see encoder_budget_ms)."""
    encoder_budget_ms: float = 400.0
    """auto: the most the audio encoder may take for 5 s of speech (measured at start) before text is used."""
    yield_to_voice: bool = True
    """Where the local LLM runs on the CPU: it pauses between tokens while the voice synthesises a piece, so the
    first sound comes sooner (the two would share the cores; nothing changes on a GPU or a server)."""


@dataclass(frozen=True)
class TtsConfig:
    voice: str = "af_heart"
    """Kokoro voice name."""
    speed: float = 1.0
    """Speaking rate, 0.5..2.0."""


@dataclass(frozen=True)
class MemoryConfig:
    top_k: int = 5
    min_cosine: float = 0.28
    recency_weight: float = 0.3
    half_life_h: float = 24.0
    summarize: bool = False
    """Also keep an LLM summary (at most 64 tokens) of long inputs."""
    enabled: bool = True
    """False: remember nothing and recall nothing (the conversation still keeps its recent messages)."""
    dir: str = ""
    """Memory folder; empty means the user data folder's memory/."""


@dataclass(frozen=True)
class ConversationConfig:
    follow_up_s: float = 6.0
    """After a reply, seconds during which the user may speak again without the wake word."""
    history: int = 20
    """Messages of recent conversation kept in the prompt, at most; past that the oldest half is let go."""
    greet: bool = True
    """Say hello at start (by name, once OS1 knows it)."""


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = ""
    """Models folder; empty means $OS1D_MODELS_DIR or the user cache folder."""
    offline: bool = False
    """Never download; a missing model is an error."""


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    stt: SttConfig = field(default_factory=SttConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)

    def models_dir(self) -> Path:
        """Where models live: [models] dir, else $OS1D_MODELS_DIR, else the user cache folder."""
        if self.models.dir:
            return Path(self.models.dir).expanduser()
        env = os.environ.get("OS1D_MODELS_DIR")
        if env:
            return Path(env).expanduser().resolve()
        return Path(platformdirs.user_cache_dir(APP)) / "models"

    def int8_cache(self) -> Path | None:
        """Where the int8 weights made from 4-bit files are kept (None: llm.int8_weights is off)."""
        return Path(platformdirs.user_cache_dir(APP)) / "int8" if self.llm.int8_weights else None

    def graph_cache(self) -> Path:
        """Where graphs rewritten for this CPU are kept (the voice's)."""
        return Path(platformdirs.user_cache_dir(APP)) / "graphs"

    def memory_dir(self) -> Path:
        """Where memories live: [memory] dir, else the user data folder's memory/."""
        if self.memory.dir:
            return Path(self.memory.dir).expanduser()
        return Path(platformdirs.user_data_dir(APP)) / "memory"

    def offline(self) -> bool:
        """True when downloads are off, by config or by HF_HUB_OFFLINE."""
        return self.models.offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false")


_CHOICES: dict[str, tuple[str, ...]] = {
    "stt.device": ("auto", "cpu", "cuda"),
    "llm.device": ("auto", "cpu", "cuda"),
    "llm.backend": ("ultravox-onnx", "openai"),
    "llm.input": ("auto", "audio", "text"),
    **{f"llm.{part}_dtype": ("fp32", "fp16", "q8", "int8", "uint8", "q4", "q4f16", "bnb4")
       for part in ("embed", "encoder", "decoder")},
}
_RANGES: dict[str, tuple[float, float]] = {
    "wake.threshold": (0.0, 1.0),
    "wake.refractory_s": (0.0, 60.0),
    "vad.aggressiveness": (0, 3),
    "vad.hangover_ms": (60, 5000),
    "vad.max_utterance_s": (1.0, 30.0),
    "vad.pre_roll_ms": (0, 2000),
    "vad.listen_timeout_s": (0.5, 120.0),
    "audio.retry_s": (0.1, 600.0),
    "stt.beam_size": (1, 20),
    "tts.speed": (0.5, 2.0),
    "llm.max_new_tokens": (1, 8192),
    "llm.timeout_s": (1.0, 3600.0),
    "llm.temperature": (0.0, 2.0),
    "llm.top_p": (0.01, 1.0),
    "llm.encoder_budget_ms": (0.0, 60000.0),
    "memory.top_k": (0, 100),
    "memory.min_cosine": (-1.0, 1.0),
    "memory.recency_weight": (0.0, 1.0),
    "memory.half_life_h": (0.01, 1e6),
    "conversation.follow_up_s": (0.0, 600.0),
    "conversation.history": (0, 1000),
}


def state_path() -> Path:
    """What the daemon keeps between runs (muted or not)."""
    return Path(platformdirs.user_state_dir(APP)) / "state.json"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Read the TOML file (missing file: defaults) and validate every key."""
    path = path or default_config_path()
    if not path.exists():
        if path != default_config_path():
            raise UserError(f"config file {path} does not exist")
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror}") from None
    return parse_config(data, str(path))


def parse_config(data: dict[str, Any], source: str = "config") -> Config:
    """Build a Config from parsed TOML, naming the key and the file on any mistake."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    built: dict[str, Any] = {}
    for name, table in data.items():
        if name not in sections:
            raise UserError(f"{source}: unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(table, dict):
            raise UserError(f"{source}: [{name}] must be a table")
        built[name] = _parse_section(name, sections[name].default_factory, table, source)  # type: ignore[misc]
    return Config(**built)


def _parse_section(section: str, cls: Any, table: dict[str, Any], source: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{section}.{key}"
        if key not in known:
            raise UserError(f"{source}: unknown key {dotted} (known: {', '.join(sorted(known))})")
        values[key] = _check(dotted, hints[key], value, source)
    return cls(**values)


def _check(key: str, hint: Any, value: Any, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(f"{source}: {key} must be a list of strings, got {value!r}")
        if not value:
            raise UserError(f"{source}: {key} must not be empty")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{source}: {key} must be true or false, got {value!r}")
        return value
    if hint in (int, float):
        ok = isinstance(value, int) if hint is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise UserError(f"{source}: {key} must be a{'n integer' if hint is int else ' number'}, got {value!r}")
        low, high = _RANGES.get(key, (float("-inf"), float("inf")))
        if not low <= value <= high:
            raise UserError(f"{source}: {key} = {value} is out of range ({low:g} to {high:g})")
        return hint(value)
    if hint is str:
        if key == "audio.input_device" or key == "audio.output_device":
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
        if not isinstance(value, str):
            raise UserError(f"{source}: {key} must be a string, got {value!r}")
        choices = _CHOICES.get(key)
        if choices and value not in choices:
            raise UserError(f"{source}: {key} = {value!r} is not one of {', '.join(choices)}")
        return value
    raise TypeError(f"unsupported config type for {key}: {hint}")  # a programming error, not a user one


def config_to_toml(cfg: Config) -> str:
    """The effective config as TOML text (for `os1d doctor`)."""
    lines: list[str] = []
    for section in dataclasses.fields(cfg):
        lines.append(f"[{section.name}]")
        for f in dataclasses.fields(getattr(cfg, section.name)):
            lines.append(f"{f.name} = {_toml_value(getattr(getattr(cfg, section.name), f.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
