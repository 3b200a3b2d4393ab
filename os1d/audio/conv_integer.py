"""Kokoro's int8 graph as this CPU runs it exactly: on onnxruntime's fast int8 GEMM where that sums exactly.

The int8 Kokoro export runs its 1-D convolutions as ConvInteger with uint8 weights, for which onnxruntime's
CPU kernels multiply u8 × u8, its slow path. Where every weight minus its zero point fits in int8 (in Kokoro
v1.0 all of them do), a ConvInteger becomes im2col (the input padded with its zero point, and for each output
step the taps it reads side by side, one Gather) and a MatMulInteger on int8 weights, which runs on the
u8 × s8 kernels (VNNI). The int32 results are identical; each convolution takes about half the time on a 2-core
x86 CPU (the whole voice about 0.75 of it). The voice's graph also computes its Snake activations without the
single-threaded Sin (snake.py), its STFT without the single-threaded STFT operator (stft.py) and its norms with a
pass fewer (adain.py). The graph is rewritten once into os1d's cache folder (voice_model) and loaded from there at
every start; the file is left as is.

x86 CPUs without VNNI (AVX2 alone) add each pair of u8 × s8 products in 16 bits, which saturates
(os1d.onnx.int8_gemm_is_exact): there even the export's own matmuls on int8 weights (148 of them) come out
wrong, and the voice is audibly worse. On such a CPU those matmuls move to uint8 weights instead (the same
integers through the exact u8 × u8 kernels), and the convolutions stay as they are.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("os1d")
VERSION = 3
"""Bumped when a rewrite changes: graphs cached by an older os1d are then made again."""
UNCHANGED = 3
"""The exit code of `python -m os1d.audio.conv_integer REWRITE SRC OUT` when there is nothing to rewrite."""


def voice_graph(path: Path) -> bytes | None:
    """Kokoro's int8 graph as this CPU runs it exactly, and fastest: where onnxruntime's u8 × s8 GEMM is exact,
    its convolutions on that GEMM (int8_convolutions); elsewhere (x86 without VNNI) its own u8 × s8 matmuls,
    which would saturate there, on uint8 weights (unsigned_weights). Either way its Snake activations as
    polynomials (snake.py), its STFT as a convolution (stft.py) and its norms with a pass fewer (adain.py).
    None: the file as it is."""
    return _serialised(_voice_proto(path))


def integer_graph(path: Path) -> bytes | None:
    """voice_graph's integer layers alone, the export's other operators as they are (what the rewrites of snake.py,
    stft.py and adain.py are measured against). None: the file as it is."""
    return _serialised(_integer_proto(path))


def voice_model(path: Path, cache: Path) -> Path | None:
    """voice_graph's model as a file in `cache`, made there once (None: nothing to rewrite, the file can't be
    read, or the disk has no room). It is made in a process of its own: parsing and rewriting a 90 MB graph
    holds Python's lock for a second or more, and os1d is listening meanwhile."""
    from ..graph_cache import made_once

    try:
        stat = path.stat()
    except OSError:
        return None  # (the plain load reports it)
    rewrite = _rewrite_here()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{rewrite}:v{VERSION}".encode())

    def make(out: Path) -> bool:
        done = subprocess.run([sys.executable, "-m", __name__, rewrite, str(path), str(out)], capture_output=True,
                              text=True)
        if done.returncode not in (0, UNCHANGED):
            raise RuntimeError((done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1])
        return done.returncode == 0

    return made_once(cache, path.stem, key.hexdigest()[:16], make, 2.5 * stat.st_size,
                     f"the voice's graph for this CPU ({path.name})", "rewriting it at every start")


def _rewrite_here() -> str:
    from ..onnx import int8_gemm_is_exact

    return "convolutions" if int8_gemm_is_exact() else "unsigned"


def _voice_proto(path: Path, rewrite: str = "") -> Any:
    """The model of `path` rewritten as `rewrite` (default: as this CPU needs), its Snakes as polynomials, its
    STFT as a convolution and its norms' gains folded; or None."""
    from .adain import fold_norm_gains
    from .snake import polynomial_snakes
    from .stft import conv_stft

    model = _integer_proto(path, rewrite)
    if model is not None:
        polynomial_snakes(model.graph)
        conv_stft(model.graph)
        fold_norm_gains(model.graph)
    return model


