// What the CPU flash attention kernels (flash_attn_decode.cc,
// flash_attn_prefill.cc) share outside Highway: the call's operands and
// attributes resolved once, the head sizes that get their own instances,
// and the scalar normalization of a finished row.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "backends/cpu/cpu_kernel.h"
#include "graph/tensor_view.h"
#include "ops/flash_attn.h"

namespace kiln::cpu::fa {

inline constexpr int64_t kTileKeys = 32;  // keys per tile: the unit of mask skipping

// Query positions up to which a call takes the decode kernel (rows read K/V
// at memory speed); above it, the prefill kernel (query rows in lanes).
inline constexpr int64_t kDecodeMaxSq = 8;

// Head sizes (Dk, Dv) with their own instances (compile-time trip counts);
// every other size takes the generic instance (0, 0).
#define KILN_FA_HEAD_SIZES(X)                                                               \
  X(32, 32) X(40, 40) X(64, 64) X(72, 72) X(80, 80) X(96, 96) X(112, 112) X(128, 128)      \
  X(192, 128) X(192, 192) X(256, 256) X(0, 0)

// The operands and attributes of one call.
struct Problem {
  TensorView q, k, v, mask, out;
  const float* sinks = nullptr;  // [Hq] (innermost contiguous), or null
  int64_t B = 0, Sq = 0, Hq = 0, Dk = 0, Skv = 0, Hkv = 0, Dv = 0, G = 0;
  int64_t mask_b = 1, mask_h = 1;  // the mask's broadcast dims (Bm, Hm)
  float scale = 1, softcap = 0;
  bool causal = false;
  double max_bias = 0;
  int threads = 1;

  // ALiBi slope of query head h (1 without ALiBi).
  float slope(int64_t h) const {
    return max_bias == 0 ? 1.0f : static_cast<float>(AlibiSlope(h, Hq, max_bias));
  }
  // Keys [0, KeyEnd(i)) can be visible to query position i (causal limit).
  int64_t KeyEnd(int64_t i) const {
    return causal ? std::clamp<int64_t>(i + (Skv - Sq) + 1, 0, Skv) : Skv;
  }
  const std::byte* MaskRow(int64_t b, int64_t h, int64_t i) const {
    return mask.data + (b % mask_b) * mask.strides[0] + (h % mask_h) * mask.strides[1] +
           i * mask.strides[2];
  }
  std::byte* OutRow(int64_t b, int64_t i, int64_t h) const {
    return out.data + b * out.strides[0] + i * out.strides[1] + h * out.strides[2];
  }
  const std::byte* QRow(int64_t b, int64_t i, int64_t h) const {
    return q.data + b * q.strides[0] + i * q.strides[1] + h * q.strides[2];
  }
};

inline TensorView InputOrAbsent(const KernelArgs& a, int i) {
  return i < static_cast<int>(a.inputs.size()) ? a.inputs[i] : TensorView{};
}

// Shapes and attributes come from ResolveFlashAttn (ops/flash_attn.h), once
// per call; no allocation.
inline absl::Status ResolveProblem(const KernelArgs& a, Problem& p) {
  auto params = ResolveFlashAttn(*a.node, a.inputs, a.outputs);
  if (!params.ok()) return params.status();
  const FlashAttnParams& prm = *params;
  p.q = a.inputs[kFlashAttnQ];
  p.k = a.inputs[kFlashAttnK];
  p.v = a.inputs[kFlashAttnV];
  p.mask = InputOrAbsent(a, kFlashAttnMask);
  const TensorView sinks = InputOrAbsent(a, kFlashAttnSinks);
  p.sinks = sinks.present() ? reinterpret_cast<const float*>(sinks.data) : nullptr;
  p.out = a.outputs[kFlashAttnOut];
  p.B = prm.B, p.Sq = prm.Sq, p.Hq = prm.Hq, p.Dk = prm.Dk;
  p.Skv = prm.Skv, p.Hkv = prm.Hkv, p.Dv = prm.Dv;
  p.G = prm.gqa;
  p.mask_b = prm.mask_b, p.mask_h = prm.mask_h;
  p.scale = static_cast<float>(prm.scale);
  p.softcap = static_cast<float>(prm.softcap);
  p.causal = prm.causal;
  p.max_bias = prm.max_bias;
  p.threads = std::max(1, a.threads);
  return absl::OkStatus();
}

// The factor a row's accumulated output is multiplied by: 1 / l, or with a
// sink logit e^(m-M) / (l e^(m-M) + e^(sink-M)), M = max(m, sink); 0 for a
// row that saw no key (m = -inf) and no finite sink.
inline float NormalizeFactor(float m, float l, const float* sink) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (sink) {
    const float M = std::max(m, *sink);
    if (M == kNegInf) return 0.0f;
    const float em = m == kNegInf ? 0.0f : std::exp(m - M);
    const float den = l * em + std::exp(*sink - M);
    return den > 0 ? em / den : 0.0f;
  }
  return m != kNegInf && l > 0 ? 1.0f / l : 0.0f;
}

// Merges `n` partial softmax states of one row (m[s * stride], l[...], o
// rows o + s * ostride, dp floats each) into the first; returns false when
// every part saw no key.
inline bool MergeParts(int64_t n, float* m, float* l, float* o, int64_t stride, int64_t ostride,
                       int64_t dp) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float M = m[0];
  for (int64_t s = 1; s < n; ++s) M = std::max(M, m[s * stride]);
  if (M == kNegInf) return false;
  float lsum = 0;
  for (int64_t s = 0; s < n; ++s) {
    const float ms = m[s * stride];
    if (ms == kNegInf) continue;  // its o is zeros
    const float w = std::exp(ms - M);
    lsum += l[s * stride] * w;
    const float* os = o + s * ostride;
    if (s == 0) {
      for (int64_t c = 0; c < dp; ++c) o[c] *= w;
    } else {
      for (int64_t c = 0; c < dp; ++c) o[c] += w * os[c];
    }
  }
  m[0] = M;
  l[0] = lsum;
  return true;
}

// One kernel instance of the table a kernel file builds per Highway target.
struct Variant {
  int dk, dv;  // 0: any
  KernelFn fn;
};
struct VariantTable {
  const Variant* begin;
  size_t size;
};

// The instances of the best target this CPU runs, per kernel.
VariantTable DecodeVariants();   // flash_attn_decode.cc
VariantTable PrefillVariants();  // flash_attn_prefill.cc

}  // namespace kiln::cpu::fa
