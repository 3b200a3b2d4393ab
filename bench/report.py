"""Write a benchmark's section into BENCHMARKS.md, replacing the previous figures of that benchmark."""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    return (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({cpu_model()}), {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")


def cpu_model() -> str:
    """The processor's name (these shared machines differ from one session to the next)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


def table(rows: list[tuple[str, str, str, str]]) -> str:
    return "| figure | value | target | notes |\n|---|---|---|---|\n" + "\n".join(
        f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)


def write_section(key: str, section: str) -> None:
    """Print the section and put it between <!-- key --> markers in BENCHMARKS.md."""
    print(section)
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures from the scripts in `bench/`.\n\n"
    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    block = f"{start}\n{section}{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def kit_env(folder: Path, config: str = "", conversation: str = "") -> dict[str, str]:
    """Environment for an os1d run on the offline test kit: its models, its voice, a config and a memory of
    its own; `conversation`: more keys of the [conversation] table."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import KIT_CONFIG, with_conversation
    from speech import kit_dir

    (folder / "os1d").mkdir(parents=True, exist_ok=True)
    (folder / "os1d" / "config.toml").write_text(with_conversation(KIT_CONFIG, conversation) + config)
    return dict(os.environ, OS1D_MODELS_DIR=str(kit_dir()), XDG_CONFIG_HOME=str(folder),
                XDG_DATA_HOME=str(folder / "data"), PYTHONUNBUFFERED="1")
