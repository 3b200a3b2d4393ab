"""`os1d memories …` and `os1d forget` from the shell, on the user's memory folder."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_os1d
from os1d.config import MemoryConfig
from os1d.memory.embed import MiniLMEmbedder
from os1d.memory.recall import Memories
from os1d.memory.store import MemoryStore


def test_list_search_forget_one_and_forget_all(user_env: dict[str, str], kit: Path) -> None:
    folder = Path(user_env["XDG_DATA_HOME"]) / "os1d" / "memory"
    memory = Memories(MemoryStore(folder), MiniLMEmbedder(kit / "minilm"), MemoryConfig())
    memory.remember("My sister Clara is a marine biologist in Lisbon.", "")
    memory.remember("I'm learning to play the cello.", "That sounds wonderful.")
    memory.close()

    listed = run_os1d(["memories", "list", "--json"], user_env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["text"] for r in rows] == ["My sister Clara is a marine biologist in Lisbon.",
                                         "I'm learning to play the cello.", "That sounds wonderful."]
    plain = run_os1d(["memories", "list"], user_env).stdout
    assert "marine biologist" in plain and "said" in plain

    found = run_os1d(["memories", "search", "what does my sister do?", "--json"], user_env)
    assert found.returncode == 0, found.stderr
    best = json.loads(found.stdout)[0]
    assert "Clara" in best["text"] and 0.28 <= best["cosine"] <= 1 and best["score"] > 0

    sister = rows[0]["id"]
    assert run_os1d(["memories", "forget", str(sister)], user_env).stdout.strip() == f"forgot memory {sister}"
    again = run_os1d(["memories", "forget", str(sister)], user_env)
    assert again.returncode == 1 and again.stderr.strip() == (
        f"os1d: error: there is no memory {sister} (`os1d memories list` shows them)")
    assert b"Clara" not in b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())

    unconfirmed = run_os1d(["forget"], user_env)  # stdin is not a terminal: no one to ask
    assert unconfirmed.returncode == 1 and "os1d forget --yes" in unconfirmed.stderr
    assert len(json.loads(run_os1d(["memories", "list", "--json"], user_env).stdout)) == 2
    wiped = run_os1d(["forget", "--yes"], user_env)
    assert wiped.returncode == 0 and wiped.stdout.strip() == "forgot 2 memories"
    assert run_os1d(["memories", "list"], user_env).stdout.strip() == "no memories"
    empty = run_os1d(["memories", "search", "  "], user_env)
    assert empty.returncode == 1 and empty.stderr.startswith("os1d: error: search needs some words")
