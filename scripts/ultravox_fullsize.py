#!/usr/bin/env python3
"""Write a full-size stand-in of Ultravox v0.5 on Llama 3.2 1B with RANDOM weights, for benchmarks only.

Never a default, never in CI, never shipped: its replies are gibberish, its cost is the real cost. The folder
has the layout of the onnx-community export, so `os1d.agent.ultravox.Ultravox(OUT_DIR)` loads and runs it
through the daemon's own code:

- onnx/embed_tokens.onnx: fp32 Gather over a random [vocab + <|audio|>, 2048] table (input_ids → inputs_embeds).
- onnx/audio_encoder_q4.onnx: a Whisper-large-v3-turbo-sized encoder (32 layers, d_model 1280, 20 heads,
  ffn 5120, 128 mel bins, any number of frames ≤ 3000) and the Ultravox projector (8 frames stacked,
  RMSNorm, SwiGLU MLP to 2048, RMSNorm), exported with torch.onnx and quantised to 4 bits (MatMulNBits,
  block 32, symmetric) by onnxruntime's matmul_nbits_quantizer. audio_values [1, 128, frames] →
  audio_features [1, ceil(frames / 16), 2048].
- onnx/decoder_model_merged_q4.onnx: Llama 3.2 1B (16 layers, hidden 2048, 32 heads, 8 KV heads × 64,
  ffn 8192, vocab 128256, RoPE theta 500000 with llama3 scaling) built in int4 (block 32) by
  onnxruntime-genai's model builder from a random-init Hugging Face folder, with exclude_embeds (input
  inputs_embeds) and logits for every position, as the real export has them (os1d keeps only the positions it
  asks for as it loads the graph: os1d/agent/graph_tuning.py). The builder fuses RoPE into
  GroupQueryAttention on CPU and then drops `position_ids`; this script keeps RoPE as its own op
  (RotaryEmbedding, with Q, K and V as three MatMuls: fuse_qkv=false, which unfused RoPE needs) so the graph
  takes `position_ids` like the real export. Attention is onnxruntime's GroupQueryAttention contrib op; the
  real export may use other ops for the same sizes.
- config.json (with "os1d_fullsize_standin": true), generation_config.json, preprocessor_config.json, and the
  real Llama 3.2 tokenizer plus <|audio|> (as scripts/ultravox_standin.py writes them).

`--small` builds the same graphs at a tiny scale (2 layers, hidden 256; the vocabulary stays the real one
because the tokenizer is) so the pipeline can be checked in about a minute.

Full size (estimated from the parts' sizes, not yet measured here): about 9 GB of memory at the peak (the
model builder's fp32 graph before quantisation), about 6 GB of free disk while building, a folder of about
2.3 GB (embed_tokens 1.05 GB fp32, decoder about 0.8 GB, encoder about 0.45 GB), 5 to 10 minutes on 2 cores.
MatMulNBits accuracy_level: 0 (unset) by default, as transformers.js writes the onnx-community q4 files;
`--accuracy-level 4` gives int8 compute, the model builder's own CPU default.

Usage: scripts/ultravox_fullsize.py OUT_DIR [--small] [--tokenizer DIR] [--accuracy-level N] [--keep-build]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
AUDIO_TOKEN = "<|audio|>"
STACK = 8
"""Ultravox stacks 8 encoder frames (16 mel frames: Whisper's conv has stride 2) into one audio row."""
MEL_BINS = 128
MAX_FRAMES = 3000
EOS = [128001, 128008, 128009]


@dataclass(frozen=True)
class Sizes:
    # decoder (Llama 3.2 1B)
    layers: int = 16
    hidden: int = 2048
    heads: int = 32
    kv_heads: int = 8
    head_dim: int = 64
    intermediate: int = 8192
    vocab: int = 128256
    # audio encoder (Whisper large-v3 turbo) and the Ultravox projector
    enc_layers: int = 32
    enc_dim: int = 1280
    enc_heads: int = 20
    enc_ffn: int = 5120
    proj_dim: int = 4096
    """The projector's first linear layer; SwiGLU halves it."""


FULL = Sizes()
SMALL = Sizes(layers=2, hidden=256, heads=4, kv_heads=2, head_dim=64, intermediate=512,
              enc_layers=2, enc_dim=256, enc_heads=4, enc_ffn=512, proj_dim=512)


def log(msg: str, t0: list[float] = [time.perf_counter()]) -> None:  # noqa: B006 (start of the run)
    print(f"[{time.perf_counter() - t0[0]:7.1f} s] {msg}", flush=True)


# -- tokenizer ---------------------------------------------------------------------------------------------
def tokenizer_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    for path in (ROOT / ".cache" / "test-kit" / "llama-tokenizer", Path(os.environ.get("OS1D_TEST_KIT", "/nonexistent"))
                 / "llama-tokenizer"):
        if (path / "tokenizer.json").is_file():
            return path
    raise SystemExit("no Llama 3.2 tokenizer: pass --tokenizer DIR (scripts/make-test-kit writes one to "
                     ".cache/test-kit/llama-tokenizer)")


def write_tokenizer(src: Path, out: Path) -> tuple[int, int]:
    """The real Llama 3.2 tokenizer plus <|audio|> (as the tiny stand-in has it); (audio id, tokenizer size)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from ultravox_standin import _tokenizer  # the tiny stand-in's own recipe: both stand-ins tokenise alike

    tok, audio_id = _tokenizer(src, out)
    return int(audio_id), int(tok.get_vocab_size())


# -- decoder: random-init Hugging Face Llama → onnxruntime-genai's model builder ----------------------------
def write_hf_llama(sizes: Sizes, folder: Path, tok_src: Path) -> None:
    """A random-init Llama 3.2 1B-shaped Hugging Face folder (fp16 safetensors, to halve disk and memory)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=sizes.vocab, hidden_size=sizes.hidden, intermediate_size=sizes.intermediate,
        num_hidden_layers=sizes.layers, num_attention_heads=sizes.heads, num_key_value_heads=sizes.kv_heads,
        head_dim=sizes.head_dim, hidden_act="silu", max_position_embeddings=131072, rms_norm_eps=1e-5,
        rope_theta=500000.0, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=EOS,
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192},
        attention_bias=False, mlp_bias=False, torch_dtype="float16")
    torch.manual_seed(0)
    with torch.no_grad():  # initialised in fp16 directly: no fp32 copy of 1.2 B parameters in memory
        model = LlamaForCausalLM._from_config(config, torch_dtype=torch.float16)
    model.save_pretrained(str(folder), safe_serialization=True)
    del model
    for name in ("tokenizer.json", "tokenizer_config.json"):  # the builder reads a tokenizer from the folder
        shutil.copy(tok_src / name, folder / name)
    (folder / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 128000, "eos_token_id": EOS, "do_sample": False}))


