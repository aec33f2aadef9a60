// attention-block-{decode,prefill}: one pre-norm decoder layer in
// Qwen3-0.6B's shapes (hidden 1024, 16 query heads, 8 KV heads of 128, SwiGLU
// MLP of 3072).
#include "examples/attention_block.h"

#include <numeric>

#include "absl/strings/str_cat.h"

namespace kiln::examples {

StepInputs AddStepInputs(GraphBuilder& b, const StepShape& shape, int64_t hidden, Tensor& x) {
  StepInputs in;
  in.shape = shape;
  x = b.Input("x", DType::kF32, {shape.batch, shape.tokens, hidden});
  // For `kiln run --decode`: how many tokens a run takes, and which inputs
  // a decode loop advances (the position, and the mask over the cache).
  b.SetMetadata("tokens", absl::StrCat(shape.tokens));
  if (shape.decode) {
    b.SetMetadata("decode.position", "pos");
    b.SetMetadata("decode.mask", "mask");
    in.pos = b.Input("pos", DType::kI32, {shape.tokens});
    in.mask = b.Input("mask", DType::kF32, {1, 1, shape.tokens, shape.max_seq});
    b.SetMetadata("input_range.pos", absl::StrCat("0,", shape.max_seq - 1));
    // Random masks see the whole cache; a caller passes 0 for cells
    // 0..pos and -inf beyond.
    b.SetMetadata("input_range.mask", "0,0");
  } else {
    std::vector<int32_t> pos(static_cast<size_t>(shape.tokens));
    std::iota(pos.begin(), pos.end(), 0);
    in.pos = b.Constant("pos", DType::kI32, {shape.tokens},
                        ConstantData::Copy(pos.data(), pos.size() * sizeof(int32_t)));
  }
  return in;
}

Tensor Reshape(GraphBuilder& b, Tensor t, std::vector<int64_t> dims) {
  if (!b.status().ok()) return {};
  const DType dtype = b.info(t).dtype;
  std::vector<int64_t> strides = ContiguousStrides(dtype, dims);
  return b.View(t, std::move(dims), std::move(strides), 0);
}

Tensor RmsNorm(GraphBuilder& b, RandomWeights& w, const std::string& name, Tensor x,
               double eps) {
  if (!b.status().ok()) return {};
  const int64_t n = b.info(x).dims.back();
  Tensor weight = w.Norm(absl::StrCat(name, ".weight"), n);
  return b.Op1("rms_norm", {x, weight}, {{"eps", eps}}, name);
}

Tensor Linear(GraphBuilder& b, RandomWeights& w, const std::string& name, Tensor x,
              int64_t out) {
  if (!b.status().ok()) return {};
  const int64_t in = b.info(x).dims.back();
  Tensor weight = w.Linear(absl::StrCat(name, ".weight"), out, in);
  return b.Op1("linear", {x, weight}, {}, name);
}

Tensor MlpLayer(GraphBuilder& b, RandomWeights& w, const std::string& p, Tensor x,
                const AttentionShape& s) {
  Tensor h = RmsNorm(b, w, absl::StrCat(p, ".ffn_norm"), x, s.eps);
  Tensor gate = Linear(b, w, absl::StrCat(p, ".ffn_gate"), h, s.ffn);
  Tensor up = Linear(b, w, absl::StrCat(p, ".ffn_up"), h, s.ffn);
  Tensor act = b.Op1("silu", {gate}, {}, absl::StrCat(p, ".ffn_silu"));
  Tensor gated = b.Op1("mul", {act, up}, {}, absl::StrCat(p, ".ffn_gated"));
  Tensor down = Linear(b, w, absl::StrCat(p, ".ffn_down"), gated, s.hidden);
  return b.Op1("add", {x, down}, {}, absl::StrCat(p, ".ffn_residual"));
}

Tensor AttentionLayer(GraphBuilder& b, RandomWeights& w, const std::string& p, Tensor x,
                      const StepInputs& in, const AttentionShape& s) {
  const int64_t B = in.shape.batch, T = in.shape.tokens, S = in.shape.max_seq;
  const int64_t D = s.head_dim, Hq = s.q_heads, Hkv = s.kv_heads;
  const Attrs rope = {{"theta", s.rope_theta}, {"mode", std::string("neox")}};

  Tensor h = RmsNorm(b, w, absl::StrCat(p, ".attn_norm"), x, s.eps);
  Tensor q = Reshape(b, Linear(b, w, absl::StrCat(p, ".attn_q"), h, Hq * D), {B, T, Hq, D});
  Tensor k = Reshape(b, Linear(b, w, absl::StrCat(p, ".attn_k"), h, Hkv * D), {B, T, Hkv, D});
  Tensor v = Reshape(b, Linear(b, w, absl::StrCat(p, ".attn_v"), h, Hkv * D), {B, T, Hkv, D});
  q = RmsNorm(b, w, absl::StrCat(p, ".attn_q_norm"), q, s.eps);
  k = RmsNorm(b, w, absl::StrCat(p, ".attn_k_norm"), k, s.eps);
  q = b.Op1("rope", {q, in.pos}, rope, absl::StrCat(p, ".attn_q_rope"));
  k = b.Op1("rope", {k, in.pos}, rope, absl::StrCat(p, ".attn_k_rope"));

  // The KV cache holds f16 rows of Hkv*D; this step's rows go in at `pos`.
  const Attrs to_f16 = {{"dtype", std::string("f16")}};
  Tensor k16 = b.Op1("cast", {k}, to_f16, absl::StrCat(p, ".attn_k_f16"));
  Tensor v16 = b.Op1("cast", {v}, to_f16, absl::StrCat(p, ".attn_v_f16"));
  Tensor k_cache = b.Input(absl::StrCat(p, ".k_cache"), DType::kF16, {B, S, Hkv * D});
  Tensor v_cache = b.Input(absl::StrCat(p, ".v_cache"), DType::kF16, {B, S, Hkv * D});
  Tensor k_next = b.Op1("write_rows", {k_cache, Reshape(b, k16, {B, T, Hkv * D}), in.pos}, {},
                        absl::StrCat(p, ".k_cache.next"));
  Tensor v_next = b.Op1("write_rows", {v_cache, Reshape(b, v16, {B, T, Hkv * D}), in.pos}, {},
                        absl::StrCat(p, ".v_cache.next"));
  b.Output(k_next);
  b.Output(v_next);
  b.State(k_cache, k_next);
  b.State(v_cache, v_next);

  Tensor attn;
  if (in.shape.decode) {
    // Decode reads the whole cache through a head-split view; the mask hides
    // the cells not yet written.
    const std::vector<int64_t> dims = {B, S, Hkv, D};
    const std::vector<int64_t> strides = ContiguousStrides(DType::kF16, dims);
    Tensor kv_k = b.View(k_next, dims, strides, 0, absl::StrCat(p, ".k_cache.heads"));
    Tensor kv_v = b.View(v_next, dims, strides, 0, absl::StrCat(p, ".v_cache.heads"));
    attn = b.Op1("flash_attn", {q, kv_k, kv_v, in.mask}, {}, absl::StrCat(p, ".attn"));
  } else {
    // Prefill of a sequence's first T tokens attends causally to this
    // step's own keys, at the cache's f16 precision.
    attn = b.Op1("flash_attn", {q, k16, v16}, {{"causal", true}}, absl::StrCat(p, ".attn"));
  }
  Tensor o = Linear(b, w, absl::StrCat(p, ".attn_output"), Reshape(b, attn, {B, T, Hq * D}),
                    s.hidden);
  return b.Op1("add", {x, o}, {}, absl::StrCat(p, ".attn_residual"));
}

absl::StatusOr<Graph> MakeAttentionBlock(bool decode, uint64_t seed, int64_t prefill_tokens) {
  StepShape shape;
  shape.decode = decode;
  shape.tokens = decode ? 1 : prefill_tokens;
  const AttentionShape s;
  GraphBuilder b(decode ? "attention-block-decode" : "attention-block-prefill");
  RandomWeights w(b, seed);
  Tensor x;
  StepInputs in = AddStepInputs(b, shape, s.hidden, x);
  Tensor y = AttentionLayer(b, w, "blk.0", x, in, s);
  y = MlpLayer(b, w, "blk.0", y, s);
  if (b.status().ok()) b.Rename(y, "y");
  b.Output(y);
  b.SetMetadata("description",
                absl::StrCat("One Qwen3-0.6B-shaped decoder layer (hidden 1024, 16 query / 8 KV "
                             "heads of 128, SwiGLU 3072), ",
                             decode ? "decoding one token against a 4096-row f16 KV cache"
                                    : absl::StrCat("prefilling the first ", prefill_tokens, " tokens of a sequence")));
  return b.Build();
}

}  // namespace kiln::examples
