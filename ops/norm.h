// Normalizations over the last axis (rms_norm, layer_norm, l2_norm; exact
// definitions in ops/norm.cc): what backends need besides the schema.
//   inputs  x [..., C] (f32, f16, bf16), weight? [C], bias? [C] (float;
//           l2_norm takes neither)
//   output  out: x's dtype and dims
//   attrs   eps (rms_norm, l2_norm 1e-6; layer_norm 1e-5)
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/tensor_view.h"
#include "ops/op_params.h"

namespace kiln {

inline constexpr int kNormX = 0;
inline constexpr int kNormWeight = 1;  // optional
inline constexpr int kNormBias = 2;    // optional

enum class NormKind { kRms, kLayer, kL2 };

struct NormParams {
  NormKind kind = NormKind::kRms;
  int64_t rows = 0;  // rows normalized: the product of all dims but the last
  int64_t C = 0;     // row length (the last dim)
  double eps = 0;
  bool has_weight = false, has_bias = false;
  TensorLayout x, weight, bias, out;  // absent ones: present == false
};

// A node of a graph: every check of the schema, messages naming the node.
absl::StatusOr<NormParams> ResolveNorm(const Graph& graph, const Node& node);
// Kernel views of a validated node (once per call; structural checks only).
absl::StatusOr<NormParams> ResolveNorm(const Node& node, absl::Span<const TensorView> inputs,
                                       absl::Span<const TensorView> outputs);
absl::StatusOr<NormParams> ResolveNorm(const ParamContext& ctx);

}  // namespace kiln
