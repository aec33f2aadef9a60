// matmul and linear (definitions in ops/matmul.cc): what backends need
// besides the schema.
//   matmul  a [..., M, K] x b [..., K, N] -> f32 [..., M, N]; ranks 2..4, the
//           batch dims broadcast NumPy-style; a, b f32/f16/bf16
//   linear  x [..., K] x weight [N, K]^T + bias? [N] (f32) -> f32 [..., N];
//           x float, weight f32/f16/bf16/q8_0
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/tensor_view.h"
#include "ops/op_params.h"

namespace kiln {

inline constexpr int kLinearX = 0;
inline constexpr int kLinearWeight = 1;
inline constexpr int kLinearBias = 2;  // optional

struct MatmulParams {
  bool linear = false;
  int64_t M = 0, N = 0, K = 0;  // linear: M = rows of x (product of its outer dims)
  // matmul: the output's batch dims and, for a and b, the element stride of
  // each (0 where that operand broadcasts). linear: batch_rank 0, batch 1.
  int batch_rank = 0;
  std::array<int64_t, kMaxRank> batch_dims{};
  std::array<int64_t, kMaxRank> a_batch_strides{}, b_batch_strides{};
  int64_t batch = 1;  // product of batch_dims
  bool has_bias = false;
  DType weight_dtype = DType::kF32;  // b's (linear: the weight's; may be q8_0)
  // a: matmul a, or linear x. b: matmul b, or linear weight [N, K] (q8_0:
  // rows of K/32 blocks). out f32.
  TensorLayout a, b, bias, out;
};

// matmul or linear (the node's op decides).
absl::StatusOr<MatmulParams> ResolveMatmul(const Graph& graph, const Node& node);
absl::StatusOr<MatmulParams> ResolveMatmul(const Node& node, absl::Span<const TensorView> inputs,
                                           absl::Span<const TensorView> outputs);
absl::StatusOr<MatmulParams> ResolveMatmul(const ParamContext& ctx);

}  // namespace kiln
