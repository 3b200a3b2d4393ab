"""Kokoro's Snake activations as a polynomial instead of onnxruntime's single-threaded Sin (os1d.audio.snake):
as exact as float32 allows, and the same voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from os1d.audio.chunk import resample
from os1d.audio.conv_integer import int8_convolutions, unsigned_weights, voice_graph
from os1d.audio.snake import polynomial_snakes
from os1d.audio.tts import MODEL, KokoroVoice
from os1d.config import TtsConfig
from os1d.onnx import int8_gemm_is_exact

ALPHAS = np.array([0.05, 0.5, 1.0, 3.7, 20.0], np.float32)[None, :, None]


def snake_model() -> object:
    """y = x + sin²(αx)/α as Kokoro's export writes it (its square also an output), beside a sine that is not a
    Snake's (read by a Mul, not squared)."""
    nodes = [helper.make_node("Mul", ["alpha", "x"], ["ax"]), helper.make_node("Sin", ["ax"], ["sine"]),
             helper.make_node("Pow", ["sine", "two"], ["square"]),
             helper.make_node("Mul", ["inverse", "square"], ["d"]),
             helper.make_node("Add", ["x", "d"], ["y"]),
             helper.make_node("Sin", ["x"], ["phase"]), helper.make_node("Mul", ["phase", "two"], ["other"])]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("y", "square", "other")]
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


def test_a_snake_without_sin_is_as_exact_as_float32_allows() -> None:
    model = snake_model()
    x = np.linspace(-60, 60, 200_001, dtype=np.float32)[None, None, :].repeat(ALPHAS.size, axis=1)
    _, _, other = run(model, x)
    assert polynomial_snakes(model.graph) == 1  # type: ignore[attr-defined]
    ops = [node.op_type for node in model.graph.node]  # type: ignore[attr-defined]
    assert ops.count("Sin") == 1 and "Pow" not in ops  # (the other sine is kept)
    assert "alpha" not in {t.name for t in model.graph.initializer}  # type: ignore[attr-defined]
    y, square, other_now = run(model, x)
    ax = ALPHAS.astype(np.float64) * x
    exact = np.sin(ax) ** 2
    # float32's own rounding: of sin² itself, and of αx (which grows with it)
    assert np.all(np.abs(square - exact) <= 3e-7 + 2e-7 * np.abs(ax))
    np.testing.assert_allclose(y, x + exact / ALPHAS, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(other_now, other)


def test_the_voice_with_polynomial_snakes_says_the_same_as_the_exact_one(kit: Path, whisper) -> None:  # type: ignore
    """Its integer layers round a few activations the other way, so the audio is not identical; it is the same
    speech, as loud, frame by frame."""
    folder = kit / "kokoro"
    graph = voice_graph(folder / MODEL)
    assert graph is not None
    exact_graph = int8_convolutions(folder / MODEL) if int8_gemm_is_exact() else unsigned_weights(folder / MODEL)
    for voice in ("jf_alpha", "jm_kumo"):
        ours = KokoroVoice(folder, TtsConfig(voice=voice), graph=graph)
        exact = KokoroVoice(folder, TtsConfig(voice=voice), graph=exact_graph)
        for text in ("Sure, I can set that timer for you.", "Good morning! I remember that you live in Lisbon."):
            mine, reference = (untrimmed(v, text, voice) for v in (ours, exact))
            assert len(mine) == len(reference) > 24000
            assert np.sqrt(np.mean((mine - reference) ** 2) / np.mean(reference ** 2)) < 0.1
            level, level_exact = loudness(mine), loudness(reference)
            speech = level_exact > level_exact.max() - 30
            assert np.abs(level - level_exact)[speech].max() < 1.5  # dB, per 20 ms
            heard = [words(whisper.transcribe(pcm16k(audio))) for audio in (mine, reference)]
            assert heard[0] == heard[1], heard
            assert words(text).split()[-2] in heard[0].split()  # (timer, lisbon: what Whisper may mishear)


def untrimmed(kokoro: KokoroVoice, text: str, voice: str) -> np.ndarray:
    """The whole synthesis (kokoro-onnx trims the silence at both ends, and where a few samples of it differ,
    so does the length)."""
    return kokoro._kokoro.create(text, voice=voice, speed=1.0, lang="en-us", trim=False)[0]


def loudness(audio: np.ndarray) -> np.ndarray:
    frames = audio[: len(audio) // 480 * 480].reshape(-1, 480)
    return 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-10)


def words(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace()).split())


def pcm16k(audio: np.ndarray) -> np.ndarray:
    return resample(np.clip(audio * 32767, -32768, 32767).astype(np.int16), 24000)
