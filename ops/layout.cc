// Layout ops: gather, concat, slice, reshape, permute, transpose, contiguous
// (definitions in ops/layout.h). The references copy element bytes, so every
// value (NaN payloads, i32) comes through exactly.
#include "ops/layout.h"
#include "graph/message_text.h"

#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ops/op_families.h"

namespace kiln {

std::array<int, kMaxRank> OutputToInputAxes(const Node& node, int rank) {
  std::array<int, kMaxRank> axes{0, 1, 2, 3};
  if (node.op == "permute") {
    const std::vector<int64_t>& perm = node.GetInts("perm");
    for (int i = 0; i < rank && i < static_cast<int>(perm.size()); ++i) {
      ResolveAxis(perm[i], rank, &axes[i]);
    }
  } else if (node.op == "transpose") {
    int a = 0, b = 0;
    if (ResolveAxis(node.GetInt("dim0"), rank, &a) && ResolveAxis(node.GetInt("dim1"), rank, &b)) {
      std::swap(axes[a], axes[b]);
    }
  }
  return axes;
}

namespace {

// ---- shared by the infer functions ----

absl::Status RequireUnquantized(const InferContext& ctx, int i) {
  if (ctx.input(i)->dtype == DType::kQ8_0) {
    return ctx.InputError(i, absl::StrCat(ctx.node().op,
                                          " takes f32, f16, bf16 or i32 (of q8_0, only gather reads rows)"));
  }
  return absl::OkStatus();
}

// Resolves attribute `name` as an axis of input i; errors name both.
absl::Status AxisAttr(const InferContext& ctx, int i, absl::string_view name, int* axis) {
  const int rank = static_cast<int>(ctx.input(i)->dims.size());
  const int64_t a = ctx.node().GetInt(name);
  if (!ResolveAxis(a, rank, axis)) {
    return ctx.InputError(i, absl::StrCat("attribute ", QuoteName(name), " = ", a, " is not an axis of rank ",
                                          rank, " (expected ", -rank, " to ", rank - 1, ")"));
  }
  return absl::OkStatus();
}

// ---- shared by the references ----

std::byte* ElementAt(const TensorView& t, const int64_t* idx) {
  return t.row(idx) + idx[t.rank - 1] * ElementSize(t.dtype);
}

// y[i] = x[map(i)] for every index i of y; map writes x's index.
template <typename Map>
void CopyMapped(const TensorView& x, const TensorView& y, Map map) {
  const int size = ElementSize(x.dtype);
  ForEachIndex(y.rank, y.dims, [&](const int64_t* out) {
    int64_t in[kMaxRank] = {};
    map(out, in);
    std::memcpy(ElementAt(y, out), ElementAt(x, in), size);
  });
}

std::string IndexString(const int64_t* idx, int rank) {
  return absl::StrCat("[", absl::StrJoin(idx, idx + rank, ","), "]");
}

// ---- gather ----

absl::Status InferGather(InferContext& ctx) {
  const TensorType& table = *ctx.input(kGatherTable);
  const TensorType& ids = *ctx.input(kGatherIds);
  if (table.dims.size() != 2) return ctx.InputError(kGatherTable, "must be [N, C] (rank 2)");
  if (ids.dtype != DType::kI32) return ctx.InputError(kGatherIds, "must be i32");
  if (ids.dims.size() > 3) {
    return ctx.InputError(kGatherIds, "must have rank 1 to 3 (the output appends C)");
  }
  std::vector<int64_t> dims = ids.dims;
  dims.push_back(table.dims[1]);
  ctx.outputs = {{table.dtype == DType::kQ8_0 ? DType::kF32 : table.dtype, dims}};
  return absl::OkStatus();
}

absl::Status GatherReference(const Node& node, absl::Span<const TensorView> in,
                             absl::Span<const TensorView> out) {
  const TensorView& table = in[kGatherTable];
  const TensorView& ids = in[kGatherIds];
  const TensorView& y = out[0];
  const int64_t N = table.dim(0), C = table.dim(1);
  absl::Status status;
  ForEachIndex(ids.rank, ids.dims, [&](const int64_t* i) {
    if (!status.ok()) return;
    const auto id = static_cast<int64_t>(LoadElement(ids, i));
    if (id < 0 || id >= N) {
      status = absl::OutOfRangeError(absl::StrCat(NodeLabel(node), ": input 'ids' holds ", id, " at ",
                                                  IndexString(i, ids.rank), ", outside the table's rows [0, ",
                                                  N, ")"));
      return;
    }
    int64_t o[kMaxRank] = {};
    std::copy(i, i + ids.rank, o);
    if (table.dtype == DType::kQ8_0) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t t[2] = {id, c};
        o[ids.rank] = c;
        StoreElement(y, o, LoadElement(table, t));
      }
    } else {
      std::memcpy(y.row(o), table.data + id * table.strides[0], RowBytes(table.dtype, C));
    }
  });
  return status;
}

// ---- concat ----

