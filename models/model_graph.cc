// BuildModelGraph: one entry graph of a decoder-only model (model_config.h's
// interface): embeddings, the layers (attention_layer.cc,
// gated_delta_net_layer.cc), each followed by a SwiGLU MLP, the final norm
// and the LM head. The semantics follow the transformers reference code of
// each family (LlamaForCausalLM, Qwen3ForCausalLM, Qwen3NextForCausalLM,
// Qwen3_5ForCausalLM).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/message_text.h"
#include "models/layer_builder.h"
#include "models/model_config.h"

namespace kiln::models {

std::string LayerPrefix(int64_t i) { return absl::StrCat("model.layers.", i, "."); }

LayerBuilder::LayerBuilder(GraphBuilder& b, const ModelConfig& config, WeightSource& source,
                           const EntryOptions& options)
    : b_(b), config_(config), source_(source), options_(options) {
  for (WeightSpec& s : ExpectedWeights(config)) {
    std::string name = s.name;
    specs_.emplace(std::move(name), std::move(s));
  }
}

Tensor LayerBuilder::Weight(const std::string& name, std::vector<int64_t> dims) {
  if (!ok()) return {};
  auto spec = specs_.find(name);
  if (spec == specs_.end()) {
    // A builder asking for a weight ExpectedWeights does not list is a bug here.
    status_ = absl::InternalError(absl::StrCat("weight ", QuoteName(name), " is not in ExpectedWeights"));
    return {};
  }
  const std::string key = absl::StrCat(name, "#", ShapeString(dims));
  if (auto it = fetched_.find(key); it != fetched_.end()) return it->second;
  auto w = source_.Get(name);
  if (!w.ok()) {
    const std::string what = absl::IsNotFound(w.status())
                                 ? "is missing"
                                 : absl::StrCat("could not be read: ", w.status().message());
    status_ = absl::Status(w.status().code(),
                           absl::StrCat(config_.name.empty() ? "" : absl::StrCat(config_.name, ": "), "weight ",
                                        QuoteName(name), " ", what, " (expected ",
                                        ShapeString(spec->second.dims), ")"));
    return {};
  }
  if (w->dims != spec->second.dims) {
    status_ = absl::InvalidArgumentError(absl::StrCat("weight ", QuoteName(name), " has shape ",
                                                      ShapeString(w->dims), "; the config implies ",
                                                      ShapeString(spec->second.dims)));
    return {};
  }
  const bool quantized_ok = spec->second.dims.size() == 2;  // projections and embeddings
  if (!IsFloat(w->dtype) && !(w->dtype == DType::kQ8_0 && quantized_ok)) {
    status_ = absl::InvalidArgumentError(absl::StrCat("weight ", QuoteName(name), " has dtype ",
                                                      DTypeName(w->dtype), "; expected f32, f16, bf16",
                                                      quantized_ok ? " or q8_0" : ""));
    return {};
  }
  const int64_t bytes = ContiguousBytes(w->dtype, w->dims);
  if (!w->data || static_cast<int64_t>(w->data->size) != bytes) {
    status_ = absl::InvalidArgumentError(absl::StrCat("weight ", QuoteName(name), " ", DTypeName(w->dtype), " ",
                                                      ShapeString(w->dims), " needs ", bytes, " bytes, has ",
                                                      w->data ? w->data->size : 0));
    return {};
  }
  std::vector<int64_t> as = dims.empty() ? w->dims : std::move(dims);
  Tensor t = b_.Constant(name, w->dtype, as, w->data);
  fetched_.emplace(key, t);
  return t;
}

Tensor LayerBuilder::WeightF32(const std::string& name, std::vector<int64_t> dims) {
  Tensor w = Weight(name, std::move(dims));
  return F32(w, absl::StrCat(name, ".f32"));
}

Tensor LayerBuilder::F32(Tensor t, const std::string& node) {
  if (!ok()) return {};
  if (b_.info(t).dtype == DType::kF32) return t;
  return Op("cast", {t}, node, {{"dtype", std::string("f32")}});
}

Tensor LayerBuilder::Reshape(Tensor t, std::vector<int64_t> dims) {
  if (!ok()) return {};
  const DType dtype = b_.info(t).dtype;
  std::vector<int64_t> strides = ContiguousStrides(dtype, dims);
  return b_.View(t, std::move(dims), std::move(strides), 0);
}

Tensor LayerBuilder::Window(Tensor t, std::vector<int64_t> dims, std::vector<int64_t> elem_strides,
                            int64_t elem_offset, const std::string& name) {
  if (!ok()) return {};
  const int64_t e = ElementSize(b_.info(t).dtype);
  for (int64_t& s : elem_strides) s *= e;
  return b_.View(t, std::move(dims), std::move(elem_strides), elem_offset * e, name);
}

Tensor LayerBuilder::Op(const std::string& op, std::vector<Tensor> in, const std::string& node, Attrs attrs) {
  if (!ok()) return {};
  return b_.Op1(op, std::move(in), std::move(attrs), node);
}

Tensor LayerBuilder::RmsNorm(Tensor x, const std::string& weight, const std::string& node, bool offset_one) {
  Tensor w = WeightF32(weight);
  // Qwen3-Next / Qwen3.5 (Gemma-style) norms store w and apply (1 + w).
  if (offset_one) w = Op("scale", {w}, node + ".weight", {{"a", 1.0}, {"b", 1.0}});
  return Op("rms_norm", {x, w}, node, {{"eps", config_.rms_norm_eps}});
}

Tensor LayerBuilder::Linear(Tensor x, const std::string& weight, const std::string& node,
                            const std::string& bias) {
  Tensor w = Weight(weight);
  if (bias.empty()) return Op("linear", {x, w}, node);
  return Op("linear", {x, w, WeightF32(bias)}, node);
}

namespace {

bool Hybrid(const ModelConfig& c) { return c.family == Family::kQwen3Next || c.family == Family::kQwen3_5; }

absl::string_view FamilyName(Family f) {
  switch (f) {
    case Family::kLlama: return "llama";
    case Family::kQwen3: return "qwen3";
    case Family::kQwen3Next: return "qwen3_next";
    case Family::kQwen3_5: return "qwen3_5";
  }
  return "?";
}

// Sizes the builders divide by or index with; an error names the field.
absl::Status CheckConfig(const ModelConfig& c, const EntryOptions& o) {
  auto positive = [](absl::string_view field, int64_t v) -> absl::Status {
    if (v > 0) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("model config: ", field, " = ", v, " must be > 0"));
  };
  for (auto [field, v] : {std::pair<absl::string_view, int64_t>{"vocab_size", c.vocab_size},
                          {"hidden_size", c.hidden_size}, {"num_layers", c.num_layers},
                          {"intermediate_size", c.intermediate_size}}) {
    if (auto st = positive(field, v); !st.ok()) return st;
  }
  if (c.num_experts > 0) {
    return absl::UnimplementedError(absl::StrCat(
        "model config: num_experts = ", c.num_experts,
        ": mixture-of-experts MLPs are not in kiln's op set (only dense MLPs, num_experts = 0)"));
  }
  const RopeScaling& rs = c.rope_scaling;
  if (!rs.type.empty() && rs.type != "linear" && rs.type != "llama3") {
    return absl::UnimplementedError(absl::StrCat("model config: rope_scaling type \"", rs.type,
                                                 "\" is not supported (only \"linear\" and \"llama3\")"));
  }
  if (!rs.type.empty() && (!(rs.factor > 0) ||
                           (rs.type == "llama3" && (!(rs.low_freq_factor > 0) || !(rs.high_freq_factor > rs.low_freq_factor) ||
                                                    rs.original_max_position < 1)))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model config: rope_scaling ", rs.type, " needs factor > 0", rs.type == "llama3"
            ? ", 0 < low_freq_factor < high_freq_factor and original_max_position >= 1" : "",
        " (factor ", rs.factor, ", low_freq_factor ", rs.low_freq_factor, ", high_freq_factor ",
        rs.high_freq_factor, ", original_max_position ", rs.original_max_position, ")"));
  }
  if (!c.full_attention.empty() && static_cast<int64_t>(c.full_attention.size()) != c.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("model config: full_attention has ", c.full_attention.size(),
                                                   " entries for ", c.num_layers, " layers"));
  }
  if (!Hybrid(c) && !c.full_attention.empty()) {
    for (bool a : c.full_attention) {
      if (!a) return absl::InvalidArgumentError(absl::StrCat("model config: family ", FamilyName(c.family),
                                                             " has no linear-attention layers"));
    }
  }
  bool any_attention = false, any_linear = false;
  for (int64_t i = 0; i < c.num_layers; ++i) (c.is_attention_layer(i) ? any_attention : any_linear) = true;
  if (any_attention) {
    for (auto [field, v] : {std::pair<absl::string_view, int64_t>{"num_heads", c.num_heads},
                            {"num_kv_heads", c.num_kv_heads}, {"head_dim", c.head_dim}}) {
      if (auto st = positive(field, v); !st.ok()) return st;
    }
    if (c.num_heads % c.num_kv_heads != 0) {
      return absl::InvalidArgumentError(absl::StrCat("model config: num_heads = ", c.num_heads,
                                                     " is not a multiple of num_kv_heads = ", c.num_kv_heads));
    }
    const int64_t rd = c.rotary_dim == 0 ? c.head_dim : c.rotary_dim;
    if (rd < 0 || rd > c.head_dim || rd % 2 != 0) {
      return absl::InvalidArgumentError(absl::StrCat("model config: rotary_dim = ", c.rotary_dim,
                                                     " must be even and at most head_dim = ", c.head_dim));
    }
  }
  if (any_linear) {
    for (auto [field, v] : {std::pair<absl::string_view, int64_t>{"linear_num_key_heads", c.linear_num_key_heads},
                            {"linear_num_value_heads", c.linear_num_value_heads},
                            {"linear_key_head_dim", c.linear_key_head_dim},
                            {"linear_value_head_dim", c.linear_value_head_dim},
                            {"linear_conv_kernel", c.linear_conv_kernel}}) {
      if (auto st = positive(field, v); !st.ok()) return st;
    }
    if (c.linear_num_value_heads % c.linear_num_key_heads != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model config: linear_num_value_heads = ", c.linear_num_value_heads,
                       " is not a multiple of linear_num_key_heads = ", c.linear_num_key_heads));
    }
    if (c.linear_conv_kernel < 2) {
      return absl::InvalidArgumentError(absl::StrCat("model config: linear_conv_kernel = ", c.linear_conv_kernel,
                                                     " must be at least 2"));
    }
  }
  if (!IsFloat(o.cache_dtype)) {
    // write_rows copies q8_0 rows as bytes and cast makes only float types,
    // so no graph can quantize new K/V rows into a q8_0 cache.
    return absl::UnimplementedError(absl::StrCat("entry options: cache_dtype ", DTypeName(o.cache_dtype),
                                                 ": a KV cache is f32, f16 or bf16 (no op quantizes rows to q8_0)"));
  }
  if (o.sequences < 1 || o.tokens % o.sequences != 0) {
    return absl::InvalidArgumentError(absl::StrCat("entry options: tokens = ", o.tokens,
                                                   " is not a multiple of sequences = ", o.sequences));
  }
  if (o.sequences > 1 && o.last_logits_only) {
    return absl::InvalidArgumentError("entry options: last_logits_only is for one sequence");
  }
  if (o.tokens < 1 || o.context < 1 || o.tokens > o.context) {
    return absl::InvalidArgumentError(absl::StrCat("entry options: tokens = ", o.tokens, " and context = ", o.context,
                                                   " need 1 <= tokens <= context"));
  }
  return absl::OkStatus();
}

