// The full-attention block of every family: input norm; q/k/v projections
// (q also yields the output gate when attn_output_gate: per head, the first
// head_dim values are the query, the next head_dim the gate, as
// Qwen3NextAttention splits them); per-head q/k RMSNorm (Qwen3 and the
// hybrids); RoPE over rotary_dim; K/V written into the layer's cache at
// `pos`; GQA flash attention over the whole cache under the caller's mask;
// out *= sigmoid(gate); o_proj; residual.
#include <string>

#include "absl/strings/str_cat.h"
#include "models/layer_builder.h"

namespace kiln::models {

Tensor AttentionBlock(LayerBuilder& lb, int64_t i, Tensor x) {
  const ModelConfig& c = lb.config();
  const int64_t T = lb.T(), S = lb.options().context;
  const int64_t D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads;
  const std::string p = LayerPrefix(i) + "self_attn.", n = absl::StrCat("blk.", i, ".");
  const bool one = c.norm_offset_one;
  GraphBuilder& b = lb.b();

  Tensor h = lb.RmsNorm(x, LayerPrefix(i) + "input_layernorm.weight", n + "attn_norm", one);
  auto bias_of = [&](const char* proj) { return c.attention_bias ? p + proj + ".bias" : std::string(); };
  Tensor q_all = lb.Linear(h, p + "q_proj.weight", n + "attn_q", bias_of("q_proj"));
  Tensor k = lb.Reshape(lb.Linear(h, p + "k_proj.weight", n + "attn_k", bias_of("k_proj")), {1, T, Hkv, D});
  Tensor v = lb.Reshape(lb.Linear(h, p + "v_proj.weight", n + "attn_v", bias_of("v_proj")), {1, T, Hkv, D});
  Tensor q, gate;
  if (c.attn_output_gate) {
    const int64_t W = 2 * Hq * D;  // per head: [query (D), gate (D)]
    q = lb.Window(q_all, {1, T, Hq, D}, {T * W, W, 2 * D, 1}, 0, n + "attn_q.query");
    gate = lb.Window(q_all, {1, T, Hq, D}, {T * W, W, 2 * D, 1}, D, n + "attn_q.gate");
    q = lb.Op("contiguous", {q}, n + "attn_q.heads");
  } else {
    q = lb.Reshape(q_all, {1, T, Hq, D});
  }
  if (c.qk_norm) {
    q = lb.RmsNorm(q, p + "q_norm.weight", n + "attn_q_norm", one);
    k = lb.RmsNorm(k, p + "k_norm.weight", n + "attn_k_norm", one);
  }
  const Attrs rope = {{"theta", c.rope_theta},
                      {"rotary_dim", c.rotary_dim},
                      {"mode", std::string(c.rope_interleaved ? "interleaved" : "neox")}};
  if (c.rope_scaling.type.empty()) {
    q = lb.Op("rope", {q, lb.pos}, n + "attn_q_rope", rope);
    k = lb.Op("rope", {k, lb.pos}, n + "attn_k_rope", rope);
  } else {
    q = ScaledRope(lb, q, n + "attn_q_rope");
    k = ScaledRope(lb, k, n + "attn_k_rope");
  }

  // This step's K/V rows go into the cache at `pos` (write_rows rounds them
  // to the cache's dtype), then attention reads the whole cache; the mask
  // hides the cells this sequence has not written.
  const DType cache = lb.options().cache_dtype;
  Tensor k_rows = lb.Reshape(k, {1, T, Hkv * D});
  Tensor v_rows = lb.Reshape(v, {1, T, Hkv * D});
  Tensor k_cache = b.Input(n + "k_cache", cache, {1, S, Hkv * D});
  Tensor v_cache = b.Input(n + "v_cache", cache, {1, S, Hkv * D});
  Tensor k_next = lb.Op("write_rows", {k_cache, k_rows, lb.pos}, n + "k_cache.next");
  Tensor v_next = lb.Op("write_rows", {v_cache, v_rows, lb.pos}, n + "v_cache.next");
  if (!lb.ok()) return {};
  b.Output(k_next);
  b.Output(v_next);
  b.State(k_cache, k_next);
  b.State(v_cache, v_next);
  const std::vector<int64_t> heads = {1, S, Hkv, D};
  Tensor kv_k = b.View(k_next, heads, ContiguousStrides(cache, heads), 0, n + "k_cache.heads");
  Tensor kv_v = b.View(v_next, heads, ContiguousStrides(cache, heads), 0, n + "v_cache.heads");
  Tensor attn = lb.Op("flash_attn", {q, kv_k, kv_v, lb.mask}, n + "attn");
  if (c.attn_output_gate) {
    attn = lb.Op("mul", {attn, lb.Op("sigmoid", {gate}, n + "attn_gate")}, n + "attn_gated");
  }
  Tensor o = lb.Linear(lb.Reshape(attn, {1, T, Hq * D}), p + "o_proj.weight", n + "attn_output");
  return lb.Op("add", {x, o}, n + "attn_residual");
}

}  // namespace kiln::models
