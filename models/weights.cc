// ExpectedWeights: every tensor a config's graphs read, named as the Hugging
// Face checkpoint of its family names it, with the shape the config implies
// ([out, in] for projections, as nn.Linear stores them).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/model_config.h"

namespace kiln::models {
namespace {

void Add(std::vector<WeightSpec>& out, std::string name, std::vector<int64_t> dims,
         bool optional = false) {
  out.push_back({std::move(name), std::move(dims), optional});
}

bool Hybrid(const ModelConfig& c) {
  return c.family == Family::kQwen3Next || c.family == Family::kQwen3_5;
}

void AttentionWeights(const ModelConfig& c, const std::string& p, std::vector<WeightSpec>& out) {
  const int64_t H = c.hidden_size, D = c.head_dim;
  const int64_t q_out = c.num_heads * D * (c.attn_output_gate ? 2 : 1);
  const int64_t kv_out = c.num_kv_heads * D;
  Add(out, p + "self_attn.q_proj.weight", {q_out, H});
  if (c.attention_bias) Add(out, p + "self_attn.q_proj.bias", {q_out});
  Add(out, p + "self_attn.k_proj.weight", {kv_out, H});
  if (c.attention_bias) Add(out, p + "self_attn.k_proj.bias", {kv_out});
  Add(out, p + "self_attn.v_proj.weight", {kv_out, H});
  if (c.attention_bias) Add(out, p + "self_attn.v_proj.bias", {kv_out});
  Add(out, p + "self_attn.o_proj.weight", {H, c.num_heads * D});
  if (c.qk_norm) {
    Add(out, p + "self_attn.q_norm.weight", {D});
    Add(out, p + "self_attn.k_norm.weight", {D});
  }
}

void GatedDeltaNetWeights(const ModelConfig& c, const std::string& p, std::vector<WeightSpec>& out) {
  const int64_t H = c.hidden_size;
  const int64_t Hk = c.linear_num_key_heads, Hv = c.linear_num_value_heads;
  const int64_t key_dim = Hk * c.linear_key_head_dim, value_dim = Hv * c.linear_value_head_dim;
  const int64_t conv_dim = 2 * key_dim + value_dim;
  const std::string a = p + "linear_attn.";
  if (c.family == Family::kQwen3Next) {
    // Fused per key head: [q, k, v (Hv/Hk heads), z (Hv/Hk heads)], and [b, a].
    Add(out, a + "in_proj_qkvz.weight", {2 * key_dim + 2 * value_dim, H});
    Add(out, a + "in_proj_ba.weight", {2 * Hv, H});
  } else {
    Add(out, a + "in_proj_qkv.weight", {conv_dim, H});
    Add(out, a + "in_proj_z.weight", {value_dim, H});
    Add(out, a + "in_proj_b.weight", {Hv, H});
    Add(out, a + "in_proj_a.weight", {Hv, H});
  }
  Add(out, a + "conv1d.weight", {conv_dim, 1, c.linear_conv_kernel});  // nn.Conv1d, depthwise
  Add(out, a + "dt_bias", {Hv});
  Add(out, a + "A_log", {Hv});
  Add(out, a + "norm.weight", {c.linear_value_head_dim});
  Add(out, a + "out_proj.weight", {H, value_dim});
}

}  // namespace

std::vector<WeightSpec> ExpectedWeights(const ModelConfig& c) {
  std::vector<WeightSpec> out;
  const int64_t H = c.hidden_size;
  Add(out, "model.embed_tokens.weight", {c.vocab_size, H});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    Add(out, p + "input_layernorm.weight", {H});
    if (!Hybrid(c) || c.is_attention_layer(i)) {
      AttentionWeights(c, p, out);
    } else {
      GatedDeltaNetWeights(c, p, out);
    }
    Add(out, p + "post_attention_layernorm.weight", {H});
    Add(out, p + "mlp.gate_proj.weight", {c.intermediate_size, H});
    Add(out, p + "mlp.up_proj.weight", {c.intermediate_size, H});
    Add(out, p + "mlp.down_proj.weight", {H, c.intermediate_size});
  }
  Add(out, "model.norm.weight", {H});
  Add(out, "lm_head.weight", {c.vocab_size, H}, /*optional=*/c.tie_embeddings);
  return out;
}

}  // namespace kiln::models
