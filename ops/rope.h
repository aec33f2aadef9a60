// rope: what backends need besides the schema.
//   inputs  x [B,T,H,D] (f32, f16, bf16), positions i32 [T] (shared by every
//           batch row) or [B,T] (one row of positions per batch row)
//   output  out [B,T,H,D], dtype of x
//   attrs   theta (default 10000, > 0), rotary_dim (0 = D; even, <= D),
//           mode "neox" (pairs (i, i + rotary_dim/2)) or "interleaved"
//           (pairs (2i, 2i+1)); dims from rotary_dim on pass through.
// Pair i (0 <= i < rotary_dim/2) of a token at position p is rotated by the
// angle p * theta^(-2i/rotary_dim):
//   out_a = x_a cos - x_b sin,  out_b = x_a sin + x_b cos.
#pragma once

#include <cmath>
#include <cstdint>

#include "graph/node.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/tensor_view.h"
#include "ops/op_params.h"

namespace kiln {

inline constexpr int kRopeX = 0;
inline constexpr int kRopePositions = 1;

// The rotary_dim a node applies to a head of `head_dim` (0 means all of it).
inline int64_t RopeRotaryDim(const Node& node, int64_t head_dim) {
  const int64_t r = node.GetInt("rotary_dim");
  return r == 0 ? head_dim : r;
}

// Whether a node pairs (2i, 2i+1) rather than (i, i + rotary_dim/2).
inline bool RopeInterleaved(const Node& node) {
  return node.GetString("mode") == "interleaved";
}

// theta^(-2i/rotary_dim): the angle of pair i per unit of position.
inline double RopeInvFreq(double theta, int64_t pair, int64_t rotary_dim) {
  return std::pow(theta, -2.0 * static_cast<double>(pair) / static_cast<double>(rotary_dim));
}

struct RopeParams {
  int64_t B = 0, T = 0, H = 0, D = 0;
  int64_t rotary_dim = 0;  // resolved: the attribute, or D when it is 0
  int64_t half = 0;        // rotary_dim / 2 pairs per head
  double theta = 10000;
  bool interleaved = false;          // pairs (2i, 2i+1); else neox (i, i + half)
  bool positions_per_batch = false;  // positions [B,T]; else [T] shared by every b
  TensorLayout x, positions, out;

  double inv_freq(int64_t pair) const { return RopeInvFreq(theta, pair, rotary_dim); }
};

absl::StatusOr<RopeParams> ResolveRope(const Graph& graph, const Node& node);
absl::StatusOr<RopeParams> ResolveRope(const Node& node, absl::Span<const TensorView> inputs,
                                       absl::Span<const TensorView> outputs);
absl::StatusOr<RopeParams> ResolveRope(const ParamContext& ctx);

}  // namespace kiln
