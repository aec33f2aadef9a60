#include "import/hf_config.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "graph/message_text.h"
#include "import/json_util.h"

namespace kiln::import {
namespace {

using json = nlohmann::json;
using models::Family;
using models::ModelConfig;

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("\"", field, "\" ", what));
}

// Typed reads of one object's fields, each error naming the field. An absent
// field or a JSON null takes the default.
class Fields {
 public:
  explicit Fields(const json& object) : o_(object) {}

  bool Has(const char* key) const {
    auto it = o_.find(key);
    return it != o_.end() && !it->is_null();
  }
  const json* Get(const char* key) const {
    auto it = o_.find(key);
    return it == o_.end() || it->is_null() ? nullptr : &*it;
  }
  absl::StatusOr<int64_t> Int(const char* key, std::optional<int64_t> fallback = std::nullopt) const {
    const json* v = Get(key);
    if (!v) {
      if (fallback) return *fallback;
      return FieldError(key, "is missing");
    }
    if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > (int64_t{1} << 40)) {
      return FieldError(key, absl::StrCat("is ", EscapeForMessage(v->dump()), ", expected an integer in 0..2^40"));
    }
    return v->get<int64_t>();
  }
  absl::StatusOr<double> Float(const char* key, double fallback) const {
    const json* v = Get(key);
    if (!v) return fallback;
    if (!v->is_number() || !std::isfinite(v->get<double>())) {
      return FieldError(key, absl::StrCat("is ", EscapeForMessage(v->dump()), ", expected a number"));
    }
    return v->get<double>();
  }
  absl::StatusOr<bool> Bool(const char* key, bool fallback) const {
    const json* v = Get(key);
    if (!v) return fallback;
    if (!v->is_boolean()) return FieldError(key, absl::StrCat("is ", EscapeForMessage(v->dump()), ", expected a bool"));
    return v->get<bool>();
  }
  absl::StatusOr<std::string> String(const char* key, const std::string& fallback) const {
    const json* v = Get(key);
    if (!v) return fallback;
    if (!v->is_string()) return FieldError(key, absl::StrCat("is ", EscapeForMessage(v->dump()), ", expected a string"));
    return v->get<std::string>();
  }

 private:
  const json& o_;
};

#define KILN_ASSIGN(lhs, expr)          \
  do {                                  \
    auto _v = (expr);                   \
    if (!_v.ok()) return _v.status();   \
    lhs = *std::move(_v);               \
  } while (0)

