"""4-bit matmuls on int8 weights: made once, cached, remade when the source or the cache changes."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_graph_tuning import VOCAB, WIDTH, decoder_like

from os1d import graph_cache
from os1d.agent import int8_weights
from os1d.agent.ultravox_parts import load_part

PART = "decoder_model_merged"


def q4_folder(tmp_path: Path, symmetric: bool = True, outlier: bool = False) -> Path:
    """A model folder with a decoder-like q4 graph (two 4-bit matmuls, weights in an external file, as the real
    exports are stored); outlier: one output channel of the first matmul with a block of very large weights."""
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.2, (WIDTH, WIDTH)).astype(np.float32)
    if outlier:
        w1[:32, 5] *= 200.0  # channel 5: one block of huge weights, the rest ordinary
    inits = [numpy_helper.from_array(w1, "w1"),
             numpy_helper.from_array(rng.normal(0, 0.2, (WIDTH, VOCAB)).astype(np.float32), "lm_head")]
    nodes = [helper.make_node("MatMul", ["inputs_embeds", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("MatMul", ["hr", "lm_head"], ["logits"])]
    graph = helper.make_graph(
        nodes, "decoder", [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, [1, "seq", WIDTH])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, VOCAB])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    quant = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=symmetric)
    quant.process()
    folder = tmp_path / "model"
    (folder / "onnx").mkdir(parents=True)
    onnx.save(quant.model.model, str(folder / "onnx" / f"{PART}_q4.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location=f"{PART}_q4.onnx_data", size_threshold=0)
    return folder


def ops(session_model: Path) -> list[str]:
    return sorted(n.op_type for n in onnx.load(str(session_model), load_external_data=False).graph.node
                  if "MatMul" in n.op_type)


def load(folder: Path, cache: Path | None):  # type: ignore[no-untyped-def]
    return load_part(folder, PART, "q4", ["CPUExecutionProvider"], int8_cache=cache)


def logits(session, seed: int = 3) -> np.ndarray:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(seed).normal(0, 1, (1, 6, WIDTH)).astype(np.float32)
    return session.run(None, {"inputs_embeds": x})[0][0, -1]


@pytest.mark.parametrize("symmetric", [True, False])
def test_matmuls_run_on_int8_weights_made_once_and_match_the_4_bit_ones(tmp_path: Path, symmetric: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder, cache = q4_folder(tmp_path, symmetric), tmp_path / "cache"
    four_bit, int8 = logits(load(folder, None)), logits(load(folder, cache))
    made = list(cache.iterdir())
    assert len(made) == 1 and made[0].name.startswith(f"{PART}_q4-")
    assert ops(made[0] / graph_cache.MODEL) == ["MatMulInteger"] * 2
    assert not np.array_equal(int8, four_bit)  # the int8 kernels really ran
    np.testing.assert_allclose(int8, four_bit, atol=0.03 * np.abs(four_bit).max())
    assert np.corrcoef(int8, four_bit)[0, 1] > 0.999

    def never(*args: object) -> int:
        raise AssertionError("converted again")

    monkeypatch.setattr(int8_weights, "_convert", never)  # a second load reads the cache
    np.testing.assert_array_equal(logits(load(folder, cache)), int8)


def test_the_int8_products_are_summed_exactly_even_without_vnni(tmp_path: Path) -> None:
    """x86 CPUs without VNNI add each pair of u8 × s8 products in 16 bits; 8-bit activations would saturate there
    (255 × 127 twice). onnxruntime's results must be the graph's own arithmetic (onnx's reference evaluator)."""
    from onnx.reference import ReferenceEvaluator

    folder, cache = q4_folder(tmp_path), tmp_path / "cache"
    session = load(folder, cache)
    model = next(cache.iterdir()) / graph_cache.MODEL
    x = np.random.default_rng(8).normal(0, 1, (1, 12, WIDTH)).astype(np.float32)
    x[0, :, ::7] *= 40.0  # a few large activations per token, as real models have
    ours = session.run(None, {"inputs_embeds": x})[0]
    exact = ReferenceEvaluator(str(model)).run(None, {"inputs_embeds": x})[0]
    np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-4 * np.abs(exact).max())