def _integer_proto(path: Path, rewrite: str = "") -> Any:
    """The model of `path` rewritten as `rewrite` (default: as this CPU needs), or None."""
    return (_convolutions if (rewrite or _rewrite_here()) == "convolutions" else _unsigned_matmuls)(path)


def _convolutions(path: Path) -> Any:
    return _rewritten(path, "ConvInteger", _im2col, "convolutions on int8 weights")


def _unsigned_matmuls(path: Path) -> Any:
    return _rewritten(path, "MatMulInteger", _unsigned, "int8 matmuls on uint8 weights (exact on this CPU)")


def int8_convolutions(path: Path) -> bytes | None:
    """The graph of `path` with its ConvInteger nodes as im2col + MatMulInteger, serialised; None when there is
    nothing to change or the file can't be read (it is then loaded as it is, and reports its own errors)."""
    return _serialised(_convolutions(path))


def unsigned_weights(path: Path) -> bytes | None:
    """The graph of `path` with each MatMulInteger on constant int8 weights moved to uint8 weights (plus 128, and
    so their zero point): the same integers, through onnxruntime's u8 × u8 kernels, which sum exactly on every
    CPU. None when there is nothing to change or the file can't be read."""
    return _serialised(_unsigned_matmuls(path))


def _serialised(model: Any) -> bytes | None:
    return None if model is None else model.SerializeToString()


def _rewritten(path: Path, op: str, change: Callable[[Any, dict[str, Any], Any], list[Any] | None],
               what: str) -> Any:
    """The model of `path` (an onnx ModelProto) with each `op` node replaced by change(node, initializers, graph)
    (None: kept); None when nothing changed or the file can't be read."""
    import onnx

    from ..graph_cache import drop_unread

    try:
        model = onnx.load(str(path))
    except Exception:  # a damaged or missing file: the plain load says so in one line
        return None
    inits = {t.name: t for t in model.graph.initializer}
    nodes, dropped, changed = [], set(), 0
    for node in model.graph.node:
        new = change(node, inits, model.graph) if node.op_type == op and not node.domain else None
        if new is None:
            nodes.append(node)
            continue
        nodes += new
        dropped.update(node.input[1::2])  # (the weights and their zero point)
        changed += 1
    if not changed:
        return None
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    drop_unread(model.graph, dropped)
    log.debug("%s: %d %s", path.name, changed, what)
    return model


def _unsigned(node: Any, inits: dict[str, Any], graph: Any) -> list[Any] | None:
    """The MatMulInteger on its int8 weights plus 128 as uint8, its weights' zero point plus 128 too; None to
    keep it (weights not constant, or not int8)."""
    from onnx import helper, numpy_helper

    ins = list(node.input) + [""] * (4 - len(node.input))
    if ins[1] not in inits or (ins[3] and ins[3] not in inits):
        return None
    w = numpy_helper.to_array(inits[ins[1]])
    zero = numpy_helper.to_array(inits[ins[3]]) if ins[3] else np.zeros((), np.int8)
    if w.dtype != np.int8 or zero.dtype != np.int8:
        return None
    base = f"{node.name or node.output[0]}/unsigned"
    shifted = [((w.astype(np.int16) + 128).astype(np.uint8), f"{base}/weight"),
               ((zero.astype(np.int16) + 128).astype(np.uint8), f"{base}/zero")]
    graph.initializer.extend(numpy_helper.from_array(array, name) for array, name in shifted)
    return [helper.make_node("MatMulInteger", [ins[0], f"{base}/weight", ins[2], f"{base}/zero"], list(node.output),
                             name=node.name)]


