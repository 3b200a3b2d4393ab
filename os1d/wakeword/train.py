"""The head: a small fully connected network on 16 embeddings, trained with torch, exported to ONNX.

The only module that imports torch (the `train` extra); the daemon runs the exported file with
onnxruntime like any openWakeWord head: input [1, 16, 96] named "x.1", output [1, 1] named "53".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from .dataset import Examples
from .features import DIM, WINDOW

HIDDEN = 128
HARD_ROUNDS, HARD_BOOST, HARD_SCORE = 0, 5.0, 0.05
"""Hard-negative mining: rounds, the weight given to negatives still scored above HARD_SCORE."""
INPUT_NAME, OUTPUT_NAME = "x.1", "53"
"""The names openWakeWord's pretrained heads use."""


@dataclass(frozen=True)
class Head:
    """Trained weights (numpy), in the order of the layers."""

    layers: list[tuple[str, dict[str, np.ndarray]]]
    """("linear", {w, b}) | ("norm", {scale, bias}) | ("relu", {}) | ("sigmoid", {})."""


def _torch():  # type: ignore[no-untyped-def]
    try:
        import torch
    except ImportError:
        raise UserError("training a wake word needs torch: pip install 'os1d[train]'") from None
    return torch


def train(data: Examples, epochs: int = 12, seed: int = 0, threads: int = 2, negative_weight: float = 4.0,
          noise: float = 0.05, dropout: float = 0.0, progress: bool = True, hard_rounds: int = HARD_ROUNDS,
          hard_boost: float = HARD_BOOST) -> Head:
    """Weighted binary cross-entropy: all negatives together weigh `negative_weight` × all positives; `noise`
    (Gaussian, on the embeddings, whose values spread about ±16) and `dropout` regularise. Then, `hard_rounds`
    times, the negatives the head still scores above HARD_SCORE weigh `hard_boost` times more and it is trained
    again from scratch (hard-negative mining)."""
    for _ in range(hard_rounds):
        head = _train(data, epochs, seed, threads, negative_weight, noise, dropout, progress)
        hard = (data.y < 0.5) & (scores(head, data.x) > HARD_SCORE)
        data = Examples(data.x, data.y, np.where(hard, data.w * hard_boost, data.w).astype(np.float32))
    return _train(data, epochs, seed, threads, negative_weight, noise, dropout, progress)


def scores(head: Head, x: np.ndarray, batch: int = 8192) -> np.ndarray:
    """The head's scores for head inputs [n, 16, 96], in numpy."""
    out = []
    for i in range(0, len(x), batch):
        z = x[i : i + batch].reshape(min(batch, len(x) - i), -1).astype(np.float32)
        for kind, p in head.layers:
            if kind == "linear":
                z = z @ p["w"] + p["b"]
            elif kind == "norm":
                z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-5) * p["scale"] + p["bias"]
            elif kind == "relu":
                z = np.maximum(z, 0)
            else:
                z = 1 / (1 + np.exp(-z))
        out.append(z[:, 0])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _train(data: Examples, epochs: int, seed: int, threads: int, negative_weight: float, noise: float,
           dropout: float, progress: bool) -> Head:
    torch = _torch()
    from torch import nn

    if data.y.sum() == 0 or (data.y == 0).sum() == 0:
        raise UserError("the training data has no positive or no negative examples; give it more --minutes")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Dropout(dropout / 2), nn.Linear(WINDOW * DIM, HIDDEN), nn.LayerNorm(HIDDEN),
                        nn.ReLU(), nn.Dropout(dropout), nn.Linear(HIDDEN, HIDDEN), nn.LayerNorm(HIDDEN), nn.ReLU(),
                        nn.Linear(HIDDEN, 1))
    x = torch.from_numpy(data.x.astype(np.float32))
    y = torch.from_numpy(data.y)
    w = torch.from_numpy(data.w.copy())
    pos_w, neg_w = float(w[y > 0.5].sum()), float(w[y < 0.5].sum())
    w = torch.where(y > 0.5, w, w * negative_weight * pos_w / neg_w)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    batch = 256
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with tqdm(total=steps, desc="training", unit="step", disable=not progress, leave=False) as bar:
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).split(batch):
                xb = x[idx] + noise * torch.randn(len(idx), WINDOW, DIM, generator=gen)
                loss = (loss_fn(net(xb).squeeze(1), y[idx]) * w[idx]).sum() / w[idx].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4f}")
    layers: list[tuple[str, dict[str, np.ndarray]]] = []
    for m in net:
        if isinstance(m, nn.Linear):
            layers.append(("linear", {"w": m.weight.detach().numpy().T.copy(), "b": m.bias.detach().numpy().copy()}))
        elif isinstance(m, nn.LayerNorm):
            layers.append(("norm", {"scale": m.weight.detach().numpy().copy(), "bias": m.bias.detach().numpy().copy()}))
        elif isinstance(m, nn.ReLU):
            layers.append(("relu", {}))
    layers.append(("sigmoid", {}))
    return Head(layers)


def export(head: Head, path: Path, phrase: str, meta: dict[str, str] | None = None) -> None:
    """Write the head as an ONNX graph with the pretrained heads' input and output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    cur = "flat"
    nodes.append(helper.make_node("Flatten", [INPUT_NAME], [cur], axis=1))
    for k, (kind, p) in enumerate(head.layers):
        out = OUTPUT_NAME if k == len(head.layers) - 1 else f"h{k}"
        if kind == "linear":
            inits += [numpy_helper.from_array(p["w"].astype(np.float32), f"w{k}"),
                      numpy_helper.from_array(p["b"].astype(np.float32), f"b{k}")]
            nodes.append(helper.make_node("Gemm", [cur, f"w{k}", f"b{k}"], [out]))
        elif kind == "norm":
            inits += [numpy_helper.from_array(p["scale"].astype(np.float32), f"s{k}"),
                      numpy_helper.from_array(p["bias"].astype(np.float32), f"n{k}")]
            nodes.append(helper.make_node("LayerNormalization", [cur, f"s{k}", f"n{k}"], [out], axis=-1,
                                          epsilon=1e-5))
        elif kind == "relu":
            nodes.append(helper.make_node("Relu", [cur], [out]))
        else:
            nodes.append(helper.make_node("Sigmoid", [cur], [out]))
        cur = out
    graph = helper.make_graph(nodes, "wakeword_head", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                                                                     [1, WINDOW, DIM])],
                              [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="os1d")
    model.ir_version = 8
    helper.set_model_props(model, {"phrase": phrase, **(meta or {})})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    onnx.save(model, str(tmp))
    tmp.replace(path)
