// Matrix products: `matmul` (batched, NumPy-broadcast batch dims) and
// `linear` (x W^T + bias, W possibly q8_0).
//
// Both output f32 whatever the input dtypes: backends must accumulate in at
// least f32 (the reference accumulates in f64) and write f32; a cast node
// follows when a graph wants f16/bf16 activations.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/message_text.h"
#include "ops/broadcast.h"
#include "ops/op_families.h"
#include "ops/matmul.h"

namespace kiln {

absl::StatusOr<MatmulParams> ResolveMatmul(const ParamContext& ctx) {
  if (absl::Status st = ctx.CheckWithSchema(); !st.ok()) return st;
  const TensorLayout& a = ctx.input(0);
  const TensorLayout& b = ctx.input(1);
  MatmulParams p;
  p.linear = ctx.node().op == "linear";
  if (!a.present || a.rank < (p.linear ? 1 : 2)) return ctx.InputError(0, "rank is too low");
  if (!b.present || b.rank < 2) return ctx.InputError(1, "rank is too low");
  p.a = a;
  p.b = b;
  p.weight_dtype = b.dtype;
  std::vector<int64_t> out_dims;
  if (p.linear) {
    p.K = a.dims[a.rank - 1];
    p.N = b.dims[0];
    p.M = 1;
    for (int d = 0; d + 1 < a.rank; ++d) p.M *= a.dims[d];
    p.bias = ctx.input(kLinearBias);
    p.has_bias = p.bias.present;
    out_dims.assign(a.dims.begin(), a.dims.begin() + a.rank);
    out_dims.back() = p.N;
  } else {
    p.M = a.dims[a.rank - 2];
    p.K = a.dims[a.rank - 1];
    p.N = b.dims[b.rank - 1];
    p.batch_rank = std::max(a.rank, b.rank) - 2;
    const int la = p.batch_rank - (a.rank - 2), lb = p.batch_rank - (b.rank - 2);
    for (int d = 0; d < p.batch_rank; ++d) {
      const int64_t da = d >= la ? a.dims[d - la] : 1, db = d >= lb ? b.dims[d - lb] : 1;
      p.batch_dims[d] = std::max(da, db);
      if (da == 0 || db == 0) p.batch_dims[d] = 0;
      p.a_batch_strides[d] = d >= la && da != 1 ? a.strides[d - la] : 0;
      p.b_batch_strides[d] = d >= lb && db != 1 ? b.strides[d - lb] : 0;
      p.batch *= p.batch_dims[d];
      out_dims.push_back(p.batch_dims[d]);
    }
    out_dims.push_back(p.M);
    out_dims.push_back(p.N);
  }
  p.out = ctx.has_outputs() ? ctx.output(0) : LayoutOf(DType::kF32, out_dims);
  return p;
}

absl::StatusOr<MatmulParams> ResolveMatmul(const Graph& graph, const Node& node) {
  return ResolveMatmul(ParamContext(graph, node));
}

absl::StatusOr<MatmulParams> ResolveMatmul(const Node& node, absl::Span<const TensorView> inputs,
                            absl::Span<const TensorView> outputs) {
  return ResolveMatmul(ParamContext(node, inputs, outputs));
}

namespace {

absl::Status CheckFloat(const InferContext& ctx, int i) {
  if (IsFloat(ctx.input(i)->dtype)) return absl::OkStatus();
  return ctx.InputError(i, absl::StrCat("dtype ", DTypeName(ctx.input(i)->dtype),
                                        " is not supported; expected f32, f16 or bf16"));
}

// matmul: a [..., M, K] x b [..., K, N] -> f32 [..., M, N]; ranks 2..4, the
// batch dims (all but the last two) broadcast NumPy-style.
absl::Status InferMatmul(InferContext& ctx) {
  for (int i = 0; i < 2; ++i) {
    if (auto st = CheckFloat(ctx, i); !st.ok()) return st;
    const int rank = static_cast<int>(ctx.input(i)->dims.size());
    if (rank < 2) return ctx.InputError(i, absl::StrCat("rank ", rank, " is not supported; expected 2 to 4"));
  }
  const std::vector<int64_t>& a = ctx.input(0)->dims;
  const std::vector<int64_t>& b = ctx.input(1)->dims;
  const int64_t m = a[a.size() - 2], k = a.back(), kb = b[b.size() - 2], n = b.back();
  if (k != kb) {
    return ctx.InputError(1, absl::StrCat("K = ", kb, " (dim -2) differs from K = ", k, " (dim -1) of input 'a' (tensor '",
                                          ctx.input_tensor_name(0), "' ", ShapeString(a), ")"));
  }
  auto batch = BroadcastDims(std::vector<int64_t>(a.begin(), a.end() - 2),
                             std::vector<int64_t>(b.begin(), b.end() - 2));
  if (!batch) {
    return ctx.InputError(1, absl::StrCat("batch dims do not broadcast with those of input 'a' (tensor '",
                                          ctx.input_tensor_name(0), "' ", ShapeString(a), ")"));
  }
  batch->push_back(m);
  batch->push_back(n);
  ctx.outputs = {{DType::kF32, *batch}};
  return absl::OkStatus();
}

absl::Status MatmulReference(const Node& node, absl::Span<const TensorView> in,
                             absl::Span<const TensorView> out) {
  const TensorView &a = in[0], &b = in[1], &y = out[0];
  const int batch_rank = y.rank - 2;
  const int64_t k_dim = a.dim(-1);
  int64_t ia[kMaxRank], ib[kMaxRank];
  ForEachIndex(y.rank, y.dims, [&](const int64_t* idx) {
    // Batch indices broadcast; then a[..., m, k] and b[..., k, n].
    BroadcastIndex(a.rank - 2, a.dims.data(), batch_rank, idx, ia);
    BroadcastIndex(b.rank - 2, b.dims.data(), batch_rank, idx, ib);
    ia[a.rank - 2] = idx[y.rank - 2];
    ib[b.rank - 1] = idx[y.rank - 1];
    double acc = 0;
    for (int64_t k = 0; k < k_dim; ++k) {
      ia[a.rank - 1] = k;
      ib[b.rank - 2] = k;
      acc += LoadElement(a, ia) * LoadElement(b, ib);
    }
    StoreElement(y, idx, acc);
  });
  return absl::OkStatus();
}

// linear: x [..., K] (float) x weight [N, K]^T (f32/f16/bf16/q8_0) + bias [N]
// (f32, optional) -> f32 [..., N].
absl::Status InferLinear(InferContext& ctx) {
  if (auto st = CheckFloat(ctx, 0); !st.ok()) return st;
  const TensorType& x = *ctx.input(0);
  const TensorType& w = *ctx.input(1);
  if (!IsFloat(w.dtype) && w.dtype != DType::kQ8_0) {
    return ctx.InputError(1, absl::StrCat("dtype ", DTypeName(w.dtype),
                                          " is not supported; expected f32, f16, bf16 or q8_0"));
  }
  if (w.dims.size() != 2) return ctx.InputError(1, "expected rank 2: [N, K]");
  const int64_t k = x.dims.back(), n = w.dims[0];
  if (w.dims[1] != k) {
    return ctx.InputError(1, absl::StrCat("K = ", w.dims[1], " (dim 1) differs from K = ", k,
                                          " (last dim) of input 'x' (tensor ", QuoteName(ctx.input_tensor_name(0)), " ",
                                          ShapeString(x.dims), ")"));
  }
  if (const TensorType* bias = ctx.input(2)) {
    if (bias->dtype != DType::kF32) return ctx.InputError(2, "expected dtype f32");
    if (bias->dims != std::vector<int64_t>{n}) {
      return ctx.InputError(2, absl::StrCat("expected shape [", n, "] (N of the weight)"));
    }
  }
  std::vector<int64_t> dims = x.dims;
  dims.back() = n;
  ctx.outputs = {{DType::kF32, dims}};
  return absl::OkStatus();
}

absl::Status LinearReference(const Node& node, absl::Span<const TensorView> in,
                             absl::Span<const TensorView> out) {
  const TensorView &x = in[0], &w = in[1], &y = out[0];
  const TensorView* bias = in.size() > 2 && in[2].present() ? &in[2] : nullptr;
  const int64_t k_dim = x.dim(-1);
  int64_t ix[kMaxRank];
  ForEachIndex(y.rank, y.dims, [&](const int64_t* idx) {
    const int64_t n = idx[y.rank - 1];
    for (int i = 0; i + 1 < y.rank; ++i) ix[i] = idx[i];
    double acc = bias ? LoadElement(*bias, &n) : 0.0;
    for (int64_t k = 0; k < k_dim; ++k) {
      ix[x.rank - 1] = k;
      const int64_t iw[2] = {n, k};
      acc += LoadElement(x, ix) * LoadElement(w, iw);
    }
    StoreElement(y, idx, acc);
  });
  return absl::OkStatus();
}

}  // namespace

void RegisterMatmulOps(std::vector<OpSchema>& ops) {
  ops.push_back({.name = "matmul", .inputs = {{"a"}, {"b"}}, .outputs = {"out"},
                 .infer = InferMatmul, .reference = MatmulReference,
                 .tolerance = kReductionTolerance});
  ops.push_back({.name = "linear", .inputs = {{"x"}, {"weight"}, {"bias", true}}, .outputs = {"out"},
                 .infer = InferLinear, .reference = LinearReference,
                 .tolerance = kReductionTolerance});
}

}  // namespace kiln
