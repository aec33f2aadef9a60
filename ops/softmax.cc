// softmax over the last axis: y = softmax(scale * x + mask), with an optional
// additive mask (f16/f32, broadcastable to x, -inf allowed). A row whose
// logits are all -inf gives zeros, not NaN.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/broadcast.h"
#include "ops/op_families.h"
#include "ops/softmax.h"

namespace kiln {

absl::StatusOr<SoftmaxParams> ResolveSoftmax(const ParamContext& ctx) {
  if (absl::Status st = ctx.CheckWithSchema(); !st.ok()) return st;
  const TensorLayout& x = ctx.input(kSoftmaxX);
  const TensorLayout& mask = ctx.input(kSoftmaxMask);
  if (!x.present || x.rank < 1) return ctx.InputError(kSoftmaxX, "must be [..., C]");
  if (mask.present && mask.rank > x.rank) {
    return ctx.InputError(kSoftmaxMask, "has a higher rank than input 'x'");
  }
  SoftmaxParams p;
  p.C = x.dims[x.rank - 1];
  p.rows = 1;
  for (int d = 0; d + 1 < x.rank; ++d) p.rows *= x.dims[d];
  p.scale = ctx.node().GetFloat("scale");
  p.has_mask = mask.present;
  if (mask.present) {
    const int lead = x.rank - mask.rank;
    for (int d = 0; d < mask.rank; ++d) {
      p.mask_strides[lead + d] = mask.dims[d] == 1 ? 0 : mask.strides[d];
    }
    p.mask_scalar = mask.dims[mask.rank - 1] == 1;
  }
  p.x = x;
  p.mask = mask;
  p.out = ctx.has_outputs() ? ctx.output(0) : LayoutOf(x.dtype, absl::MakeConstSpan(x.dims.data(), x.rank));
  return p;
}

absl::StatusOr<SoftmaxParams> ResolveSoftmax(const Graph& graph, const Node& node) {
  return ResolveSoftmax(ParamContext(graph, node));
}

absl::StatusOr<SoftmaxParams> ResolveSoftmax(const Node& node, absl::Span<const TensorView> inputs,
                            absl::Span<const TensorView> outputs) {
  return ResolveSoftmax(ParamContext(node, inputs, outputs));
}

namespace {

absl::Status InferSoftmax(InferContext& ctx) {
  const TensorType& x = *ctx.input(0);
  if (!IsFloat(x.dtype)) {
    return ctx.InputError(0, absl::StrCat("dtype ", DTypeName(x.dtype),
                                          " is not supported; expected f32, f16 or bf16"));
  }
  if (const TensorType* mask = ctx.input(1)) {
    if (mask->dtype != DType::kF32 && mask->dtype != DType::kF16) {
      return ctx.InputError(1, absl::StrCat("dtype ", DTypeName(mask->dtype),
                                            " is not supported; expected f32 or f16"));
    }
    if (!BroadcastsTo(mask->dims, x.dims)) {
      return ctx.InputError(1, absl::StrCat("shape does not broadcast to that of input 'x' (tensor '",
                                            ctx.input_tensor_name(0), "' ", ShapeString(x.dims), ")"));
    }
  }
  ctx.outputs = {{x.dtype, x.dims}};
  return absl::OkStatus();
}

absl::Status SoftmaxReference(const Node& node, absl::Span<const TensorView> in,
                              absl::Span<const TensorView> out) {
  const TensorView &x = in[0], &y = out[0];
  const TensorView* mask = in.size() > 1 && in[1].present() ? &in[1] : nullptr;
  auto params = ResolveSoftmax(node, in, out);
  if (!params.ok()) return params.status();
  const SoftmaxParams& prm = *params;
  const double scale = prm.scale;
  const int64_t cols = x.dim(-1);
  std::array<int64_t, kMaxRank> rows = x.dims;
  rows[x.rank - 1] = 1;
  std::vector<double> s(cols);
  ForEachIndex(x.rank, rows, [&](const int64_t* row_idx) {
    int64_t idx[kMaxRank], im[kMaxRank];
    std::copy(row_idx, row_idx + x.rank, idx);
    double max = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < cols; ++j) {
      idx[x.rank - 1] = j;
      s[j] = scale * LoadElement(x, idx);
      if (mask) {
        BroadcastIndex(mask->rank, mask->dims.data(), x.rank, idx, im);
        s[j] += LoadElement(*mask, im);
      }
      max = std::isnan(s[j]) || std::isnan(max) ? NAN : std::max(max, s[j]);
    }
    // All -inf: zeros. Otherwise den >= 1; a NaN logit makes the row NaN.
    const bool all_masked = max == -std::numeric_limits<double>::infinity();
    double den = 0;
    for (int64_t j = 0; j < cols; ++j) {
      s[j] = all_masked ? 0.0 : std::exp(s[j] - max);
      den += s[j];
    }
    for (int64_t j = 0; j < cols; ++j) {
      idx[x.rank - 1] = j;
      StoreElement(y, idx, all_masked ? 0.0 : s[j] / den);
    }
  });
  return absl::OkStatus();
}

}  // namespace

void RegisterSoftmaxOps(std::vector<OpSchema>& ops) {
  constexpr double kFiniteMax = std::numeric_limits<double>::max();
  ops.push_back({.name = "softmax", .inputs = {{"x"}, {"mask", true}}, .outputs = {"out"},
                 .attrs = {{.name = "scale", .type = AttrType::kFloat, .default_value = AttrValue(1.0),
                            .min = -kFiniteMax, .max = kFiniteMax}},
                 .infer = InferSoftmax, .reference = SoftmaxReference});
}

}  // namespace kiln
