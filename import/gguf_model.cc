#include "import/gguf_model.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "graph/message_text.h"

namespace kiln::import {
namespace {

using models::Family;
using models::ModelConfig;

#define KILN_ASSIGN_OR(lhs, expr, fallback) \
  do {                                      \
    auto _v = (expr);                       \
    if (!_v.ok()) return _v.status();       \
    lhs = _v->has_value() ? **_v : (fallback); \
  } while (0)

// Hugging Face per-layer names -> llama.cpp's (llama.cpp's tensor table).
constexpr std::pair<const char*, const char*> kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

}  // namespace

std::optional<std::string> GgufNameFor(absl::string_view hf_name) {
  if (hf_name == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf_name == "model.norm.weight") return "output_norm.weight";
  if (hf_name == "lm_head.weight") return "output.weight";
  absl::string_view rest = hf_name;
  if (!absl::ConsumePrefix(&rest, "model.layers.")) return std::nullopt;
  const size_t dot = rest.find('.');
  int64_t layer;
  if (dot == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, dot), &layer)) return std::nullopt;
  rest.remove_prefix(dot + 1);
  for (const auto& [hf, cpp] : kLayerNames) {
    if (rest == hf) return absl::StrCat("blk.", layer, ".", cpp);
  }
  return std::nullopt;
}

absl::StatusOr<ModelConfig> ModelConfigFromGguf(const GgufFile& file) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF file \"", file.path(), "\": ", what));
  };
  std::string arch;
  KILN_ASSIGN_OR(arch, file.GetString("general.architecture"), std::string());
  ModelConfig c;
  if (arch == "llama") {
    c.family = Family::kLlama;
    c.rope_interleaved = true;  // the converter permuted q/k rows for pairwise rope
  } else if (arch == "qwen3") {
    c.family = Family::kQwen3;
    c.qk_norm = true;
  } else {
    return bad(absl::StrCat("general.architecture is ", QuoteName(arch.empty() ? "(none)" : arch),
                            "; kiln imports GGUF files of \"llama\" and \"qwen3\" (import other models from their "
                            "Hugging Face folder)"));
  }
  const std::string p = arch + ".";
  KILN_ASSIGN_OR(c.name, file.GetString("general.name"), arch);
  auto need = [&](const std::string& key) -> absl::StatusOr<int64_t> {
    auto v = file.GetInt(key);
    if (!v.ok()) return v.status();
    if (!v->has_value()) return bad(absl::StrCat("has no metadata \"", key, "\""));
    if (**v < 1 || **v > (int64_t{1} << 40)) return bad(absl::StrCat("metadata \"", key, "\" is ", **v));
    return **v;
  };
  auto assign = [](int64_t& out, absl::StatusOr<int64_t> v) {
    if (v.ok()) out = *v;
    return v.status();
  };
  for (auto [out, key] : {std::pair{&c.hidden_size, "embedding_length"}, {&c.num_layers, "block_count"},
                          {&c.intermediate_size, "feed_forward_length"}, {&c.num_heads, "attention.head_count"}}) {
    if (auto st = assign(*out, need(p + key)); !st.ok()) return st;
  }
  KILN_ASSIGN_OR(c.num_kv_heads, file.GetInt(p + "attention.head_count_kv"), c.num_heads);
  if (c.num_kv_heads < 1 || c.num_heads % c.num_kv_heads != 0) {
    return bad(absl::StrCat("attention.head_count_kv ", c.num_kv_heads, " does not divide head_count ", c.num_heads));
  }
  KILN_ASSIGN_OR(c.head_dim, file.GetInt(p + "attention.key_length"), c.hidden_size / c.num_heads);
  int64_t value_length;
  KILN_ASSIGN_OR(value_length, file.GetInt(p + "attention.value_length"), c.head_dim);
  if (value_length != c.head_dim || c.head_dim < 2) {
    return bad(absl::StrCat("attention.key_length ", c.head_dim, " and value_length ", value_length,
                            " must be equal and at least 2"));
  }
  KILN_ASSIGN_OR(c.rms_norm_eps, file.GetFloat(p + "attention.layer_norm_rms_epsilon"), 1e-5);
  KILN_ASSIGN_OR(c.rope_theta, file.GetFloat(p + "rope.freq_base"), 10000.0);
  int64_t rope_dims;
  KILN_ASSIGN_OR(rope_dims, file.GetInt(p + "rope.dimension_count"), c.head_dim);
  if (rope_dims != c.head_dim) {
    return bad(absl::StrCat("rope.dimension_count is ", rope_dims, "; kiln imports GGUF models whose rope covers "
                            "the whole head (", c.head_dim, ")"));
  }
  std::string scaling;
  KILN_ASSIGN_OR(scaling, file.GetString(p + "rope.scaling.type"), std::string("none"));
  if (scaling == "linear") {
    c.rope_scaling.type = "linear";
    KILN_ASSIGN_OR(c.rope_scaling.factor, file.GetFloat(p + "rope.scaling.factor"), 0.0);
    if (c.rope_scaling.factor <= 0) return bad("has linear rope scaling without a positive rope.scaling.factor");
  } else if (scaling != "none") {
    return bad(absl::StrCat(p, "rope.scaling.type is ", QuoteName(scaling), "; kiln imports none and linear"));
  }
  if (file.Find("rope_freqs.weight")) {
    // llama.cpp's form of llama3 rope scaling: per-frequency factors whose
    // parameters the file does not keep.
    return bad("has rope_freqs.weight (llama3 rope scaling), which kiln imports only from the Hugging Face "
               "checkpoint (its config.json keeps the parameters)");
  }
  const GgufTensor* embed = file.Find("token_embd.weight");
  if (!embed || embed->dims.size() != 2) return bad("has no 2-D token_embd.weight");
  KILN_ASSIGN_OR(c.vocab_size, file.GetInt(p + "vocab_size"), embed->dims[0]);
  c.tie_embeddings = file.Find("output.weight") == nullptr;
  return c;
}

}  // namespace kiln::import
