// Widening row conversions to f32 (f16, bf16, q8_0 blocks), inlined into the
// kernels of each Highway target. Include after hwy/highway.h inside a
// HWY_TARGET_INCLUDE'd file, like any Highway -inl.h.

// Per-target include guard.
#if defined(KILN_BACKENDS_CPU_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KILN_BACKENDS_CPU_CONVERT_INL_H_
#undef KILN_BACKENDS_CPU_CONVERT_INL_H_
#else
#define KILN_BACKENDS_CPU_CONVERT_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "graph/dtype.h"
#include "hwy/highway.h"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {

// One f16 (a q8_0 block's scale): F16C's vcvtph2ps on AVX2 and up (the
// call to the portable kiln::F16ToF32 per 32 weights made q8_0 GEMV
// compute-bound), the portable conversion below.
HWY_INLINE float F16ScaleToF32(uint16_t h) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return _cvtsh_ss(h);
#else
  return kiln::F16ToF32(h);
#endif
}

HWY_INLINE void F16RowToF32(const uint16_t* in, size_t n, float* out) {
  size_t i = 0;
#if !(HWY_ARCH_X86 && HWY_TARGET > HWY_AVX2)
  // Below AVX2 Highway emulates f16 without inf/NaN handling: those targets
  // take the exact scalar loop only.
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const size_t N = hn::Lanes(df);
  const auto* h = reinterpret_cast<const hwy::float16_t*>(in);
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + i)), df, out + i);
#endif
  for (; i < n; ++i) out[i] = kiln::F16ToF32(in[i]);
}

HWY_INLINE void BF16RowToF32(const uint16_t* in, size_t n, float* out) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto wide = hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, in + i)));
    hn::StoreU(hn::BitCast(df, wide), df, out + i);
  }
  for (; i < n; ++i) out[i] = kiln::BF16ToF32(in[i]);
}

// `blocks` q8_0 blocks (f16 scale + 32 int8) to 32 * blocks floats.
HWY_INLINE void Q8BlocksToF32(const std::byte* in, size_t blocks, float* out) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  for (size_t b = 0; b < blocks; ++b) {
    const std::byte* blk = in + b * kQ8BlockBytes;
    uint16_t h;
    std::memcpy(&h, blk, 2);
    const auto scale = hn::Set(df, F16ScaleToF32(h));
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
    float* o = out + b * kQ8BlockSize;
    for (size_t j = 0; j < static_cast<size_t>(kQ8BlockSize); j += N) {  // N divides 32
      const auto v = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + j)));
      hn::StoreU(hn::Mul(v, scale), df, o + j);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#endif  // KILN_BACKENDS_CPU_CONVERT_INL_H_
