// CPU kernels of the elementwise ops: binary add/sub/mul/div with NumPy
// broadcasting, the unary functions and scale, and cast. Rows of f32 run
// through Highway directly; f16/bf16 rows are widened to f32 in chunks first.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>
#include <cstring>

#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd_math-inl.h"
#include "ops/elementwise.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

// y[i] = f(a[i], b[i]); a broadcast scalar when a_scalar (likewise b). The
// tail goes through a padded buffer so it uses the same vector code.
template <class F>
HWY_INLINE void Map2(const float* a, bool a_scalar, const float* b, bool b_scalar, float* y,
                     int64_t n, F f) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  auto load = [&](const float* p, bool scalar, int64_t i) {
    return scalar ? hn::Set(d, p[0]) : hn::LoadU(d, p + i);
  };
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(d, load(a, a_scalar, i), load(b, b_scalar, i)), d, y + i);
  if (i < n) {
    HWY_ALIGN float ta[HWY_MAX_BYTES / 4] = {}, tb[HWY_MAX_BYTES / 4] = {}, ty[HWY_MAX_BYTES / 4];
    if (!a_scalar) std::memcpy(ta, a + i, 4 * (n - i));
    if (!b_scalar) std::memcpy(tb, b + i, 4 * (n - i));
    const auto va = a_scalar ? hn::Set(d, a[0]) : hn::Load(d, ta);
    const auto vb = b_scalar ? hn::Set(d, b[0]) : hn::Load(d, tb);
    hn::Store(f(d, va, vb), d, ty);
    std::memcpy(y + i, ty, 4 * (n - i));
  }
}

template <class F>
HWY_INLINE void Map1(const float* x, float* y, int64_t n, F f) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(d, hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN float t[HWY_MAX_BYTES / 4] = {};
    std::memcpy(t, x + i, 4 * (n - i));
    hn::Store(f(d, hn::Load(d, t)), d, t);
    std::memcpy(y + i, t, 4 * (n - i));
  }
}

void BinaryRow(BinaryOp op, const float* a, bool a_scalar, const float* b, bool b_scalar,
               float* y, int64_t n) {
  switch (op) {
    case BinaryOp::kAdd:
      return Map2(a, a_scalar, b, b_scalar, y, n, [](DF, auto x, auto z) { return hn::Add(x, z); });
    case BinaryOp::kSub:
      return Map2(a, a_scalar, b, b_scalar, y, n, [](DF, auto x, auto z) { return hn::Sub(x, z); });
    case BinaryOp::kMul:
      return Map2(a, a_scalar, b, b_scalar, y, n, [](DF, auto x, auto z) { return hn::Mul(x, z); });
    case BinaryOp::kDiv:
      return Map2(a, a_scalar, b, b_scalar, y, n, [](DF, auto x, auto z) { return hn::Div(x, z); });
  }
}

