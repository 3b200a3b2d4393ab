"""A write acknowledged is a write kept: a writer killed with SIGKILL at random moments, 100 times."""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np

from os1d.memory.store import INDEX, MemoryStore


def writer(folder: Path, ack: int, seed: int) -> None:
    """In the child: store memories as fast as possible, acknowledging each id once add() returned; now and
    then save the index too (so kills land inside that write as well)."""
    rng = np.random.default_rng(seed)
    store = MemoryStore(folder)
    n = 0
    while True:
        vec = rng.standard_normal(384).astype(np.float32)
        memory_id = store.add("user", "said", f"memory {seed}-{n} " + "words " * int(rng.integers(1, 60)), vec)
        os.write(ack, f"{memory_id}\n".encode())
        n += 1
        if n % 7 == 0:
            store.save_index()


def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    folder = tmp_path / "memory"
    MemoryStore(folder).close()
    acked: set[int] = set()
    rng = random.Random(7)
    for trial in range(100):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns to pytest
            try:
                os.close(r)
                writer(folder, w, trial)
            finally:
                os._exit(1)
        os.close(w)
        deadline = time.monotonic() + rng.uniform(0.005, 0.08)
        buf = b""
        while time.monotonic() < deadline:
            if select.select([r], [], [], 0.002)[0]:
                buf += os.read(r, 65536)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while chunk := os.read(r, 65536):  # acknowledgements written before the kill
            buf += chunk
        os.close(r)
        acked |= {int(x) for x in buf.split()}
    assert len(acked) > 100
    db = sqlite3.connect(folder / "memory.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    store = MemoryStore(folder)  # opens over whatever the kills left, index file included
    ids = {m.id for m in store.all()}
    assert acked <= ids, f"lost {len(acked - ids)} acknowledged writes"
    assert set(np.asarray(store.index.keys).tolist()) == ids
    assert not (folder / (INDEX + ".part")).exists() or (folder / INDEX).exists()
    probe = store.get([max(acked)])[0]
    found = store.search(np.frombuffer(store.db.execute("SELECT embedding FROM memories WHERE id = ?",
                                                        (probe.id,)).fetchone()[0], dtype=np.float32), 1)
    assert found[0][0].id == probe.id
    store.close()
