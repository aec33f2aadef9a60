// Elementwise ops: binary with broadcasting, unary (gelu and scale
// included) and cast; one program (kernels/elementwise.cl) for every dtype.
#include "absl/strings/str_cat.h"
#include "dispatch.h"
#include "ops/elementwise.h"

namespace kiln::opencl {
namespace {

int64_t Numel(const TensorArg& t) { return t.info->numel(); }

absl::Status PrepareBinary(PrepareContext& ctx) {
  const TensorArg &a = ctx.in[0], &b = ctx.in[1], &y = ctx.out[0];
  const int64_t n = Numel(y);
  if (n == 0) return absl::OkStatus();
  auto d = ctx.Add("elementwise", "", "binary");
  if (!d.ok()) return d.status();
  KernelArgs args((*d)->kernel);
  args.tensor(y, ctx.dummy).tensor(a, ctx.dummy).i4(BroadcastStrides4(a, y.info->dims));
  args.tensor(b, ctx.dummy).i4(BroadcastStrides4(b, y.info->dims)).i4(Dims4(y.info->dims)).i64(n);
  args.i32(static_cast<int>(y.info->dtype)).i32(static_cast<int>(*BinaryOpOf(ctx.node->op)));
  Set1D(**d, n);
  return args.status();
}

absl::Status PrepareUnary(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[0], &y = ctx.out[0];
  const int64_t n = Numel(y);
  if (n == 0) return absl::OkStatus();
  const UnaryFn f = *UnaryFnOf(*ctx.node);
  auto d = ctx.Add("elementwise", "", "unary");
  if (!d.ok()) return d.status();
  KernelArgs args((*d)->kernel);
  args.tensor(y, ctx.dummy).tensor(x, ctx.dummy).i4(Strides4(x)).i4(Dims4(y.info->dims)).i64(n);
  args.i32(static_cast<int>(y.info->dtype)).i32(static_cast<int>(f.op)).f32(f.a).f32(f.b);
  Set1D(**d, n);
  return args.status();
}

absl::Status PrepareCast(PrepareContext& ctx) {
  const TensorArg &x = ctx.in[0], &y = ctx.out[0];
  const int64_t n = Numel(y);
  if (n == 0) return absl::OkStatus();
  auto d = ctx.Add("elementwise", "", "cast");
  if (!d.ok()) return d.status();
  KernelArgs args((*d)->kernel);
  args.tensor(y, ctx.dummy).i32(static_cast<int>(y.info->dtype)).tensor(x, ctx.dummy).i4(Strides4(x));
  args.i32(static_cast<int>(x.info->dtype)).i4(Dims4(y.info->dims)).i64(n);
  Set1D(**d, n);
  return args.status();
}

Support Any(const Graph&, const Node&, const DeviceFacts&) { return Support::Yes(); }

}  // namespace

void RegisterElementwiseOps(std::vector<OpEntry>& ops) {
  for (const char* op : {"add", "sub", "mul", "div"}) ops.push_back({op, Any, PrepareBinary});
  for (const char* op : {"neg", "abs", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "gelu", "relu",
                         "softplus", "scale"}) {
    ops.push_back({op, Any, PrepareUnary});
  }
  ops.push_back({"cast", Any, PrepareCast});
}

}  // namespace kiln::opencl
