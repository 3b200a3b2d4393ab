"""The memory store: SQLite is the source of truth, a usearch index is derived from it.

Every acknowledged write is committed with `synchronous=FULL` in WAL mode, so a process killed at any
moment loses nothing it acknowledged. The index is only a cache of the embeddings kept in SQLite: it is
brought up to date whenever it is missing, stale or unreadable, and forgetting rebuilds it from scratch
(deleted rows are zeroed by `secure_delete`, the WAL is truncated), so no copy of forgotten text remains.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

log = logging.getLogger("os1d")
DB = "memory.db"
INDEX = "index.usearch"
EXPANSIONS = ((1_000_000, 72), (None, 96))
"""How wide a search is, by the number of memories (usearch's expansion_search): a larger graph needs a wider
search for the same recall. On real sentences, none a near-duplicate of another (as the store keeps them), and
1,000 real queries, recall@5 of the exact search with 72: 0.993-0.994 at 100k (0.49-0.51 ms on a 2-core AMD
EPYC; 64 gave 0.989-0.992), 0.991-0.994 at 1M (0.68-0.97 ms, where the exact search takes 76-91 ms), in several
runs and builds (bench/bench_memory.py). Beyond a million memories, decades of daily use, wider."""
BUILD_EXPANSION = 256
"""How wide each insert searches for its links (usearch's expansion_add). A better graph is cheaper to search:
at 1M memories, built with 128, recall@5 0.991 took a width of 160 (1.07 ms); built with 256, a width of 96
(0.70 ms). Building takes twice as long (an insert about 1 ms more; rebuilding 1M from SQLite 11 minutes
instead of 6; 35 on a machine 2–3× slower; only when the index is missing or damaged)."""
CONNECTIVITY = 32
"""Graph links per vector: at 1M memories recall@5 0.96 instead of 0.91 with 16 in the same search time (on
mixtures of real embeddings); 48 is slower at every recall on real sentences (bench/bench_memory_sweep.py)."""
DTYPE = "bf16"
"""The index's vector precision (SQLite keeps every embedding in float32)."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    role TEXT NOT NULL,            -- user | assistant
    kind TEXT NOT NULL,            -- said | reply | summary | fact
    text TEXT NOT NULL,
    created_at REAL NOT NULL,      -- unix time
    turn TEXT NOT NULL DEFAULT '', -- the turn it came from
    fact TEXT,                     -- for a pinned fact: its key (name, home, …), one row per key
    embedding BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS memories_fact ON memories(fact) WHERE fact IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def expansion(size: int) -> int:
    """The search width for an index of `size` memories (EXPANSIONS)."""
    return next(width for most, width in EXPANSIONS if most is None or size <= most)


FIELDS = "id, role, kind, text, created_at, turn, fact"
"""The columns a Memory is made of, in its fields' order."""


@dataclass(frozen=True)
class Memory:
    id: int
    role: str
    kind: str
    text: str
    created_at: float
    turn: str = ""
    fact: str | None = None


def _private_file(path: Path) -> None:
    """Create `path` readable by the user alone (SQLite gives its -wal and -shm files the same mode)."""
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)


class MemoryStore:
    """Memories on disk under `folder` (0700, files 0600). Use from one thread at a time."""

    def __init__(self, folder: Path, dim: int = 384) -> None:
        self.folder, self.dim = folder, dim
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
            _private_file(folder / DB)
            self.db = sqlite3.connect(folder / DB, timeout=30.0, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON", "foreign_keys=ON"):
                self.db.execute(f"PRAGMA {pragma}")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the memory store {folder / DB}: {exc} (a damaged database can be moved "
                            f"aside; os1d then starts a new memory)") from None
        self._version = -1
        self.index = self._load_index()

    # -- the index -----------------------------------------------------------------------------------------
    def _new_index(self):  # type: ignore[no-untyped-def]
        import onnxruntime  # noqa: F401  (before usearch: onnxruntime loaded after usearch >= 2.26.2 segfaults)
        from usearch.index import Index

        # bf16 halves the memory of f32 at the same recall, and its distances are about 1.4× faster than f16's on
        # x86 (bench_memory.py); i8 is no faster at the same recall (bench_memory_sweep.py). Searches grow wider
        # with the index (expansion()).
        return Index(ndim=self.dim, metric="cos", dtype=DTYPE, connectivity=CONNECTIVITY,
                     expansion_add=BUILD_EXPANSION)

    def _load_index(self):  # type: ignore[no-untyped-def]
        path = self.folder / INDEX
        index = self._new_index()
        if path.is_file():
            try:
                index.load(str(path))
            except Exception as exc:  # unreadable or from another layout: it is only a cache
                log.warning("memory index %s is unreadable (%s); rebuilding it", path, exc)
                index = self._new_index()
            layout = (str(index.dtype).rsplit(".", 1)[-1].lower(), index.connectivity)
            if layout != (DTYPE, CONNECTIVITY):  # an older os1d's index (f16, or fewer links): rebuilt once
                log.info("memory index %s is %s with connectivity %d; rebuilding it as %s with %d", path, *layout,
                         DTYPE, CONNECTIVITY)
                index = self._new_index()
        self._sync(index)
        return index

    def _sync(self, index=None) -> None:  # type: ignore[no-untyped-def]
        """Bring the index in line with SQLite (rows another process added or removed, or a stale file)."""
        index = index if index is not None else self.index
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        ids = np.array([r[0] for r in self.db.execute("SELECT id FROM memories")], dtype=np.uint64)
        have = np.asarray(index.keys, dtype=np.uint64) if len(index) else np.zeros(0, dtype=np.uint64)
        extra = np.setdiff1d(have, ids)
        if len(extra):
            index.remove(extra)
        missing = np.setdiff1d(ids, have)
        for start in range(0, len(missing), 4096):
            part = [int(i) for i in missing[start : start + 4096]]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(f"SELECT id, embedding FROM memories WHERE id IN ({marks})", part).fetchall()
            if rows:
                index.add(np.array([r[0] for r in rows], dtype=np.uint64),
                          np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))
        self._version = version

    def refresh(self) -> None:
        """Pick up what another process (`os1d memories forget`, the daemon) changed since we last looked."""
        if self.db.execute("PRAGMA data_version").fetchone()[0] != self._version:
            self._sync()

    def save_index(self) -> None:
        """Write the index beside the database (atomically); it saves a rebuild at the next start."""
        self.refresh()
        part = self.folder / (INDEX + ".part")
        try:
            _private_file(part)
            self.index.save(str(part))
            os.replace(part, self.folder / INDEX)
        except OSError as exc:
            log.warning("could not save the memory index: %s", exc)
            part.unlink(missing_ok=True)

    # -- writes --------------------------------------------------------------------------------------------
    def add(self, role: str, kind: str, text: str, embedding: np.ndarray, turn: str = "",
            fact: str | None = None, at: float | None = None) -> int:
        """Store one memory; when this returns, it is on disk. A fact replaces the one with its key."""
        vec = np.ascontiguousarray(embedding, dtype=np.float32).reshape(self.dim)
        with self._write():
            if fact is not None:
                old = self.db.execute("SELECT id FROM memories WHERE fact = ?", (fact,)).fetchone()
                if old is not None:
                    self.db.execute("DELETE FROM memories WHERE id = ?", (old[0],))
                    self.index.remove(old[0])
            cur = self.db.execute(
                "INSERT INTO memories (role, kind, text, created_at, turn, fact, embedding) VALUES (?,?,?,?,?,?,?)",
                (role, kind, text, time.time() if at is None else at, turn, fact, vec.tobytes()))
            new = int(cur.lastrowid or 0)
        self.index.add(new, vec)
        return new

    def touch(self, memory_id: int) -> None:
        """Said again: the memory counts as recent."""
        with self._write():
            self.db.execute("UPDATE memories SET created_at = ? WHERE id = ?", (time.time(), memory_id))

    def forget(self, memory_id: int) -> bool:
        """Remove one memory from every file; False when there is no such memory."""
        with self._write():
            gone = self.db.execute("DELETE FROM memories WHERE id = ?", (memory_id,)).rowcount
        if gone:
            self._scrub()
        return bool(gone)

    def forget_all(self) -> int:
        with self._write():
            gone = self.db.execute("DELETE FROM memories").rowcount
        self._scrub()
        return gone

    def _scrub(self) -> None:
        """After a delete: no copy left in the database file, its WAL or the index."""
        try:
            self.db.execute("VACUUM")
        except sqlite3.Error as exc:  # the rows are gone; their bytes are zeroed (secure_delete) in any case
            log.warning("could not compact the memory database: %s", exc)
        for _ in range(50):
            busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                break
            time.sleep(0.1)  # another process is reading: its snapshot still needs the old pages
        else:
            log.warning("the memory log could not be truncated yet: another process holds it open")
        self.index = self._new_index()
        self._sync()
        self.save_index()

    def _write(self) -> "_Transaction":
        return _Transaction(self.db)

    # -- reads ---------------------------------------------------------------------------------------------
    def search(self, query: np.ndarray, count: int) -> list[tuple[Memory, float]]:
        """The `count` nearest memories and their cosine similarity, nearest first. The index finds them; their
        similarity is computed exactly, on the float32 embeddings SQLite keeps."""
        self.refresh()
        if not len(self.index) or count <= 0:
            return []
        query = np.asarray(query, dtype=np.float32).reshape(self.dim)
        self.index.expansion_search = expansion(len(self.index))
        ids = [int(k) for k in self.index.search(query, min(count, len(self.index))).keys]
        rows = self.db.execute(f"SELECT {FIELDS}, embedding FROM memories "
                               f"WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
        if not rows:
            return []
        vectors = np.stack([np.frombuffer(r[7], dtype=np.float32) for r in rows])
        cosine = vectors @ query / np.maximum(np.linalg.norm(vectors, axis=1) * np.linalg.norm(query), 1e-12)
        found = [(Memory(*r[:7]), float(c)) for r, c in zip(rows, cosine, strict=True)]
        return sorted(found, key=lambda x: -x[1])

    def get(self, ids: list[int]) -> list[Memory]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [Memory(*r) for r in self.db.execute(
            f"SELECT {FIELDS} FROM memories WHERE id IN ({marks})", ids)]

    def all(self) -> list[Memory]:
        return [Memory(*r) for r in self.db.execute(
            f"SELECT {FIELDS} FROM memories ORDER BY id")]

    def facts(self) -> dict[str, Memory]:
        return {r[6]: Memory(*r) for r in self.db.execute(
            f"SELECT {FIELDS} FROM memories WHERE fact IS NOT NULL")}

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM memories").fetchone()[0])

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._write():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        try:
            self.save_index()
        finally:
            self.db.close()


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (a writer waits for another process's write, up to the busy timeout)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise UserError(f"the memory store is busy or unwritable: {exc}") from None

    def __exit__(self, kind, value, tb) -> None:  # type: ignore[no-untyped-def]
        self.db.execute("ROLLBACK" if kind else "COMMIT")
