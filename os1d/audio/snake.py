"""Kokoro's Snake activations, x + sin²(αx)/α, without onnxruntime's Sin.

onnxruntime computes Sin one element at a time on one thread: on a 2-core x86 CPU the 48 Snakes of Kokoro's
vocoder spend about a fifth of the voice's time there, against a few percent for a multiply over the same tensor.
Here sin²(αx)/α becomes a polynomial after range reduction, in the operators that run vectorised on every
thread (Mul, Round, Sub, Add): with r = αx/π and t = r − round(r), sin²(αx) = sin²(πt) = u·P(u), u = t²,
|t| ≤ ½, and the 1/α that follows is folded into P's coefficients, channel by channel. Every Snake feeds a
convolution on int8 inputs, which rounds it to 1/255 of its range: P's degree 3 (error under 6.3e-5 of sin²)
keeps the Snake within 1/200 of that step in Kokoro's voices, and each pass over the tensor fewer is time saved
(bench/bench_speak.py). The integer layers round a few activations the other way, so the audio differs from the
exact graph's by a few percent of its level, as much as it does when Sin itself is computed in double precision.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("os1d")

COEFFICIENTS = (9.867246627807617, -32.37042999267578, 41.42631149291992, -23.298114776611328)
"""P(u), lowest power first: the least-squares fit of sin²(πt)/t² on |t| ≤ ½ (u·P(u) within 6.3e-5 of sin²)."""


def polynomial_snakes(graph: Any) -> int:
    """Rewrite in place, in an onnx GraphProto, each Mul(α, x) → Sin → Pow(·, 2) with a constant α (Kokoro's
    Snake) as the polynomial, with the constant it is then multiplied by (1/α) folded in; returns how many. Other
    sines (the vocoder's harmonic source and its inverse STFT phase) are left as they are."""
    from onnx import numpy_helper

    from ..graph_cache import drop_unread, producers, readers, swap_nodes

    made = producers(graph)
    read = readers(graph)
    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    swaps: dict[int, list[Any]] = {}
    constants: set[str] = set()
    snakes = 0
    for sin in graph.node:
        found = _snake(sin, made, read, inits)
        if found is None:
            continue
        scale, alpha, x, square = found
        base = f"{sin.name or sin.output[0]}/polynomial"
        graph.initializer.append(numpy_helper.from_array((numpy_helper.to_array(alpha) / np.pi).astype(np.float32),
                                                         f"{base}/alpha_over_pi"))
        out, factor = square.output[0], np.ones((), np.float32)
        if square.output[0] not in outputs and (then := _multiplied(square, read, inits)) is not None:
            times, constant = then
            out, factor = times.output[0], numpy_helper.to_array(constant)
            swaps[id(times)] = []
            constants.add(constant.name)
        names = [f"{base}/c{k}" for k in range(len(COEFFICIENTS))]
        graph.initializer.extend(numpy_helper.from_array((np.float32(c) * factor).astype(np.float32), name)
                                 for c, name in zip(COEFFICIENTS, names, strict=True))
        swaps[id(scale)] = _polynomial(x, f"{base}/alpha_over_pi", base, names, out)
        swaps[id(sin)] = swaps[id(square)] = []
        constants.add(alpha.name)
        snakes += 1
    if not snakes:
        return 0
    swap_nodes(graph, swaps)
    drop_unread(graph, constants)
    log.debug("%d Snake activations as polynomials", snakes)
    return snakes


def _multiplied(square: Any, readers: dict[str, list[Any]], inits: dict[str, Any]) -> tuple[Any, Any] | None:
    """(the Mul, its float32 constant) where the Snake's sin² is read only by a Mul by a constant (1/α), else
    None."""
    from onnx import numpy_helper

    then = readers.get(square.output[0], [])
    if len(then) != 1 or then[0].op_type != "Mul" or then[0].domain:
        return None
    constants = [name for name in then[0].input if name in inits]
    if len(constants) != 1 or numpy_helper.to_array(inits[constants[0]]).dtype != np.float32:
        return None
    return then[0], inits[constants[0]]


def _snake(sin: Any, made: dict[str, Any], readers: dict[str, list[Any]],
           inits: dict[str, Any]) -> tuple[Any, Any, str, Any] | None:
    """(the Mul by α, α, x, the Pow) where `sin` is a Snake's, else None."""
    from onnx import numpy_helper

    if sin.op_type != "Sin" or sin.domain:
        return None
    scale = made.get(sin.input[0])
    squares = readers.get(sin.output[0], [])
    if scale is None or scale.op_type != "Mul" or len(readers.get(scale.output[0], [])) != 1 or len(squares) != 1:
        return None
    square = squares[0]
    constants = [name for name in scale.input if name in inits]
    if square.op_type != "Pow" or square.input[0] != sin.output[0] or len(constants) != 1:
        return None
    exponent = inits.get(square.input[1])
    if exponent is None and (node := made.get(square.input[1])) is not None and node.op_type == "Constant":
        exponent = node.attribute[0].t
    if exponent is None or numpy_helper.to_array(exponent).size != 1 or float(numpy_helper.to_array(exponent)) != 2:
        return None
    alpha = inits[constants[0]]
    if numpy_helper.to_array(alpha).dtype != np.float32:
        return None
    x = scale.input[1] if scale.input[0] == constants[0] else scale.input[0]
    return scale, alpha, x, square


def _polynomial(x: str, alpha_over_pi: str, base: str, coefficients: list[str], out: str) -> list[Any]:
    """Nodes writing u·P(u) (sin²(αx), times the constant folded into `coefficients`) as `out`."""
    from onnx import helper

    nodes = [helper.make_node("Mul", [x, alpha_over_pi], [f"{base}/r"]),
             helper.make_node("Round", [f"{base}/r"], [f"{base}/nearest"]),
             helper.make_node("Sub", [f"{base}/r", f"{base}/nearest"], [f"{base}/t"]),
             helper.make_node("Mul", [f"{base}/t", f"{base}/t"], [f"{base}/u"])]
    p = coefficients[-1]
    for k in reversed(range(len(coefficients) - 1)):  # Horner: p = p·u + c_k
        nodes += [helper.make_node("Mul", [p, f"{base}/u"], [f"{base}/pu{k}"]),
                  helper.make_node("Add", [f"{base}/pu{k}", coefficients[k]], [f"{base}/p{k}"])]
        p = f"{base}/p{k}"
    return [*nodes, helper.make_node("Mul", [p, f"{base}/u"], [out])]
