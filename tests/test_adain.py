"""Kokoro's adaptive instance norms with their style gain folded into one per-channel factor (os1d.audio.adain):
the same products to float32 rounding, and the same voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from os1d.audio.adain import fold_norm_gains
from os1d.audio.conv_integer import voice_graph
from os1d.audio.tts import MODEL
from voice_graphs import assert_same_speech, graph_without, pairs


def norm_model() -> onnx.ModelProto:
    """y = g·(x − μ)/√(σ² + ε) + b over time, as Kokoro's export writes its AdaIN, beside x / √w (a Div by a
    Sqrt that is no norm's)."""
    def node(op: str, ins: list[str], out: str, **attrs: object) -> onnx.NodeProto:
        return helper.make_node(op, ins, [out], **attrs)

    nodes = [node("ReduceMean", ["x", "axes"], "mean", keepdims=1), node("Sub", ["x", "mean"], "centred"),
             node("Mul", ["centred", "centred"], "squares"), node("ReduceMean", ["squares", "axes"], "variance"),
             node("Add", ["variance", "epsilon"], "variance_e"), node("Sqrt", ["variance_e"], "deviation"),
             node("Div", ["centred", "deviation"], "normalised"), node("Mul", ["gain", "normalised"], "scaled"),
             node("Add", ["scaled", "bias"], "y"),
             node("Sqrt", ["w"], "root"), node("Div", ["x", "root"], "ratio"), node("Mul", ["ratio", "gain"], "other")]
    constants = [numpy_helper.from_array(np.array([2], np.int64), "axes"),
                 numpy_helper.from_array(np.array(1e-5, np.float32), "epsilon")]
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("x", "gain", "bias", "w")]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("y", "other")]
    model = helper.make_model(helper.make_graph(nodes, "adain", inputs, outputs, constants),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def test_a_norms_gain_multiplies_the_tensor_once_with_the_same_result() -> None:
    rng = np.random.default_rng(5)
    feed = {"x": rng.normal(0.3, 2.0, (1, 16, 3000)).astype(np.float32),
            "gain": rng.normal(1.0, 0.5, (1, 16, 1)).astype(np.float32),
            "bias": rng.normal(0.0, 0.5, (1, 16, 1)).astype(np.float32),
            "w": rng.uniform(0.5, 2.0, (1, 16, 3000)).astype(np.float32)}
    feed["x"][0, 3] = 0  # (a silent channel: σ = √ε)

    def run(model: onnx.ModelProto) -> list[np.ndarray]:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)

    model = norm_model()
    before = run(model)
    assert fold_norm_gains(model.graph) == 1
    divides = [list(n.input) for n in model.graph.node if n.op_type == "Div"]
    assert divides == [["gain", "deviation"], ["x", "root"]]  # (per channel now; the other Div as it was)
    after = run(model)
    np.testing.assert_allclose(after[0], before[0], rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(after[1], before[1])
    assert fold_norm_gains(model.graph) == 0  # (done once)


def test_the_voice_with_its_norms_gains_folded_says_the_same(kit: Path, whisper) -> None:  # type: ignore
    """Its integer layers round a few activations the other way, so the audio is not identical; it is the same
    speech, as loud, frame by frame (against the same graph dividing by σ, then multiplying by g)."""
    folder = kit / "kokoro"
    graph = onnx.load_from_string(voice_graph(folder / MODEL))
    assert sum(1 for n in graph.graph.node if n.output[0].endswith("/gain_over_deviation")) == 62
    for text, mine, reference in pairs(folder, graph.SerializeToString(), graph_without(folder, "norms")):
        assert_same_speech(text, mine, reference, whisper, rms=0.25, typical_db=0.7, most_db=2.0)