absl::Status InferConcat(InferContext& ctx) {
  const TensorType& first = *ctx.input(0);
  int axis = 0;
  if (auto st = AxisAttr(ctx, 0, "axis", &axis); !st.ok()) return st;
  std::vector<int64_t> dims = first.dims;
  dims[axis] = 0;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const TensorType& t = *ctx.input(i);
    if (auto st = RequireUnquantized(ctx, i); !st.ok()) return st;
    if (t.dtype != first.dtype) {
      return ctx.InputError(i, absl::StrCat("input #", i, " must have the dtype of input #0 '",
                                            ctx.input_tensor_name(0), "' (", DTypeName(first.dtype), ")"));
    }
    bool same = t.dims.size() == first.dims.size();
    for (size_t d = 0; same && d < t.dims.size(); ++d) {
      same = d == static_cast<size_t>(axis) || t.dims[d] == first.dims[d];
    }
    if (!same) {
      return ctx.InputError(i, absl::StrCat("input #", i, " must match input #0 '", ctx.input_tensor_name(0),
                                            "' ", ShapeString(first.dims), " in every dim but axis ", axis));
    }
    dims[axis] += t.dims[axis];
  }
  ctx.outputs = {{first.dtype, dims}};
  return absl::OkStatus();
}

absl::Status ConcatReference(const Node& node, absl::Span<const TensorView> in,
                             absl::Span<const TensorView> out) {
  const TensorView& y = out[0];
  int axis = 0;
  ResolveAxis(node.GetInt("axis"), y.rank, &axis);
  const int size = ElementSize(y.dtype);
  int64_t offset = 0;  // where the current input starts along `axis`
  for (const TensorView& x : in) {
    ForEachIndex(x.rank, x.dims, [&](const int64_t* i) {
      int64_t o[kMaxRank] = {};
      std::copy(i, i + x.rank, o);
      o[axis] += offset;
      std::memcpy(ElementAt(y, o), ElementAt(x, i), size);
    });
    offset += x.dims[axis];
  }
  return absl::OkStatus();
}

// ---- slice ----

absl::Status InferSlice(InferContext& ctx) {
  if (auto st = RequireUnquantized(ctx, 0); !st.ok()) return st;
  int axis = 0;
  if (auto st = AxisAttr(ctx, 0, "axis", &axis); !st.ok()) return st;
  std::vector<int64_t> dims = ctx.input(0)->dims;
  dims[axis] = NodeSlice(ctx.node(), dims[axis]).length;
  ctx.outputs = {{ctx.input(0)->dtype, dims}};
  return absl::OkStatus();
}

absl::Status SliceReference(const Node& node, absl::Span<const TensorView> in,
                            absl::Span<const TensorView> out) {
  const TensorView& x = in[0];
  int axis = 0;
  ResolveAxis(node.GetInt("axis"), x.rank, &axis);
  const SliceRange range = NodeSlice(node, x.dims[axis]);
  const int64_t step = node.GetInt("step");
  CopyMapped(x, out[0], [&](const int64_t* o, int64_t* i) {
    std::copy(o, o + x.rank, i);
    i[axis] = range.start + o[axis] * step;
  });
  return absl::OkStatus();
}

// ---- reshape ----

absl::Status InferReshape(InferContext& ctx) {
  if (auto st = RequireUnquantized(ctx, 0); !st.ok()) return st;
  const TensorType& x = *ctx.input(0);
  std::vector<int64_t> dims = ctx.node().GetInts("shape");
  const std::string want = absl::StrCat("attribute 'shape' = ", ShortList(dims));
  if (dims.empty() || dims.size() > static_cast<size_t>(kMaxRank)) {
    return ctx.Error(absl::StrCat(want, " must have 1 to ", kMaxRank, " entries"));
  }
  int64_t numel = 1, known = 1;
  for (int64_t d : x.dims) numel *= d;
  int infer_at = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1 && infer_at < 0) {
      infer_at = static_cast<int>(i);
    } else if (dims[i] < 0) {
      return ctx.Error(absl::StrCat(want, " may hold one -1 and otherwise sizes >= 0"));
    } else if (__builtin_mul_overflow(known, dims[i], &known)) {
      return ctx.InputError(0, absl::StrCat(want, " has too many elements"));
    }
  }
  if (infer_at >= 0) {
    if (known == 0 || numel % known != 0) {
      return ctx.InputError(0, absl::StrCat(want, ": the -1 cannot be inferred from ", numel,
                                            " elements"));
    }
    dims[infer_at] = numel / known;
  } else if (known != numel) {
    return ctx.InputError(0, absl::StrCat(want, " has ", known, " elements, the input ", numel));
  }
  ctx.outputs = {{x.dtype, dims}};
  return absl::OkStatus();
}

absl::Status ReshapeReference(const Node& node, absl::Span<const TensorView> in,
                              absl::Span<const TensorView> out) {
  const TensorView& x = in[0];
  const TensorView& y = out[0];
  // Walk x in row-major order; `o` follows along in y's row-major order.
  int64_t o[kMaxRank] = {};
  const int size = ElementSize(x.dtype);
  ForEachIndex(x.rank, x.dims, [&](const int64_t* i) {
    std::memcpy(ElementAt(y, o), ElementAt(x, i), size);
    for (int d = y.rank - 1; d >= 0; --d) {
      if (++o[d] < y.dims[d]) break;
      o[d] = 0;
    }
  });
  return absl::OkStatus();
}

