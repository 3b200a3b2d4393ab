#!/usr/bin/env python3
"""Write a tiny stand-in for the Ultravox ONNX export, for tests only (never a default, never shipped).

The folder has the real layout: onnx/embed_tokens.onnx, onnx/audio_encoder_q4.onnx,
onnx/decoder_model_merged_q4.onnx (float32 KV cache) or …_q4f16.onnx (float16 KV cache), with the real
input and output names and dtypes, 16 layers × 8 KV heads × 64 dims of cache, config.json,
generation_config.json, preprocessor_config.json and the real Llama 3.2 tokenizer plus `<|audio|>`.

Behaviour: the decoder reads the token id that the embedding put in channel 0 of each position and
answers with the next token of SENTENCE (then <|eot_id|>); any other token starts the sentence. It gives
logits for the last `num_logits_to_keep` positions (0: all), as exports with that input do. If the
attention mask, position ids or cache length it is fed are inconsistent, it answers BAD_TOKEN instead,
so a broken generation loop shows in the text.

Usage: scripts/ultravox_standin.py OUT_DIR LLAMA_TOKENIZER_DIR [--kv float16]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

SENTENCE = "Hello from the tiny stand-in model — nice to hear you, café ☕."
BAD_TOKEN_TEXT = " BROKEN"
VERSION = 2
"""config.json's os1d_standin (2: logits for the last num_logits_to_keep positions; 1: the last one only)."""
HIDDEN = 16
LAYERS, KV_HEADS, HEAD_DIM = 16, 8, 64
AUDIO_TOKEN = "<|audio|>"
EOT = 128009
STACK = 16
"""Mel frames per audio row: Whisper's stride 2 times Ultravox's stack factor 8."""


def _tokenizer(src: Path, out: Path):  # type: ignore[no-untyped-def]
    from tokenizers import AddedToken, Tokenizer

    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    tok.add_special_tokens([AddedToken(AUDIO_TOKEN, special=True, normalized=False)])
    tok.save(str(out / "tokenizer.json"))
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    audio_id = tok.token_to_id(AUDIO_TOKEN)
    cfg.setdefault("added_tokens_decoder", {})[str(audio_id)] = {
        "content": AUDIO_TOKEN, "lstrip": False, "normalized": False, "rstrip": False,
        "single_word": False, "special": True}
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1))
    return tok, audio_id


def _embed_model(vocab: int):  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = rng.normal(0, 0.1, (vocab, HIDDEN)).astype(np.float32)
    table[:, 0] = np.arange(vocab, dtype=np.float32)  # channel 0 carries the token id
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["inputs_embeds"], axis=0)]
    graph = helper.make_graph(
        nodes, "embed_tokens",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])],
        [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["batch_size", "sequence_length", HIDDEN])],
        [numpy_helper.from_array(table, "table")])
    return graph


def _encoder_model():  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(1).normal(0, 0.01, (STACK * 128, HIDDEN)).astype(np.float32)
    c = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("Transpose", ["audio_values"], ["t"], perm=[0, 2, 1]),  # [1, F, 128]
        helper.make_node("Shape", ["t"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["frames"], axis=0),
        helper.make_node("Mod", ["frames", "stack"], ["rem"]),
        helper.make_node("Sub", ["stack", "rem"], ["pad0"]),
        helper.make_node("Mod", ["pad0", "stack"], ["pad"]),
        helper.make_node("Concat", ["zeros4", "pad", "zero1"], ["pads"], axis=0),
        helper.make_node("Pad", ["t", "pads"], ["padded"], mode="constant"),
        helper.make_node("Reshape", ["padded", "rows_shape"], ["stacked"]),
        helper.make_node("MatMul", ["stacked", "w"], ["audio_features"]),
    ]
    inits = [numpy_helper.from_array(w, "w"), c("one", 1), c("stack", [STACK]), c("zeros4", [0, 0, 0, 0]),
             c("zero1", [0]), c("rows_shape", [1, -1, STACK * 128])]
    return helper.make_graph(
        nodes, "audio_encoder",
        [helper.make_tensor_value_info("audio_values", TensorProto.FLOAT, ["batch_size", 128, "frames"])],
        [helper.make_tensor_value_info("audio_features", TensorProto.FLOAT, ["batch_size", "rows", HIDDEN])],
        inits)


