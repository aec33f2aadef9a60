// Normalizations over the last axis (C elements per row):
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * weight + bias
//   layer_norm: y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias
//               (var: the population variance, divided by C)
//   l2_norm:    y = x / sqrt(sum(x^2) + eps)   (OPS.md's l2norm_qk; no
//               weight or bias: the models that use it have none)
// weight and bias are optional [C] float tensors (absent: 1 and 0).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_families.h"
#include "ops/norm.h"

namespace kiln {

absl::StatusOr<NormParams> ResolveNorm(const ParamContext& ctx) {
  if (absl::Status st = ctx.CheckWithSchema(); !st.ok()) return st;
  const TensorLayout& x = ctx.input(kNormX);
  if (!x.present || x.rank < 1) return ctx.InputError(kNormX, "must be [..., C]");
  const Node& node = ctx.node();
  NormParams p;
  p.kind = node.op == "layer_norm" ? NormKind::kLayer
           : node.op == "l2_norm"  ? NormKind::kL2
                                   : NormKind::kRms;
  p.C = x.dims[x.rank - 1];
  p.rows = 1;
  for (int d = 0; d + 1 < x.rank; ++d) p.rows *= x.dims[d];
  p.eps = node.GetFloat("eps");
  p.x = x;
  p.weight = ctx.input(kNormWeight);
  p.bias = ctx.input(kNormBias);
  p.has_weight = p.weight.present;
  p.has_bias = p.bias.present;
  p.out = ctx.has_outputs() ? ctx.output(0) : LayoutOf(x.dtype, absl::MakeConstSpan(x.dims.data(), x.rank));
  return p;
}

absl::StatusOr<NormParams> ResolveNorm(const Graph& graph, const Node& node) {
  return ResolveNorm(ParamContext(graph, node));
}

absl::StatusOr<NormParams> ResolveNorm(const Node& node, absl::Span<const TensorView> inputs,
                            absl::Span<const TensorView> outputs) {
  return ResolveNorm(ParamContext(node, inputs, outputs));
}

namespace {

absl::Status InferNorm(InferContext& ctx) {
  const TensorType& x = *ctx.input(0);
  if (!IsFloat(x.dtype)) {
    return ctx.InputError(0, absl::StrCat("dtype ", DTypeName(x.dtype),
                                          " is not supported; expected f32, f16 or bf16"));
  }
  const int64_t c = x.dims.back();
  for (int i = 1; i < ctx.num_inputs(); ++i) {  // weight, bias
    const TensorType* t = ctx.input(i);
    if (!t) continue;
    if (!IsFloat(t->dtype)) {
      return ctx.InputError(i, absl::StrCat("dtype ", DTypeName(t->dtype),
                                            " is not supported; expected f32, f16 or bf16"));
    }
    if (t->dims != std::vector<int64_t>{c}) {
      return ctx.InputError(i, absl::StrCat("expected shape [", c, "] (the last dim of input 'x')"));
    }
  }
  ctx.outputs = {{x.dtype, x.dims}};
  return absl::OkStatus();
}

absl::Status NormReference(const Node& node, absl::Span<const TensorView> in,
                           absl::Span<const TensorView> out) {
  const TensorView &x = in[0], &y = out[0];
  const TensorView* weight = in.size() > 1 && in[1].present() ? &in[1] : nullptr;
  const TensorView* bias = in.size() > 2 && in[2].present() ? &in[2] : nullptr;
  auto params = ResolveNorm(node, in, out);
  if (!params.ok()) return params.status();
  const NormParams& prm = *params;
  const double eps = prm.eps;
  const int64_t cols = x.dim(-1);
  std::array<int64_t, kMaxRank> rows = x.dims;
  rows[x.rank - 1] = 1;
  std::vector<double> v(cols);
  ForEachIndex(x.rank, rows, [&](const int64_t* row_idx) {
    int64_t idx[kMaxRank];
    std::copy(row_idx, row_idx + x.rank, idx);
    for (int64_t j = 0; j < cols; ++j) {
      idx[x.rank - 1] = j;
      v[j] = LoadElement(x, idx);
    }
    double mean = 0, sum_sq = 0;
    if (node.op == "layer_norm") {
      for (double e : v) mean += e;
      mean /= cols;
    }
    for (double e : v) sum_sq += (e - mean) * (e - mean);
    const double denom = node.op == "l2_norm" ? sum_sq : sum_sq / cols;
    const double r = 1.0 / std::sqrt(denom + eps);
    for (int64_t j = 0; j < cols; ++j) {
      double e = (v[j] - mean) * r;
      if (weight) e *= LoadElement(*weight, &j);
      if (bias) e += LoadElement(*bias, &j);
      idx[x.rank - 1] = j;
      StoreElement(y, idx, e);
    }
  });
  return absl::OkStatus();
}

AttrSpec Eps(double default_value) {
  return {.name = "eps", .type = AttrType::kFloat, .default_value = AttrValue(default_value),
          .min = 0, .max = std::numeric_limits<double>::max()};
}

}  // namespace

void RegisterNormOps(std::vector<OpSchema>& ops) {
  ops.push_back({.name = "rms_norm", .inputs = {{"x"}, {"weight", true}, {"bias", true}},
                 .outputs = {"out"}, .attrs = {Eps(1e-6)}, .infer = InferNorm, .reference = NormReference});
  ops.push_back({.name = "layer_norm", .inputs = {{"x"}, {"weight", true}, {"bias", true}},
                 .outputs = {"out"}, .attrs = {Eps(1e-5)}, .infer = InferNorm, .reference = NormReference});
  ops.push_back({.name = "l2_norm", .inputs = {{"x"}}, .outputs = {"out"}, .attrs = {Eps(1e-6)},
                 .infer = InferNorm, .reference = NormReference});
}

}  // namespace kiln
