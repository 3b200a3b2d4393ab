"""Graph rewrites at load: int8 4-bit matmuls and last-position logits, on small real ONNX graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from os1d.agent.graph_tuning import INT8_ACCURACY, tuned
from os1d.agent.ultravox_parts import load_part

WIDTH, VOCAB = 64, 96


def decoder_like(path: Path, q4: bool, keep_input: bool = False) -> Path:
    """inputs_embeds [1, seq, 64] → MatMul → Relu → LM head MatMul → ×0.5 → logits [1, seq, 96] (every position),
    the matmuls in 4 bits (MatMulNBits, accuracy level unset, as transformers.js writes q4) when q4."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.2, (WIDTH, WIDTH)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.2, (WIDTH, VOCAB)).astype(np.float32), "lm_head")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    nodes = [helper.make_node("MatMul", ["inputs_embeds", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("MatMul", ["hr", "lm_head"], ["raw"]),
             helper.make_node("Mul", ["raw", "half"], ["logits"])]
    inputs = [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, [1, "sequence_length", WIDTH])]
    if keep_input:
        inputs.append(helper.make_tensor_value_info("num_logits_to_keep", TensorProto.INT64, []))
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "sequence_length", VOCAB])
    graph = helper.make_graph(nodes, "decoder", inputs, [logits], [w1, w2, half])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if q4:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quant = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=True)
        quant.process()
        model = quant.model.model
    onnx.save(model, str(path))
    return path


def levels(graph: bytes | Path) -> list[int]:
    model = onnx.load_from_string(graph) if isinstance(graph, bytes) else onnx.load(str(graph))
    return [next((a.i for a in n.attribute if a.name == "accuracy_level"), 0)
            for n in model.graph.node if n.op_type == "MatMulNBits"]


def run(graph: bytes | Path, x: np.ndarray, keep: int = 1) -> np.ndarray:
    """The logits (of the last `keep` positions, where the graph takes num_logits_to_keep)."""
    source = graph if isinstance(graph, bytes) else str(graph)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    feed = {"inputs_embeds": x, "num_logits_to_keep": np.array(keep, dtype=np.int64)}
    return session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]


def test_q4_matmuls_get_int8_compute_and_logits_only_the_last_position(tmp_path: Path) -> None:
    path = decoder_like(tmp_path / "dec.onnx", q4=True)
    assert levels(path) == [0, 0]
    x = np.random.default_rng(1).normal(0, 1, (1, 7, WIDTH)).astype(np.float32)
    before = run(path, x)
    assert before.shape == (1, 7, VOCAB)

    graph = tuned(path)
    assert graph is not None and levels(graph) == [INT8_ACCURACY] * 2
    after = run(graph, x)
    assert after.shape == (1, 1, VOCAB)
    np.testing.assert_allclose(after[0, 0], before[0, -1], atol=0.05 * np.abs(before).max())
    assert not np.array_equal(after[0, 0], before[0, -1])  # int8 compute really ran (it rounds differently)

    exact = tuned(path, int8_matmul=False)  # the slice alone changes nothing of the rows kept
    assert exact is not None and levels(exact) == [0, 0]
    np.testing.assert_allclose(run(exact, x)[0, 0], before[0, -1], rtol=1e-6, atol=1e-6)
    # the last positions of a draft checked in the prefill, as many as asked for (0: all, as in transformers)
    for keep, rows in ((3, before[0, -3:]), (7, before[0]), (0, before[0])):
        np.testing.assert_allclose(run(exact, x, keep)[0], rows, rtol=1e-6, atol=1e-6)


def test_a_level_the_export_chose_and_exports_that_keep_one_position_are_left_alone(tmp_path: Path) -> None:
    plain = decoder_like(tmp_path / "fp32.onnx", q4=False, keep_input=True)  # no MatMulNBits, num_logits_to_keep
    assert tuned(plain) is None
    chosen = onnx.load(str(decoder_like(tmp_path / "q4.onnx", q4=True)))
    for node in chosen.graph.node:
        if node.op_type == "MatMulNBits":
            node.attribute.append(helper.make_attribute("accuracy_level", 1))
    chosen.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 1  # (declares one position)
    onnx.save(chosen, str(tmp_path / "chosen.onnx"))
    assert tuned(tmp_path / "chosen.onnx") is None


@pytest.mark.parametrize("int8", [True, False])
def test_load_part_runs_the_tuned_graph_with_its_weights_in_an_external_file(tmp_path: Path, int8: bool) -> None:
    """As the real exports are stored: graph and weights apart; the tuned graph still finds its weights."""
    folder = tmp_path / "model"
    (folder / "onnx").mkdir(parents=True)
    model = onnx.load(str(decoder_like(tmp_path / "dec.onnx", q4=True)))
    onnx.save(model, str(folder / "onnx" / "decoder_model_merged_q4.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="decoder_model_merged_q4.onnx_data", size_threshold=0)
    assert (folder / "onnx" / "decoder_model_merged_q4.onnx_data").stat().st_size > 1000
    session = load_part(folder, "decoder_model_merged", "q4", ["CPUExecutionProvider"], int8_matmul=int8)
    x = np.random.default_rng(2).normal(0, 1, (1, 5, WIDTH)).astype(np.float32)
    out = session.run(None, {"inputs_embeds": x, "num_logits_to_keep": np.array(1, dtype=np.int64)})[0]
    assert out.shape == (1, 1, VOCAB)
    np.testing.assert_allclose(out[0, 0], run(tmp_path / "dec.onnx", x)[0, -1], atol=0.05 * np.abs(out).max())
