"""4-bit matmuls run on int8 weights on the CPU: made once from the 4-bit files, cached, reused.

On an x86 CPU, onnxruntime's int8 GEMM (u8 activations × s8 weights) runs a prompt's prefill and the audio
encoder about 2.4× faster than its 4-bit MatMulNBits kernel with VNNI (about 1.7× with AVX2 alone), even at
int8 compute (accuracy level 4), and decodes at about 0.7× the speed (twice the bytes read per token). Each
4-bit MatMulNBits with constant weights becomes a MatMulInteger on the same weights re-quantised to int8 per
output channel; its input is quantised per row to 7 bits (one scale per token, so a token with huge
activations, such as the first, can't flatten the others; 7 bits, so that CPUs without VNNI sum the products
exactly: LEVELS), and the product is scaled back to float. The 4-bit kernel quantises activations per block of
32 instead: finer, slower. A matmul where int8 weights would add more than MAX_NOISE to the 4-bit rounding
noise (an output channel with a few very large weights) keeps its 4-bit kernel. The converted graph and its
weights (about twice the 4-bit size) are written once to the cache and reused while the source files are
unchanged.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..graph_cache import drop_unread, made_once, save

log = logging.getLogger("os1d")

VERSION = 2
"""Bumped when the conversion changes: older cached files are then made again."""
MAX_NOISE = 0.25
"""Most rounding noise int8 may add to a matmul's 4-bit weights, as a share of the 4-bit rounding noise (power)
in any output channel. Typical weights add about 1 %; a channel with a few very large weights adds more."""
LEVELS = 63
"""Activations are quantised to ±LEVELS around LEVELS + 1 (u8 1…127): 7 bits, so that no two products of a
u8 × s8 pair add up past 16 bits (x86 CPUs without VNNI add them so, saturating at 32,767)."""
ROWS = 8192
"""Output channels converted at a time (bounds the float copy of a large LM head)."""


def int8_model(path: Path, graph: bytes, cache: Path) -> Path | None:
    """The cached int8 version of `graph` (the tuned graph of `path`, its weights beside `path`), made now if
    missing or damaged; None when the graph has no 4-bit matmul to convert, or the disk has no room for it."""
    if b"MatMulNBits" not in graph:
        return None
    needed = 2.5 * sum(f.stat().st_size for f in path.parent.glob(f"{path.name}*"))
    return made_once(cache, path.stem, _key(path, graph), lambda out: _convert(graph, path.parent, out) > 0,
                     needed, f"int8 weights of {path.name} for this CPU (about a minute for the full model)",
                     "using its 4-bit weights")


def _key(path: Path, graph: bytes) -> str:
    """Changes with the graph, the size and time of every file beside it it reads weights from, and VERSION."""
    digest = hashlib.sha256(graph)
    for data in sorted(path.parent.glob(f"{path.name}_data*")):
        stat = data.stat()
        digest.update(f"{data.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(f"v{VERSION}".encode())
    return digest.hexdigest()[:16]


def _convert(graph: bytes, weights: Path, out: Path) -> int:
    """Write the converted model (graph and one data file) to `out`; how many matmuls were converted."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    model = onnx.load_from_string(graph)
    load_external_data_for_model(model, str(weights))
    inits = {t.name: t for t in model.graph.initializer}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    nodes, rows, replaced, kept, converted = [], {}, set(), 0, 0
    for node in model.graph.node:
        swap = _swap(node, inits) if node.op_type == "MatMulNBits" and node.domain == "com.microsoft" else None
        if swap is None:
            kept += node.op_type == "MatMulNBits"
            nodes.append(node)
            continue
        weights, tensors = swap
        model.graph.initializer.extend(tensors)
        nodes += _matmul(node.input[0], weights, node.output[0], rows, opset, model.graph)
        replaced.update(node.input[1:4])
        converted += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    drop_unread(model.graph, replaced)  # (4-bit weights still read elsewhere stay)
    if kept:
        log.info("%d matmuls keep their 4-bit weights (int8 per channel would add more than %d %% to their "
                 "rounding noise)", kept, round(MAX_NOISE * 100))
    if converted:
        save(model, out)
    return converted


