"""`os1d doctor`: what this machine offers os1d, and the effective config."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import asdict
from typing import Any

from . import __version__, models, preflight
from .config import Config, config_to_toml, default_config_path
from .errors import UserError


def gather(cfg: Config) -> dict[str, Any]:
    report: dict[str, Any] = {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "config_file": str(default_config_path()),
        "models_dir": str(cfg.models_dir()),
        "offline": cfg.offline(),
    }
    try:
        from .audio.devices import find_device, list_devices, open_portaudio

        devices = list_devices()
        report["audio"] = {"devices": [asdict(d) for d in devices]}
        pa = open_portaudio()
        try:
            for kind in ("input", "output"):
                try:
                    report["audio"][kind] = find_device(pa, getattr(cfg.audio, f"{kind}_device"), kind)["name"]
                except UserError as exc:
                    report["audio"][kind] = f"PROBLEM: {exc}"
        finally:
            pa.terminate()
    except (ImportError, OSError) as exc:
        report["audio"] = {"error": f"PortAudio unavailable: {exc}"}
    from .audio.echo import echo_cancelled

    report["audio"]["echo_cancel"] = echo_cancelled(cfg.audio.input_device)
    need = set(models.models_for(cfg.stt.model, cfg.llm.backend, cfg.memory.enabled))
    report["models"] = [
        {**{k: str(v) for k, v in asdict(models.check(cfg.models_dir(), n, deep=True, cfg=cfg)).items()},
         "needed": n in need}
        for n in models.REGISTRY
    ]
    import onnxruntime

    from .onnx import int8_gemm_is_exact

    report["onnxruntime"] = {"version": onnxruntime.__version__, "providers": onnxruntime.get_available_providers(),
                             "int8_gemm_exact": int8_gemm_is_exact()}
    try:
        import ctranslate2

        report["ctranslate2"] = {"version": ctranslate2.__version__,
                                 "cuda_devices": ctranslate2.get_cuda_device_count()}
    except ImportError as exc:  # pragma: no cover - faster-whisper depends on it
        report["ctranslate2"] = {"error": str(exc)}
    report["settings"] = preflight.problems(cfg, cfg.models_dir())
    from .agent.hearing import doctor_line

    ultravox = next((m for m in report["models"] if m["name"] == "ultravox"), None)
    usable = ultravox is not None and ultravox["state"] in ("ok", "unverified")
    report["llm_input"] = doctor_line(cfg.llm, cfg.models_dir() / "ultravox" if usable else None, cfg.int8_cache())
    report["config"] = {s: asdict(getattr(cfg, s)) for s in asdict(cfg)}
    return report


def doctor(cfg: Config, as_json: bool = False) -> int:
    """Print the report; exit 1 when something the daemon needs is missing."""
    report = gather(cfg)
    problems = [f"model {m['name']} is {m['state']}: {m['detail']}" for m in report["models"]
                if m["needed"] and m["state"] not in ("ok", "unverified")]
    audio = report["audio"]
    problems += [f"{k}: {v.removeprefix('PROBLEM: ')}" for k, v in audio.items()
                 if isinstance(v, str) and (v.startswith("PROBLEM") or k == "error")]
    problems += report["settings"]
    if as_json:
        print(json.dumps({**report, "problems": problems}, indent=1, default=str))
        return 1 if problems else 0
    print(f"os1d {report['version']} on Python {report['python']}, {report['platform']}")
    print(f"config file: {report['config_file']}\nmodels dir:  {report['models_dir']}"
          + ("  (offline)" if report["offline"] else ""))
    print("\naudio devices:")
    for d in audio.get("devices", []):
        mark = ("in*" if d["default_input"] else "in " if d["inputs"] else "   ") + \
               ("out*" if d["default_output"] else "out " if d["outputs"] else "    ")
        print(f"  {d['index']:3} {mark} {d['name']} ({d['rate']:.0f} Hz)")
    print(f"  microphone: {audio.get('input', audio.get('error'))}\n  speaker:    {audio.get('output', '')}")
    print("  echo-cancelled microphone: " + ("yes (you can talk over OS1)" if audio["echo_cancel"] else
                                             "no (OS1 hears its own voice; see the README to enable one)"))
    print("\nmodels:")
    for m in report["models"]:
        print(f"  {m['name']:14} {m['state']:10} {'needed' if m['needed'] else '      '} {m['detail']}")
    ort = report["onnxruntime"]
    print(f"\nonnxruntime {ort['version']}: {', '.join(ort['providers'])}")
    print("  int8 GEMM on this CPU: " + ("exact (the voice's convolutions run on it)" if ort["int8_gemm_exact"] else
                                         "saturates (no VNNI): the voice's int8 matmuls run on exact u8 × u8 kernels"))
    ct2 = report["ctranslate2"]
    print(f"ctranslate2 {ct2.get('version', '?')}: {ct2.get('cuda_devices', 0)} CUDA device(s)")
    print(f"the speech LLM hears: {report['llm_input']}")
    print("\neffective config:\n" + config_to_toml(cfg))
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0
