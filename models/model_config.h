// A decoder-only language model's architecture and where its weights come
// from: what the whole-model graph builders (models/*.h) take, what
// `kiln import` (import/) makes from a Hugging Face folder or a GGUF file and
// what `kiln make-example` fills with seeded random weights.
//
// Weight names and layouts are the Hugging Face checkpoint's own, per family
// (e.g. "model.layers.3.self_attn.q_proj.weight", [out, in] row-major, the
// layout `linear` takes), so that a safetensors tensor is used as it is
// stored (mapped, not copied). Fused tensors (Qwen3-Next's in_proj_qkvz) stay
// fused: the builder splits their outputs in the graph as the reference
// model code does. A GGUF importer maps llama.cpp's names and layouts onto
// these. Qwen3.5 names are Qwen3_5ForCausalLM's ("model.layers.N...."); the
// published multimodal checkpoints (Qwen3_5ForConditionalGeneration) store
// the text model under "model.language_model.", which an importer maps onto
// "model." (their "model.visual.*" and "mtp.*" tensors are not read).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/dtype.h"
#include "graph/graph.h"
#include "graph/tensor.h"

namespace kiln::models {

enum class Family {
  kLlama,      // LlamaForCausalLM (Llama 2/3 style dense GQA)
  kQwen3,      // Qwen3ForCausalLM: Llama + per-head q/k RMSNorm
  kQwen3Next,  // Qwen3NextForCausalLM: gated delta net + gated attention layers
  kQwen3_5,    // Qwen3.5 text models: the same hybrid, its own tensor names
};

struct RopeScaling {
  std::string type;  // "" (none), "llama3", "linear"; others are an import error
  double factor = 1;
  double low_freq_factor = 1, high_freq_factor = 4;  // llama3
  int64_t original_max_position = 8192;              // llama3
};

struct ModelConfig {
  Family family = Family::kLlama;
  std::string name;  // for messages and metadata

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t intermediate_size = 0;  // the dense MLP's
  double rms_norm_eps = 1e-6;
  bool tie_embeddings = false;    // lm head = the embedding matrix
  bool norm_offset_one = false;   // RMSNorms apply (1 + w) (Qwen3-Next / 3.5)

  // Attention layers.
  int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  double rope_theta = 10000;
  int64_t rotary_dim = 0;          // head_dim * partial_rotary_factor; 0 = head_dim
  bool rope_interleaved = false;   // pairs (2i, 2i+1) (GGUF llama); else neox halves
  RopeScaling rope_scaling;
  bool qk_norm = false;            // per-head RMSNorm of q and k (Qwen3, hybrids)
  bool attn_output_gate = false;   // q_proj also yields a gate; out *= sigmoid(gate)
  bool attention_bias = false;     // q/k/v projections carry biases

  // Hybrid families: full_attention[i] says layer i is an attention layer;
  // the others are gated delta net layers. Empty = every layer attention.
  std::vector<bool> full_attention;
  int64_t linear_num_key_heads = 0, linear_num_value_heads = 0;
  int64_t linear_key_head_dim = 0, linear_value_head_dim = 0;
  int64_t linear_conv_kernel = 4;

  // Mixture-of-experts MLPs (config.json "num_experts", e.g. Qwen3-Next-80B's
  // 512): not in kiln's op set, so BuildModelGraph refuses a config with
  // num_experts > 0 (an error naming the field). 0 = every MLP dense.
  int64_t num_experts = 0;

  bool is_attention_layer(int64_t layer) const {
    return full_attention.empty() || full_attention[static_cast<size_t>(layer)];
  }
};

// A weight the builder asks for, with the shape the config implies.
struct WeightSpec {
  std::string name;
  std::vector<int64_t> dims;
  bool optional = false;  // e.g. lm_head.weight when embeddings are tied
};

// Every weight a config's graphs read (models/weights.cc), in a stable order.
std::vector<WeightSpec> ExpectedWeights(const ModelConfig& config);

// A weight's dtype (f32, f16, bf16 or q8_0), dims and bytes.
struct Weight {
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;
  std::shared_ptr<const ConstantData> data;
};

// Where weights come from: a checkpoint (import/), or seeded random values.
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The weight of that name; NotFound when the source has none.
  virtual absl::StatusOr<Weight> Get(absl::string_view name) = 0;
};

// What one graph of a model computes. Both entries have the same interface
// (so prefill may start at any depth, and decode is prefill with tokens = 1):
//   inputs  tokens i32 [1, T]; pos i32 [T] (each token's position: RoPE and
//           the cache row it writes); mask f32 [1, 1, T, context], added to
//           the attention scores over the cache cells (0 = attend, -inf =
//           hidden; causal within the new tokens is the caller's mask)
//   output  logits f32 [1, T, vocab] (or [1, 1, vocab] with last_logits_only)
//   states  blk.N.k_cache / blk.N.v_cache [1, context, num_kv_heads*head_dim]
//           (cache dtype) for attention layers; blk.N.conv_state and
//           blk.N.ssm_state for gated delta net layers
// Metadata: "tokens" (T), "decode.position" = "pos", "decode.mask" = "mask",
// "model.family", "model.context".
struct EntryOptions {
  int64_t tokens = 1;        // T
  int64_t context = 4096;    // KV cache cells
  DType cache_dtype = DType::kF16;  // f32, f16 or bf16 (no op writes q8_0 rows)
  bool last_logits_only = false;
  // Several sequences in one run (e.g. N sequences decoding together): the
  // T tokens are `sequences` equal runs of T / sequences tokens, one run per
  // sequence. Attention layers share one KV cache (the caller's mask keeps
  // the sequences apart, block-diagonal); gated delta net layers keep one
  // conv and recurrent state per sequence (blk.N.conv_state [S, K-1, C],
  // blk.N.ssm_state [S, Hv, K, V]). 1 = one sequence, the dims above.
  int64_t sequences = 1;
};

// Builds one entry graph (models/model_graph.cc): every weight of
// ExpectedWeights taken from `weights` and checked against its spec (an
// error names the weight, the shape expected and the shape found).
absl::StatusOr<Graph> BuildModelGraph(const ModelConfig& config, WeightSource& weights,
                                      const EntryOptions& options);

// A model on disk is several graph files in one folder over one weights file
// (so the weights are held once, shared by origin, scheduler/resources.h).
// The file a user names is the "prefill" entry; its metadata
// "model.entry.<name>" = a graph file's name in the same folder adds the
// entry <name> (e.g. "model.entry.decode" = "qwen3.decode.kgraph").
// `kiln run FILE --steps N` and the public API's model loading follow these.
inline constexpr absl::string_view kModelEntryKeyPrefix = "model.entry.";

}  // namespace kiln::models
