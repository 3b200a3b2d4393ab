"""Kokoro's int8 convolutions as im2col + MatMulInteger on int8 weights: the same integers, the same voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from os1d.audio.conv_integer import fast_convolutions
from os1d.audio.tts import MODEL, KokoroVoice
from os1d.config import TtsConfig


def conv_model(path: Path, weights: np.ndarray, zero: int, pads: tuple[int, int], dilation: int = 1,
               stride: int = 1) -> Path:
    """x (u8 [1, C, T]) and its zero point → ConvInteger → int32, as onnxruntime's dynamic quantisation writes."""
    node = helper.make_node("ConvInteger", ["x", "w", "x_zero", "w_zero"], ["y"], pads=list(pads),
                            dilations=[dilation], strides=[stride])
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, weights.shape[1], None]),
                         helper.make_tensor_value_info("x_zero", TensorProto.UINT8, [])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, weights.shape[0], None])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array(zero, np.uint8), "w_zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def run(graph: bytes | Path, x: np.ndarray, x_zero: int) -> np.ndarray:
    source = graph if isinstance(graph, bytes) else str(graph)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x, "x_zero": np.array(x_zero, np.uint8)})[0]


@pytest.mark.parametrize("taps,pads,dilation,stride", [(7, (3, 3), 1, 1), (11, (25, 25), 5, 1), (3, (1, 1), 3, 1),
                                                       (1, (0, 0), 1, 1), (12, (3, 3), 1, 6), (3, (1, 1), 1, 2),
                                                       (1, (0, 0), 1, 3), (3, (2, 0), 1, 1)])
def test_a_convolution_gives_the_same_integers_through_the_int8_gemm(tmp_path: Path, taps: int, pads: tuple[int, int],
                                                                     dilation: int, stride: int) -> None:
    rng = np.random.default_rng(taps)
    w = rng.integers(10, 250, (24, 16, taps), dtype=np.uint8)  # minus 131: all within int8
    path = conv_model(tmp_path / "conv.onnx", w, 131, pads, dilation, stride)
    graph = fast_convolutions(path)
    assert graph is not None
    ops = [n.op_type for n in onnx.load_from_string(graph).graph.node]
    assert "ConvInteger" not in ops and "MatMulInteger" in ops
    for length in (40, 333):
        x = rng.integers(0, 256, (1, 16, length), dtype=np.uint8)
        expected = run(path, x, 77)
        np.testing.assert_array_equal(run(graph, x, 77), expected)


def test_a_convolution_whose_weights_int8_cannot_hold_is_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)
    wide[0, 0, 0], wide[0, 0, 1] = 0, 255  # minus zero point 0: 255 does not fit in int8
    assert fast_convolutions(conv_model(tmp_path / "wide.onnx", wide, 0, (1, 1))) is None
    assert fast_convolutions(tmp_path / "missing.onnx") is None  # (the plain load reports it)


def test_kokoro_speaks_the_same_with_every_convolution_on_the_int8_gemm(kit: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = kit / "kokoro"
    graph = fast_convolutions(folder / MODEL)
    assert graph is not None
    ops = [n.op_type for n in onnx.load_from_string(graph).graph.node]
    assert ops.count("ConvInteger") == 0 and ops.count("MatMulInteger") >= 87 + 148  # (148 were MatMulInteger)
    fast = KokoroVoice(folder, TtsConfig(voice="jf_alpha"))
    monkeypatch.setattr("os1d.audio.tts.fast_convolutions", lambda path: None)
    plain = KokoroVoice(folder, TtsConfig(voice="jf_alpha"))
    for text in ("Sure, I can set that timer for you.", "Good morning! It is seven thirty."):
        ours, theirs = fast.synthesize(text), plain.synthesize(text)
        assert len(ours) == len(theirs) > 24000 * 0.8
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
