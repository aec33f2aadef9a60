// CPU kernel of conv1d_causal (ops/conv1d_causal.h). Every batch row's old
// state is copied out first, so new_state may alias state; then each output
// row is a K-tap multiply-add over channels (Highway), with optional SiLU.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/conv1d_causal.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cstring>

#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/simd_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[c] = sum_k wt[k*C + c] * rows[k][c], then SiLU if asked.
void ConvRow(const float* const* rows, const float* wt, int64_t K, int64_t C, bool silu, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  int64_t c = 0;
  for (; c + N <= C; c += N) {
    auto acc = hn::Zero(d);
    for (int64_t k = 0; k < K; ++k) acc = hn::MulAdd(hn::LoadU(d, wt + k * C + c), hn::LoadU(d, rows[k] + c), acc);
    hn::StoreU(silu ? Silu(d, acc) : acc, d, out + c);
  }
  if (c < C) {  // the tail through padded buffers
    HWY_ALIGN float t[HWY_MAX_BYTES / 4] = {}, w[HWY_MAX_BYTES / 4] = {};
    auto acc = hn::Zero(d);
    for (int64_t k = 0; k < K; ++k) {
      std::memcpy(t, rows[k] + c, 4 * (C - c));
      std::memcpy(w, wt + k * C + c, 4 * (C - c));
      acc = hn::MulAdd(hn::Load(d, w), hn::Load(d, t), acc);
    }
    hn::Store(silu ? Silu(d, acc) : acc, d, t);
    std::memcpy(out + c, t, 4 * (C - c));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"
#include "ops/conv1d_causal.h"

namespace kiln::cpu {
namespace {

HWY_EXPORT(ConvRow);

absl::Status ConvKernel(const KernelArgs& args) {
  const TensorView& x = args.inputs[kConvX];
  const TensorView& w = args.inputs[kConvWeight];
  const TensorView state = args.inputs.size() > kConvState ? args.inputs[kConvState] : TensorView{};
  const TensorView& y = args.outputs[kConvOut];
  const TensorView& new_state = args.outputs[kConvNewState];
  auto params = ResolveConv1dCausal(*args.node, args.inputs, args.outputs);
  if (!params.ok()) return params.status();
  const int64_t B = params->B, T = params->T, C = params->C, K = params->K, S = K - 1;
  const bool silu = params->silu;
  // Weights transposed to [K][C] so the channel loop is contiguous.
  std::vector<float> wt(K * C), wrow(K);
  for (int64_t c = 0; c < C; ++c) {
    LoadRow(w.dtype, w.data + c * w.strides[0], K, wrow.data());
    for (int64_t k = 0; k < K; ++k) wt[k * C + c] = wrow[k];
  }
  // The old state as f32 [B][S][C], read fully before new_state is written.
  std::vector<float> old(B * S * C, 0.0f);
  if (state.present()) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t r = 0; r < S; ++r) {
        LoadRow(state.dtype, state.data + b * state.strides[0] + r * state.strides[1], C, old.data() + (b * S + r) * C);
      }
    }
  }
  const int64_t y_row = RowBytes(y.dtype, C);
  // Row j of xpad for batch b: old state rows, then x (widened into `buf`).
  auto xpad = [&](int64_t b, int64_t j, float* buf) -> const float* {
    if (j < S) return old.data() + (b * S + j) * C;
    const std::byte* row = x.data + b * x.strides[0] + (j - S) * x.strides[1];
    if (x.dtype == DType::kF32) return reinterpret_cast<const float*>(row);
    LoadRow(x.dtype, row, C, buf);
    return buf;
  };
  ParallelFor(B * T, ThreadsFor(B * T * C * K, args.threads), [&](int64_t bt_begin, int64_t bt_end) {
    std::vector<float> bufs(K * C), out(C);
    std::vector<const float*> rows(K);
    for (int64_t bt = bt_begin; bt < bt_end; ++bt) {
      const int64_t b = bt / T, t = bt % T;
      for (int64_t k = 0; k < K; ++k) rows[k] = xpad(b, t + k, bufs.data() + k * C);
      HWY_DYNAMIC_DISPATCH(ConvRow)(rows.data(), wt.data(), K, C, silu, out.data());
      StoreRow(y.dtype, out.data(), C, y.data + bt * y_row);
    }
  });
  // new_state = the last S rows of xpad.
  std::vector<float> buf(C);
  const int64_t s_row = RowBytes(new_state.dtype, C);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t r = 0; r < S; ++r) {
      StoreRow(new_state.dtype, xpad(b, T + r, buf.data()), C, new_state.data + (b * S + r) * s_row);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CpuPipeline> SelectConv(const Graph& graph, const Node& node) {
  auto p = ResolveConv1dCausal(graph, node);
  if (!p.ok()) return p.status();
  return CpuPipeline{absl::StrCat("conv1d_causal[", DTypeName(p->x.dtype), ",k=", p->K,
                                  p->silu ? ",silu" : "", "]"),
                     ConvKernel};
}

Support Yes(const Graph&, const Node&) { return Support::Yes(); }

}  // namespace

void RegisterCpuConvKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"conv1d_causal", Yes, SelectConv});
}

}  // namespace kiln::cpu
#endif  // HWY_ONCE
