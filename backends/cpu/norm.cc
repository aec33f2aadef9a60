// CPU kernels of the row-wise normalizations over the last axis: rms_norm,
// layer_norm, l2_norm and softmax (scale, optional broadcast mask). Each row
// is one OpenMP work item; the row math runs in f32 through Highway.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/norm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

// Calls f(v) for each vector of x[0..n); the tail is padded with `pad`.
template <class F>
HWY_INLINE void ForVectors(const float* x, int64_t n, float pad, F f) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) f(hn::LoadU(d, x + i));
  if (i < n) {
    HWY_ALIGN float t[HWY_MAX_BYTES / 4];
    for (int64_t j = 0; j < N; ++j) t[j] = i + j < n ? x[i + j] : pad;
    f(hn::Load(d, t));
  }
}

// y[i] = f(x[i]) (the tail through a padded buffer).
template <class F>
HWY_INLINE void MapRow(const float* x, float* y, int64_t n, F f) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, x + i), i), d, y + i);
  if (i < n) {
    HWY_ALIGN float t[HWY_MAX_BYTES / 4] = {};
    std::memcpy(t, x + i, 4 * (n - i));
    hn::Store(f(hn::Load(d, t), i), d, t);
    std::memcpy(y + i, t, 4 * (n - i));
  }
}

// A vector of p[i..i+N) (p may end before i+N: the tail reads a padded copy).
HWY_INLINE hn::Vec<DF> LoadAt(const float* p, int64_t i, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  if (i + N <= n) return hn::LoadU(d, p + i);
  HWY_ALIGN float t[HWY_MAX_BYTES / 4] = {};
  std::memcpy(t, p + i, 4 * (n - i));
  return hn::Load(d, t);
}

// y = (x - mean) * r * weight + bias, with mean and r from the norm kind:
// kind 0 rms_norm, 1 layer_norm, 2 l2_norm. weight/bias may be null.
void NormRow(int kind, const float* x, int64_t n, double eps, const float* weight, const float* bias,
             float* y) {
  const DF d;
  float mean = 0;
  if (kind == 1) {
    auto acc = hn::Zero(d);
    ForVectors(x, n, 0.0f, [&](auto v) { acc = hn::Add(acc, v); });
    mean = hn::GetLane(hn::SumOfLanes(d, acc)) / static_cast<float>(n);
  }
  const auto vmean = hn::Set(d, mean);
  auto acc = hn::Zero(d);
  ForVectors(x, n, mean, [&](auto v) {
    const auto c = hn::Sub(v, vmean);
    acc = hn::MulAdd(c, c, acc);
  });
  const double sum_sq = hn::GetLane(hn::SumOfLanes(d, acc));
  const double denom = kind == 2 ? sum_sq : sum_sq / static_cast<double>(n);
  const auto r = hn::Set(d, static_cast<float>(1.0 / std::sqrt(denom + eps)));
  MapRow(x, y, n, [&](auto v, int64_t i) {
    auto e = hn::Mul(hn::Sub(v, vmean), r);
    if (weight) e = hn::Mul(e, LoadAt(weight, i, n));
    if (bias) e = hn::Add(e, LoadAt(bias, i, n));
    return e;
  });
}

