"""The streamed reply cut into speakable pieces: a short first clause (so the voice starts early),
then whole sentences."""

from __future__ import annotations

import re

FIRST_MAX_WORDS = 4
"""The first piece ends at the first clause boundary, or after this many words: the voice starts early."""
MAX_WORDS = 32
"""Each later piece may be twice as long as the one before, up to this: each is synthesised while the
one before plays, so pieces that grow keep the voice gapless."""
NOT_AN_END = re.compile(r"(?i)\b(?:dr|mr|mrs|ms|prof|jr|sr|st|vs|etc|e\.g|i\.e|approx|no|min|jan|feb|mar|apr|jun|jul"
                        r"|aug|sept?|oct|nov|dec)\.$|\d\.$")
"""A full stop that does not end a sentence (abbreviations, "3." before a decimal)."""
NUMBER_SIGN = re.compile(r"(?i)\bno\.$")
""""No." before a number ("No. 5"); before anything else it is the answer, and its sentence ends."""
SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
CLAUSE_END = re.compile(r"[,;:—–]+\s|[.!?…]+[\"')\]]*\s")


class Chunker:
    """feed() the reply's text as it streams; get back the pieces that are ready to speak."""

    def __init__(self) -> None:
        self._buffer = ""
        self._count = 0
        """Pieces given out so far."""

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        pieces = []
        while (piece := self._next()) is not None:
            pieces.append(piece)
        return pieces

    def flush(self) -> list[str]:
        """The reply is complete: whatever is left."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next(self) -> str | None:
        limit = min(MAX_WORDS, FIRST_MAX_WORDS << self._count)
        boundary = CLAUSE_END if self._count == 0 else SENTENCE_END
        cut = self._cut(boundary, limit)
        if cut is None and len(self._buffer.split()) > limit:  # no such end can come within the limit
            cut = self._cut(CLAUSE_END, limit) or self._word_cut(limit)
        if cut is None:
            return None
        piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
        self._count += 1
        return piece or None

    def _cut(self, boundary: re.Pattern[str], limit: int) -> int | None:
        """End of the first boundary within `limit` words that is not an abbreviation's full stop."""
        for m in boundary.finditer(self._buffer):
            head = self._buffer[: m.end()].strip()
            if len(head.split()) > limit:
                return None
            if not NOT_AN_END.search(head):
                return m.end()
            if NUMBER_SIGN.search(head):
                after = self._buffer[m.end():].lstrip()
                if not after:
                    return None  # (what follows decides; it has not come yet)
                if not after[0].isdigit():
                    return m.end()
        return None

    def _word_cut(self, words: int) -> int | None:
        """After `words` whole words, once that many (and the start of the next) have arrived."""
        spans = [m.end() for m in re.finditer(r"\S+\s", self._buffer)]
        return spans[words - 1] if len(spans) > words else None