// rope_parameters (transformers 5) or rope_theta + rope_scaling (published
// checkpoints); partial_rotary_factor in either place.
absl::Status ReadRope(const Fields& f, ModelConfig& c, double default_theta, double default_partial) {
  const json* params = f.Get("rope_parameters");
  const json* scaling = f.Get("rope_scaling");
  if (params && !params->is_object()) return FieldError("rope_parameters", "is not an object");
  if (scaling && !scaling->is_object()) return FieldError("rope_scaling", "is not an object");
  const json empty = json::object();
  const Fields p(params ? *params : empty);
  const Fields s(scaling ? *scaling : (params ? *params : empty));
  KILN_ASSIGN(c.rope_theta, p.Float("rope_theta", 0));
  if (c.rope_theta == 0) KILN_ASSIGN(c.rope_theta, f.Float("rope_theta", default_theta));
  if (c.rope_theta <= 0) return FieldError("rope_theta", "must be positive");
  double partial;
  KILN_ASSIGN(partial, p.Float("partial_rotary_factor", -1));
  if (partial < 0) KILN_ASSIGN(partial, f.Float("partial_rotary_factor", default_partial));
  if (!(partial > 0 && partial <= 1)) return FieldError("partial_rotary_factor", "must be in (0, 1]");
  c.rotary_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * partial);  // int(), as transformers
  if (c.rotary_dim % 2 != 0 || c.rotary_dim == 0) {
    return FieldError("partial_rotary_factor", absl::StrCat("gives an odd or zero rotary dim ", c.rotary_dim));
  }
  if (c.rotary_dim == c.head_dim) c.rotary_dim = 0;
  std::string type;
  KILN_ASSIGN(type, s.String("rope_type", ""));
  if (type.empty()) KILN_ASSIGN(type, s.String("type", ""));
  const char* field = scaling ? "rope_scaling" : "rope_parameters";
  if (type.empty() || type == "default") return absl::OkStatus();
  if (type == "linear") {
    c.rope_scaling.type = "linear";
    KILN_ASSIGN(c.rope_scaling.factor, s.Float("factor", 0));
    if (c.rope_scaling.factor <= 0) return FieldError(field, "has a linear rope without a positive \"factor\"");
    return absl::OkStatus();
  }
  if (type == "llama3") {
    c.rope_scaling.type = "llama3";
    KILN_ASSIGN(c.rope_scaling.factor, s.Float("factor", 0));
    KILN_ASSIGN(c.rope_scaling.low_freq_factor, s.Float("low_freq_factor", 1));
    KILN_ASSIGN(c.rope_scaling.high_freq_factor, s.Float("high_freq_factor", 4));
    KILN_ASSIGN(c.rope_scaling.original_max_position, s.Int("original_max_position_embeddings", 8192));
    if (c.rope_scaling.factor <= 0 || c.rope_scaling.low_freq_factor <= 0 ||
        c.rope_scaling.high_freq_factor <= c.rope_scaling.low_freq_factor) {
      return FieldError(field, "has llama3 factors kiln cannot use (factor > 0, 0 < low < high)");
    }
    return absl::OkStatus();
  }
  return FieldError(field, absl::StrCat("has rope type ", QuoteName(type),
                                        "; kiln imports default, linear and llama3 rotary embeddings"));
}

// Qwen3-Next / Qwen3.5: which layers are full attention.
absl::Status ReadLayerTypes(const Fields& f, ModelConfig& c) {
  c.full_attention.assign(static_cast<size_t>(c.num_layers), false);
  if (const json* types = f.Get("layer_types")) {
    if (!types->is_array() || types->size() != static_cast<size_t>(c.num_layers)) {
      return FieldError("layer_types", absl::StrCat("must list ", c.num_layers, " layer types"));
    }
    for (size_t i = 0; i < types->size(); ++i) {
      const json& t = (*types)[i];
      if (t == "full_attention") {
        c.full_attention[i] = true;
      } else if (t != "linear_attention") {
        return FieldError("layer_types", absl::StrCat("has ", EscapeForMessage(t.dump()), " at layer ", i,
                                                      "; expected \"full_attention\" or \"linear_attention\""));
      }
    }
    return absl::OkStatus();
  }
  int64_t interval;
  KILN_ASSIGN(interval, f.Int("full_attention_interval", 4));
  if (interval < 1) return FieldError("full_attention_interval", "must be at least 1");
  for (int64_t i = 0; i < c.num_layers; ++i) c.full_attention[i] = (i + 1) % interval == 0;
  return absl::OkStatus();
}

