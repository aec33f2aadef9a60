// Row ops (kernels/norm.cl: rms/layer/l2 norm, softmax, reduce), rope
// (kernels/rope.cl) and conv1d_causal (kernels/conv1d_causal.cl).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "dispatch.h"
#include "ops/conv1d_causal.h"
#include "ops/layout.h"
#include "ops/rope.h"

namespace kiln::opencl {
namespace {

// The rows of x (every dim but the last): their dims and strides, 4-wide.
struct Rows {
  Int4 dims{1, 1, 1, 1}, strides{0, 0, 0, 0};
  int64_t count = 1;
};
Rows RowsOf(const TensorArg& x) {
  Rows r;
  const int n = x.rank() - 1;
  for (int i = 0; i < n; ++i) {
    r.dims[4 - n + i] = x.dim(i);
    r.strides[4 - n + i] = x.stride(i);
    r.count *= x.dim(i);
  }
  return r;
}

absl::Status PrepareNorm(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[0], &y = ctx.out[0];
  const Rows rows = RowsOf(x);
  const int64_t C = x.dim(-1);
  if (rows.count == 0 || C == 0) return absl::OkStatus();
  const TensorArg w = ctx.in.size() > 1 ? ctx.in[1] : TensorArg{};
  const TensorArg b = ctx.in.size() > 2 ? ctx.in[2] : TensorArg{};
  const int kind = ctx.node->op == "rms_norm" ? 0 : ctx.node->op == "layer_norm" ? 1 : 2;
  auto d = ctx.Add("norm", "", "norm");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(rows.strides).i4(rows.dims).i32(int(x.info->dtype));
  a.tensor(w, ctx.dummy).i32(w.present() ? int(w.info->dtype) : 0).i32(w.present());
  a.tensor(b, ctx.dummy).i32(b.present() ? int(b.info->dtype) : 0).i32(b.present());
  a.i32(C).i32(kind).f32(ctx.node->GetFloat("eps"));
  (*d)->local = {256, 1, 1};
  (*d)->global = {size_t(rows.count) * 256, 1, 1};
  return a.status();
}

absl::Status PrepareSoftmax(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[0], &y = ctx.out[0];
  const Rows rows = RowsOf(x);
  const int64_t C = x.dim(-1);
  if (rows.count == 0 || C == 0) return absl::OkStatus();
  const TensorArg m = ctx.in.size() > 1 ? ctx.in[1] : TensorArg{};
  Int4 m_rows{0, 0, 0, 0};
  int64_t m_cs = 0;
  if (m.present()) {
    const Int4 s = BroadcastStrides4(m, x.info->dims);  // over x's dims, right-aligned
    // x's row dims sit at 4 - (rank-1) .. 3 of Rows; the mask's at s[0..2] of
    // the same right-aligned frame shifted by one.
    for (int i = 0; i < 3; ++i) m_rows[i + 1] = s[i];
    m_cs = s[3];
  }
  auto d = ctx.Add("norm", "", "softmax");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(rows.strides).i4(rows.dims).i32(int(x.info->dtype));
  a.tensor(m, ctx.dummy).i4(m_rows).i32(m_cs).i32(m.present() ? int(m.info->dtype) : 0).i32(m.present());
  a.i32(C).f32(ctx.node->GetFloat("scale"));
  (*d)->local = {256, 1, 1};
  (*d)->global = {size_t(rows.count) * 256, 1, 1};
  return a.status();
}

absl::Status PrepareReduce(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[0], &y = ctx.out[0];
  int axis = 0;
  ResolveAxis(ctx.node->GetInt("axis"), x.rank(), &axis);
  std::vector<int64_t> dims = x.info->dims;
  const int64_t n = dims[axis];
  dims[axis] = 1;
  int64_t count = 1;
  for (int64_t v : dims) count *= v;
  if (count == 0) return absl::OkStatus();
  const int op = ctx.node->op == "max" ? 2 : ctx.node->op == "mean" ? 1 : 0;
  auto d = ctx.Add("norm", "", "reduce");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(Strides4(x)).i4(Dims4(dims)).i32(int(x.info->dtype));
  a.i32(x.stride(axis)).i32(n).i64(count).i32(op);
  Set1D(**d, count);
  return a.status();
}

absl::Status PrepareRope(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[kRopeX], &pos = ctx.in[kRopePositions], &y = ctx.out[0];
  const int64_t n = x.info->numel();
  if (n == 0) return absl::OkStatus();
  const int64_t D = x.dim(3);
  const double l2t = std::log2(ctx.node->GetFloat("theta"));
  const float hi = static_cast<float>(l2t);
  const float lo = static_cast<float>(l2t - hi);
  auto d = ctx.Add("rope", "", "rope");
  if (!d.ok()) return d.status();
  KernelArgs a((*d)->kernel);
  a.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(Strides4(x)).i4(Dims4(x.info->dims)).i32(int(x.info->dtype));
  a.tensor(pos, ctx.dummy).i32(pos.rank() == 2 ? pos.stride(0) : 0).i32(pos.stride(-1));
  a.i32(RopeRotaryDim(*ctx.node, D)).i32(RopeInterleaved(*ctx.node)).f32(hi).f32(lo).i64(n);
  Set1D(**d, n);
  return a.status();
}

Int4 Conv3(const TensorArg& t) {
  if (!t.present()) return {0, 0, 0, 0};
  return {t.stride(0), t.stride(1), 0, 0};
}

absl::Status PrepareConv(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[kConvX], &w = ctx.in[kConvWeight];
  const TensorArg s = ctx.in.size() > kConvState ? ctx.in[kConvState] : TensorArg{};
  const TensorArg &y = ctx.out[kConvOut], &ns = ctx.out[kConvNewState];
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2), K = w.dim(1);
  if (B * C == 0) return absl::OkStatus();
  if (B * T * C > 0) {
    auto d = ctx.Add("conv1d_causal", "", "conv1d_out");
    if (!d.ok()) return d.status();
    KernelArgs a((*d)->kernel);
    a.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(Conv3(x)).i32(int(x.info->dtype));
    a.tensor(w, ctx.dummy).i32(w.stride(0)).i32(int(w.info->dtype));
    a.tensor(s, ctx.dummy).i4(Conv3(s)).i32(s.present() ? int(s.info->dtype) : 0).i32(s.present());
    a.i32(B).i32(T).i32(C).i32(K).i32(ctx.node->GetBool("silu"));
    Set1D(**d, B * T * C);
    if (!a.status().ok()) return a.status();
  }
  if (K > 1) {
    auto d = ctx.Add("conv1d_causal", "", "conv1d_state");
    if (!d.ok()) return d.status();
    KernelArgs a((*d)->kernel);
    a.tensor(ns, ctx.dummy).i4(Conv3(ns)).i32(int(ns.info->dtype)).tensor(x, ctx.dummy).i4(Conv3(x));
    a.i32(int(x.info->dtype)).tensor(s, ctx.dummy).i4(Conv3(s)).i32(s.present() ? int(s.info->dtype) : 0);
    a.i32(s.present()).i32(B).i32(T).i32(C).i32(K);
    Set1D(**d, B * C);
    return a.status();
  }
  return absl::OkStatus();
}

Support Any(const Graph&, const Node&, const DeviceFacts&) { return Support::Yes(); }

}  // namespace

void RegisterRowOps(std::vector<OpEntry>& ops) {
  for (const char* op : {"rms_norm", "layer_norm", "l2_norm"}) ops.push_back({op, Any, PrepareNorm});
  ops.push_back({"softmax", Any, PrepareSoftmax});
  for (const char* op : {"sum", "mean", "max"}) ops.push_back({op, Any, PrepareReduce});
  ops.push_back({"rope", Any, PrepareRope});
  ops.push_back({"conv1d_causal", Any, PrepareConv});
}

}  // namespace kiln::opencl
