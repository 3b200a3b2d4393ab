"""Kokoro's int8 graph as this CPU runs it exactly: its convolutions as im2col + MatMulInteger on int8 weights
where onnxruntime's int8 GEMM sums exactly, its int8-weight matmuls on uint8 weights where that GEMM saturates
(x86 without VNNI); the same integers, the same voice."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from os1d.audio.conv_integer import int8_convolutions, integer_graph, unsigned_weights, voice_graph
from os1d.audio.tts import MODEL, KokoroVoice
from os1d.config import TtsConfig
from os1d.onnx import int8_gemm_is_exact


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
    graph = int8_convolutions(path)
    assert graph is not None
    ops = [n.op_type for n in onnx.load_from_string(graph).graph.node]
    assert "ConvInteger" not in ops and "MatMulInteger" in ops
    exact = ReferenceEvaluator(onnx.load_from_string(graph))  # the graph's own arithmetic, on any CPU
    for length in (40, 333):
        x = rng.integers(0, 256, (1, 16, length), dtype=np.uint8)
        expected = run(path, x, 77)
        np.testing.assert_array_equal(exact.run(None, {"x": x, "x_zero": np.array(77, np.uint8)})[0], expected)
        if int8_gemm_is_exact():  # (and on onnxruntime's kernels, where os1d uses them)
            np.testing.assert_array_equal(run(graph, x, 77), expected)


def test_a_convolution_whose_weights_int8_cannot_hold_is_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)
    wide[0, 0, 0], wide[0, 0, 1] = 0, 255  # minus zero point 0: 255 does not fit in int8
    assert int8_convolutions(conv_model(tmp_path / "wide.onnx", wide, 0, (1, 1))) is None
    assert int8_convolutions(tmp_path / "missing.onnx") is None  # (the plain load reports it)
    assert voice_graph(tmp_path / "missing.onnx") is None


@pytest.mark.parametrize("zero", [None, np.int8(-3), np.array([0, 5, -7, 127, -128, 1], np.int8)])
def test_a_matmul_on_int8_weights_gives_the_same_integers_on_uint8_weights(tmp_path: Path,
                                                                          zero: np.ndarray | None) -> None:
    rng = np.random.default_rng(2)
    w = rng.integers(-128, 128, (96, 6), dtype=np.int8)
    w[:, 0] = 127  # (with 255s in the input: what saturates a 16-bit sum of two products)
    inputs = ["a", "w", "a_zero"] + (["w_zero"] if zero is not None else [])
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(np.asarray(zero), "w_zero")]
                                                 if zero is not None else [])
    graph = helper.make_graph([helper.make_node("MatMulInteger", inputs, ["y"])], "mm",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, None, 96]),
                               helper.make_tensor_value_info("a_zero", TensorProto.UINT8, [])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "mm.onnx"))
    unsigned = unsigned_weights(tmp_path / "mm.onnx")
    assert unsigned is not None
    assert [numpy_helper.to_array(t).dtype for t in onnx.load_from_string(unsigned).graph.initializer] == [np.uint8] * 2
    a = rng.integers(0, 256, (1, 30, 96), dtype=np.uint8)
    a[0, :4] = 255
    session = ort.InferenceSession(unsigned, providers=["CPUExecutionProvider"])
    got = session.run(None, {"a": a, "a_zero": np.array(9, np.uint8)})[0]
    exact = (a.astype(np.int64) - 9) @ (w.astype(np.int64) - (0 if zero is None else np.asarray(zero, np.int64)))
    np.testing.assert_array_equal(got, exact)


def test_the_int8_gemm_is_used_only_where_onnxruntime_sums_its_products_exactly() -> None:
    """x86 CPUs without VNNI add u8 × s8 products in pairs in 16 bits, which saturates (255 × 127 × 2 > 32,767):
    the check must say so exactly where random products come out wrong."""
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 256, (1, 50, 96), dtype=np.uint8), rng.integers(-128, 128, (96, 40), dtype=np.int8)
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("a", TensorProto.UINT8, a.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              [numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"a": a})[0]
    assert int8_gemm_is_exact() == np.array_equal(got, a.astype(np.int64) @ b.astype(np.int64))


def test_kokoro_speaks_exactly_on_this_cpu(kit: Path) -> None:
    """os1d's integer layers against the export run on the kernels that sum exactly on every CPU (uint8 weights
    throughout); on a CPU with an exact int8 GEMM, that is the fast convolutions' voice. (The voice's graph also
    computes its Snakes without Sin: tests/test_snake.py.)"""
    folder = kit / "kokoro"
    graph = voice_graph(folder / MODEL)
    assert graph is not None
    nodes = onnx.load_from_string(graph).graph
    ops = [n.op_type for n in nodes.node]
    if int8_gemm_is_exact():
        assert ops.count("ConvInteger") == 0 and ops.count("MatMulInteger") >= 87 + 148  # (148 were MatMulInteger)
    else:  # the convolutions stay; no matmul is left on int8 weights
        weights = {t.name: t.data_type for t in nodes.initializer}
        assert ops.count("ConvInteger") == 87
        assert {weights[n.input[1]] for n in nodes.node if n.op_type == "MatMulInteger"} == {TensorProto.UINT8}
    assert ops.count("Sin") == 3  # (the harmonic source's and the inverse STFT's; the 48 Snakes' are polynomials)
    assert "STFT" not in ops  # (a convolution: tests/test_stft.py)
    ours = KokoroVoice(folder, TtsConfig(voice="jf_alpha"), graph=integer_graph(folder / MODEL))
    exact = KokoroVoice(folder, TtsConfig(voice="jf_alpha"), graph=unsigned_weights(folder / MODEL))
    for text in ("Sure, I can set that timer for you.", "Good morning! It is seven thirty."):
        mine, reference = ours.synthesize(text), exact.synthesize(text)
        assert len(mine) == len(reference) > 24000 * 0.8
        np.testing.assert_allclose(mine, reference, atol=1e-4)


def test_the_voice_graph_is_made_once_into_the_cache_and_loaded_from_there(kit: Path, tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    folder, cache, cfg = kit / "kokoro", tmp_path / "cache", TtsConfig(voice="jf_alpha")
    with caplog.at_level(logging.INFO, logger="os1d"):
        KokoroVoice(folder, cfg, cache=cache)
    assert caplog.text.count("making the voice's graph") == 1
    made = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    assert [p.name.rsplit("-", 1)[0] for p in cache.iterdir()] == [MODEL.removesuffix(".onnx")]
    assert sorted(p.name for p in made if p.is_file()) == ["model.onnx", "model.onnx_data"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="os1d"):
        cached = KokoroVoice(folder, cfg, cache=cache)
    assert "making" not in caplog.text
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == made  # (read, not made again)
    assert [n.op_type for n in onnx.load(str(next(cache.glob("*/model.onnx")))).graph.node] == \
        [n.op_type for n in onnx.load_from_string(voice_graph(folder / MODEL)).graph.node]
    in_memory = KokoroVoice(folder, cfg, graph=voice_graph(folder / MODEL))
    text = "Sure, I can set that timer for you."
    np.testing.assert_array_equal(cached.synthesize(text), in_memory.synthesize(text))


def test_a_damaged_cached_voice_graph_is_made_again_and_the_voice_still_speaks(kit: Path, tmp_path: Path,
                                                                               caplog: pytest.LogCaptureFixture) -> None:
    folder, cache, cfg = kit / "kokoro", tmp_path / "cache", TtsConfig(voice="jf_alpha")
    KokoroVoice(folder, cfg, cache=cache)
    graph = next(cache.glob("*/model.onnx"))
    graph.write_bytes(b"not a graph")
    with caplog.at_level(logging.WARNING, logger="os1d"):
        voice = KokoroVoice(folder, cfg, cache=cache)  # (made in memory this time)
    assert "cannot be loaded" in caplog.text
    assert len(voice.synthesize("Hello there.")) > 24000 * 0.4
    assert not graph.exists()  # forgotten: the next start makes it again
    KokoroVoice(folder, cfg, cache=cache)
    assert onnx.load(str(graph)).graph.node


def test_a_cache_that_cannot_be_written_still_gives_the_voice(kit: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="os1d"):
        voice = KokoroVoice(kit / "kokoro", TtsConfig(voice="jf_alpha"), cache=blocked / "cache")
    assert "could not keep the voice's graph" in caplog.text
    assert len(voice.synthesize("Hello there.")) > 24000 * 0.4
