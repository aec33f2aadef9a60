// What the per-layer builders of models/ share: the graph being built, the
// weights checked against ExpectedWeights, and the step's inputs.
// Internal to kiln_models.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "graph/builder.h"
#include "models/model_config.h"

namespace kiln::models {

class LayerBuilder {
 public:
  LayerBuilder(GraphBuilder& b, const ModelConfig& config, WeightSource& source,
               const EntryOptions& options);

  GraphBuilder& b() { return b_; }
  const ModelConfig& config() const { return config_; }
  const EntryOptions& options() const { return options_; }
  int64_t T() const { return options_.tokens; }

  // The first error (of the builder or of a weight); later calls do nothing.
  absl::Status status() const { return status_.ok() ? b_.status() : status_; }
  bool ok() const { return status_.ok() && b_.status().ok(); }

  // The weight `name` as a graph constant, fetched once, checked against its
  // spec (an error names the weight, the dims expected and found). `dims`,
  // when given, reinterprets the same bytes (e.g. conv1d [C,1,K] as [C,K]).
  Tensor Weight(const std::string& name, std::vector<int64_t> dims = {});
  // A small weight (norm, bias, gate parameter) as f32 (cast in the graph
  // when the checkpoint stores it otherwise).
  Tensor WeightF32(const std::string& name, std::vector<int64_t> dims = {});

  // Graph pieces; `node` names the node (and its output tensor).
  Tensor F32(Tensor t, const std::string& node);  // cast unless already f32
  Tensor Reshape(Tensor t, std::vector<int64_t> dims);  // a view of a contiguous tensor
  // A strided view over the last dim's elements of a contiguous [.., W]
  // tensor: dims, strides in elements (innermost 1), offset in elements.
  Tensor Window(Tensor t, std::vector<int64_t> dims, std::vector<int64_t> elem_strides,
                int64_t elem_offset, const std::string& name);
  // rms_norm(x) * w, or * (1 + w) when the config says so (offset_one).
  Tensor RmsNorm(Tensor x, const std::string& weight, const std::string& node, bool offset_one);
  // x @ W^T (+ bias).
  Tensor Linear(Tensor x, const std::string& weight, const std::string& node,
                const std::string& bias = "");
  Tensor Op(const std::string& op, std::vector<Tensor> in, const std::string& node, Attrs attrs = {});

  // Constants the builders make once per graph (rope tables), by key.
  Tensor Table(const std::string& key) const {
    auto it = tables_.find(key);
    return it == tables_.end() ? Tensor{} : it->second;
  }
  void SetTable(const std::string& key, Tensor t) { tables_[key] = t; }

  // Graph inputs of the step (model_config.h's interface).
  Tensor pos, mask;

 private:
  GraphBuilder& b_;
  const ModelConfig& config_;
  WeightSource& source_;
  const EntryOptions& options_;
  absl::Status status_;
  std::map<std::string, WeightSpec> specs_;
  absl::flat_hash_map<std::string, Tensor> fetched_;
  absl::flat_hash_map<std::string, Tensor> tables_;
};

// x + attention(rms_norm(x)) for layer `i` (attention_layer.cc): the KV
// cache states blk.i.k_cache / blk.i.v_cache.
Tensor AttentionBlock(LayerBuilder& lb, int64_t i, Tensor x);
// x + gated_delta_net(rms_norm(x)) for layer `i` (gated_delta_net_layer.cc):
// the states blk.i.conv_state / blk.i.ssm_state.
Tensor GatedDeltaNetBlock(LayerBuilder& lb, int64_t i, Tensor x);

// RoPE of x [1, T, H, D] at lb.pos with the config's rope_scaling
// (scaled_rope.cc: cos/sin tables gathered by position).
Tensor ScaledRope(LayerBuilder& lb, Tensor x, const std::string& node);
// The scaled inverse frequencies of the rotary_dim / 2 pairs.
std::vector<double> ScaledInvFreq(const ModelConfig& c, int64_t rotary_dim);

// The HF name prefix of layer i: "model.layers.<i>.".
std::string LayerPrefix(int64_t i);

}  // namespace kiln::models