// x + down(silu(gate(h)) * up(h)) with h = post_attention_layernorm(x).
Tensor MlpBlock(LayerBuilder& lb, int64_t i, Tensor x) {
  const std::string p = LayerPrefix(i), n = absl::StrCat("blk.", i, ".");
  const bool one = lb.config().norm_offset_one;
  Tensor h = lb.RmsNorm(x, p + "post_attention_layernorm.weight", n + "ffn_norm", one);
  Tensor gate = lb.Linear(h, p + "mlp.gate_proj.weight", n + "ffn_gate");
  Tensor up = lb.Linear(h, p + "mlp.up_proj.weight", n + "ffn_up");
  Tensor act = lb.Op("silu", {gate}, n + "ffn_silu");
  Tensor gated = lb.Op("mul", {act, up}, n + "ffn_gated");
  Tensor down = lb.Linear(gated, p + "mlp.down_proj.weight", n + "ffn_down");
  return lb.Op("add", {x, down}, n + "ffn_residual");
}

}  // namespace

absl::StatusOr<Graph> BuildModelGraph(const ModelConfig& c, WeightSource& weights, const EntryOptions& o) {
  if (auto st = CheckConfig(c, o); !st.ok()) return st;
  const int64_t T = o.tokens, H = c.hidden_size;
  GraphBuilder b(absl::StrCat(c.name.empty() ? std::string(FamilyName(c.family)) : c.name, T == 1 ? ".decode" : ".prefill"));
  LayerBuilder lb(b, c, weights, o);

  Tensor tokens = b.Input("tokens", DType::kI32, {1, T});
  lb.pos = b.Input("pos", DType::kI32, {T});
  lb.mask = b.Input("mask", DType::kF32, {1, 1, T, o.context});

  Tensor x = lb.Op("gather", {lb.Weight("model.embed_tokens.weight"), tokens}, "token_embd");
  x = lb.F32(x, "token_embd.f32");
  for (int64_t i = 0; i < c.num_layers && lb.ok(); ++i) {
    x = (!Hybrid(c) || c.is_attention_layer(i)) ? AttentionBlock(lb, i, x) : GatedDeltaNetBlock(lb, i, x);
    x = MlpBlock(lb, i, x);
  }
  if (o.last_logits_only && T > 1 && lb.ok()) {
    // Only the last token's logits: the LM head reads one row.
    x = lb.Window(x, {1, 1, H}, {H, H, 1}, (T - 1) * H, "last_token");
  }
  x = lb.RmsNorm(x, "model.norm.weight", "output_norm", c.norm_offset_one);
  const std::string head = c.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  Tensor logits = lb.Linear(x, head, "output");
  if (!lb.ok()) return lb.status();
  b.Rename(logits, "logits");
  b.Output(logits);

  b.SetMetadata("tokens", absl::StrCat(T));
  b.SetMetadata("decode.position", "pos");
  b.SetMetadata("decode.mask", "mask");
  b.SetMetadata("model.family", std::string(FamilyName(c.family)));
  b.SetMetadata("model.context", absl::StrCat(o.context));
  if (o.sequences > 1) b.SetMetadata("model.sequences", absl::StrCat(o.sequences));
  if (!c.name.empty()) b.SetMetadata("model.name", c.name);
  // Random inputs that `kiln run` makes up stay valid: token ids in the
  // vocabulary, positions in the cache, a mask that hides nothing.
  b.SetMetadata("input_range.tokens", absl::StrCat("0,", c.vocab_size - 1));
  b.SetMetadata("input_range.pos", absl::StrCat("0,", o.context - 1));
  b.SetMetadata("input_range.mask", "0,0");
  auto g = b.Build();
  if (!g.ok()) return lb.status().ok() ? g.status() : lb.status();
  return g;
}

}  // namespace kiln::models
