"""Kokoro's STFT as a convolution, its phase as Kokoro's own model computes it.

Kokoro's vocoder takes the STFT of its harmonic source (20-sample frames, 5 apart) and feeds magnitude and phase
to its noise convolutions. onnxruntime computes the STFT operator as a plain DFT, frame by frame on one thread:
about 6 % of the voice's time on a 2-core x86 CPU, where the same sums as one Conv on the DFT's basis (cosines and
sines under the window) take a fraction of a millisecond. The real and imaginary parts agree to float32 rounding.

The phase comes from the export's own atan2 (atan(im/re), then ±π by the signs). Where a bin's exact value is real
(the DC and Nyquist bins always; every bin of a constant source, which is what the source is wherever the voice is
unvoiced) the phase is then decided by rounding noise: onnxruntime's DFT leaves ±1e-8 in the imaginary part, and
the noise convolutions see +π or −π by its sign. Kokoro's PyTorch model (torch.stft, torch.angle) has an exact 0
there, so π for a negative real part. Here the DC and Nyquist sines are exactly zero, the atan2 gives π for an
imaginary part of ±0 as torch.angle does, and 0 for 0/0 (where the export's division gives NaN).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("os1d")


def conv_stft(graph: Any) -> int:
    """Rewrite in place, in an onnx GraphProto, each onesided STFT with a constant frame step and window as a Conv
    with the same output, and the atan2 that reads its parts as torch.angle; returns how many."""
    from ..graph_cache import drop_unread, readers, swap_nodes

    read, constants = readers(graph), _Constants(graph)
    swaps: dict[int, list[Any]] = {}
    count, settings = 0, set()
    for node in graph.node:
        basis = _basis(node, constants) if node.op_type == "STFT" and not node.domain else None
        if basis is None:
            continue
        swaps[id(node)] = _convolution(node, basis, graph)
        settings.update(node.input[1:])
        count += 1
        parts = _parts(node.output[0], read, constants)
        if parts is not None:
            swaps |= _torch_angle(*parts, read, graph)
    if count:
        swap_nodes(graph, swaps)
        unread = drop_unread(graph, settings)  # (the frame step, window, length)
        swap_nodes(graph, {id(n): [] for n in graph.node if n.op_type == "Constant" and n.output[0] in unread})
        log.debug("%d STFT as convolutions", count)
    return count


class _Constants:
    """The graph's constant tensors (initializers, Constant nodes) by name, each made an array only when asked for:
    not every weight of a 90 MB model."""

    def __init__(self, graph: Any) -> None:
        self._tensors = {t.name: t for t in graph.initializer}
        self._tensors |= {n.output[0]: n.attribute[0].t for n in graph.node
                          if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}

    def get(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        tensor = self._tensors.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)


def _basis(node: Any, constants: _Constants) -> tuple[np.ndarray, int] | None:
    """(the Conv's weights [2·bins, 1, length], the frame step), or None where the STFT is not one to rewrite."""
    ins = list(node.input) + [""] * (4 - len(node.input))
    onesided = next((a.i for a in node.attribute if a.name == "onesided"), 1)
    step = constants.get(ins[1])
    window = constants.get(ins[2]) if ins[2] else None
    length = constants.get(ins[3]) if ins[3] else None
    if not onesided or step is None or (ins[2] and window is None) or (window is None and length is None):
        return None
    size = int(length) if window is None else len(window)
    w = np.ones(size) if window is None else window.astype(np.float64)
    k, n = np.arange(size // 2 + 1)[:, None], np.arange(size)[None, :]
    sines = -w * np.sin(2 * np.pi * k * n / size)
    sines[0] = 0  # exactly: the DC bin's sum is real
    if size % 2 == 0:
        sines[-1] = 0  # and the Nyquist bin's
    weights = np.concatenate([w * np.cos(2 * np.pi * k * n / size), sines])[:, None, :].astype(np.float32)
    return weights, int(step)


def _convolution(node: Any, basis: tuple[np.ndarray, int], graph: Any) -> list[Any]:
    """Nodes writing the STFT's output [batch, frames, bins, 2] from its signal [batch, length(, 1)]."""
    from onnx import helper, numpy_helper

    weights, step = basis
    base = f"{node.name or node.output[0]}/stft"
    bins = weights.shape[0] // 2
    graph.initializer.extend([numpy_helper.from_array(weights, f"{base}/basis"),
                              numpy_helper.from_array(np.array([0, 1, -1], np.int64), f"{base}/signal_shape"),
                              numpy_helper.from_array(np.array([0, 2, bins, -1], np.int64), f"{base}/parts_shape")])
    return [helper.make_node("Reshape", [node.input[0], f"{base}/signal_shape"], [f"{base}/signal"]),
            helper.make_node("Conv", [f"{base}/signal", f"{base}/basis"], [f"{base}/sums"], strides=[step]),
            helper.make_node("Reshape", [f"{base}/sums", f"{base}/parts_shape"], [f"{base}/parts"]),
            helper.make_node("Transpose", [f"{base}/parts"], list(node.output), perm=[0, 3, 2, 1])]


def _parts(spectrum: str, readers: dict[str, list[Any]], constants: _Constants) -> tuple[str, str] | None:
    """(real, imaginary): the Gathers of the last axis of the STFT's output (through a Transpose that keeps it
    last), or None."""
    tensors = [spectrum]
    for node in readers.get(spectrum, []):
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [])
        if node.op_type == "Transpose" and perm[-1:] == [len(perm) - 1]:
            tensors.append(node.output[0])
    found: dict[int, str] = {}
    for node in (n for t in tensors for n in readers.get(t, [])):
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        index = constants.get(node.input[1]) if node.op_type == "Gather" and len(node.input) > 1 else None
        if index is not None and index.size == 1 and axis in (3, -1):
            found[int(index)] = node.output[0]
    return (found[0], found[1]) if set(found) == {0, 1} else None


def _torch_angle(real: str, imag: str, readers: dict[str, list[Any]], graph: Any) -> dict[int, list[Any]]:
    """The export's atan2 on (real, imag) as torch.angle: `imag > 0` as `imag ≥ 0` (π, not −π, for an exact 0 on
    the negative real axis), and 0 for imag/real = 0/0."""
    from onnx import helper, numpy_helper

    swaps: dict[int, list[Any]] = {}
    for node in readers.get(imag, []):
        if node.op_type == "Greater" and node.input[0] == imag:
            node.op_type = "GreaterOrEqual"
        elif node.op_type == "Div" and list(node.input) == [imag, real]:
            ratio = node.output[0]
            base = f"{node.name or ratio}/nan_free"
            graph.initializer.append(numpy_helper.from_array(np.array(0, np.float32), f"{base}/zero"))
            node.output[0] = f"{base}/ratio"
            swaps[id(node)] = [node, helper.make_node("IsNaN", [f"{base}/ratio"], [f"{base}/nan"]),
                               helper.make_node("Where", [f"{base}/nan", f"{base}/zero", f"{base}/ratio"], [ratio])]
    return swaps
