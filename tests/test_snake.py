"""Kokoro's Snake activations as a polynomial instead of onnxruntime's single-threaded Sin (os1d.audio.snake):
far more exact than the int8 rounding that follows them, and the same voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from os1d.audio.chunk import resample
from os1d.audio.conv_integer import int8_convolutions, unsigned_weights, voice_graph
from os1d.audio.snake import polynomial_snakes
from os1d.audio.stft import conv_stft
from os1d.audio.tts import MODEL, KokoroVoice
from os1d.config import TtsConfig
from os1d.onnx import int8_gemm_is_exact

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


def with_stft_as_conv(graph: bytes | None) -> bytes:
    model = onnx.load_from_string(graph)
    assert conv_stft(model.graph) == 1
    return model.SerializeToString()


def test_the_voice_with_polynomial_snakes_says_the_same_as_the_exact_one(kit: Path, whisper) -> None:  # type: ignore
    """Its integer layers round a few activations the other way, so the audio is not identical; it is the same
    speech, as loud, frame by frame. (The reference's STFT is the same convolution: tests/test_stft.py.)"""
    folder = kit / "kokoro"
    graph = voice_graph(folder / MODEL)
    assert graph is not None
    exact_graph = int8_convolutions(folder / MODEL) if int8_gemm_is_exact() else unsigned_weights(folder / MODEL)
    for voice in ("jf_alpha", "jm_kumo"):
        ours = KokoroVoice(folder, TtsConfig(voice=voice), graph=graph)
        exact = KokoroVoice(folder, TtsConfig(voice=voice), graph=with_stft_as_conv(exact_graph))
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
