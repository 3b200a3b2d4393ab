"""Kokoro's adaptive instance norms with one pass over the tensor fewer.

Every convolution block of Kokoro's decoder and vocoder normalises its input over time and scales it by the
voice's style: y = g·((x − μ)/σ) + b, with μ and σ one number per channel and g one per channel of the style. The
export divides the whole tensor by σ and then multiplies it by g; here g/σ (a number per channel) multiplies it
once. The same products up to float32 rounding, one full pass fewer for each of the 62 norms: about 5 % of the
voice's time on a 2-core x86 CPU (bench/bench_speak.py).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("os1d")


def fold_norm_gains(graph: Any) -> int:
    """Rewrite in place, in an onnx GraphProto, each Div(d, σ) read only by a Mul(·, g), where d is
    x − ReduceMean(x) and σ is Sqrt(ReduceMean(…) + ε), as Mul(d, Div(g, σ)); returns how many."""
    from onnx import helper

    from ..graph_cache import producers, readers, swap_nodes

    made = producers(graph)
    read = readers(graph)
    swaps: dict[int, list[Any]] = {}
    for divide in graph.node:
        if divide.op_type != "Div" or divide.domain or not _normalised(divide, made):
            continue
        then = read.get(divide.output[0], [])
        if len(then) != 1 or then[0].op_type != "Mul" or then[0].domain or id(then[0]) in swaps \
                or then[0].input[0] == then[0].input[1]:
            continue
        times = then[0]
        gain = times.input[1] if times.input[0] == divide.output[0] else times.input[0]
        scale = f"{divide.name or divide.output[0]}/gain_over_deviation"
        swaps[id(divide)] = [helper.make_node("Div", [gain, divide.input[1]], [scale])]
        swaps[id(times)] = [helper.make_node("Mul", [divide.input[0], scale], list(times.output), name=times.name)]
    if swaps:
        swap_nodes(graph, swaps)
        log.debug("%d norms' gains folded", len(swaps) // 2)
    return len(swaps) // 2


def _normalised(divide: Any, made: dict[str, Any]) -> bool:
    """Whether `divide` is (x − ReduceMean(x)) / Sqrt(ReduceMean(…) + ε): a deviation from the mean over a standard
    deviation, one number per normalised row."""
    def mean(name: str) -> bool:
        return (node := made.get(name)) is not None and node.op_type == "ReduceMean"

    centre, sqrt = made.get(divide.input[0]), made.get(divide.input[1])
    if centre is None or centre.op_type != "Sub" or not mean(centre.input[1]) or sqrt is None or sqrt.op_type != "Sqrt":
        return False
    add = made.get(sqrt.input[0])
    return add is not None and add.op_type == "Add" and any(mean(name) for name in add.input)