def _swap(node: Any, inits: dict[str, Any]) -> tuple[tuple[list[str], str], list[Any]] | None:
    """int8 weights (s8 [K, N], and a scale per output channel) for one 4-bit MatMulNBits: their names and its
    bias input, and the tensors; None to keep it as it is."""
    from onnx import TensorProto, helper, numpy_helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    ins = list(node.input) + [""] * (6 - len(node.input))
    if attrs.get("bits", 4) != 4 or ins[4] or not all(n in inits for n in ins[1:3]) or \
            (ins[3] and ins[3] not in inits) or inits[ins[2]].data_type != TensorProto.FLOAT:
        return None  # other widths, a group index, weights computed at run time, fp16 models
    if ins[3] and inits[ins[3]].data_type != TensorProto.UINT8:
        return None
    k, n, block = int(attrs["K"]), int(attrs["N"]), int(attrs["block_size"])
    packed = numpy_helper.to_array(inits[ins[1]]).reshape(n, -1, block // 2)
    scales = numpy_helper.to_array(inits[ins[2]]).reshape(n, -1)
    zeros = numpy_helper.to_array(inits[ins[3]]).reshape(n, -1) if ins[3] else None
    w8, s8 = np.empty((k, n), np.int8), np.empty(n, np.float32)
    for r in range(0, n, ROWS):
        step4 = scales[r:r + ROWS]
        w = _dequantize(packed[r:r + ROWS], step4, None if zeros is None else zeros[r:r + ROWS])
        step8 = np.abs(w).max(axis=(1, 2)) / 127.0
        step8[step8 == 0] = 1.0
        q = np.clip(np.rint(w / step8[:, None, None]), -127, 127)
        # the rounding noise int8 adds, against the 4-bit rounding noise (step²/12), in each output channel
        added = (q * step8[:, None, None] - w) / np.where(step4 != 0, np.abs(step4), np.inf)[:, :, None]
        if float(np.square(added).mean(axis=(1, 2)).max()) * 12 > MAX_NOISE:
            return None
        w8[:, r:r + ROWS], s8[r:r + ROWS] = q.reshape(len(q), -1)[:, :k].astype(np.int8).T, step8
    base = node.name or node.output[0]
    names = [f"{base}/int8_weight", f"{base}/int8_scale"]
    tensors = [numpy_helper.from_array(w8, names[0]), numpy_helper.from_array(s8, names[1])]
    return (names, ins[5]), tensors


def _matmul(a: str, weights: tuple[list[str], str], out: str, rows: dict[str, tuple[str, str]], opset: int,
            graph: Any) -> list[Any]:
    """Nodes of y = a @ W on int8 weights: `a` quantised to u8 per row (token), one scale per row (shared by
    the matmuls that read the same input, as q, k and v do), multiplied in int8, scaled back to float."""
    from onnx import TensorProto, helper, numpy_helper

    (weight, scale), bias = weights
    nodes = []
    if a not in rows:
        k = f"os1d_int8/{len(rows)}"
        if not any(t.name == "os1d_int8/const/inverse" for t in graph.initializer):
            graph.initializer.extend([
                numpy_helper.from_array(np.array(1 / LEVELS, np.float32), "os1d_int8/const/inverse"),
                numpy_helper.from_array(np.array(1e-30, np.float32), "os1d_int8/const/tiny"),
                numpy_helper.from_array(np.array(LEVELS + 1, np.float32), "os1d_int8/const/fzero"),
                numpy_helper.from_array(np.array(LEVELS + 1, np.uint8), "os1d_int8/const/zero"),
                numpy_helper.from_array(np.array([-1], np.int64), "os1d_int8/const/last")])
        reduce = (helper.make_node("ReduceMax", [f"{k}/abs", "os1d_int8/const/last"], [f"{k}/max"], keepdims=1)
                  if opset >= 18 else helper.make_node("ReduceMax", [f"{k}/abs"], [f"{k}/max"], axes=[-1], keepdims=1))
        nodes += [helper.make_node("Abs", [a], [f"{k}/abs"]), reduce,
                  helper.make_node("Mul", [f"{k}/max", "os1d_int8/const/inverse"], [f"{k}/step0"]),
                  helper.make_node("Max", [f"{k}/step0", "os1d_int8/const/tiny"], [f"{k}/step"]),
                  helper.make_node("Div", [a, f"{k}/step"], [f"{k}/div"]),
                  helper.make_node("Round", [f"{k}/div"], [f"{k}/round"]),
                  helper.make_node("Add", [f"{k}/round", "os1d_int8/const/fzero"], [f"{k}/shift"]),
                  helper.make_node("Cast", [f"{k}/shift"], [f"{k}/u8"], to=TensorProto.UINT8)]
        rows[a] = (f"{k}/u8", f"{k}/step")
    u8, step = rows[a]
    nodes += [helper.make_node("MatMulInteger", [u8, weight, "os1d_int8/const/zero"], [f"{out}/int32"]),
              helper.make_node("Cast", [f"{out}/int32"], [f"{out}/float"], to=TensorProto.FLOAT),
              helper.make_node("Mul", [f"{out}/float", scale], [f"{out}/columns"]),
              helper.make_node("Mul", [f"{out}/columns", step], [f"{out}/y" if bias else out])]
    # (not float × (step × scale): onnxruntime would fuse that into MatMulIntegerToFloat, whose A scale is one
    # number, and lose the rows' scales)
    if bias:
        nodes.append(helper.make_node("Add", [f"{out}/y", bias], [out]))
    return nodes


def _dequantize(packed: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None) -> np.ndarray:
    """MatMulNBits' 4-bit blocks (low nibble first; zero point 8 unless given) → float32 [rows, blocks, block]."""
    rows, blocks = scales.shape
    values = np.empty((rows, blocks, packed.shape[-1] * 2), np.float32)
    values[..., 0::2], values[..., 1::2] = packed & 0x0F, packed >> 4
    if zeros is None:
        values -= 8.0
    else:
        z = np.empty((rows, zeros.shape[1] * 2), np.float32)
        z[:, 0::2], z[:, 1::2] = zeros & 0x0F, zeros >> 4
        values -= z[:, :blocks, None]
    values *= scales[:, :, None]
    return values
