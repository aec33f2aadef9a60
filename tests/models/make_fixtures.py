#!/usr/bin/env python3
"""Makes the tiny reference checkpoints kiln's import tests compare against.

For each architecture kiln imports, a model of a few layers with seeded
random f32 weights is built with the `transformers` reference code, saved as
a Hugging Face folder (config.json + model.safetensors), and run on a short
prompt and then 3 greedy decode steps through its KV / recurrent cache. The
reference logits (f32 .npy) and tokens are saved beside it. The Llama model
is also written as GGUF files (f32, f16 and q8_0 weights, llama.cpp's names
and its q/k row permutation), with the `gguf` package.

Run by hand, in a venv with tests/models/requirements.txt installed (torch
is large; CI needs none of this, it reads the committed outputs):

    python3 tests/models/make_fixtures.py [OUT_DIR]   # default: tests/models/fixtures

Outputs per fixture NAME: NAME/config.json, NAME/model.safetensors (qwen3:
shards and model.safetensors.index.json),
NAME/prompt.npy (i32 [T]), NAME/decode_tokens.npy (i32 [3]),
NAME/prompt_logits.npy (f32 [T, vocab]), NAME/decode_logits.npy (f32 [3, vocab]);
llama/llama-{f32,f16,q8_0}.gguf and qwen3/qwen3-f16.gguf.
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM, Qwen3NextConfig,
                          Qwen3NextForCausalLM)

SEED = 1234
VOCAB = 256
PROMPT_TOKENS = 7
DECODE_STEPS = 3

# Shapes kept tiny but with every feature: GQA (4 query heads over 2 KV
# heads), head dims of 32 (a size every backend runs for FA and GDN).
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_attention_heads=4,
              num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6, max_position_embeddings=256)


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Weights that give O(1) activations and well-separated logits, so that
    the comparison (NMSE, top-1) says something; the default init of std 0.02
    gives near-uniform logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=g) * 8 + 0.5))
            elif name.endswith("dt_bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif p.dim() == 1:  # norm weights: around 1, or around 0 where the norm applies (1 + w)
                offset = 0.0 if getattr(model.config, "model_type", "").startswith("qwen3_") else 1.0
                if name.endswith("linear_attn.norm.weight"):
                    offset = 1.0  # the gated norm multiplies by w itself
                p.copy_(offset + 0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif "conv1d" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            else:  # [out, in] projections (lm_head: larger, for spread logits)
                scale = 3.0 if name.startswith("lm_head") else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / math.sqrt(p.shape[-1]))


def reference_run(model, prompt):
    """Prompt logits, then DECODE_STEPS greedy steps through the cache."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([prompt]), use_cache=True)
        prompt_logits = out.logits[0].float().numpy()
        cache = out.past_key_values  # the cache object, updated in place
        token = int(prompt_logits[-1].argmax())
        tokens, logits = [], []
        for _ in range(DECODE_STEPS):
            tokens.append(token)
            out = model(input_ids=torch.tensor([[token]]), cache=cache, use_cache=True)
            cache = out.past_key_values  # the cache object, updated in place
            step = out.logits[0, -1].float().numpy()
            logits.append(step)
            token = int(step.argmax())
    return prompt_logits, np.array(tokens, dtype=np.int32), np.stack(logits)


def save_fixture(out_dir, name, model, max_shard_size=None):
    folder = os.path.join(out_dir, name)
    shutil.rmtree(folder, ignore_errors=True)
    if max_shard_size:  # several .safetensors files and model.safetensors.index.json
        model.save_pretrained(folder, safe_serialization=True, max_shard_size=max_shard_size)
    else:
        model.save_pretrained(folder, safe_serialization=True)
    for extra in os.listdir(folder):  # only what kiln reads
        if extra != "config.json" and not extra.endswith((".safetensors", ".safetensors.index.json")):
            os.remove(os.path.join(folder, extra))
    prompt = np.random.default_rng(SEED).integers(0, VOCAB, PROMPT_TOKENS).astype(np.int32)
    prompt_logits, tokens, decode_logits = reference_run(model, prompt.tolist())
    np.save(os.path.join(folder, "prompt.npy"), prompt)
    np.save(os.path.join(folder, "decode_tokens.npy"), tokens)
    np.save(os.path.join(folder, "prompt_logits.npy"), prompt_logits.astype(np.float32))
    np.save(os.path.join(folder, "decode_logits.npy"), decode_logits.astype(np.float32))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, prompt {prompt.tolist()}, "
          f"decode {tokens.tolist()}")
    return folder


def make(cls, config, seed):
    torch.manual_seed(seed)
    model = cls(config).float().eval()
    randomize(model, seed)
    return model