def build_decoder(hf_dir: Path, build_dir: Path, accuracy_level: int) -> None:
    """onnxruntime-genai's model builder, int4 block 32 for the CPU, inputs_embeds in, every position's logits out,
    with `position_ids` kept as an input (RoPE as its own op, not fused into GroupQueryAttention)."""
    try:
        from onnxruntime_genai.models import builder
    except ImportError as exc:
        raise SystemExit(f"ultravox_fullsize: the model builder is missing ({exc}); "
                         f"pip install -e '.[fullsize]' (onnxruntime-genai, onnx_ir) first") from None

    # (builder.py imports its builders as a top-level package: patch the class it uses, not another copy)
    builder.LlamaModel.is_fused_rope_supported = lambda self: False  # GQA + fused RoPE has no position_ids
    # (with RoPE unfused the builder would rotate the packed QKV output: keep Q, K, V as three MatMuls)
    options = ["exclude_embeds=true", "prune_lm_head=false", "fuse_qkv=false", "block_size=32", "is_symmetric=true",
               f"accuracy_level={accuracy_level}", "filename=decoder_model_merged_q4.onnx", "hf_token=false"]
    cache = build_dir / "cache"
    extra = builder.parse_extra_options("", str(hf_dir), str(build_dir), "int4", "cpu", str(cache), options)
    builder.create_model("", str(hf_dir), str(build_dir), "int4", "cpu", str(cache), **extra)


def move_external(src: Path, dst: Path) -> None:
    """Move a model and its external data, renaming the data `<name>.onnx_data` as onnx-community exports do."""
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    old = set()
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                old.add(entry.value)
                entry.value = dst.name + "_data"
    if len(old) > 1:
        raise ValueError(f"{src} has its external data in several files: {sorted(old)}")
    for name in old:
        shutil.move(str(src.parent / name), dst.parent / (dst.name + "_data"))
    onnx.save(model, str(dst))
    src.unlink()


# -- embed_tokens -------------------------------------------------------------------------------------------
def write_embed(table: np.ndarray, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gather", ["embed_tokens.weight", "input_ids"], ["inputs_embeds"], axis=0)],
        "embed_tokens",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])],
        [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT,
                                       ["batch_size", "sequence_length", table.shape[1]])],
        [numpy_helper.from_array(np.ascontiguousarray(table, dtype=np.float32), "embed_tokens.weight")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="os1d-ultravox-fullsize")
    model.ir_version = 8
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=path.name + "_data", size_threshold=1024)