void UnaryRow(UnaryOp op, float alpha, float beta, const float* x, float* y, int64_t n) {
  switch (op) {
    case UnaryOp::kNeg: return Map1(x, y, n, [](DF, auto v) { return hn::Neg(v); });
    case UnaryOp::kAbs: return Map1(x, y, n, [](DF, auto v) { return hn::Abs(v); });
    case UnaryOp::kExp: return Map1(x, y, n, [](DF d, auto v) { return SafeExp(d, v); });
    case UnaryOp::kLog: return Map1(x, y, n, [](DF d, auto v) { return SafeLog(d, v); });
    case UnaryOp::kSqrt: return Map1(x, y, n, [](DF, auto v) { return hn::Sqrt(v); });
    case UnaryOp::kRsqrt:
      return Map1(x, y, n, [](DF d, auto v) { return hn::Div(hn::Set(d, 1.0f), hn::Sqrt(v)); });
    case UnaryOp::kTanh: return Map1(x, y, n, [](DF d, auto v) { return hn::Tanh(d, v); });
    case UnaryOp::kSigmoid: return Map1(x, y, n, [](DF d, auto v) { return Sigmoid(d, v); });
    case UnaryOp::kSilu: return Map1(x, y, n, [](DF d, auto v) { return Silu(d, v); });
    case UnaryOp::kGeluTanh:
      return Map1(x, y, n, [](DF d, auto v) {
        const auto inner = hn::Mul(hn::Set(d, 0.79788456080286535588f),
                                   hn::MulAdd(hn::Mul(hn::Set(d, 0.044715f), hn::Mul(v, v)), v, v));
        const auto half_v = hn::Mul(hn::Set(d, 0.5f), v);
        return hn::MulAdd(half_v, hn::Tanh(d, inner), half_v);
      });
    case UnaryOp::kGeluErf:  // Highway has no erf: the reference's own scalar function
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(ApplyUnary(UnaryFn{UnaryOp::kGeluErf}, x[i]));
      return;
    case UnaryOp::kRelu:
      return Map1(x, y, n, [](DF d, auto v) { return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v); });
    case UnaryOp::kSoftplus:
      return Map1(x, y, n, [](DF d, auto v) {
        // max(x, 0) + log1p(exp(-|x|)): exp never overflows
        const auto r = hn::Add(hn::Max(v, hn::Zero(d)), hn::Log1p(d, hn::Exp(d, hn::Neg(hn::Abs(v)))));
        return hn::IfThenElse(hn::IsNaN(v), v, r);
      });
    case UnaryOp::kScale:
      return Map1(x, y, n, [alpha, beta](DF d, auto v) {
        return hn::MulAdd(v, hn::Set(d, alpha), hn::Set(d, beta));
      });
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"

namespace kiln::cpu {
namespace {

HWY_EXPORT(BinaryRow);
HWY_EXPORT(UnaryRow);

constexpr int64_t kChunk = 2048;  // f32 values per scratch chunk (a multiple of 32)

// The work of an elementwise op over `y`: rows of y, each cut in chunks; or
// the whole tensor as one row when every operand is dense with y's dims (or
// a single value).
struct RowPlan {
  int64_t rows = 1, cols = 1, chunks = 1;
  bool flat = false;
};

bool SameDims(const TensorView& a, const TensorView& b) {
  if (a.rank != b.rank) return false;
  for (int i = 0; i < a.rank; ++i) if (a.dims[i] != b.dims[i]) return false;
  return true;
}

RowPlan PlanRows(const TensorView& y, std::initializer_list<const TensorView*> ins) {
  RowPlan p;
  p.flat = IsDense(y);
  for (const TensorView* t : ins) p.flat &= t->numel() == 1 || (IsDense(*t) && SameDims(*t, y));
  p.rows = p.flat ? 1 : NumRows(y);
  p.cols = p.flat ? y.numel() : y.dim(-1);
  p.chunks = std::max<int64_t>(1, (p.cols + kChunk - 1) / kChunk);
  return p;
}

// Row `r` of operand `t` broadcast over `y` (flat plan: the data itself).
const std::byte* OperandRow(const TensorView& t, const std::array<int64_t, kMaxRank>& strides,
                            const TensorView& y, const RowPlan& p, int64_t r) {
  return p.flat ? t.data : RowAt(t.data, y, strides, r);
}

// `n` f32 values of a row from element `first` (or its single value when
// `scalar`): the row itself for f32, else widened into `scratch`.
const float* F32Values(const TensorView& t, const std::byte* row, bool scalar, int64_t first,
                       int64_t n, float* scratch) {
  if (scalar) first = 0, n = 1;
  if (t.dtype == DType::kF32) return reinterpret_cast<const float*>(row) + first;
  LoadRow(t.dtype, row, first, n, scratch);
  return scratch;
}

template <BinaryOp kOp>
absl::Status BinaryKernel(const KernelArgs& args) {
  const TensorView &a = args.inputs[0], &b = args.inputs[1], &y = args.outputs[0];
  const RowPlan p = PlanRows(y, {&a, &b});
  const auto sa = BroadcastStrides(a, y), sb = BroadcastStrides(b, y);
  const bool a_scalar = p.flat ? a.numel() == 1 : a.dim(-1) == 1;
  const bool b_scalar = p.flat ? b.numel() == 1 : b.dim(-1) == 1;
  const int64_t items = p.rows * p.chunks;
  const int es = ElementSize(y.dtype);
  ParallelFor(items, ThreadsFor(p.rows * p.cols, args.threads), [&](int64_t it_begin, int64_t it_end) {
    for (int64_t it = it_begin; it < it_end; ++it) {
      const int64_t r = it / p.chunks, c0 = it % p.chunks * kChunk;
      const int64_t n = std::min(kChunk, p.cols - c0);
      const std::byte* ra = OperandRow(a, sa, y, p, r);
      const std::byte* rb = OperandRow(b, sb, y, p, r);
      std::byte* ry = p.flat ? y.data : RowAt(y, r);
      if (y.dtype == DType::kI32) {  // wrapping integer arithmetic, no SIMD needed
        const auto* ia = reinterpret_cast<const int32_t*>(ra);
        const auto* ib = reinterpret_cast<const int32_t*>(rb);
        auto* iy = reinterpret_cast<int32_t*>(ry);
        for (int64_t j = c0; j < c0 + n; ++j) {
          iy[j] = ApplyBinaryI32(kOp, ia[a_scalar ? 0 : j], ib[b_scalar ? 0 : j]);
        }
        continue;
      }
      float sa_buf[kChunk], sb_buf[kChunk], sy_buf[kChunk];
      const float* va = F32Values(a, ra, a_scalar, c0, n, sa_buf);
      const float* vb = F32Values(b, rb, b_scalar, c0, n, sb_buf);
      float* vy = y.dtype == DType::kF32 ? reinterpret_cast<float*>(ry) + c0 : sy_buf;
      HWY_DYNAMIC_DISPATCH(BinaryRow)(kOp, va, a_scalar, vb, b_scalar, vy, n);
      if (y.dtype != DType::kF32) StoreRow(y.dtype, sy_buf, n, ry + c0 * es);
    }
  });
  return absl::OkStatus();
}

template <UnaryOp kOp>
absl::Status UnaryKernel(const KernelArgs& args) {
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  const RowPlan p = PlanRows(y, {&x});
  float alpha = 1, beta = 0;
  if constexpr (kOp == UnaryOp::kScale) {
    alpha = static_cast<float>(args.node->GetFloat("a"));
    beta = static_cast<float>(args.node->GetFloat("b"));
  }
  const int64_t items = p.rows * p.chunks;
  const int es = ElementSize(y.dtype);
  // Transcendentals cost more per element: split smaller jobs across threads.
  const int64_t cost = kOp == UnaryOp::kNeg || kOp == UnaryOp::kAbs || kOp == UnaryOp::kRelu ||
                               kOp == UnaryOp::kScale
                           ? 1
                           : 8;
  ParallelFor(items, ThreadsFor(cost * p.rows * p.cols, args.threads), [&](int64_t it_begin, int64_t it_end) {
    for (int64_t it = it_begin; it < it_end; ++it) {
      const int64_t r = it / p.chunks, c0 = it % p.chunks * kChunk;
      const int64_t n = std::min(kChunk, p.cols - c0);
      const std::byte* rx = p.flat ? x.data : RowAt(x, r);
      std::byte* ry = p.flat ? y.data : RowAt(y, r);
      if (y.dtype == DType::kI32) {
        const auto* ix = reinterpret_cast<const int32_t*>(rx);
        auto* iy = reinterpret_cast<int32_t*>(ry);
        for (int64_t j = c0; j < c0 + n; ++j) iy[j] = ApplyUnaryI32(kOp, ix[j]);
        continue;
      }
      float sx_buf[kChunk], sy_buf[kChunk];
      const float* vx = F32Values(x, rx, false, c0, n, sx_buf);
      float* vy = y.dtype == DType::kF32 ? reinterpret_cast<float*>(ry) + c0 : sy_buf;
      HWY_DYNAMIC_DISPATCH(UnaryRow)(kOp, alpha, beta, vx, vy, n);
      if (y.dtype != DType::kF32) StoreRow(y.dtype, sy_buf, n, ry + c0 * es);
    }
  });
  return absl::OkStatus();
}

absl::Status CastKernel(const KernelArgs& args) {
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  const RowPlan p = PlanRows(y, {&x});
  const int64_t items = p.rows * p.chunks;
  const int ey = ElementSize(y.dtype);
  ParallelFor(items, ThreadsFor(p.rows * p.cols, args.threads), [&](int64_t it_begin, int64_t it_end) {
    for (int64_t it = it_begin; it < it_end; ++it) {
      const int64_t r = it / p.chunks, c0 = it % p.chunks * kChunk;
      const int64_t n = std::min(kChunk, p.cols - c0);
      const std::byte* rx = p.flat ? x.data : RowAt(x, r);
      std::byte* ry = (p.flat ? y.data : RowAt(y, r)) + c0 * ey;
      if (x.dtype == y.dtype) {  // same type: the bytes (i32 stays exact)
        std::memcpy(ry, rx + c0 * ey, n * ey);
        continue;
      }
      float buf[kChunk];
      LoadRow(x.dtype, rx, c0, n, buf);  // chunks start at multiples of 32: q8_0 blocks
      if (y.dtype == DType::kI32) {
        auto* iy = reinterpret_cast<int32_t*>(ry);
        for (int64_t j = 0; j < n; ++j) iy[j] = static_cast<int32_t>(CastValue(buf[j], DType::kI32));
      } else {
        StoreRow(y.dtype, buf, n, ry);
      }
    }
  });
  return absl::OkStatus();
}

Support SupportsElementwise(const Graph& graph, const Node& node) {
  for (int id : node.inputs) {
    if (id >= 0 && graph.tensors[id].dtype == DType::kQ8_0 && node.op != "cast") {
      return Support::No(absl::StrCat(node.op, " does not take q8_0 inputs"));
    }
  }
  return Support::Yes();
}

std::string KeyOf(const Graph& graph, const Node& node) {
  return absl::StrCat(node.op, "[", DTypeName(graph.tensors[node.inputs[0]].dtype), "->",
                      DTypeName(graph.tensors[node.outputs[0]].dtype), "]");
}

template <KernelFn kFn>
absl::StatusOr<CpuPipeline> Select(const Graph& graph, const Node& node) {
  return CpuPipeline{KeyOf(graph, node), kFn};
}

template <UnaryOp kOp>
absl::StatusOr<CpuPipeline> SelectUnary(const Graph& graph, const Node& node) {
  return CpuPipeline{KeyOf(graph, node), UnaryKernel<kOp>};
}

// gelu's form is an attribute: pick the instance from the node.
absl::StatusOr<CpuPipeline> SelectGelu(const Graph& graph, const Node& node) {
  const bool erf = UnaryFnOf(node)->op == UnaryOp::kGeluErf;
  return CpuPipeline{absl::StrCat(KeyOf(graph, node), erf ? "erf" : "tanh"),
                     erf ? UnaryKernel<UnaryOp::kGeluErf> : UnaryKernel<UnaryOp::kGeluTanh>};
}

}  // namespace

void RegisterCpuElementwiseKernels(std::vector<CpuKernelEntry>& k) {
  auto add = [&](const char* op, auto select) { k.push_back({op, SupportsElementwise, select}); };
  add("add", Select<BinaryKernel<BinaryOp::kAdd>>);
  add("sub", Select<BinaryKernel<BinaryOp::kSub>>);
  add("mul", Select<BinaryKernel<BinaryOp::kMul>>);
  add("div", Select<BinaryKernel<BinaryOp::kDiv>>);
  add("neg", SelectUnary<UnaryOp::kNeg>);
  add("abs", SelectUnary<UnaryOp::kAbs>);
  add("exp", SelectUnary<UnaryOp::kExp>);
  add("log", SelectUnary<UnaryOp::kLog>);
  add("sqrt", SelectUnary<UnaryOp::kSqrt>);
  add("rsqrt", SelectUnary<UnaryOp::kRsqrt>);
  add("tanh", SelectUnary<UnaryOp::kTanh>);
  add("sigmoid", SelectUnary<UnaryOp::kSigmoid>);
  add("silu", SelectUnary<UnaryOp::kSilu>);
  add("relu", SelectUnary<UnaryOp::kRelu>);
  add("softplus", SelectUnary<UnaryOp::kSoftplus>);
  add("scale", SelectUnary<UnaryOp::kScale>);
  add("gelu", SelectGelu);
  add("cast", Select<CastKernel>);
}

}  // namespace kiln::cpu
#endif  // HWY_ONCE
