// CPU kernels of sum / mean / max over one axis. The last axis reduces each
// contiguous row to one value; another axis accumulates whole rows into the
// output row. f32 accumulation through Highway; max propagates NaN.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/reduce.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

// max that keeps a NaN of either side (x86's max drops a NaN first operand).
template <class V>
HWY_INLINE V MaxNaN(V acc, V v) {
  return hn::IfThenElse(hn::IsNaN(acc), acc, hn::IfThenElse(hn::IsNaN(v), v, hn::Max(acc, v)));
}

// Sum (is_max false) or max of x[0..n).
float ReduceRow(bool is_max, const float* x, int64_t n) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const float pad = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
  auto acc = hn::Set(d, pad);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    acc = is_max ? MaxNaN(acc, v) : hn::Add(acc, v);
  }
  if (i < n) {
    HWY_ALIGN float t[HWY_MAX_BYTES / 4];
    for (int64_t j = 0; j < N; ++j) t[j] = i + j < n ? x[i + j] : pad;
    const auto v = hn::Load(d, t);
    acc = is_max ? MaxNaN(acc, v) : hn::Add(acc, v);
  }
  if (!is_max) return hn::GetLane(hn::SumOfLanes(d, acc));
  HWY_ALIGN float lanes[HWY_MAX_BYTES / 4];
  hn::Store(acc, d, lanes);
  float m = lanes[0];
  for (int64_t j = 1; j < N; ++j) m = std::isnan(m) || std::isnan(lanes[j]) ? NAN : (lanes[j] > m ? lanes[j] : m);
  return m;
}

// acc[i] = acc[i] + x[i] (or max) for i < n.
void AccumulateRow(bool is_max, const float* x, int64_t n, float* acc) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto a = hn::LoadU(d, acc + i), v = hn::LoadU(d, x + i);
    hn::StoreU(is_max ? MaxNaN(a, v) : hn::Add(a, v), d, acc + i);
  }
  for (; i < n; ++i) {
    acc[i] = is_max ? (std::isnan(acc[i]) || std::isnan(x[i]) ? NAN : (x[i] > acc[i] ? x[i] : acc[i]))
                    : acc[i] + x[i];
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"

namespace kiln::cpu {
namespace {

HWY_EXPORT(ReduceRow);
HWY_EXPORT(AccumulateRow);

enum class Reduce { kSum, kMean, kMax };

constexpr int64_t kChunk = 1024;  // columns per work item when reducing an outer axis

template <Reduce kOp>
absl::Status ReduceKernel(const KernelArgs& args) {
  const TensorView &x = args.inputs[0], &y = args.outputs[0];
  const int64_t a = args.node->GetInt("axis");
  const int axis = static_cast<int>(a < 0 ? a + x.rank : a);
  const bool is_max = kOp == Reduce::kMax;
  const int64_t n = x.dims[axis];
  const int64_t C = x.dim(-1);
  const int ey = ElementSize(y.dtype);
  auto finish = [&](float v) { return kOp == Reduce::kMean ? v / static_cast<float>(n) : v; };
  if (y.numel() == 0) return absl::OkStatus();
  if (x.numel() == 0) {  // an empty axis: sum 0, mean NaN, max -inf
    const float v = is_max ? -std::numeric_limits<float>::infinity() : finish(0.0f);
    std::vector<float> row(y.numel(), v);
    StoreRow(y.dtype, row.data(), y.numel(), y.data);
    return absl::OkStatus();
  }
  if (axis == x.rank - 1) {
    const int64_t rows = NumRows(x);
    ParallelFor(rows, ThreadsFor(rows * C, args.threads), [&](int64_t r_begin, int64_t r_end) {
      std::vector<float> buf(x.dtype == DType::kF32 ? 0 : C);
      for (int64_t r = r_begin; r < r_end; ++r) {
        const std::byte* rx = RowAt(x, r);
        const float* v = reinterpret_cast<const float*>(rx);
        if (x.dtype != DType::kF32) LoadRow(x.dtype, rx, C, buf.data()), v = buf.data();
        const float out = finish(HWY_DYNAMIC_DISPATCH(ReduceRow)(is_max, v, C));
        StoreRow(y.dtype, &out, 1, y.data + r * ey);
      }
    });
    return absl::OkStatus();
  }
  // Output rows: the index over every dim but `axis` and the last one, in
  // order; y is contiguous with exactly those rows of C values.
  std::array<int64_t, kMaxRank> odims{}, ostrides{};
  int orank = 0;
  for (int d = 0; d + 1 < x.rank; ++d) {
    if (d == axis) continue;
    odims[orank] = x.dims[d];
    ostrides[orank++] = x.strides[d];
  }
  int64_t rows = 1;
  for (int d = 0; d < orank; ++d) rows *= odims[d];
  const int64_t chunks = (C + kChunk - 1) / kChunk;
  ParallelFor(rows * chunks, ThreadsFor(rows * n * C, args.threads), [&](int64_t it_begin, int64_t it_end) {
    std::vector<float> acc(kChunk), buf(kChunk);
    for (int64_t it = it_begin; it < it_end; ++it) {
      const int64_t r = it / chunks, c0 = it % chunks * kChunk, len = std::min(kChunk, C - c0);
      const std::byte* base = x.data;
      int64_t rem = r;
      for (int d = orank - 1; d >= 0; --d) {
        base += (rem % odims[d]) * ostrides[d];
        rem /= odims[d];
      }
      std::fill(acc.begin(), acc.begin() + len, is_max ? -std::numeric_limits<float>::infinity() : 0.0f);
      for (int64_t i = 0; i < n; ++i) {
        const std::byte* row = base + i * x.strides[axis];
        const float* v = reinterpret_cast<const float*>(row) + c0;
        if (x.dtype != DType::kF32) LoadRow(x.dtype, row, c0, len, buf.data()), v = buf.data();
        HWY_DYNAMIC_DISPATCH(AccumulateRow)(is_max, v, len, acc.data());
      }
      for (int64_t j = 0; j < len; ++j) acc[j] = finish(acc[j]);
      StoreRow(y.dtype, acc.data(), len, y.data + (r * C + c0) * ey);
    }
  });
  return absl::OkStatus();
}

template <KernelFn kFn>
absl::StatusOr<CpuPipeline> Select(const Graph& graph, const Node& node) {
  const TensorInfo& x = graph.tensors[node.inputs[0]];
  const int64_t a = node.GetInt("axis");
  const bool last = a == -1 || a == x.rank() - 1;
  return CpuPipeline{absl::StrCat(node.op, "[", DTypeName(x.dtype), last ? ",last" : ",outer", "]"), kFn};
}

Support Yes(const Graph&, const Node&) { return Support::Yes(); }

}  // namespace

void RegisterCpuReduceKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"sum", Yes, Select<ReduceKernel<Reduce::kSum>>});
  k.push_back({"mean", Yes, Select<ReduceKernel<Reduce::kMean>>});
  k.push_back({"max", Yes, Select<ReduceKernel<Reduce::kMax>>});
}

}  // namespace kiln::cpu
#endif  // HWY_ONCE