def llama_cpp_permute(w, n_head):
    """What llama.cpp's converter does to q/k rows for its rope (pairs
    (2i, 2i+1) instead of halves)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, folder, arch="llama", variants=("f32", "f16", "q8_0")):
    import gguf
    cfg = model.config
    sd = {k: v.float().numpy() for k, v in model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
                 "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
                 "self_attn.o_proj.weight": "attn_output.weight",
                 "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
                 "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
                 "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight"}
    if cfg.tie_word_embeddings:
        del names["lm_head.weight"]  # llama.cpp writes no output.weight for tied embeddings
    for i in range(cfg.num_hidden_layers):
        for hf, cpp in per_layer.items():
            if f"model.layers.{i}.{hf}" in sd:
                names[f"model.layers.{i}.{hf}"] = f"blk.{i}.{cpp}"
    for variant in variants:
        path = os.path.join(folder, f"{arch}-{variant}.gguf")
        w = gguf.GGUFWriter(path, arch)
        w.add_name(f"kiln-tiny-{arch}")
        w.add_context_length(cfg.max_position_embeddings)
        w.add_embedding_length(cfg.hidden_size)
        w.add_block_count(cfg.num_hidden_layers)
        w.add_feed_forward_length(cfg.intermediate_size)
        w.add_head_count(cfg.num_attention_heads)
        w.add_head_count_kv(cfg.num_key_value_heads)
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
        w.add_rope_dimension_count(cfg.head_dim)
        w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
        w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
        w.add_vocab_size(cfg.vocab_size)
        for hf, cpp in names.items():
            t = sd[hf]
            if arch != "llama":
                pass  # only llama's converter permutes q/k (its rope is pairwise)
            elif hf.endswith("q_proj.weight"):
                t = llama_cpp_permute(t, cfg.num_attention_heads)
            elif hf.endswith("k_proj.weight"):
                t = llama_cpp_permute(t, cfg.num_key_value_heads)
            t = np.ascontiguousarray(t, dtype=np.float32)
            if variant == "f16" and t.ndim == 2:
                w.add_tensor(cpp, t.astype(np.float16))
            elif variant == "q8_0" and t.ndim == 2:
                q = gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q8_0)
                w.add_tensor(cpp, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            else:
                w.add_tensor(cpp, t)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        print(f"  {os.path.basename(path)}: {os.path.getsize(path)} bytes")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")

    llama = make(LlamaForCausalLM, LlamaConfig(**COMMON, num_hidden_layers=2, rope_theta=10000.0,
                                               tie_word_embeddings=False, attn_implementation="eager"), SEED)
    write_gguf(llama, save_fixture(out_dir, "llama", llama))

    # Llama 3.1's rope scaling, with original_max_position_embeddings small
    # enough that the prompt's positions see every band of it.
    llama3 = make(LlamaForCausalLM, LlamaConfig(**dict(COMMON, max_position_embeddings=128), num_hidden_layers=2,
                                                rope_parameters=dict(rope_type="llama3", rope_theta=500000.0,
                                                                     factor=8.0, low_freq_factor=1.0,
                                                                     high_freq_factor=4.0,
                                                                     original_max_position_embeddings=32),
                                                tie_word_embeddings=False, attn_implementation="eager"), SEED + 4)
    save_fixture(out_dir, "llama3_rope", llama3)

    # Saved in shards, as large checkpoints are.
    qwen3 = make(Qwen3ForCausalLM, Qwen3Config(**COMMON, num_hidden_layers=2, rope_theta=1000000.0,
                                               tie_word_embeddings=True, attn_implementation="eager"), SEED + 1)
    write_gguf(qwen3, save_fixture(out_dir, "qwen3", qwen3, max_shard_size="300KB"), "qwen3", ("f16",))

    hybrid = dict(COMMON, num_hidden_layers=3, layer_types=["linear_attention", "full_attention", "linear_attention"],
                  partial_rotary_factor=0.25, rope_theta=10000.0, linear_conv_kernel_dim=4, linear_key_head_dim=32,
                  linear_value_head_dim=32, linear_num_key_heads=2, linear_num_value_heads=4,
                  tie_word_embeddings=False, attn_implementation="eager")
    # Qwen3-Next's layers are mixtures of experts unless listed in
    # mlp_only_layers; kiln runs the dense MLP, so every layer is listed.
    qwen3_next = make(Qwen3NextForCausalLM, Qwen3NextConfig(**hybrid, mlp_only_layers=[0, 1, 2]), SEED + 2)
    save_fixture(out_dir, "qwen3_next", qwen3_next)

    if hasattr(transformers, "Qwen3_5ForCausalLM"):
        from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig
        qwen3_5 = make(Qwen3_5ForCausalLM, Qwen3_5TextConfig(**hybrid), SEED + 3)
        save_fixture(out_dir, "qwen3_5", qwen3_5)
    else:
        print("this transformers has no Qwen3_5ForCausalLM: no qwen3_5 fixture")


if __name__ == "__main__":
    main()