// y = softmax(scale * x + mask) over n values; mask may be null or a single
// broadcast value. A row of all -inf gives zeros; a NaN anywhere gives NaNs.
void SoftmaxRow(const float* x, const float* mask, bool mask_scalar, float scale, int64_t n, float* y) {
  const DF d;
  const float inf = std::numeric_limits<float>::infinity();
  const auto vscale = hn::Set(d, scale);
  MapRow(x, y, n, [&](auto v, int64_t i) {
    auto s = hn::Mul(vscale, v);
    if (mask) s = hn::Add(s, mask_scalar ? hn::Set(d, mask[0]) : LoadAt(mask, i, n));
    return s;
  });
  auto vmax = hn::Set(d, -inf);
  ForVectors(y, n, -inf, [&](auto v) { vmax = hn::Max(vmax, v); });
  const float max = hn::GetLane(hn::MaxOfLanes(d, vmax));
  if (max == -inf) {  // every logit -inf (or NaN, which Max may skip)
    bool nan = false;
    for (int64_t i = 0; i < n; ++i) nan |= std::isnan(y[i]);
    for (int64_t i = 0; i < n; ++i) y[i] = nan ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
    return;
  }
  // s - max <= 0 (or NaN): exp never overflows; a NaN makes the sum NaN.
  const auto vm = hn::Set(d, max);
  auto sum = hn::Zero(d);
  MapRow(y, y, n, [&](auto v, int64_t i) {
    const auto e = SafeExp(d, hn::Sub(v, vm));
    sum = hn::Add(sum, i + static_cast<int64_t>(hn::Lanes(d)) <= n
                           ? e
                           : hn::IfThenElseZero(hn::FirstN(d, n - i), e));
    return e;
  });
  const auto den = hn::Set(d, hn::GetLane(hn::SumOfLanes(d, sum)));
  MapRow(y, y, n, [&](auto v, int64_t) { return hn::Div(v, den); });
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"
#include "ops/norm.h"
#include "ops/softmax.h"

namespace kiln::cpu {
namespace {

HWY_EXPORT(NormRow);
HWY_EXPORT(SoftmaxRow);

// An optional [C] float input as f32 (empty when absent).
std::vector<float> F32Vector(const KernelArgs& args, int i, int64_t n) {
  if (static_cast<int>(args.inputs.size()) <= i || !args.inputs[i].present()) return {};
  std::vector<float> v(n);
  LoadRow(args.inputs[i].dtype, args.inputs[i].data, n, v.data());
  return v;
}

template <int kKind>
absl::Status NormKernel(const KernelArgs& args) {
  auto params = ResolveNorm(*args.node, args.inputs, args.outputs);
  if (!params.ok()) return params.status();
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  const int64_t C = params->C, rows = params->rows;
  if (C == 0) return absl::OkStatus();
  const std::vector<float> weight = F32Vector(args, 1, C), bias = F32Vector(args, 2, C);
  const float* w = weight.empty() ? nullptr : weight.data();
  const float* b = bias.empty() ? nullptr : bias.data();
  const double eps = params->eps;
  ParallelFor(rows, ThreadsFor(rows * C * 4, args.threads), [&](int64_t r_begin, int64_t r_end) {
    std::vector<float> in, out;
    if (x.dtype != DType::kF32) in.resize(C), out.resize(C);
    for (int64_t r = r_begin; r < r_end; ++r) {
      const std::byte* rx = RowAt(x, r);
      std::byte* ry = RowAt(y, r);
      if (x.dtype == DType::kF32) {
        HWY_DYNAMIC_DISPATCH(NormRow)(kKind, reinterpret_cast<const float*>(rx), C, eps, w, b,
                                      reinterpret_cast<float*>(ry));
      } else {
        LoadRow(x.dtype, rx, C, in.data());
        HWY_DYNAMIC_DISPATCH(NormRow)(kKind, in.data(), C, eps, w, b, out.data());
        StoreRow(y.dtype, out.data(), C, ry);
      }
    }
  });
  return absl::OkStatus();
}

absl::Status SoftmaxKernel(const KernelArgs& args) {
  auto params = ResolveSoftmax(*args.node, args.inputs, args.outputs);
  if (!params.ok()) return params.status();
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  const TensorView mask = params->has_mask ? args.inputs[kSoftmaxMask] : TensorView{};
  const int64_t C = params->C, rows = params->rows;
  if (C == 0) return absl::OkStatus();
  const float scale = static_cast<float>(params->scale);
  const auto mask_strides = mask.present() ? BroadcastStrides(mask, x) : std::array<int64_t, kMaxRank>{};
  const bool mask_scalar = params->mask_scalar;
  const int64_t mask_cols = mask_scalar ? 1 : C;
  ParallelFor(rows, ThreadsFor(rows * C * 8, args.threads), [&](int64_t r_begin, int64_t r_end) {
    std::vector<float> in(x.dtype == DType::kF32 ? 0 : C), out(y.dtype == DType::kF32 ? 0 : C);
    std::vector<float> m(mask.present() && mask.dtype != DType::kF32 ? mask_cols : 0);
    for (int64_t r = r_begin; r < r_end; ++r) {
      const std::byte* rx = RowAt(x, r);
      std::byte* ry = RowAt(y, r);
      const float* vx = reinterpret_cast<const float*>(rx);
      if (x.dtype != DType::kF32) LoadRow(x.dtype, rx, C, in.data()), vx = in.data();
      const float* vm = nullptr;
      if (mask.present()) {
        const std::byte* rm = RowAt(mask.data, x, mask_strides, r);
        vm = reinterpret_cast<const float*>(rm);
        if (mask.dtype != DType::kF32) LoadRow(mask.dtype, rm, mask_cols, m.data()), vm = m.data();
      }
      float* vy = y.dtype == DType::kF32 ? reinterpret_cast<float*>(ry) : out.data();
      HWY_DYNAMIC_DISPATCH(SoftmaxRow)(vx, vm, mask_scalar, scale, C, vy);
      if (y.dtype != DType::kF32) StoreRow(y.dtype, out.data(), C, ry);
    }
  });
  return absl::OkStatus();
}

template <KernelFn kFn>
absl::StatusOr<CpuPipeline> Select(const Graph& graph, const Node& node) {
  std::string key = absl::StrCat(node.op, "[", DTypeName(graph.tensors[node.inputs[0]].dtype));
  for (size_t i = 1; i < node.inputs.size(); ++i) {
    absl::StrAppend(&key, ",", node.inputs[i] < 0 ? "-" : DTypeName(graph.tensors[node.inputs[i]].dtype));
  }
  return CpuPipeline{key + "]", kFn};
}

Support Yes(const Graph&, const Node&) { return Support::Yes(); }

}  // namespace

void RegisterCpuNormKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"rms_norm", Yes, Select<NormKernel<0>>});
  k.push_back({"layer_norm", Yes, Select<NormKernel<1>>});
  k.push_back({"l2_norm", Yes, Select<NormKernel<2>>});
  k.push_back({"softmax", Yes, Select<SoftmaxKernel>});
}

}  // namespace kiln::cpu
#endif  // HWY_ONCE
