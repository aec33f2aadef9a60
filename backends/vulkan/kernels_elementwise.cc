// Elementwise ops and layout copies: all through shaders/elementwise.comp,
// a 4-d strided, broadcasting loop specialized by op and dtypes.
#include <array>

#include "absl/strings/str_cat.h"
#include "backends/vulkan/vk_kernels.h"
#include "ops/elementwise.h"
#include "ops/layout.h"
#include "ops/op_schema.h"

namespace kiln::vk {
namespace {

enum EwOp : int32_t {
  kCopy = 0, kNeg = 1, kAbs = 2, kExp = 3, kLog = 4, kSqrt = 5, kRsqrt = 6, kTanh = 7, kSigmoid = 8,
  kSilu = 9, kGeluTanh = 10, kGeluErf = 11, kRelu = 12, kSoftplus = 13, kScale = 14,
  kAdd = 20, kSub = 21, kMul = 22, kDiv = 23,
};

int32_t UnaryCode(const Node& node) {
  const std::string& op = node.op;
  if (op == "neg") return kNeg;
  if (op == "abs") return kAbs;
  if (op == "exp") return kExp;
  if (op == "log") return kLog;
  if (op == "sqrt") return kSqrt;
  if (op == "rsqrt") return kRsqrt;
  if (op == "tanh") return kTanh;
  if (op == "sigmoid") return kSigmoid;
  if (op == "silu") return kSilu;
  if (op == "gelu") return node.GetString("approximate") == "none" ? kGeluErf : kGeluTanh;
  if (op == "relu") return kRelu;
  if (op == "softplus") return kSoftplus;
  if (op == "scale") return kScale;
  if (op == "add") return kAdd;
  if (op == "sub") return kSub;
  if (op == "mul") return kMul;
  if (op == "div") return kDiv;
  return kCopy;
}

// Strides of `t` seen through the dims of `out` (broadcast: size-1 dims 0).
std::array<int64_t, 4> Broadcast(const TensorArg& t) {
  std::array<int64_t, 4> s = t.strides;
  for (int i = 0; i < 4; ++i) {
    if (t.dims[i] == 1) s[i] = 0;
  }
  return s;
}

// Records one elementwise dispatch: out[idx] = f(a[idx'], b[idx']).
void Record(KernelContext& ctx, int32_t op, const TensorArg& a, std::array<int64_t, 4> a_strides,
            const TensorArg* b, const TensorArg& out, std::array<int64_t, 4> out_dims,
            std::array<int64_t, 4> out_strides, uint32_t out_offset, double fa = 0, double fb = 0,
            const std::array<int64_t, 4>* a_dims = nullptr) {
  const uint64_t n = out_dims[0] * out_dims[1] * out_dims[2] * out_dims[3];
  const uint32_t groups = GridGroups(n, 256);
  Dispatch& d = ctx.Add("elementwise",
                        {op, DtCode(a.dtype()), b ? DtCode(b->dtype()) : 0, DtCode(out.dtype()), b ? 2 : 1,
                         a_dims ? 1 : 0},
                        groups);
  d.U(n).Dims(out_dims);
  d.U(a.offset);
  for (int64_t s : a_strides) d.U(s);
  if (b) {
    d.U(b->offset);
    for (int64_t s : Broadcast(*b)) d.U(s);
  } else {
    for (int i = 0; i < 5; ++i) d.U(0);
  }
  d.U(out_offset);
  for (int64_t s : out_strides) d.U(s);
  d.F(fa).F(fb);
  if (a_dims) d.Dims(*a_dims); else d.Dims({1, 1, 1, 1});
  d.Bind(0, a).Bind(2, out);
  if (b) d.Bind(1, *b);
}

// A copy between same-dtype contiguous tensors whose bytes start and end on
// 16-byte boundaries: whole vectors (copy_vec.comp) instead of the strided
// element loop. False when it does not apply.
bool RecordVectorCopy(KernelContext& ctx, const TensorArg& x, const TensorArg& y) {
  if (x.dtype() != y.dtype() || x.numel() != y.numel() || !x.contiguous() || !y.contiguous()) return false;
  if (x.dtype() == DType::kQ8_0) return false;  // offsets in bytes, rows of blocks: the element loop
  const uint64_t es = static_cast<uint64_t>(ElementSize(x.dtype()));
  const uint64_t bytes = static_cast<uint64_t>(y.numel()) * es;
  if (bytes == 0 || bytes % 16 || (x.offset * es) % 16 || (y.offset * es) % 16) return false;
  const uint64_t vectors = bytes / 16;
  Dispatch& d = ctx.Add("copy_vec", {}, GridGroups((vectors + 3) / 4, 256));
  d.U(vectors).U(x.offset * es / 16).U(y.offset * es / 16);
  d.Bind(0, x).Bind(2, y);
  return true;
}

Support SupportsElementwise(const Graph& graph, const Node& node, const DeviceFacts& facts) {
  for (int id : node.inputs) {
    if (id >= 0 && graph.tensors[id].dtype == DType::kQ8_0 && node.op != "cast") {
      return Support::No(absl::StrCat(node.op, " does not take q8_0 inputs"));
    }
  }
  return Support::Yes();
}

absl::Status RecordUnary(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& y = ctx.out(0);
  const int32_t op = ctx.node.op == "cast" ? kCopy : UnaryCode(ctx.node);
  if (op == kCopy && RecordVectorCopy(ctx, x, y)) return absl::OkStatus();
  double fa = 0, fb = 0;
  if (op == kScale) {
    fa = ctx.node.GetFloat("a");
    fb = ctx.node.GetFloat("b");
  }
  Record(ctx, op, x, x.strides, nullptr, y, y.dims, y.strides, y.offset, fa, fb);
  return absl::OkStatus();
}

absl::Status RecordBinary(KernelContext& ctx) {
  const TensorArg& a = ctx.in(0);
  const TensorArg& b = ctx.in(1);
  const TensorArg& y = ctx.out(0);
  Record(ctx, UnaryCode(ctx.node), a, Broadcast(a), &b, y, y.dims, y.strides, y.offset);
  return absl::OkStatus();
}

absl::Status RecordContiguous(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& y = ctx.out(0);
  if (RecordVectorCopy(ctx, x, y)) return absl::OkStatus();
  Record(ctx, kCopy, x, x.strides, nullptr, y, y.dims, y.strides, y.offset);
  return absl::OkStatus();
}

absl::Status RecordAxes(KernelContext& ctx) {  // permute, transpose
  const TensorArg& x = ctx.in(0);
  const TensorArg& y = ctx.out(0);
  const int rank = x.rank, lead = 4 - rank;
  const std::array<int, kMaxRank> axes = OutputToInputAxes(ctx.node, rank);
  std::array<int64_t, 4> s{0, 0, 0, 0};
  for (int d = 0; d < rank; ++d) s[lead + d] = x.strides[lead + axes[d]];
  Record(ctx, kCopy, x, s, nullptr, y, y.dims, y.strides, y.offset);
  return absl::OkStatus();
}

absl::Status RecordSlice(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& y = ctx.out(0);
  int axis = 0;
  ResolveAxis(ctx.node.GetInt("axis"), x.rank, &axis);
  const SliceRange range = NodeSlice(ctx.node, x.info->dims[axis]);
  const int64_t step = ctx.node.GetInt("step");
  const int a = 4 - x.rank + axis;
  TensorArg view = x;
  view.offset = static_cast<uint32_t>(x.offset + range.start * x.strides[a]);
  std::array<int64_t, 4> s = x.strides;
  s[a] *= step;
  if (y.numel() == 0) return absl::OkStatus();
  Record(ctx, kCopy, view, s, nullptr, y, y.dims, y.strides, y.offset);
  return absl::OkStatus();
}

absl::Status RecordReshape(KernelContext& ctx) {
  const TensorArg& x = ctx.in(0);
  const TensorArg& y = ctx.out(0);
  if (RecordVectorCopy(ctx, x, y)) return absl::OkStatus();
  if (x.contiguous()) {
    // Same flat order: index x with y's dims and contiguous strides.
    std::array<int64_t, 4> s{};
    int64_t e = 1;
    for (int i = 3; i >= 0; --i) {
      s[i] = e;
      e *= y.dims[i];
    }
    Record(ctx, kCopy, x, s, nullptr, y, y.dims, y.strides, y.offset);
  } else {
    Record(ctx, kCopy, x, x.strides, nullptr, y, y.dims, y.strides, y.offset, 0, 0, &x.dims);
  }
  return absl::OkStatus();
}

absl::Status RecordConcat(KernelContext& ctx) {
  const TensorArg& y = ctx.out(0);
  int axis = 0;
  ResolveAxis(ctx.node.GetInt("axis"), y.rank, &axis);
  const int a = 4 - y.rank + axis;
  int64_t at = 0;
  for (const TensorArg& x : ctx.inputs) {
    if (x.numel() > 0) {
      Record(ctx, kCopy, x, x.strides, nullptr, y, x.dims, y.strides,
             static_cast<uint32_t>(y.offset + at * y.strides[a]));
    }
    at += x.dims[a];
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterElementwiseKernels(std::vector<VkKernelEntry>& k) {
  for (const char* op : {"neg", "abs", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "gelu", "relu",
                         "softplus", "scale", "cast"}) {
    k.push_back({op, SupportsElementwise, RecordUnary});
  }
  for (const char* op : {"add", "sub", "mul", "div"}) k.push_back({op, SupportsElementwise, RecordBinary});
  k.push_back({"contiguous", SupportsElementwise, RecordContiguous});
  k.push_back({"permute", SupportsElementwise, RecordAxes});
  k.push_back({"transpose", SupportsElementwise, RecordAxes});
  k.push_back({"slice", SupportsElementwise, RecordSlice});
  k.push_back({"reshape", SupportsElementwise, RecordReshape});
  k.push_back({"concat", SupportsElementwise, RecordConcat});
}

}  // namespace kiln::vk
