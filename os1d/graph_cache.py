"""Models rewritten for this CPU, made once into the cache folder and reused: a folder per source and version,
written aside and renamed (a crash leaves nothing half-made in its place), the graph beside one data file.

Loading a rewritten graph from the cache also keeps the interpreter free while os1d listens: onnxruntime reads
a file without Python's lock, whereas serialising a large graph in memory (protobuf) holds it for seconds on
a busy machine, and the event loop, the microphone included, waits meanwhile.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("os1d")

MODEL, DATA, NOTHING = "model.onnx", "model.onnx_data", "nothing-to-convert"


def made_once(cache: Path, stem: str, key: str, make: Callable[[Path], bool], needed: float, what: str,
              instead: str) -> Path | None:
    """cache/<stem>-<key>/MODEL, made now by make(path to write) if missing (earlier versions and the half-made
    folders of dead processes are removed first). None when make found nothing to change (remembered, so not
    tried again at every start) or the disk has no room for `needed` bytes (`instead` says what is used then)."""
    folder = cache / f"{stem}-{key}"
    if (folder / NOTHING).is_file():
        return None
    if (folder / MODEL).is_file() and (folder / DATA).is_file():
        return folder / MODEL
    cache.mkdir(parents=True, exist_ok=True)
    for old in [*cache.glob(f"{stem}-*"), *_abandoned(cache, stem)]:
        shutil.rmtree(old, ignore_errors=True)
    if shutil.disk_usage(cache).free < needed:
        log.warning("no room for %s in %s (%.1f GB needed); %s", what, cache, needed / 1e9, instead)
        return None
    log.info("making %s (once)", what)
    tmp = cache / f".{folder.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"  # (one process may make it twice:
    # a load left running when os1d restarted in place, or stopped waiting for)
    tmp.mkdir()
    try:
        if not make(tmp / MODEL):
            (tmp / NOTHING).touch()
        for f in tmp.iterdir():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
        try:
            tmp.rename(folder)
        except OSError:  # another os1d made it meanwhile
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return None if (folder / NOTHING).is_file() else folder / MODEL


def save(model: Any, out: Path) -> None:
    """Write an onnx ModelProto as `out` and one data file beside it (DATA)."""
    import onnx

    onnx.save(model, str(out), save_as_external_data=True, all_tensors_to_one_file=True, location=DATA,
              size_threshold=1024)


def producers(graph: Any) -> dict[str, Any]:
    """Each tensor of an onnx GraphProto → the node that writes it."""
    return {name: node for node in graph.node for name in node.output}


def readers(graph: Any) -> dict[str, list[Any]]:
    """Each tensor of an onnx GraphProto → the nodes that read it."""
    read: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            read.setdefault(name, []).append(node)
    return read


def swap_nodes(graph: Any, swaps: dict[int, list[Any]]) -> None:
    """Replace in place, in an onnx GraphProto, each node whose id() is in `swaps` by its nodes there (none:
    removed), in the same place of the order. The ids are those of the nodes' Python objects: the caller holds
    them until then (readers() does), since protobuf makes a node's object anew once it is let go."""
    nodes = [new for node in graph.node for new in swaps.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)


def drop_unread(graph: Any, names: set[str]) -> set[str]:
    """Remove in place those of the named initializers of an onnx GraphProto that no node reads any more (not by
    copying the rest anew: on a large model that copy holds Python's lock for seconds); returns those names."""
    unread = names - {name for node in graph.node for name in node.input}
    for i in reversed(range(len(graph.initializer))):
        if graph.initializer[i].name in unread:
            del graph.initializer[i]
    return unread


def _abandoned(cache: Path, stem: str) -> list[Path]:
    """Half-made conversions of processes that are gone (killed while converting)."""
    out = []
    for tmp in cache.glob(f".{stem}-*.tmp"):
        try:
            os.kill(int(tmp.name[len(stem) + 2:].split(".")[1]), 0)  # (.<stem>-<key>.<pid>[.<token>].tmp)
        except ProcessLookupError:
            out.append(tmp)
        except (ValueError, PermissionError):  # not ours to judge
            continue
    return out


def forget(model: Path) -> None:
    """Remove a cached model (it could not be loaded): the next load makes it again."""
    shutil.rmtree(model.parent, ignore_errors=True)
