"""onnxruntime sessions created the same quiet, predictable way everywhere."""

from __future__ import annotations

from pathlib import Path

from .errors import UserError, first_line


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