def _im2col(node: Any, inits: dict[str, Any], graph: Any) -> list[Any] | None:
    """Nodes computing the ConvInteger's int32 output with MatMulInteger on int8 weights, or None to keep it
    (not a 1-D convolution of one group, weights not constant, or weights that int8 can't hold exactly)."""
    from onnx import helper, numpy_helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    ins = list(node.input) + [""] * (4 - len(node.input))
    if ins[1] not in inits or (ins[3] and ins[3] not in inits):
        return None
    w = numpy_helper.to_array(inits[ins[1]])
    zero = numpy_helper.to_array(inits[ins[3]]) if ins[3] else np.zeros((), np.uint8)
    plain = attrs.get("group", 1) == 1 and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    if w.dtype != np.uint8 or w.ndim != 3 or zero.size != 1 or not plain:
        return None
    centred = w.astype(np.int16) - int(zero.reshape(()))
    if centred.min() < -128 or centred.max() > 127:
        return None
    out_ch, in_ch, taps = w.shape
    dilation, stride = int(attrs.get("dilations", [1])[0]), int(attrs.get("strides", [1])[0])
    begin, end = (list(attrs.get("pads", [0, 0])) + [0, 0])[:2]
    base = f"{node.name or node.output[0]}/im2col"
    cols = np.ascontiguousarray(centred.astype(np.int8).transpose(2, 1, 0).reshape(taps * in_ch, out_ch))
    consts: dict[str, np.ndarray] = {f"{base}/weight": cols}
    x, x_zero = ins[0], ins[2]
    if not x_zero:
        x_zero = f"{base}/x_zero"
        consts[x_zero] = np.zeros((), np.uint8)
    nodes = []
    if begin or end:  # padded with the input's zero point: a float 0
        consts[f"{base}/pads"] = np.array([0, 0, begin, 0, 0, end], np.int64)
        nodes.append(helper.make_node("Pad", [x, f"{base}/pads", x_zero], [f"{base}/padded"]))
        x = f"{base}/padded"
    nodes.append(helper.make_node("Transpose", [x], [f"{base}/time_major"], perm=[0, 2, 1]))  # [n, time, in]
    columns = f"{base}/time_major"
    if taps > 1 or stride > 1:  # row t of the columns: the input at s·t, s·t + d, … s·t + (taps - 1)·d
        consts.update({f"{base}/time_axis": np.array(2, np.int64),
                       f"{base}/span": np.array(dilation * (taps - 1), np.int64),
                       f"{base}/zero": np.array(0, np.int64), f"{base}/stride": np.array(stride, np.int64),
                       f"{base}/column_axis": np.array([1], np.int64),
                       f"{base}/offsets": (np.arange(taps, dtype=np.int64) * dilation)[None, :],
                       f"{base}/shape": np.array([0, 0, taps * in_ch], np.int64)})
        nodes += [helper.make_node("Shape", [x], [f"{base}/dims"]),
                  helper.make_node("Gather", [f"{base}/dims", f"{base}/time_axis"], [f"{base}/length"], axis=0),
                  helper.make_node("Sub", [f"{base}/length", f"{base}/span"], [f"{base}/outputs"]),  # (exclusive)
                  helper.make_node("Range", [f"{base}/zero", f"{base}/outputs", f"{base}/stride"], [f"{base}/starts"]),
                  helper.make_node("Unsqueeze", [f"{base}/starts", f"{base}/column_axis"], [f"{base}/starts1"]),
                  helper.make_node("Add", [f"{base}/starts1", f"{base}/offsets"], [f"{base}/index"]),
                  helper.make_node("Gather", [columns, f"{base}/index"], [f"{base}/taps"], axis=1),
                  helper.make_node("Reshape", [f"{base}/taps", f"{base}/shape"], [f"{base}/columns"])]
        columns = f"{base}/columns"
    nodes += [helper.make_node("MatMulInteger", [columns, f"{base}/weight", x_zero], [f"{base}/product"]),
              helper.make_node("Transpose", [f"{base}/product"], list(node.output), perm=[0, 2, 1])]
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    return nodes


def _main(rewrite: str, source: str, out: str) -> int:
    """Write the rewritten model of `source` as `out` (with one data file beside it)."""
    from ..graph_cache import save

    model = _voice_proto(Path(source), rewrite)
    if model is None:
        return UNCHANGED
    save(model, Path(out))
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:4]))
