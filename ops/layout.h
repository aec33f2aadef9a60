// Layout ops: what backends need besides the schemas. All of them copy values
// into a contiguous output; inputs may be strided views. q8_0 is accepted only
// by gather (as the table); the others take f32, f16, bf16 and i32.
//   gather(table [N,C], ids i32 [...] (rank 1..3)) -> [..., C]; dtype of the
//     table (f32 for a q8_0 table). An id outside [0, N) is a run-time error.
//   concat(inputs...; axis = 0): same dtype and rank, dims equal but `axis`.
//   slice(x; axis = 0, start = 0, end = INT64_MAX, step = 1): Python slicing
//     of one axis: negative start/end count from the end, then both clamp to
//     [0, dim]; length max(0, ceil((end - start) / step)).
//   reshape(x; shape): one entry may be -1 (inferred); numel must match.
//     Values are taken in row-major order of x.
//   permute(x; perm): out dim i is x dim perm[i].
//   transpose(x; dim0 = -2, dim1 = -1): swaps two axes.
//   contiguous(x): a contiguous copy of a (possibly strided) view.
// Axes may be negative (counted from the end) everywhere.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

#include "graph/node.h"
#include "graph/tensor.h"

namespace kiln {

inline constexpr int kGatherTable = 0;
inline constexpr int kGatherIds = 1;

// `axis` in [-rank, rank) made non-negative; false when out of range.
inline bool ResolveAxis(int64_t axis, int rank, int* out) {
  if (axis < -rank || axis >= rank) return false;
  *out = static_cast<int>(axis < 0 ? axis + rank : axis);
  return true;
}

// The first index and the length a slice takes from a dim of size `dim`.
struct SliceRange {
  int64_t start = 0;
  int64_t length = 0;
};
inline SliceRange ResolveSlice(int64_t dim, int64_t start, int64_t end, int64_t step) {
  auto clamp = [dim](int64_t i) {
    if (i < 0) i = i < -dim ? 0 : i + dim;
    return std::min(i, dim);
  };
  const int64_t s = clamp(start), e = clamp(end);
  return {s, e > s ? 1 + (e - s - 1) / step : 0};
}
// The slice of a validated slice node over a dim of size `dim`.
inline SliceRange NodeSlice(const Node& node, int64_t dim) {
  return ResolveSlice(dim, node.GetInt("start"), node.GetInt("end"), node.GetInt("step"));
}

// For a validated permute or transpose node over an input of `rank`: the
// input axis each output axis reads (out dim i = in dim axes[i]).
std::array<int, kMaxRank> OutputToInputAxes(const Node& node, int rank);

}  // namespace kiln
