// write_rows: dst with some rows replaced by src (definition in
// ops/write_rows.h); appends K/V to a cache, in place when out aliases dst.
#include "ops/write_rows.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_families.h"

namespace kiln {

absl::StatusOr<WriteRowsParams> ResolveWriteRows(const ParamContext& ctx) {
  if (absl::Status st = ctx.CheckWithSchema(); !st.ok()) return st;
  const TensorLayout& dst = ctx.input(kWriteRowsDst);
  const TensorLayout& src = ctx.input(kWriteRowsSrc);
  const TensorLayout& rows = ctx.input(kWriteRowsRows);
  if (!dst.present || dst.rank < 2) return ctx.InputError(kWriteRowsDst, "must be [..., R, C]");
  if (!src.present || src.rank != dst.rank) return ctx.InputError(kWriteRowsSrc, "must be [..., n, C]");
  if (!rows.present || rows.rank != 1) return ctx.InputError(kWriteRowsRows, "must be i32 [n]");
  WriteRowsParams p;
  p.lead_rank = dst.rank - 2;
  for (int d = 0; d < p.lead_rank; ++d) p.lead *= dst.dims[d];
  p.R = dst.dims[dst.rank - 2];
  p.C = dst.dims[dst.rank - 1];
  p.n = rows.dims[0];
  p.convert = src.dtype != dst.dtype;
  p.row_bytes = RowBytes(dst.dtype, p.C);
  p.dst = dst;
  p.src = src;
  p.rows = rows;
  p.out = ctx.has_outputs() ? ctx.output(0) : LayoutOf(dst.dtype, absl::MakeConstSpan(dst.dims.data(), dst.rank));
  return p;
}

absl::StatusOr<WriteRowsParams> ResolveWriteRows(const Graph& graph, const Node& node) {
  return ResolveWriteRows(ParamContext(graph, node));
}

absl::StatusOr<WriteRowsParams> ResolveWriteRows(const Node& node, absl::Span<const TensorView> inputs,
                            absl::Span<const TensorView> outputs) {
  return ResolveWriteRows(ParamContext(node, inputs, outputs));
}

namespace {

absl::Status InferWriteRows(InferContext& ctx) {
  const TensorType& dst = *ctx.input(kWriteRowsDst);
  const TensorType& src = *ctx.input(kWriteRowsSrc);
  const TensorType& rows = *ctx.input(kWriteRowsRows);
  const size_t rank = dst.dims.size();
  if (rank < 2) return ctx.InputError(kWriteRowsDst, "must be [..., R, C] (rank 2 to 4)");
  const bool same_type = src.dtype == dst.dtype;
  if (!same_type && !(IsFloat(src.dtype) && IsFloat(dst.dtype))) {
    return ctx.InputError(kWriteRowsSrc, absl::StrCat("must have dst's dtype (", DTypeName(dst.dtype),
                                                      "), or both must be f32, f16 or bf16"));
  }
  std::vector<int64_t> want = dst.dims;  // [..., n, C] with n from rows
  if (rows.dtype != DType::kI32 || rows.dims.size() != 1) {
    return ctx.InputError(kWriteRowsRows, "must be i32 [n]");
  }
  want[rank - 2] = rows.dims[0];
  if (src.dims != want) {
    return ctx.InputError(kWriteRowsSrc,
                          absl::StrCat("must be [..., n, C] = ", ShapeString(want),
                                       ": dst's leading dims and C, and n from 'rows'"));
  }
  ctx.outputs = {{dst.dtype, dst.dims}};
  return absl::OkStatus();
}

absl::Status WriteRowsReference(const Node& node, absl::Span<const TensorView> in,
                                absl::Span<const TensorView> out) {
  const TensorView& dst = in[kWriteRowsDst];
  const TensorView& src = in[kWriteRowsSrc];
  const TensorView& rows = in[kWriteRowsRows];
  const TensorView& y = out[0];
  const int rank = dst.rank;
  auto params = ResolveWriteRows(node, in, out);
  if (!params.ok()) return params.status();
  const WriteRowsParams& prm = *params;
  const int64_t R = prm.R, C = prm.C, n = prm.n;
  // Check every index before writing: a failed call leaves an in-place
  // buffer untouched.
  std::vector<int64_t> index(n);
  for (int64_t i = 0; i < n; ++i) {
    index[i] = static_cast<int64_t>(LoadElement(rows, &i));
    if (index[i] < 0 || index[i] >= R) {
      return absl::OutOfRangeError(absl::StrCat(NodeLabel(node), ": input 'rows' holds ", index[i],
                                                " at [", i, "], outside dst's rows [0, ", R, ")"));
    }
  }
  const int64_t row_bytes = RowBytes(dst.dtype, C);
  if (y.data != dst.data) {
    // Rows are contiguous in both; dst may be a strided view.
    ForEachIndex(rank - 1, dst.dims, [&](const int64_t* r) {
      std::memcpy(y.row(r), dst.row(r), row_bytes);
    });
  }
  ForEachIndex(rank - 2, dst.dims, [&](const int64_t* lead) {
    int64_t s[kMaxRank] = {}, d[kMaxRank] = {};
    std::copy(lead, lead + rank - 2, s);
    std::copy(lead, lead + rank - 2, d);
    for (int64_t i = 0; i < n; ++i) {
      s[rank - 2] = i;
      d[rank - 2] = index[i];
      if (src.dtype == y.dtype) {
        std::memcpy(y.row(d), src.row(s), row_bytes);
        continue;
      }
      for (int64_t c = 0; c < C; ++c) {
        s[rank - 1] = d[rank - 1] = c;
        StoreElement(y, d, LoadElement(src, s));
      }
    }
  });
  return absl::OkStatus();
}

}  // namespace

void RegisterWriteRowsOps(std::vector<OpSchema>& ops) {
  ops.push_back({.name = "write_rows",
                 .inputs = {{"dst"}, {"src"}, {"rows"}},
                 .outputs = {"out"},
                 .infer = InferWriteRows,
                 .reference = WriteRowsReference,
                 .inplace = {{kWriteRowsDst, 0}}});
}

}  // namespace kiln
