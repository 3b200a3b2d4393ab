"""Long-term memory as a conversation uses it: what to remember of a turn, and what to recall for the next.

Blocking calls, meant for the memory lane (one thread): embedding and SQLite never run on the event loop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..config import MemoryConfig
from .facts import extract, fact_text, fact_value
from .store import Memory, MemoryStore

DUPLICATE = 0.95
"""Cosine above which a new memory is the same as one already kept (that one is refreshed instead)."""
LONG_WORDS = 30
"""Inputs longer than this are kept as their sentences."""
CANDIDATES = 32
"""Nearest memories scored for each recall (the top_k are kept)."""
_FORGETFUL = re.compile(
    r"\b(i\s+(?:do\s*n[o']t|don’t|can(?:no|')t|can’t)\s+(?:really\s+)?(?:remember|recall|know\s+your\s+name)|"
    r"i\s+have\s*n[o']t\s+(?:got\s+)?any\s+memor|i\s+don'?t\s+have\s+(?:any\s+)?(?:memor|a\s+record)|"
    r"no\s+memory\s+of|i'?m\s+not\s+sure\s+i\s+remember)", re.I)
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")


class Embedder(Protocol):
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def recency(age_s: float, half_life_h: float) -> float:
    """1 now, 0.5 after one half-life."""
    return float(0.5 ** (max(age_s, 0.0) / 3600.0 / half_life_h))


def forgetful(reply: str) -> bool:
    """A reply that only says OS1 does not remember (at most two sentences saying so): not worth keeping."""
    return bool(_FORGETFUL.search(reply)) and len(_SENTENCE.split(reply.strip())) <= 2


def pieces(text: str) -> list[str]:
    """Short input as it is; long input as its sentences (each of at least three words)."""
    text = " ".join(text.split())
    if len(text.split()) <= LONG_WORDS:
        return [text] if text else []
    return [s for s in _SENTENCE.split(text) if len(s.split()) >= 3]


class Memories:
    """The store, the embedder and the rules of what is kept and recalled."""

    needs_transcript = True

    def __init__(self, store: MemoryStore, embedder: Embedder, cfg: MemoryConfig) -> None:
        self.store, self.embedder, self.cfg = store, embedder, cfg

    def recall(self, text: str, k: int | None = None) -> list[dict]:
        """The memories for `text`: 0.7 × cosine + 0.3 × recency, best first, those below min_cosine dropped."""
        k = self.cfg.top_k if k is None else k
        if not text.strip() or k <= 0:
            return []
        query = self.embedder.embed([text])[0]
        return [self.describe(m, cos, score) for m, cos, score in self.scored(query, k)]

    def scored(self, query: np.ndarray, k: int) -> list[tuple[Memory, float, float]]:
        now, w = time.time(), self.cfg.recency_weight
        found = []
        for m, cos in self.store.search(query, max(CANDIDATES, 4 * k)):
            if cos < self.cfg.min_cosine:
                continue
            found.append((m, cos, (1 - w) * cos + w * recency(now - m.created_at, self.cfg.half_life_h)))
        found.sort(key=lambda x: -x[2])
        return found[:k]

    @staticmethod
    def describe(m: Memory, cosine: float, score: float) -> dict:
        return {"id": m.id, "text": m.text, "cosine": round(cosine, 4), "score": round(score, 4)}

    def remember(self, user: str, reply: str, turn: str = "", summary: str = "",
                 asked_name: bool = False) -> list[int]:
        """Keep a finished exchange: the user's words (or their sentences), a summary, new facts, the reply.
        asked_name: the user answered OS1's question of their name, so a name said on its own is theirs."""
        todo: list[tuple[str, str, str, str | None]] = []  # role, kind, text, fact key
        todo += [("user", "said", p, None) for p in pieces(user)]
        if summary.strip():
            todo.append(("user", "summary", " ".join(summary.split()), None))
        todo += [("user", "fact", fact_text(key, value), key) for key, value in extract(user, asked_name).items()]
        if reply.strip() and not forgetful(reply):
            todo += [("assistant", "reply", p, None) for p in pieces(reply)]
        if not todo:
            return []
        vectors = self.embedder.embed([t[2] for t in todo])
        kept = []
        for (role, kind, text, key), vec in zip(todo, vectors):
            if key is not None:
                old = self.store.facts().get(key)
                if old is not None and old.text == text:
                    self.store.touch(old.id)
                    continue
            else:
                near = self.store.search(vec, 1)
                if near and near[0][1] >= DUPLICATE:
                    self.store.touch(near[0][0].id)
                    continue
            kept.append(self.store.add(role, kind, text, vec, turn=turn, fact=key))
        return kept

    def facts(self) -> dict[str, str]:
        """The pinned facts, by key: {"name": "Theo"}."""
        return {key: fact_value(key, m.text) for key, m in self.store.facts().items()}

    def fact_texts(self) -> list[str]:
        return [m.text for m in self.store.facts().values()]

    def close(self) -> None:
        self.store.close()
