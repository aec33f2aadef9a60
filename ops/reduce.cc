// Reductions over one axis: sum, mean, max. Attribute `axis` (negative counts
// from the end) and `keepdims` (keep the axis as size 1). A reduction that
// would leave rank 0 keeps rank 1: [1]. Output dtype = input dtype; backends
// accumulate in at least f32 (the reference in f64).
//   sum of an empty axis = 0, mean = NaN, max = -inf; max propagates NaN.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_families.h"

namespace kiln {
namespace {

// The axis in 0..rank-1 (attribute already range-checked against kMaxRank).
int Axis(const Node& node, int rank) {
  const int64_t a = node.GetInt("axis");
  return static_cast<int>(a < 0 ? a + rank : a);
}

absl::Status InferReduce(InferContext& ctx) {
  const TensorType& x = *ctx.input(0);
  if (!IsFloat(x.dtype)) {
    return ctx.InputError(0, absl::StrCat("dtype ", DTypeName(x.dtype),
                                          " is not supported; expected f32, f16 or bf16"));
  }
  const int rank = static_cast<int>(x.dims.size());
  const int64_t axis = ctx.node().GetInt("axis");
  if (axis < -rank || axis >= rank) {
    return ctx.InputError(0, absl::StrCat("axis ", axis, " is out of range for rank ", rank, " (expected ",
                                          -rank, " to ", rank - 1, ")"));
  }
  std::vector<int64_t> dims = x.dims;
  const int a = Axis(ctx.node(), rank);
  if (ctx.node().GetBool("keepdims")) {
    dims[a] = 1;
  } else if (rank == 1) {
    dims = {1};
  } else {
    dims.erase(dims.begin() + a);
  }
  ctx.outputs = {{x.dtype, dims}};
  return absl::OkStatus();
}

absl::Status ReduceReference(const Node& node, absl::Span<const TensorView> in,
                             absl::Span<const TensorView> out) {
  const TensorView &x = in[0], &y = out[0];
  const int axis = Axis(node, x.rank);
  const bool keepdims = node.GetBool("keepdims");
  const int64_t n = x.dims[axis];
  ForEachIndex(y.rank, y.dims, [&](const int64_t* out_idx) {
    int64_t idx[kMaxRank];
    for (int d = 0, o = 0; d < x.rank; ++d) {
      if (d == axis) {
        if (keepdims) ++o;
        continue;
      }
      idx[d] = out_idx[o++];
    }
    double sum = 0, max = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) {
      idx[axis] = i;
      const double v = LoadElement(x, idx);
      sum += v;
      max = std::isnan(v) || std::isnan(max) ? NAN : std::max(max, v);
    }
    const double r = node.op == "max" ? max : node.op == "mean" ? sum / n : sum;
    StoreElement(y, out_idx, r);
  });
  return absl::OkStatus();
}

}  // namespace

void RegisterReduceOps(std::vector<OpSchema>& ops) {
  for (const char* name : {"sum", "mean", "max"}) {
    ops.push_back({.name = name, .inputs = {{"x"}}, .outputs = {"out"},
                   .attrs = {{.name = "axis", .type = AttrType::kInt, .default_value = AttrValue(int64_t{-1}),
                              .min = -kMaxRank, .max = kMaxRank - 1},
                             {.name = "keepdims", .type = AttrType::kBool, .default_value = AttrValue(false)}},
                   .infer = InferReduce, .reference = ReduceReference});
  }
}

}  // namespace kiln