def _decoder_model(successor: np.ndarray, bad_id: int, kv_type: int):  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper, numpy_helper

    vocab = len(successor)
    c = lambda name, v, dt=np.int64: numpy_helper.from_array(np.array(v, dtype=dt), name)  # noqa: E731
    kv = lambda n: helper.make_tensor_value_info(n, kv_type, ["batch_size", KV_HEADS, n.split(".")[0] + "_len", HEAD_DIM])  # noqa: E731
    inputs = [
        helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["batch_size", "sequence_length", HIDDEN]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("num_logits_to_keep", TensorProto.INT64, []),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "num_logits", vocab])]
    nodes = [
        # the token ids of the last num_logits_to_keep positions → their successors
        helper.make_node("Slice", ["inputs_embeds", "z", "one_v", "ax2"], ["ids_f"]),  # [1, T, 1]
        helper.make_node("Reshape", ["num_logits_to_keep", "one_v"], ["keep"]),
        helper.make_node("Neg", ["keep"], ["from_end"]),
        helper.make_node("Slice", ["ids_f", "from_end", "big", "ax1"], ["kept_f"]),
        helper.make_node("Round", ["kept_f"], ["kept_r"]),
        helper.make_node("Cast", ["kept_r"], ["kept_ids"], to=TensorProto.INT64),
        helper.make_node("Gather", ["successor", "kept_ids"], ["next"], axis=0),  # [1, K, 1]
        # consistency of what the loop feeds: lengths, mask sum, last position
        helper.make_node("Shape", ["inputs_embeds"], ["e_shape"]),
        helper.make_node("Gather", ["e_shape", "one"], ["T"]),
        helper.make_node("Shape", ["past_key_values.0.key"], ["p_shape"]),
        helper.make_node("Gather", ["p_shape", "two"], ["P"]),
        helper.make_node("Add", ["P", "T"], ["PT"]),
        helper.make_node("Shape", ["attention_mask"], ["m_shape"]),
        helper.make_node("Gather", ["m_shape", "one"], ["S"]),
        helper.make_node("ReduceSum", ["attention_mask"], ["mask_sum"], keepdims=0),
        helper.make_node("Slice", ["position_ids", "m1", "big", "ax1"], ["last_pos2"]),
        helper.make_node("Reshape", ["last_pos2", "scalar"], ["last_pos"]),
        helper.make_node("Sub", ["PT", "one"], ["want_pos"]),
        helper.make_node("Equal", ["S", "PT"], ["ok1"]),
        helper.make_node("Equal", ["mask_sum", "PT"], ["ok2"]),
        helper.make_node("Equal", ["last_pos", "want_pos"], ["ok3"]),
        helper.make_node("And", ["ok1", "ok2"], ["ok12"]),
        helper.make_node("And", ["ok12", "ok3"], ["ok"]),
        helper.make_node("Where", ["ok", "next", "bad"], ["chosen"]),
        helper.make_node("Equal", ["vocab_range", "chosen"], ["hot"]),  # [1, K, vocab]
        helper.make_node("Cast", ["hot"], ["hot_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["hot_f", "ten"], ["logits"]),
        # the new cache rows: the token ids, spread over heads and dims
        helper.make_node("Unsqueeze", ["ids_f", "ax1"], ["ids_4"]),  # [1, 1, T, 1]
        helper.make_node("Expand", ["ids_4", "kv_expand"], ["new_f"]),
        helper.make_node("Cast", ["new_f"], ["new_kv"], to=kv_type),
    ]
    for i in range(LAYERS):
        for part in ("key", "value"):
            name = f"past_key_values.{i}.{part}"
            inputs.append(kv(name))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{part}", kv_type,
                                                         ["batch_size", KV_HEADS, "total_sequence_length", HEAD_DIM]))
            nodes.append(helper.make_node("Concat", [name, "new_kv"], [f"present.{i}.{part}"], axis=2))
    inits = [
        c("m1", [-1]), c("one_v", [1]), c("big", [1 << 62]), c("ax1", [1]), c("ax2", [2]), c("z", [0]), c("one", 1), c("two", 2),
        c("scalar", []), c("bad", [bad_id]),
        c("kv_expand", [1, KV_HEADS, 1, HEAD_DIM]), c("ten", 10.0, np.float32),
        numpy_helper.from_array(successor.astype(np.int64), "successor"),
        numpy_helper.from_array(np.arange(vocab, dtype=np.int64), "vocab_range"),
    ]
    return helper.make_graph(nodes, "decoder_model_merged", inputs, outputs, inits)


def write_standin(out: Path, tokenizer_dir: Path, kv: str = "float32") -> Path:
    """Write the stand-in folder; returns it."""
    import onnx
    from onnx import TensorProto, helper

    (out / "onnx").mkdir(parents=True, exist_ok=True)
    tok, audio_id = _tokenizer(tokenizer_dir, out)
    vocab = tok.get_vocab_size()
    sentence = tok.encode(SENTENCE, add_special_tokens=False).ids
    if len(set(sentence)) != len(sentence) or EOT in sentence:
        raise ValueError("the stand-in sentence must not repeat a token")
    bad_id = tok.encode(BAD_TOKEN_TEXT, add_special_tokens=False).ids[0]
    successor = np.full(vocab, sentence[0], dtype=np.int64)
    for a, b in zip(sentence, sentence[1:] + [EOT], strict=True):
        successor[a] = b
    kv_type = TensorProto.FLOAT16 if kv == "float16" else TensorProto.FLOAT
    decoder_name = "decoder_model_merged_q4f16.onnx" if kv == "float16" else "decoder_model_merged_q4.onnx"
    opset = [helper.make_opsetid("", 17)]
    for graph, name in ((_embed_model(vocab), "embed_tokens.onnx"), (_encoder_model(), "audio_encoder_q4.onnx"),
                        (_decoder_model(successor, bad_id, kv_type), decoder_name)):
        model = helper.make_model(graph, opset_imports=opset, producer_name="os1d-ultravox-standin")
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(out / "onnx" / name))
    config = {
        "architectures": ["UltravoxModel"], "model_type": "ultravox", "os1d_standin": VERSION,
        "audio_token_index": audio_id, "ignore_index": -100, "stack_factor": 8, "hidden_size": HIDDEN,
        "text_config": {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_key_value_heads": KV_HEADS,
                        "head_dim": HEAD_DIM, "vocab_size": vocab},
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "do_sample": False}, indent=1))
    (out / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 128, "sampling_rate": 16000,
        "hop_length": 160, "chunk_length": 30, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000,
        "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False}, indent=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("tokenizer", type=Path)
    parser.add_argument("--kv", choices=["float32", "float16"], default="float32")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    print(write_standin(args.out, args.tokenizer, args.kv))


if __name__ == "__main__":
    main()