def embed_table(hf_dir: Path, rows: int, hidden: int) -> np.ndarray:
    """The decoder's own (random) input embeddings, with extra rows for added tokens such as <|audio|>."""
    from safetensors import safe_open

    table = None
    for f in sorted(hf_dir.glob("*.safetensors")):  # (only that tensor is read, not the whole checkpoint)
        with safe_open(str(f), "np") as st:
            for key in st.keys():
                if key.endswith("embed_tokens.weight"):
                    table = st.get_tensor(key).astype(np.float32)
    if table is None:
        raise ValueError(f"no embed_tokens.weight in {hf_dir}")
    if rows > len(table):
        extra = np.random.default_rng(2).normal(0, 0.02, (rows - len(table), hidden)).astype(np.float32)
        table = np.concatenate([table, extra])
    return table


# -- audio encoder + projector ------------------------------------------------------------------------------
def encoder_module(sizes: Sizes):  # type: ignore[no-untyped-def]
    """Whisper's encoder (any number of frames up to 3000) and Ultravox's projector, random weights."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class RMSNorm(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)

    class Layer(nn.Module):
        def __init__(self, d: int, heads: int, ffn: int) -> None:
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d, bias=False), nn.Linear(d, d)
            self.o = nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

        def forward(self, x):  # type: ignore[no-untyped-def]
            b, t, d = x.shape
            h = self.ln1(x)
            split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
            a = F.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)), split(self.v(h)))
            x = x + self.o(a.transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = sizes.enc_dim
            self.conv1 = nn.Conv1d(MEL_BINS, d, 3, padding=1)
            self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
            self.pos = nn.Parameter(torch.randn(MAX_FRAMES // 2, d) * 0.02)
            self.layers = nn.ModuleList(Layer(d, sizes.enc_heads, sizes.enc_ffn) for _ in range(sizes.enc_layers))
            self.ln = nn.LayerNorm(d)
            self.ln_pre = RMSNorm(d * STACK)
            self.linear_1 = nn.Linear(d * STACK, sizes.proj_dim, bias=False)
            self.linear_2 = nn.Linear(sizes.proj_dim // 2, sizes.hidden, bias=False)
            self.ln_post = RMSNorm(sizes.hidden)

        def forward(self, audio_values):  # type: ignore[no-untyped-def]
            x = F.gelu(self.conv2(F.gelu(self.conv1(audio_values)))).transpose(1, 2)  # [1, T, d]
            t = x.shape[1]
            x = x + self.pos[:t]
            for layer in self.layers:
                x = layer(x)
            x = self.ln(x)
            # Ultravox's StackAudioFrames: zero-pad to a multiple of 8 frames, 8 frames per row
            padded = (t + STACK - 1) // STACK * STACK
            x = torch.cat([x, x.new_zeros(x.shape[0], STACK - 1, x.shape[2])], dim=1)[:, :padded]
            x = x.reshape(x.shape[0], -1, x.shape[2] * STACK)
            x, gate = self.linear_1(self.ln_pre(x)).chunk(2, dim=-1)  # SwiGLU
            return self.ln_post(self.linear_2(F.silu(gate) * x))

    torch.manual_seed(1)
    return Encoder().eval()


def export_encoder(sizes: Sizes, path: Path) -> None:
    """torch.onnx export, frames dynamic (≤ 3000). The TorchScript exporter: the dynamo one needs onnxscript,
    which the project's environment does not carry."""
    import torch

    model = encoder_module(sizes)
    example = torch.randn(1, MEL_BINS, 400)
    with torch.no_grad():
        torch.onnx.export(model, (example,), str(path), input_names=["audio_values"], output_names=["audio_features"],
                          dynamic_axes={"audio_values": {0: "batch_size", 2: "frames"},
                                        "audio_features": {0: "batch_size", 1: "rows"}},
                          opset_version=17, dynamo=False, external_data=True)
    del model