// Qwen3-Next layers use a mixture of experts unless listed in
// mlp_only_layers (or num_experts is 0); kiln runs only the dense MLP.
absl::Status RefuseExperts(const Fields& f, const ModelConfig& c) {
  int64_t experts, step;
  KILN_ASSIGN(experts, f.Int("num_experts", 0));
  KILN_ASSIGN(step, f.Int("decoder_sparse_step", 1));
  if (experts == 0) return absl::OkStatus();
  std::set<int64_t> dense;
  if (const json* only = f.Get("mlp_only_layers")) {
    if (!only->is_array()) return FieldError("mlp_only_layers", "is not a list");
    for (const json& i : *only) {
      if (!i.is_number_integer()) return FieldError("mlp_only_layers", "holds a non-integer");
      dense.insert(i.get<int64_t>());
    }
  }
  for (int64_t i = 0; i < c.num_layers; ++i) {
    if (!dense.count(i) && step > 0 && (i + 1) % step == 0) {
      return FieldError("num_experts", absl::StrCat("is ", experts, ": layer ", i,
                                                    " is a mixture-of-experts layer, which kiln cannot run "
                                                    "(only layers in \"mlp_only_layers\" are dense)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseHfConfig(const json& config) {
  if (!config.is_object()) return absl::InvalidArgumentError("config.json is not an object");
  const Fields top(config);
  std::string arch;
  if (const json* archs = top.Get("architectures")) {
    if (!archs->is_array() || archs->size() != 1 || !(*archs)[0].is_string()) {
      return FieldError("architectures", "must list one architecture");
    }
    arch = (*archs)[0].get<std::string>();
  }
  ModelConfig c;
  const json* text = &config;  // where the language model's fields are
  if (arch == "LlamaForCausalLM") {
    c.family = Family::kLlama;
  } else if (arch == "Qwen3ForCausalLM") {
    c.family = Family::kQwen3;
  } else if (arch == "Qwen3NextForCausalLM") {
    c.family = Family::kQwen3Next;
  } else if (arch == "Qwen3_5ForCausalLM" || arch == "Qwen3_5ForConditionalGeneration") {
    c.family = Family::kQwen3_5;
    if (const json* t = top.Get("text_config")) {
      if (!t->is_object()) return FieldError("text_config", "is not an object");
      text = t;
    }
  } else {
    return FieldError("architectures",
                      absl::StrCat("is ", QuoteName(arch.empty() ? "(none)" : arch),
                                   "; kiln imports LlamaForCausalLM, Qwen3ForCausalLM, Qwen3NextForCausalLM, "
                                   "Qwen3_5ForCausalLM and Qwen3_5ForConditionalGeneration"));
  }
  const Fields f(*text);
  std::string model_type;
  KILN_ASSIGN(model_type, f.String("model_type", ""));
  if (model_type.find("moe") != std::string::npos) {
    return FieldError("model_type", absl::StrCat("is ", QuoteName(model_type),
                                                 ", a mixture-of-experts model, which kiln cannot run"));
  }
  c.name = model_type.empty() ? arch : model_type;
  KILN_ASSIGN(c.vocab_size, f.Int("vocab_size"));
  KILN_ASSIGN(c.hidden_size, f.Int("hidden_size"));
  KILN_ASSIGN(c.num_layers, f.Int("num_hidden_layers"));
  KILN_ASSIGN(c.intermediate_size, f.Int("intermediate_size"));
  KILN_ASSIGN(c.num_heads, f.Int("num_attention_heads"));
  KILN_ASSIGN(c.num_kv_heads, f.Int("num_key_value_heads", c.num_heads));
  for (const auto& [field, value] : {std::pair{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                                     {"num_hidden_layers", c.num_layers}, {"intermediate_size", c.intermediate_size},
                                     {"num_attention_heads", c.num_heads}, {"num_key_value_heads", c.num_kv_heads}}) {
    if (value < 1) return FieldError(field, "must be at least 1");
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    return FieldError("num_key_value_heads", "must divide num_attention_heads");
  }
  const bool hybrid = c.family == Family::kQwen3Next || c.family == Family::kQwen3_5;
  if (hybrid) {
    KILN_ASSIGN(c.head_dim, f.Int("head_dim", 256));
  } else {
    KILN_ASSIGN(c.head_dim, f.Int("head_dim", c.hidden_size / c.num_heads));
  }
  if (c.head_dim < 2) return FieldError("head_dim", "must be at least 2");
  KILN_ASSIGN(c.rms_norm_eps, f.Float("rms_norm_eps", 1e-6));
  // tie_word_embeddings is the top-level config's for Qwen3.5's
  // conditional-generation form, the text config's otherwise.
  KILN_ASSIGN(c.tie_embeddings, f.Bool("tie_word_embeddings", false));
  if (text != &config && top.Has("tie_word_embeddings")) KILN_ASSIGN(c.tie_embeddings, top.Bool("tie_word_embeddings", false));

  std::string act;
  KILN_ASSIGN(act, f.String("hidden_act", "silu"));
  if (act != "silu") return FieldError("hidden_act", absl::StrCat("is ", QuoteName(act), "; kiln's MLP is SwiGLU (silu)"));
  bool bias;
  KILN_ASSIGN(bias, f.Bool("mlp_bias", false));
  if (bias) return FieldError("mlp_bias", "is true; kiln's MLP has no biases");
  // transformers puts attention_bias on q, k, v and o alike; the builders
  // take q/k/v biases only (ModelConfig::attention_bias).
  KILN_ASSIGN(bias, f.Bool("attention_bias", false));
  if (bias) return FieldError("attention_bias", "is true (q/k/v/o biases); kiln builds attention without o_proj bias");
  c.attention_bias = false;
  bool sliding;
  KILN_ASSIGN(sliding, f.Bool("use_sliding_window", false));
  if (sliding) return FieldError("use_sliding_window", "is true; kiln imports full attention only");
  int64_t pretraining_tp;
  KILN_ASSIGN(pretraining_tp, f.Int("pretraining_tp", 1));
  (void)pretraining_tp;  // a training detail; the reference ignores it for inference too

  switch (c.family) {
    case Family::kLlama:
      if (auto st = ReadRope(f, c, 10000, 1.0); !st.ok()) return st;
      break;
    case Family::kQwen3:
      c.qk_norm = true;
      if (const json* types = f.Get("layer_types")) {
        for (const json& t : *types) {
          if (t != "full_attention") return FieldError("layer_types", "has a layer other than full_attention");
        }
      }
      if (auto st = ReadRope(f, c, 10000, 1.0); !st.ok()) return st;
      break;
    case Family::kQwen3Next:
    case Family::kQwen3_5:
      c.qk_norm = true;
      KILN_ASSIGN(c.attn_output_gate, f.Bool("attn_output_gate", true));
      c.norm_offset_one = true;
      // mrope_section (Qwen3.5's multimodal rope) splits the rotary pairs
      // among time / height / width positions; for text all three are the
      // token's position, which is plain rope.
      if (auto st = ReadRope(f, c, 10000, 0.25); !st.ok()) return st;
      if (auto st = ReadLayerTypes(f, c); !st.ok()) return st;
      if (c.family == Family::kQwen3Next) {
        if (auto st = RefuseExperts(f, c); !st.ok()) return st;
      }
      KILN_ASSIGN(c.linear_num_key_heads, f.Int("linear_num_key_heads", 16));
      KILN_ASSIGN(c.linear_num_value_heads, f.Int("linear_num_value_heads", 32));
      KILN_ASSIGN(c.linear_key_head_dim, f.Int("linear_key_head_dim", 128));
      KILN_ASSIGN(c.linear_value_head_dim, f.Int("linear_value_head_dim", 128));
      KILN_ASSIGN(c.linear_conv_kernel, f.Int("linear_conv_kernel_dim", 4));
      if (c.linear_num_key_heads < 1 || c.linear_num_value_heads % c.linear_num_key_heads != 0) {
        return FieldError("linear_num_value_heads", "must be a multiple of linear_num_key_heads");
      }
      if (c.linear_key_head_dim < 1 || c.linear_value_head_dim < 1 || c.linear_conv_kernel < 1) {
        return FieldError("linear_key_head_dim", "and the other linear_* sizes must be at least 1");
      }
      break;
  }
  return c;
}

absl::StatusOr<ModelConfig> ReadHfConfig(const std::string& path) {
  auto config = ReadJsonFile(path, 16 << 20, 16);
  if (!config.ok()) return config.status();
  auto parsed = ParseHfConfig(*config);
  if (!parsed.ok()) return absl::Status(parsed.status().code(), absl::StrCat(path, ": ", parsed.status().message()));
  return parsed;
}

}  // namespace kiln::import