def test_a_changed_source_is_converted_again_and_its_old_weights_go(tmp_path: Path) -> None:
    folder, cache = q4_folder(tmp_path), tmp_path / "cache"
    load(folder, cache)
    first = list(cache.iterdir())
    data = folder / "onnx" / f"{PART}_q4.onnx_data"
    data.write_bytes(data.read_bytes())  # (a model pulled again: new file, new time)
    load(folder, cache)
    second = list(cache.iterdir())
    assert len(first) == len(second) == 1 and first != second


def test_a_damaged_cache_is_made_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder, cache = q4_folder(tmp_path), tmp_path / "cache"
    good = logits(load(folder, cache))
    data = next(cache.iterdir()) / graph_cache.DATA
    size = data.stat().st_size
    data.write_bytes(data.read_bytes()[: size // 3])  # cut short, as by a crash or a full disk
    with caplog.at_level(logging.WARNING, logger="os1d"):
        again = logits(load(folder, cache))
    assert "making them again" in caplog.text
    np.testing.assert_array_equal(again, good)
    assert (next(cache.iterdir()) / graph_cache.DATA).stat().st_size == size


def test_a_model_with_nothing_to_convert_is_remembered_and_crashed_conversions_are_cleared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, cache = q4_folder(tmp_path), tmp_path / "cache"
    cache.mkdir()
    gone = cache / f".{PART}_q4-0123456789abcdef.999999999.tmp"  # a conversion killed midway (no such process)
    (gone / "model.onnx_data").parent.mkdir()
    (gone / "model.onnx_data").write_bytes(b"half")
    monkeypatch.setattr(int8_weights, "MAX_NOISE", 0.0)  # every matmul keeps its 4 bits
    four_bit = logits(load(folder, None))
    np.testing.assert_array_equal(logits(load(folder, cache)), four_bit)
    assert not gone.exists()
    assert [f.name for f in next(cache.iterdir()).iterdir()] == [graph_cache.NOTHING]

    def never(*args: object) -> int:
        raise AssertionError("tried again")

    monkeypatch.setattr(int8_weights, "_convert", never)
    np.testing.assert_array_equal(logits(load(folder, cache)), four_bit)


def test_a_channel_int8_cannot_hold_keeps_its_4_bit_matmul(tmp_path: Path) -> None:
    folder, cache = q4_folder(tmp_path, outlier=True), tmp_path / "cache"
    four_bit, int8 = logits(load(folder, None)), logits(load(folder, cache))
    assert ops(next(cache.iterdir()) / graph_cache.MODEL) == ["MatMulInteger", "MatMulNBits"]
    np.testing.assert_allclose(int8, four_bit, atol=0.03 * np.abs(four_bit).max())


def test_nothing_is_made_without_a_cache_folder_or_without_4_bit_matmuls(tmp_path: Path) -> None:
    folder, cache = q4_folder(tmp_path), tmp_path / "cache"
    load(folder, None)
    assert not cache.exists()
    plain = decoder_like(tmp_path / "fp32.onnx", q4=False)
    assert int8_weights.int8_model(plain, plain.read_bytes(), cache) is None
    assert not cache.exists()


def test_a_cache_that_cannot_be_written_falls_back_to_the_4_bit_weights(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    folder = q4_folder(tmp_path)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="os1d"):
        out = logits(load(folder, blocked / "cache"))
    assert "using its 4-bit weights" in caplog.text
    np.testing.assert_array_equal(out, logits(load(folder, None)))


def test_on_a_real_transformer_int8_weights_stay_as_close_to_its_float_outputs_as_its_4_bit_weights(
        tmp_path: Path, kit: Path) -> None:
    """MiniLM's real weights (real activations, outliers and all) in 4 bits, then on int8 weights: sentence
    embeddings as near the float model's as the 4-bit model's own."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from os1d.agent.graph_tuning import tuned
    from os1d.memory.embed import MiniLMEmbedder

    def folder(name: str, model: Path) -> Path:
        out = tmp_path / name
        (out / "onnx").mkdir(parents=True)
        for f in ("tokenizer.json", "config.json", "sentence_bert_config.json"):
            shutil.copy(kit / "minilm" / f, out / f)
        for f in model.parent.glob(model.name + "*"):
            shutil.copy(f, out / "onnx" / f.name.replace(model.name, "model.onnx"))
        return out

    quant = MatMulNBitsQuantizer(onnx.load(str(kit / "minilm" / "onnx" / "model.onnx")), block_size=32,
                                 is_symmetric=True)
    quant.process()
    q4 = tmp_path / "q4.onnx"
    onnx.save(quant.model.model, str(q4))
    q4_level4 = tmp_path / "q4_level4.onnx"
    q4_level4.write_bytes(tuned(q4) or q4.read_bytes())  # the 4-bit kernel as os1d runs it (int8 compute)
    converted = int8_weights.int8_model(q4, q4_level4.read_bytes(), tmp_path / "cache")
    assert converted is not None
    made = ops(converted)  # most on int8; a few of BERT's matmuls have channels of huge weights and keep 4 bits
    assert made.count("MatMulInteger") >= 0.8 * 36 and made.count("MatMulInteger") + made.count("MatMulNBits") == 36
    sentences = ["My name is Theo and I live in Lisbon.", "Do you remember what I told you about my sister?",
                 "The meeting moved to Thursday at three.", "I'm allergic to peanuts, so no satay for me.",
                 "Remind me to water the plants before the weekend.", "hey jarvis what time is it"]
    ref = MiniLMEmbedder(kit / "minilm").embed(sentences)
    cos = {name: (MiniLMEmbedder(folder(name, model)).embed(sentences) * ref).sum(axis=1)
           for name, model in (("q4", q4_level4), ("int8", converted))}
    print({k: np.round(v, 4).tolist() for k, v in cos.items()})
    assert cos["q4"].min() > 0.95 and cos["int8"].min() > 0.95
    assert (1 - cos["int8"]).mean() < 1.5 * (1 - cos["q4"]).mean() + 0.002, cos


def test_the_daemon_loads_a_4_bit_model_on_int8_weights_cached_in_the_user_cache(
        tmp_path: Path, kit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config → the speech LLM's loader → the cache under the user's cache folder; llm.int8_weights = false
    loads the 4-bit weights as they are."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from os1d.config import parse_config
    from os1d.lanes import load_speech_llm

    folder = tmp_path / "ultravox"
    shutil.copytree(kit / "ultravox", folder)
    encoder = folder / "onnx" / "audio_encoder_q4.onnx"  # the stand-in's one matmul, in 4 bits
    quant = MatMulNBitsQuantizer(onnx.load(str(encoder)), block_size=32, is_symmetric=True)
    quant.process()
    onnx.save(quant.model.model, str(encoder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    samples = (np.random.default_rng(4).normal(0, 3000, 32000)).astype(np.int16)
    int8 = load_speech_llm(parse_config({}), folder).encode_audio(samples)
    made = list((tmp_path / "xdg" / "os1d" / "int8").iterdir())
    assert [m.name.split("-")[0] for m in made] == ["audio_encoder_q4"]
    four_bit = load_speech_llm(parse_config({"llm": {"int8_weights": False}}), folder).encode_audio(samples)
    assert not np.array_equal(int8, four_bit)
    np.testing.assert_allclose(int8, four_bit, atol=0.03 * np.abs(four_bit).max())
