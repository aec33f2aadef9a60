#include "models/published_configs.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kiln::models {
namespace {

// Qwen/Qwen3.5-0.8B text_config: 24 layers, [3 gated delta net, 1 gated
// attention] x 6, attention 8 query / 2 KV heads of 256 with a quarter of
// each head rotated (theta 1e7), GDN 16 q/k and 16 value heads of 128.
ModelConfig Qwen35_08B() {
  ModelConfig c;
  c.family = Family::kQwen3_5;
  c.name = "qwen3.5-0.8b";
  c.vocab_size = 248320;
  c.hidden_size = 1024;
  c.num_layers = 24;
  c.intermediate_size = 3584;
  c.rms_norm_eps = 1e-6;
  c.tie_embeddings = true;
  c.norm_offset_one = true;
  c.num_heads = 8;
  c.num_kv_heads = 2;
  c.head_dim = 256;
  c.rope_theta = 1e7;
  c.rotary_dim = 64;  // partial_rotary_factor 0.25
  c.qk_norm = true;
  c.attn_output_gate = true;
  for (int i = 0; i < 24; ++i) c.full_attention.push_back(i % 4 == 3);  // full_attention_interval 4
  c.linear_num_key_heads = 16;
  c.linear_num_value_heads = 16;
  c.linear_key_head_dim = 128;
  c.linear_value_head_dim = 128;
  c.linear_conv_kernel = 4;
  return c;
}

// Qwen/Qwen3-4B: 36 layers, 32 query / 8 KV heads of 128, q/k norms, tied.
ModelConfig Qwen3_4B() {
  ModelConfig c;
  c.family = Family::kQwen3;
  c.name = "qwen3-4b";
  c.vocab_size = 151936;
  c.hidden_size = 2560;
  c.num_layers = 36;
  c.intermediate_size = 9728;
  c.rms_norm_eps = 1e-6;
  c.tie_embeddings = true;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  c.rope_theta = 1e6;
  c.qk_norm = true;
  return c;
}

// meta-llama/Meta-Llama-3-8B: 32 layers, 32 query / 8 KV heads of 128,
// theta 500000, no rope scaling (that came with 3.1), untied head.
ModelConfig Llama3_8B() {
  ModelConfig c;
  c.family = Family::kLlama;
  c.name = "llama-3-8b";
  c.vocab_size = 128256;
  c.hidden_size = 4096;
  c.num_layers = 32;
  c.intermediate_size = 14336;
  c.rms_norm_eps = 1e-5;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  c.rope_theta = 500000;
  return c;
}

}  // namespace

std::vector<std::string> PublishedModelNames() { return {"qwen3.5-0.8b", "qwen3-4b", "llama-3-8b"}; }

absl::StatusOr<ModelConfig> PublishedModelConfig(absl::string_view name) {
  if (name == "qwen3.5-0.8b") return Qwen35_08B();
  if (name == "qwen3-4b") return Qwen3_4B();
  if (name == "llama-3-8b") return Llama3_8B();
  return absl::NotFoundError(absl::StrCat("no model named '", name, "'; models: ",
                                          absl::StrJoin(PublishedModelNames(), ", ")));
}

absl::StatusOr<ModelConfig> WithLayers(ModelConfig c, int64_t layers) {
  if (layers < 1 || layers > c.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("--layers ", layers, ": ", c.name, " has 1..", c.num_layers));
  }
  c.num_layers = layers;
  if (!c.full_attention.empty()) c.full_attention.resize(static_cast<size_t>(layers));
  return c;
}

}  // namespace kiln::models
