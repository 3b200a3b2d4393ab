"""Kokoro's Snake activations as a polynomial instead of onnxruntime's single-threaded Sin (os1d.audio.snake):
far more exact than the int8 rounding that follows them, and the same voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from os1d.audio.conv_integer import voice_graph
from os1d.audio.snake import polynomial_snakes
from os1d.audio.tts import MODEL
from voice_graphs import assert_same_speech, graph_without, pairs

ALPHAS = np.array([0.05, 0.5, 1.0, 3.7, 20.0], np.float32)[None, :, None]


def snake_model(square_out: bool = False) -> object:
    """y = x + sin²(αx)·(1/α) as Kokoro's export writes it (its square also an output where `square_out`), beside
    a sine that is not a Snake's (read by a Mul, not squared)."""
    nodes = [helper.make_node("Mul", ["alpha", "x"], ["ax"]), helper.make_node("Sin", ["ax"], ["sine"]),
             helper.make_node("Pow", ["sine", "two"], ["square"]),
             helper.make_node("Mul", ["inverse", "square"], ["d"]),
             helper.make_node("Add", ["x", "d"], ["y"]),
             helper.make_node("Sin", ["x"], ["phase"]), helper.make_node("Mul", ["phase", "two"], ["other"])]
    names = ("y", "other", "square") if square_out else ("y", "other")
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names]
    weights = [numpy_helper.from_array(ALPHAS, "alpha"), numpy_helper.from_array(np.array(2, np.float32), "two"),
               numpy_helper.from_array(1 / ALPHAS, "inverse")]
    graph = helper.make_graph(nodes, "snake", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, None])],
                              outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run(model: object, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore
    return session.run(None, {"x": x})


X = np.linspace(-60, 60, 200_001, dtype=np.float32)[None, None, :].repeat(ALPHAS.size, axis=1)
AX = ALPHAS.astype(np.float64) * X
EXACT = np.sin(AX) ** 2


def test_a_snake_without_sin_has_its_one_over_alpha_folded_in() -> None:
    model = snake_model()
    _, other = run(model, X)
    assert polynomial_snakes(model.graph) == 1  # type: ignore[attr-defined]
    ops = [node.op_type for node in model.graph.node]  # type: ignore[attr-defined]
    assert ops.count("Sin") == 1 and "Pow" not in ops  # (the other sine is kept)
    assert not {"alpha", "inverse"} & {t.name for t in model.graph.initializer}  # type: ignore[attr-defined]
    y, other_now = run(model, X)
    # P's own error, over α, and float32's rounding of x + …
    error = np.abs(y - (X + EXACT / ALPHAS))
    assert np.all(error <= 6.3e-5 / ALPHAS + 4e-6 * (1 + np.abs(X))), (error / (6.3e-5 / ALPHAS)).max()
    np.testing.assert_array_equal(other_now, other)


def test_a_snake_whose_square_is_read_elsewhere_keeps_it() -> None:
    """P's error in sin² (degree 3: 6.3e-5; float32's rounding of αx grows with it), where nothing is folded."""
    model = snake_model(square_out=True)
    assert polynomial_snakes(model.graph) == 1  # type: ignore[attr-defined]
    y, _, square = run(model, X)
    assert np.all(np.abs(square - EXACT) <= 6.3e-5 + 2e-7 * np.abs(AX))
    assert np.abs(square - EXACT).max() > 1e-5  # (a degree-3 polynomial, not a sine)
    np.testing.assert_allclose(y, X + EXACT / ALPHAS, rtol=0, atol=2e-3)


def test_the_voice_with_polynomial_snakes_says_the_same_as_the_exact_one(kit: Path, whisper) -> None:  # type: ignore
    """Its integer layers round a few activations the other way, so the audio is not identical; it is the same
    speech, as loud, frame by frame (against the same graph with onnxruntime's Sin)."""
    folder = kit / "kokoro"
    for text, mine, reference in pairs(folder, voice_graph(folder / MODEL), graph_without(folder, "snakes")):
        assert_same_speech(text, mine, reference, whisper, rms=0.25, typical_db=0.7, most_db=2.0)
