"""Is the microphone echo-cancelled? (A PulseAudio or PipeWire echo-cancel source removes OS1's own voice,
so the user may talk over it without the wake word.)"""

from __future__ import annotations

import re
import shutil
import subprocess


def _pactl(*args: str) -> str:
    try:
        return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def source_description(input_device: str = "default") -> str:
    """The PulseAudio/PipeWire source os1d records from, as pactl describes it ("" if unknown)."""
    if not shutil.which("pactl") or input_device not in ("", "default", "pulse", "pipewire"):
        return ""
    name = re.search(r"(?m)^Default Source: (.+)$", _pactl("info"))
    if not name:
        return ""
    for block in _pactl("list", "sources").split("\n\n"):
        if re.search(rf"(?m)^\s*Name: {re.escape(name.group(1).strip())}\s*$", block):
            return block
    return ""


def echo_cancelled(input_device: str = "default") -> bool:
    """True when the default source is an echo-cancel source (module-echo-cancel, or PipeWire's)."""
    return bool(re.search(r"echo[-_]cancel", source_description(input_device), re.I))