// ---- permute, transpose, contiguous ----

absl::Status InferPermute(InferContext& ctx) {
  if (auto st = RequireUnquantized(ctx, 0); !st.ok()) return st;
  const TensorType& x = *ctx.input(0);
  const int rank = static_cast<int>(x.dims.size());
  const std::vector<int64_t>& perm = ctx.node().GetInts("perm");
  const std::string bad = absl::StrCat("attribute 'perm' = ", ShortList(perm),
                                       " must be a permutation of the ", rank, " axes");
  if (static_cast<int>(perm.size()) != rank) return ctx.InputError(0, bad);
  std::vector<bool> seen(rank, false);
  std::vector<int64_t> dims(rank);
  for (int i = 0; i < rank; ++i) {
    int a = 0;
    if (!ResolveAxis(perm[i], rank, &a) || seen[a]) return ctx.InputError(0, bad);
    seen[a] = true;
    dims[i] = x.dims[a];
  }
  ctx.outputs = {{x.dtype, dims}};
  return absl::OkStatus();
}

absl::Status InferTranspose(InferContext& ctx) {
  if (auto st = RequireUnquantized(ctx, 0); !st.ok()) return st;
  int a = 0, b = 0;
  if (auto st = AxisAttr(ctx, 0, "dim0", &a); !st.ok()) return st;
  if (auto st = AxisAttr(ctx, 0, "dim1", &b); !st.ok()) return st;
  std::vector<int64_t> dims = ctx.input(0)->dims;
  std::swap(dims[a], dims[b]);
  ctx.outputs = {{ctx.input(0)->dtype, dims}};
  return absl::OkStatus();
}

// permute and transpose.
absl::Status AxesReference(const Node& node, absl::Span<const TensorView> in,
                           absl::Span<const TensorView> out) {
  const TensorView& x = in[0];
  const std::array<int, kMaxRank> axes = OutputToInputAxes(node, x.rank);
  CopyMapped(x, out[0], [&](const int64_t* o, int64_t* i) {
    for (int d = 0; d < x.rank; ++d) i[axes[d]] = o[d];
  });
  return absl::OkStatus();
}

absl::Status InferContiguous(InferContext& ctx) {
  if (auto st = RequireUnquantized(ctx, 0); !st.ok()) return st;
  ctx.outputs = {{ctx.input(0)->dtype, ctx.input(0)->dims}};
  return absl::OkStatus();
}

absl::Status ContiguousReference(const Node& node, absl::Span<const TensorView> in,
                                 absl::Span<const TensorView> out) {
  CopyMapped(in[0], out[0], [&](const int64_t* o, int64_t* i) { std::copy(o, o + in[0].rank, i); });
  return absl::OkStatus();
}

AttrSpec IntAttr(std::string name, std::optional<int64_t> def, double min = -std::numeric_limits<double>::infinity()) {
  AttrSpec s{.name = std::move(name), .type = AttrType::kInt, .min = min};
  if (def) s.default_value = *def;
  return s;
}

}  // namespace

void RegisterLayoutOps(std::vector<OpSchema>& ops) {
  ops.push_back({.name = "gather",
                 .inputs = {{"table"}, {"ids"}},
                 .outputs = {"out"},
                 .infer = InferGather,
                 .reference = GatherReference});
  ops.push_back({.name = "concat",
                 .inputs = {{"inputs"}},
                 .variadic = true,
                 .outputs = {"out"},
                 .attrs = {IntAttr("axis", 0)},
                 .infer = InferConcat,
                 .reference = ConcatReference});
  ops.push_back({.name = "slice",
                 .inputs = {{"x"}},
                 .outputs = {"out"},
                 .attrs = {IntAttr("axis", 0), IntAttr("start", 0),
                           IntAttr("end", std::numeric_limits<int64_t>::max()),
                           IntAttr("step", 1, /*min=*/1)},
                 .infer = InferSlice,
                 .reference = SliceReference});
  ops.push_back({.name = "reshape",
                 .inputs = {{"x"}},
                 .outputs = {"out"},
                 .attrs = {{.name = "shape", .type = AttrType::kInts}},
                 .infer = InferReshape,
                 .reference = ReshapeReference});
  ops.push_back({.name = "permute",
                 .inputs = {{"x"}},
                 .outputs = {"out"},
                 .attrs = {{.name = "perm", .type = AttrType::kInts}},
                 .infer = InferPermute,
                 .reference = AxesReference});
  ops.push_back({.name = "transpose",
                 .inputs = {{"x"}},
                 .outputs = {"out"},
                 .attrs = {IntAttr("dim0", -2), IntAttr("dim1", -1)},
                 .infer = InferTranspose,
                 .reference = AxesReference});
  ops.push_back({.name = "contiguous",
                 .inputs = {{"x"}},
                 .outputs = {"out"},
                 .infer = InferContiguous,
                 .reference = ContiguousReference});
}

}  // namespace kiln
