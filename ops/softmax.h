// softmax over the last axis: y = softmax(scale * x + mask) (definition in
// ops/softmax.cc): what backends need besides the schema.
//   inputs  x [..., C] (f32, f16, bf16), mask? (f32, f16; NumPy-broadcasts to x)
//   output  out: x's dtype and dims
//   attrs   scale (default 1)
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/tensor_view.h"
#include "ops/op_params.h"

namespace kiln {

inline constexpr int kSoftmaxX = 0;
inline constexpr int kSoftmaxMask = 1;  // optional

struct SoftmaxParams {
  int64_t rows = 0;  // the product of all dims but the last
  int64_t C = 0;     // row length
  double scale = 1;
  bool has_mask = false;
  // The mask's element strides for each dim of x (right-aligned; 0 where the
  // mask broadcasts): mask element of x index idx is sum idx[d] * mask_strides[d].
  // mask_scalar: the mask's last dim is 1 (one value per row).
  std::array<int64_t, kMaxRank> mask_strides{};
  bool mask_scalar = false;
  TensorLayout x, mask, out;
};

absl::StatusOr<SoftmaxParams> ResolveSoftmax(const Graph& graph, const Node& node);
absl::StatusOr<SoftmaxParams> ResolveSoftmax(const Node& node, absl::Span<const TensorView> inputs,
                                             absl::Span<const TensorView> outputs);
absl::StatusOr<SoftmaxParams> ResolveSoftmax(const ParamContext& ctx);

}  // namespace kiln