def quantize_q4(src: Path, dst: Path, accuracy_level: int) -> None:
    """4-bit MatMulNBits (block 32, symmetric), as the onnx-community q4 files are made."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(src))
    quant = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=True, accuracy_level=accuracy_level or None)
    quant.process()
    onnx.save(quant.model.model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
              location=dst.name + "_data", size_threshold=1024)


# -- configs ------------------------------------------------------------------------------------------------
def write_configs(out: Path, sizes: Sizes, audio_id: int, tok_size: int, small: bool, accuracy_level: int) -> None:
    text = {"model_type": "llama", "hidden_size": sizes.hidden, "num_hidden_layers": sizes.layers,
            "num_attention_heads": sizes.heads, "num_key_value_heads": sizes.kv_heads, "head_dim": sizes.head_dim,
            "intermediate_size": sizes.intermediate, "vocab_size": sizes.vocab, "rope_theta": 500000.0,
            "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192}}
    audio = {"model_type": "whisper", "d_model": sizes.enc_dim, "encoder_layers": sizes.enc_layers,
             "encoder_attention_heads": sizes.enc_heads, "encoder_ffn_dim": sizes.enc_ffn, "num_mel_bins": MEL_BINS}
    config = {
        "architectures": ["UltravoxModel"], "model_type": "ultravox", "os1d_fullsize_standin": True,
        "os1d_fullsize_build": {"small": small, "sizes": asdict(sizes), "matmulnbits_block_size": 32,
                                "accuracy_level": accuracy_level, "random_weights": True,
                                "decoder": "onnxruntime-genai model builder (int4, exclude_embeds, every position's logits, "
                                           "RoPE unfused so position_ids stays an input)"},
        "audio_token_index": audio_id, "ignore_index": -100, "stack_factor": STACK, "hidden_size": sizes.proj_dim,
        "projector_act": "swiglu", "text_config": text, "audio_config": audio, "tokenizer_size": tok_size,
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 128000, "eos_token_id": EOS, "do_sample": False}, indent=1))
    (out / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": MEL_BINS, "sampling_rate": 16000,
        "hop_length": 160, "chunk_length": 30, "n_fft": 400, "n_samples": 480000, "nb_max_frames": MAX_FRAMES,
        "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False}, indent=1))


def describe(path: Path) -> str:
    """A graph's inputs and outputs, one line each (names, types, shapes)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    fmt = lambda io: f"{io.name} {io.type} {io.shape}"  # noqa: E731
    return "\n".join([f"  in  {fmt(i)}" for i in sess.get_inputs()] + [f"  out {fmt(o)}" for o in sess.get_outputs()])


def build(out: Path, small: bool, tok_src: Path, accuracy_level: int, keep_build: bool) -> Path:
    sizes = SMALL if small else FULL
    if out.exists():
        shutil.rmtree(out)
    (out / "onnx").mkdir(parents=True)
    work = out.parent / f".{out.name}.build"
    if work.exists():
        shutil.rmtree(work)
    hf_dir, dec_dir = work / "hf-llama", work / "decoder"
    hf_dir.mkdir(parents=True)
    try:
        audio_id, tok_size = write_tokenizer(tok_src, out)
        log(f"tokenizer: {tok_size} tokens, {AUDIO_TOKEN} = {audio_id}")
        write_hf_llama(sizes, hf_dir, tok_src)
        log(f"random-init Hugging Face Llama in {hf_dir}")
        # the builder in its own process, so its memory is given back before the encoder is exported
        subprocess.run([sys.executable, __file__, "--step-decoder", str(hf_dir), str(dec_dir), str(accuracy_level)],
                       check=True)
        move_external(dec_dir / "decoder_model_merged_q4.onnx", out / "onnx" / "decoder_model_merged_q4.onnx")
        log("decoder built (onnxruntime-genai model builder, int4)")
        write_embed(embed_table(hf_dir, tok_size, sizes.hidden), out / "onnx" / "embed_tokens.onnx")
        log("embed_tokens written (fp32)")
        if not keep_build:
            shutil.rmtree(hf_dir)  # (disk: the encoder's fp32 export comes next)
        fp32 = work / "audio_encoder.onnx"
        export_encoder(sizes, fp32)
        log("audio encoder exported (torch.onnx, fp32)")
        quantize_q4(fp32, out / "onnx" / "audio_encoder_q4.onnx", accuracy_level)
        log("audio encoder quantised (MatMulNBits, 4 bits, block 32)")
        write_configs(out, sizes, audio_id, tok_size, small, accuracy_level)
    finally:
        if not keep_build:
            shutil.rmtree(work, ignore_errors=True)
    for name in ("embed_tokens.onnx", "audio_encoder_q4.onnx", "decoder_model_merged_q4.onnx"):
        print(f"onnx/{name}:\n{describe(out / 'onnx' / name)}")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(f"{out}: {total / 1e9:.2f} GB")
    return out


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--step-decoder":
        build_decoder(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--small", action="store_true", help="2 layers, hidden 256: checks the pipeline in a minute")
    parser.add_argument("--tokenizer", type=Path, help="the Llama 3.2 tokenizer folder (default: the test kit's)")
    parser.add_argument("--accuracy-level", type=int, default=0, choices=[0, 1, 2, 3, 4],
                        help="MatMulNBits accuracy_level: 0 (unset, as transformers.js writes the onnx-community q4 "
                             "files) or 4 (int8 compute, the model builder's CPU default)")
    parser.add_argument("--keep-build", action="store_true", help="keep the intermediate files (next to OUT)")
    args = parser.parse_args()
    build(args.out.resolve(), args.small, tokenizer_dir(args.tokenizer), args.accuracy_level, args.keep_build)


if __name__ == "__main__":
    main()
