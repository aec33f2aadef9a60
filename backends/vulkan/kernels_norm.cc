// Row ops: rms_norm / layer_norm / l2_norm (norm.comp), softmax
// (softmax.comp), rope (rope.comp) and sum / mean / max (reduce.comp).
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "backends/vulkan/vk_kernels.h"
#include "ops/rope.h"

namespace kiln::vk {
namespace {

Support Yes(const Graph&, const Node&, const DeviceFacts&) { return Support::Yes(); }

uint64_t Rows(const TensorArg& t) { return t.dims[0] * t.dims[1] * t.dims[2]; }

absl::Status RecordNorm(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& w = ctx.in(1);
  const TensorArg& b = ctx.in(2);
  const TensorArg& y = ctx.out(0);
  const int kind = ctx.node.op == "rms_norm" ? 0 : ctx.node.op == "layer_norm" ? 1 : 2;
  const uint64_t rows = Rows(x);
  if (rows == 0 || x.dims[3] == 0) return absl::OkStatus();
  Dispatch& d = ctx.Add("norm",
                        {kind, DtCode(x.dtype()), DtCode(y.dtype()), w.present() ? 1 : 0,
                         w.present() ? DtCode(w.dtype()) : 0, b.present() ? 1 : 0, b.present() ? DtCode(b.dtype()) : 0},
                        std::min<uint64_t>(rows, 65535));
  d.U(rows).Dims(x.dims).T(x).T(y).F(ctx.node.GetFloat("eps"));
  d.U(w.present() ? w.offset : 0).U(b.present() ? b.offset : 0);
  d.Bind(0, x).Bind(3, y);
  if (w.present()) d.Bind(1, w);
  if (b.present()) d.Bind(2, b);
  return absl::OkStatus();
}

absl::Status RecordSoftmax(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& m = ctx.in(1);
  const TensorArg& y = ctx.out(0);
  const uint64_t rows = Rows(x);
  if (rows == 0 || x.dims[3] == 0) return absl::OkStatus();
  Dispatch& d = ctx.Add("softmax",
                        {DtCode(x.dtype()), DtCode(y.dtype()), m.present() ? 1 : 0, m.present() ? DtCode(m.dtype()) : 0},
                        std::min<uint64_t>(rows, 65535));
  d.U(rows).Dims(x.dims).T(x);
  if (m.present()) {
    d.U(m.offset);
    for (int i = 0; i < 4; ++i) d.U(m.dims[i] == 1 ? 0 : m.strides[i]);
  } else {
    for (int i = 0; i < 5; ++i) d.U(0);
  }
  d.T(y).F(ctx.node.GetFloat("scale"));
  d.Bind(0, x).Bind(2, y);
  if (m.present()) d.Bind(1, m);
  return absl::OkStatus();
}

Support SupportsRope(const Graph& graph, const Node& node, const DeviceFacts& facts) {
  if (!facts.float64) return Support::No("rope needs shaderFloat64 (exact angles) on this device");
  const TensorInfo& x = graph.tensors[node.inputs[0]];
  if (RopeRotaryDim(node, x.dims[3]) / 2 > 256) return Support::No("rotary_dim above 512");
  return Support::Yes();
}

absl::Status RecordRope(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& pos = ctx.in(1);
  const TensorArg& y = ctx.out(0);
  const int64_t D = x.dims[3];
  const int64_t rd = RopeRotaryDim(ctx.node, D);
  const uint64_t rows = Rows(x);
  const uint64_t n = rows * (rd / 2 + (D - rd));
  if (n == 0) return absl::OkStatus();
  const bool pos2d = pos.rank == 2;
  Dispatch& d = ctx.Add("rope", {DtCode(x.dtype()), RopeInterleaved(ctx.node) ? 1 : 0, pos2d ? 1 : 0},
                        GridGroups(n, 256));
  d.U(rows).Dims(x.dims).T(x).T(y);
  d.U(pos.offset).U(pos2d ? pos.strides[2] : 0).U(pos.strides[3]).U(rd);
  const double theta = ctx.node.GetFloat("theta");
  for (int64_t i = 0; i < rd / 2; ++i) {
    const double f = RopeInvFreq(theta, i, rd);
    uint32_t w[2];
    std::memcpy(w, &f, 8);
    d.U(w[0]).U(w[1]);
  }
  d.Bind(0, x).Bind(1, pos).Bind(2, y);
  return absl::OkStatus();
}

absl::Status RecordReduce(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& y = ctx.out(0);
  const int rank = x.rank;
  int64_t a = ctx.node.GetInt("axis");
  if (a < 0) a += rank;
  const int pa = 4 - rank + static_cast<int>(a);
  std::array<int64_t, 4> dims = x.dims;
  const int64_t len = dims[pa];
  dims[pa] = 1;
  const uint64_t n = dims[0] * dims[1] * dims[2] * dims[3];
  if (n == 0) return absl::OkStatus();
  const int kind = ctx.node.op == "sum" ? 0 : ctx.node.op == "mean" ? 1 : 2;
  Dispatch& d = ctx.Add("reduce", {kind, DtCode(x.dtype())}, GridGroups(n, 256));
  d.U(n).Dims(dims).T(x).U(len).U(x.strides[pa]).U(y.offset);
  d.Bind(0, x).Bind(1, y);
  return absl::OkStatus();
}

}  // namespace

void RegisterNormKernels(std::vector<VkKernelEntry>& k) {
  for (const char* op : {"rms_norm", "layer_norm", "l2_norm"}) k.push_back({op, Yes, RecordNorm});
  k.push_back({"softmax", Yes, RecordSoftmax});
  k.push_back({"rope", SupportsRope, RecordRope});
  for (const char* op : {"sum", "mean", "max"}) k.push_back({op, Yes, RecordReduce});
}

}  // namespace kiln::vk
