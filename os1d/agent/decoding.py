"""Choosing each next token, and turning tokens back into text without splitting a character."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 256
    temperature: float = 0.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    seed: int | None = None


def choose(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    if sampling.temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / sampling.temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if sampling.top_p < 1.0:
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), sampling.top_p)) + 1]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(len(p), p=p))


def checked(rows: np.ndarray, draft: list[int]) -> list[int]:
    """The draft's first tokens that greedy decoding chooses too (row i: the logits after draft[:i]), and the token
    it chooses after them."""
    chosen = np.argmax(rows, axis=-1)
    taken = 0
    while taken < len(draft) and chosen[taken] == draft[taken]:
        taken += 1
    return [*draft[:taken], int(chosen[taken])]


class Detokenizer:
    """Turns token ids into text pieces without ever splitting a multi-byte character."""

    def __init__(self, tokenizer) -> None:  # type: ignore[no-untyped-def]
        self._tok = tokenizer
        self._ids: list[int] = []
        self._sent = 0

    def add(self, token: int) -> str:
        self._ids.append(token)
        text = self._decode()
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for its other bytes
            return ""
        piece, self._sent = text[self._sent :], len(text)
        return piece

    def _decode(self) -> str:
        return self._tok.decode(self._ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def flush(self) -> str:
        text = self._decode()
        piece, self._sent = text[self._sent :], len(text)
        return piece
