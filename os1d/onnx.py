"""onnxruntime sessions created the same quiet, predictable way everywhere."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from .errors import UserError, first_line

log = logging.getLogger("os1d")


def cpu_session(path: Path, threads: int = 1, graph: bytes | None = None):  # -> onnxruntime.InferenceSession
    """A CPU session with a fixed thread count that sleeps, not spins, between calls; graph: the file's graph
    as rewritten at load (loaded instead of the file)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(graph if graph is not None else str(path), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except FileNotFoundError:
        raise UserError(f"model file {path} does not exist") from None
    except Exception as exc:  # onnxruntime raises its own types for damaged graphs
        raise UserError(
            f"model file {path} cannot be loaded ({first_line(exc)}); run `os1d models pull {path.parent.name} --force`"
        ) from None


@functools.cache
def int8_gemm_is_exact() -> bool:
    """Whether onnxruntime's u8 × s8 integer GEMM gives exact sums on this CPU. x86 CPUs without VNNI (AVX2 and
    AVX-512F alone) add each pair of u8 × s8 products in 16 bits (vpmaddubsw), which saturates: 255 × 127 twice
    is over 32,767. Kokoro's convolutions go onto this GEMM only where the products come out whole; elsewhere
    the voice's own int8 matmuls move to exact kernels (Ultravox's int8 weights take 7-bit inputs: exact on any
    CPU)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a = np.concatenate([np.full((2, 64), 255, np.uint8), rng.integers(0, 256, (14, 64), dtype=np.uint8)])
    b = np.concatenate([np.full((64, 2), 127, np.int8), np.full((64, 2), -128, np.int8),
                        rng.integers(-128, 128, (64, 12), dtype=np.int8)], axis=1)
    node = helper.make_node("MatMulInteger", ["a", "b", "a_zero"], ["y"])
    weights = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(0, np.uint8), "a_zero")]
    graph = helper.make_graph([node], "int8_gemm", [helper.make_tensor_value_info("a", TensorProto.UINT8, a.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        exact = bool(np.array_equal(session.run(None, {"a": a})[0], a.astype(np.int64) @ b.astype(np.int64)))
    except Exception as exc:  # an onnxruntime without the kernel: nothing to gain from it
        log.debug("onnxruntime's int8 GEMM could not be checked: %s", first_line(exc))
        return False
    if not exact:
        log.info("onnxruntime's int8 GEMM saturates on this CPU (no VNNI): the voice runs its int8 matmuls on "
                 "exact kernels (a little slower)")
    return exact
