"""`os1d forget` and `os1d memories …`: the memory store from the shell, with or without a running daemon.

SQLite keeps both processes consistent; a running daemon picks the change up before its next recall.
"""

from __future__ import annotations

import json
import sys
import time

from ..config import Config
from ..errors import UserError
from .store import Memory, MemoryStore


def _store(cfg: Config) -> MemoryStore:
    return MemoryStore(cfg.memory_dir())


def _row(m: Memory, extra: dict | None = None) -> dict:
    return {"id": m.id, "role": m.role, "kind": m.kind, "text": m.text, "created_at": m.created_at,
            "fact": m.fact, **(extra or {})}


def _line(m: Memory, tail: str = "") -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.created_at))
    kind = f"{m.kind}:{m.fact}" if m.fact else m.kind
    return f"{m.id:6}  {when}  {kind:12} {m.text}{tail}"


def forget_all(cfg: Config, yes: bool) -> int:
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("forgetting everything needs confirmation: run `os1d forget --yes`")
        answer = input("Forget everything OS1 remembers? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing forgotten")
            return 1
    store = _store(cfg)
    try:
        gone = store.forget_all()
    finally:
        store.close()
    print(f"forgot {gone} memories")
    return 0


def memories_verb(cfg: Config, verb: str, query: str = "", memory_id: int | None = None, as_json: bool = False,
                  k: int = 10) -> int:
    store = _store(cfg)
    try:
        if verb == "list":
            rows = store.all()
            if as_json:
                print(json.dumps([_row(m) for m in rows], ensure_ascii=False, indent=1))
            else:
                print("\n".join(_line(m) for m in rows) if rows else "no memories")
            return 0
        if verb == "search":
            return _search(cfg, store, query, k, as_json)
        assert memory_id is not None
        if not store.forget(memory_id):
            raise UserError(f"there is no memory {memory_id} (`os1d memories list` shows them)")
        print(json.dumps({"forgotten": memory_id}) if as_json else f"forgot memory {memory_id}")
        return 0
    finally:
        store.close()


def _search(cfg: Config, store: MemoryStore, query: str, k: int, as_json: bool) -> int:
    from .. import models
    from .embed import MiniLMEmbedder
    from .recall import Memories

    if not query.strip():
        raise UserError("search needs some words, e.g. `os1d memories search \"my name\"`")
    embedder = MiniLMEmbedder(models.locate(cfg.models_dir(), "minilm"))
    memory = Memories(store, embedder, cfg.memory)
    found = memory.scored(embedder.embed([query])[0], k)
    if as_json:
        print(json.dumps([_row(m, {"cosine": round(c, 4), "score": round(s, 4)}) for m, c, s in found],
                         ensure_ascii=False, indent=1))
    else:
        print("\n".join(_line(m, f"  ({s:.2f})") for m, _c, s in found) if found else "nothing found")
    return 0
