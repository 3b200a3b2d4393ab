"""Kokoro's STFT as a convolution (os1d.audio.stft): the same sums as onnxruntime's STFT operator, the phase as
Kokoro's PyTorch model takes it (torch.angle; numpy's np.angle is the same), and the same voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from os1d.audio.conv_integer import voice_graph
from os1d.audio.tts import MODEL
from voice_graphs import assert_same_speech, graph_without, pairs

SIZE, STEP = 20, 5
WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(SIZE) / SIZE)).astype(np.float32)  # (Kokoro's periodic Hann)


def export_model() -> onnx.ModelProto:
    """Magnitude and phase of a signal's STFT as Kokoro's export computes them (its atan2 from Atan and signs)."""
    def node(op: str, ins: list[str], out: str, **attrs: object) -> onnx.NodeProto:
        return helper.make_node(op, ins, [out], **attrs)

    nodes = [node("STFT", ["signal", "step", "window", "length"], "stft", onesided=1),
             node("Transpose", ["stft"], "bins_first", perm=[0, 2, 1, 3]),
             node("Gather", ["bins_first", "zero_index"], "real", axis=3),
             node("Gather", ["bins_first", "one_index"], "imag", axis=3),
             node("Pow", ["real", "two"], "real2"), node("Pow", ["imag", "two"], "imag2"),
             node("Add", ["real2", "imag2"], "power"), node("Sqrt", ["power"], "magnitude"),
             node("Div", ["imag", "real"], "ratio"), node("Atan", ["ratio"], "atan"),
             node("Greater", ["imag", "zero"], "upper"), node("Less", ["real", "zero"], "left"),
             node("Add", ["atan", "pi"], "plus"), node("Sub", ["atan", "pi"], "minus"),
             node("Where", ["upper", "plus", "minus"], "turned"), node("Where", ["left", "turned", "atan"], "phase")]
    constants = {"step": np.array(STEP, np.int64), "window": WINDOW, "length": np.array(SIZE, np.int64),
                 "zero_index": np.array(0, np.int64), "one_index": np.array(1, np.int64),
                 "two": np.array(2, np.float32), "zero": np.array(0, np.float32), "pi": np.array(np.pi, np.float32)}
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
               for name in ("real", "imag", "magnitude", "phase")]
    graph = helper.make_graph(nodes, "stft", [helper.make_tensor_value_info("signal", TensorProto.FLOAT, [1, None])],
                              outputs, [numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run(model: onnx.ModelProto, signal: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"signal": signal[None].astype(np.float32)})


def spectrum(signal: np.ndarray) -> np.ndarray:
    """numpy's (as torch.stft's) [bins, frames], in double precision."""
    frames = np.lib.stride_tricks.sliding_window_view(signal.astype(np.float64), SIZE)[::STEP]
    return np.fft.rfft(frames * WINDOW, axis=1).T


def rewritten() -> onnx.ModelProto:
    from os1d.audio.stft import conv_stft

    model = export_model()
    assert conv_stft(model.graph) == 1
    ops = [n.op_type for n in model.graph.node]
    assert "STFT" not in ops and ops.count("Conv") == 1
    return model


def test_the_convolution_gives_the_stft_operators_sums() -> None:
    rng = np.random.default_rng(3)
    signal = np.tanh(rng.normal(0, 0.5, 24_001) + np.sin(np.arange(24_001) * 0.05))
    before, after = run(export_model(), signal), run(rewritten(), signal)
    exact = spectrum(signal)
    assert after[0].shape == before[0].shape == (1, SIZE // 2 + 1, exact.shape[1])
    for part, reference in ((0, exact.real), (1, exact.imag)):
        np.testing.assert_allclose(after[part][0], before[part][0], rtol=0, atol=2e-5)
        np.testing.assert_allclose(after[part][0], reference, rtol=0, atol=2e-5)
    np.testing.assert_allclose(after[2][0], np.abs(exact), rtol=0, atol=2e-5)
    clear = np.abs(exact) > 1e-2  # (where the phase is not rounding noise)
    turned = np.angle(np.exp(1j * (after[3][0] - np.angle(exact))))
    assert np.abs(turned[clear]).max() < 1e-3


def test_the_phase_of_a_real_bin_is_torch_angles_and_never_nan() -> None:
    """The DC and Nyquist bins are real: π where negative (the export's atan2 gives −π for an exact 0, and the
    STFT operator leaves ±1e-8 of noise, so a coin toss); 0/0 (a silent source) is 0, not NaN."""
    model = rewritten()
    t = np.arange(6_001)
    for signal in (np.full(6_001, -0.4), np.full(6_001, 0.3), np.sin(t * np.pi / 2) - 0.2, np.cos(t * np.pi) * 0.5,
                   np.zeros(6_001)):
        phase = run(model, signal)[3][0]
        exact = spectrum(signal)
        assert not np.isnan(phase).any()
        for k in (0, SIZE // 2):  # (where the real part is itself rounding noise, so is its sign)
            clear = np.abs(exact[k].real) > 1e-4
            np.testing.assert_array_equal(phase[k][clear], np.angle(exact[k][clear].real).astype(np.float32))
    assert np.isnan(run(export_model(), np.zeros(6_001))[3]).all()  # (the export's own: 0/0)
    assert run(model, np.full(6_001, -0.4))[3][0, 0].min() == np.float32(np.pi)


def test_the_voice_with_its_stft_as_a_convolution_says_the_same(kit: Path, whisper) -> None:  # type: ignore
    """Against the same graph with the STFT operator: the same speech, as loud. (Not the same samples: the
    vocoder's noise convolutions take the phase of real bins, π now where the operator's rounding chose.)"""
    folder = kit / "kokoro"
    for text, mine, reference in pairs(folder, voice_graph(folder / MODEL), graph_without(folder, "stft")):
        assert abs(10 * np.log10(np.mean(mine ** 2) / np.mean(reference ** 2))) < 1.0  # dB, the whole
        assert_same_speech(text, mine, reference, whisper, rms=0.35, typical_db=2.0, most_db=6.0)
