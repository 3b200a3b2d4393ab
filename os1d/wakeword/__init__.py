"""Wake words trained from text: synthetic voices → openWakeWord features → a small head in ONNX.

`os1d wakeword train "hey OS1"` makes the data (voices.py, augment.py, dataset.py), trains and exports
the head (train.py, which alone needs torch), and reports held-out figures (evaluate.py).
"""

from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parent / "models"
"""Wake-word heads that ship with os1d (resolve_heads looks here last)."""


def trained_dir() -> Path:
    """Where `os1d wakeword train` puts models by default (wake.models finds them there by name)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("os1d")) / "wakewords"
