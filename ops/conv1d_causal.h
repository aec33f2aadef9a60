// conv1d_causal: what backends need besides the schema.
//   inputs  x [B,T,C], weight [C,K], state? [B,K-1,C] (f32, f16, bf16)
//   outputs out [B,T,C] (dtype of x), new_state [B,K-1,C] (dtype of state,
//           or of x without one)
//   attrs   silu (bool, default false): out = silu(conv)
// Depthwise and causal: with xpad = state (zeros when absent) followed by x
// along time, out[b,t,c] = sum_k weight[c,k] * xpad[b,t+k,c], and new_state is
// the last K-1 rows of xpad (so with T < K-1 it keeps part of the old state).
// new_state may alias state (OpSchema.inplace): read a batch row's state
// fully before writing its new_state.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/tensor_view.h"
#include "ops/op_params.h"

namespace kiln {

inline constexpr int kConvX = 0;
inline constexpr int kConvWeight = 1;
inline constexpr int kConvState = 2;  // optional
inline constexpr int kConvOut = 0;
inline constexpr int kConvNewState = 1;

struct Conv1dCausalParams {
  int64_t B = 0, T = 0, C = 0, K = 0;  // K: kernel size; the state holds K-1 rows
  bool silu = false;
  bool has_state = false;
  TensorLayout x, weight, state, out, new_state;  // weight [C,K]; state absent: zeros
};

absl::StatusOr<Conv1dCausalParams> ResolveConv1dCausal(const Graph& graph, const Node& node);
absl::StatusOr<Conv1dCausalParams> ResolveConv1dCausal(const Node& node,
                                                       absl::Span<const TensorView> inputs,
                                                       absl::Span<const TensorView> outputs);
absl::StatusOr<Conv1dCausalParams> ResolveConv1dCausal(const ParamContext& ctx);

}  // namespace kiln
