// Layout ops through one strided-copy kernel (kernels/copy.cl): contiguous,
// slice, reshape, permute, transpose, concat; gather and write_rows, which
// check their indices on the device and report bad ones in the split's
// error record.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "dispatch.h"
#include "ops/layout.h"
#include "ops/write_rows.h"

namespace kiln::opencl {
namespace {

Int4 Contiguous4(const std::vector<int64_t>& dims) {
  const Int4 d = Dims4(dims);
  Int4 s{0, 0, 0, 1};
  for (int i = 2; i >= 0; --i) s[i] = s[i + 1] * d[i + 1];
  return s;
}

// Element i (row-major over src_dims) of src -> element i (row-major over
// dst_dims) of dst.
absl::Status AddCopy(PrepareContext& ctx, cl_mem dst, int64_t d_off, const Int4& d_str, const Int4& d_dims,
                     cl_mem src, int64_t s_off, const Int4& s_str, const Int4& s_dims, int64_t n, int es) {
  if (n == 0) return absl::OkStatus();
  auto d = ctx.Add("copy", "", "copy_strided");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.mem(dst).i64(d_off).i4(d_str).i4(d_dims).mem(src).i64(s_off).i4(s_str).i4(s_dims).i64(n).i32(es);
  Set1D(**d, n);
  return a.status();
}

absl::Status PrepareCopyOp(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[0], &y = ctx.out[0];
  const int es = ElementSize(x.info->dtype);
  const std::vector<int64_t>& out_dims = y.info->dims;
  const int64_t n = y.info->numel();
  const Int4 y_str = Contiguous4(out_dims);
  const std::string& op = ctx.node->op;
  if (op == "contiguous" || op == "reshape") {
    return AddCopy(ctx, y.mem, y.offset(), y_str, Dims4(out_dims), x.mem, x.offset(), Strides4(x),
                   Dims4(x.info->dims), n, es);
  }
  if (op == "slice") {
    int axis = 0;
    ResolveAxis(ctx.node->GetInt("axis"), x.rank(), &axis);
    const SliceRange r = NodeSlice(*ctx.node, x.dim(axis));
    Int4 s = Strides4(x);
    const int p = 4 - x.rank() + axis;
    const int64_t off = x.offset() + r.start * s[p];
    s[p] *= ctx.node->GetInt("step");
    return AddCopy(ctx, y.mem, y.offset(), y_str, Dims4(out_dims), x.mem, off, s, Dims4(out_dims), n, es);
  }
  // permute / transpose: output dim i reads input dim axes[i].
  const std::array<int, kMaxRank> axes = OutputToInputAxes(*ctx.node, x.rank());
  Int4 s{0, 0, 0, 0};
  for (int i = 0; i < x.rank(); ++i) s[4 - x.rank() + i] = x.stride(axes[i]);
  return AddCopy(ctx, y.mem, y.offset(), y_str, Dims4(out_dims), x.mem, x.offset(), s, Dims4(out_dims), n, es);
}

absl::Status PrepareConcat(PrepareContext& ctx) {
  const TensorArg& y = ctx.out[0];
  int axis = 0;
  ResolveAxis(ctx.node->GetInt("axis"), y.rank(), &axis);
  const int es = ElementSize(y.info->dtype);
  const Int4 y_str = Contiguous4(y.info->dims);
  const int p = 4 - y.rank() + axis;
  int64_t at = 0;
  for (const TensorArg& x : ctx.in) {
    const Int4 dims = Dims4(x.info->dims);
    if (auto st = AddCopy(ctx, y.mem, y.offset() + at * y_str[p], y_str, dims, x.mem, x.offset(), Strides4(x), dims,
                          x.info->numel(), es);
        !st.ok()) {
      return st;
    }
    at += x.dim(axis);
  }
  return absl::OkStatus();
}

absl::Status PrepareGather(PrepareContext& ctx) {
  const TensorArg &table = ctx.in[kGatherTable], &ids = ctx.in[kGatherIds], &y = ctx.out[0];
  const int64_t n_ids = ids.info->numel(), C = table.dim(1);
  if (n_ids * C == 0) return absl::OkStatus();
  auto d = ctx.Add("copy", "", "gather");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.tensor(y, ctx.dummy).tensor(table, ctx.dummy).i64(table.stride(0)).i32(int(table.info->dtype));
  a.i32(ElementSize(table.info->dtype)).tensor(ids, ctx.dummy).i4(Strides4(ids)).i4(Dims4(ids.info->dims));
  a.i64(n_ids).i32(table.dim(0)).i32(C).mem(ctx.error_record).i32(ctx.node_index);
  Set1D(**d, n_ids * C);
  return a.status();
}

absl::Status PrepareWriteRows(PrepareContext& ctx) {
  const TensorArg &dst = ctx.in[kWriteRowsDst], &src = ctx.in[kWriteRowsSrc], &rows = ctx.in[kWriteRowsRows];
  const TensorArg& y = ctx.out[0];
  const int rank = dst.rank();
  const int64_t C = dst.dim(-1), R = dst.dim(-2), n = rows.dim(0);
  const bool aliased = y.mem == dst.mem && y.byte_offset == dst.byte_offset;
  const bool same = src.info->dtype == y.info->dtype;
  // Leading dims (all but the last two) as two.
  int64_t lead[2] = {1, 1}, y_lead[2] = {0, 0}, s_lead[2] = {0, 0};
  auto raw = [](const TensorArg& t, int i) { return t.info->strides[i]; };  // bytes
  const int nl = rank - 2;
  for (int i = 0; i < nl; ++i) {
    const int p = 2 - nl + i;
    lead[p] = dst.dim(i);
    y_lead[p] = same ? raw(y, i) : y.stride(i);
    s_lead[p] = same ? raw(src, i) : src.stride(i);
  }
  if (!aliased) {
    if (dst.info->dtype == DType::kQ8_0) {
      // Rows as bytes: [lead..., R, rowbytes] with 1-byte elements.
      std::vector<int64_t> dims(dst.info->dims.begin(), dst.info->dims.end() - 1);
      dims.push_back(RowBytes(DType::kQ8_0, C));
      Int4 ds{0, 0, 0, 1}, ys{0, 0, 0, 1};
      for (int i = 0; i < rank - 1; ++i) {
        ds[4 - rank + i] = raw(dst, i);
        ys[4 - rank + i] = raw(y, i);
      }
      if (auto st = AddCopy(ctx, y.mem, y.byte_offset, ys, Dims4(dims), dst.mem, dst.byte_offset, ds, Dims4(dims),
                            dst.info->numel() / C * RowBytes(DType::kQ8_0, C), 1);
          !st.ok()) {
        return st;
      }
    } else if (auto st = AddCopy(ctx, y.mem, y.offset(), Strides4(y), Dims4(y.info->dims), dst.mem, dst.offset(),
                                 Strides4(dst), Dims4(dst.info->dims), dst.info->numel(),
                                 ElementSize(dst.info->dtype));
               !st.ok()) {
      return st;
    }
  }
  const int64_t cols = same ? RowBytes(y.info->dtype, C) : C;
  if (n == 0 || lead[0] * lead[1] * cols == 0) return absl::OkStatus();
  auto d = ctx.Add("copy", "", "write_rows");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.mem(y.mem).i64(same ? int64_t(y.byte_offset) : y.offset()).i64(y_lead[0]).i64(y_lead[1]);
  a.i64(same ? raw(y, rank - 2) : y.stride(-2));
  a.mem(src.mem).i64(same ? int64_t(src.byte_offset) : src.offset()).i64(s_lead[0]).i64(s_lead[1]);
  a.i64(same ? raw(src, rank - 2) : src.stride(-2)).i32(int(src.info->dtype)).i32(int(y.info->dtype));
  a.tensor(rows, ctx.dummy).i32(n).i32(R).i32(cols).i32(lead[0]).i32(lead[1]).i32(same);
  a.mem(ctx.error_record).i32(ctx.node_index);
  Set1D(**d, lead[0] * lead[1] * cols);
  return a.status();
}

Support Any(const Graph&, const Node&, const DeviceFacts&) { return Support::Yes(); }

}  // namespace

void RegisterLayoutOps(std::vector<OpEntry>& ops) {
  for (const char* op : {"contiguous", "reshape", "slice", "permute", "transpose"}) {
    ops.push_back({op, Any, PrepareCopyOp});
  }
  ops.push_back({"concat", Any, PrepareConcat});
  ops.push_back({"gather", Any, PrepareGather});
  ops.push_back({"write_rows", Any, PrepareWriteRows});
}

}  // namespace kiln::opencl
