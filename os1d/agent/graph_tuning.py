"""Rewrites of an export's ONNX graph at load, so it costs less on this machine.

- 4-bit matmuls (MatMulNBits) that the export leaves at accuracy_level 0 get level 4: onnxruntime then
  multiplies in int8 (activations quantised per block) instead of fp32. On a 2-core x86 CPU that is
  about 1.4× faster prefill and 2× faster decoding with the full-size model. transformers.js' q4 files
  leave the level unset.
- A decoder that computes logits for every prompt position gets a Slice before its LM head and a new input,
  num_logits_to_keep (as transformers' exports have), so only the last positions asked for are projected onto
  the 128k vocabulary: one (the one sampled) saves about 20 % of a long prefill; a draft checked in the
  prefill asks for its own.

Nothing is written to disk: the graph is rewritten in memory and its weights stay in their files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("os1d")

INT8_ACCURACY = 4
"""MatMulNBits accuracy_level for int8 compute (0: as exported; 1 fp32, 2 fp16, 3 bf16, 4 int8)."""
_PASS_THROUGH = {"Cast", "Identity", "Mul", "Div", "Add", "Tanh", "Softcap"}
"""Elementwise steps that may follow an LM head (scaling, soft-capping, casting)."""
_HEADS = {"MatMul", "MatMulNBits"}


def tuned(path: Path, int8_matmul: bool = True, last_logits: bool = True) -> bytes | None:
    """The rewritten graph (serialised), or None when nothing needs to change (the file is then loaded as is)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    changed = (int8_matmul and set_int8_matmul(model)) | (last_logits and slice_logits(model))
    return model.SerializeToString() if changed else None


def set_int8_matmul(model: Any) -> int:
    """Give every MatMulNBits left at accuracy_level 0 the int8 level; how many were changed."""
    from onnx import helper

    changed = 0
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        levels = [a for a in node.attribute if a.name == "accuracy_level"]
        if levels and levels[0].i:
            continue  # the export chose one: keep it
        for a in levels:
            node.attribute.remove(a)
        node.attribute.append(helper.make_attribute("accuracy_level", INT8_ACCURACY))
        changed += 1
    return changed


def slice_logits(model: Any) -> bool:
    """Compute logits for the last num_logits_to_keep positions only (a new scalar input; 0: all of them), where
    the export computes them for every position.

    True when the graph was changed. Exports that already keep one position (a fixed 1, or an input
    num_logits_to_keep), and heads this cannot find (inside If branches, say), are left alone."""
    from ..graph_cache import producers

    graph = model.graph
    if any(i.name == "num_logits_to_keep" for i in graph.input):
        return False
    out = next((o for o in graph.output if o.name == "logits"), None)
    if out is None:
        return False
    dims = out.type.tensor_type.shape.dim
    if len(dims) != 3 or dims[1].dim_value == 1:
        return False
    made = producers(graph)
    node = made.get("logits")
    while node is not None and node.op_type in _PASS_THROUGH:
        node = made.get(node.input[0])
    if node is None or node.op_type not in _HEADS:
        log.debug("logits of %s: no LM head found to slice before", graph.name)
        return False
    _slice_before(model, node)
    dims[1].Clear()
    dims[1].dim_param = "num_logits"
    return True


def _slice_before(model: Any, head: Any) -> None:
    """hidden [batch, seq, width] → hidden[:, -keep:, :] as the head's input (keep: num_logits_to_keep)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    graph.input.append(helper.make_tensor_value_info("num_logits_to_keep", TensorProto.INT64, []))
    hidden, last = head.input[0], "os1d_last_hidden"
    consts = {"os1d_keep_shape": 1, "os1d_last_end": np.iinfo(np.int64).max, "os1d_last_axis": 1}
    graph.initializer.extend(numpy_helper.from_array(np.array([v], dtype=np.int64), k) for k, v in consts.items())
    keep = [helper.make_node("Reshape", ["num_logits_to_keep", "os1d_keep_shape"], ["os1d_keep"]),
            helper.make_node("Neg", ["os1d_keep"], ["os1d_last_start"]),
            helper.make_node("Slice", [hidden, "os1d_last_start", "os1d_last_end", "os1d_last_axis"], [last],
                             name="os1d_last_positions")]
    nodes = []
    for node in graph.node:  # (copies: the graph's own list is rebuilt in order, the Slice just before the head)
        nodes.append(type(node)())
        nodes[-1].CopyFrom(node)
        if list(node.output) == list(head.output):
            nodes[-1:-1] = keep
            nodes[-1].input[0] = last
    del graph.node[:]
    graph.node.extend(nodes)
