// Row conversions between tensor dtypes and f32 (LoadRow / StoreRow of
// kernel_util.h), with Highway for the widening loads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/row_convert.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>
#include <cstring>

#include "backends/cpu/kernel_util.h"
#include "graph/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void F16ToF32Row(const uint16_t* in, int64_t n, float* out) {
#if HWY_ARCH_X86 && HWY_TARGET >= HWY_SSE4
  // Highway emulates f16 here without inf/NaN handling: stay exact instead.
  for (int64_t i = 0; i < n; ++i) out[i] = F16ToF32(in[i]);
#else
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = hn::Lanes(df);
  const auto* h = reinterpret_cast<const hwy::float16_t*>(in);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + i)), df, out + i);
  for (; i < n; ++i) out[i] = F16ToF32(in[i]);
#endif
}

void BF16ToF32Row(const uint16_t* in, int64_t n, float* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const int64_t N = hn::Lanes(df);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto wide = hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, in + i)));
    hn::StoreU(hn::BitCast(df, wide), df, out + i);
  }
  for (; i < n; ++i) out[i] = BF16ToF32(in[i]);
}

// `blocks` q8_0 blocks (f16 scale + 32 int8) to 32 * blocks floats.
void Q8ToF32Row(const std::byte* in, int64_t blocks, float* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int64_t N = hn::Lanes(df);
  for (int64_t b = 0; b < blocks; ++b) {
    const std::byte* blk = in + b * kQ8BlockBytes;
    uint16_t h;
    std::memcpy(&h, blk, 2);
    const auto scale = hn::Set(df, F16ToF32(h));
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
    float* o = out + b * kQ8BlockSize;
    for (int64_t j = 0; j < kQ8BlockSize; j += N) {  // N divides 32 on every target
      const auto v = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + j)));
      hn::StoreU(hn::Mul(v, scale), df, o + j);
    }
  }
}

int F32Lanes() { return static_cast<int>(hn::Lanes(hn::ScalableTag<float>())); }

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::cpu {

HWY_EXPORT(F16ToF32Row);
HWY_EXPORT(BF16ToF32Row);
HWY_EXPORT(Q8ToF32Row);
HWY_EXPORT(F32Lanes);

void LoadRow(DType t, const std::byte* row, int64_t first, int64_t n, float* out) {
  switch (t) {
    case DType::kF32:
      std::memcpy(out, row + 4 * first, 4 * n);
      return;
    case DType::kF16:
      HWY_DYNAMIC_DISPATCH(F16ToF32Row)(reinterpret_cast<const uint16_t*>(row) + first, n, out);
      return;
    case DType::kBF16:
      HWY_DYNAMIC_DISPATCH(BF16ToF32Row)(reinterpret_cast<const uint16_t*>(row) + first, n, out);
      return;
    case DType::kI32: {
      const auto* p = reinterpret_cast<const int32_t*>(row) + first;
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(p[i]);
      return;
    }
    case DType::kQ8_0: {
      const std::byte* blocks = row + first / kQ8BlockSize * kQ8BlockBytes;
      const int64_t whole = n / kQ8BlockSize;
      HWY_DYNAMIC_DISPATCH(Q8ToF32Row)(blocks, whole, out);
      if (n % kQ8BlockSize) {  // a partial last block
        float tmp[kQ8BlockSize];
        HWY_DYNAMIC_DISPATCH(Q8ToF32Row)(blocks + whole * kQ8BlockBytes, 1, tmp);
        std::memcpy(out + whole * kQ8BlockSize, tmp, 4 * (n % kQ8BlockSize));
      }
      return;
    }
  }
}

void StoreRow(DType t, const float* in, int64_t n, std::byte* row) {
  switch (t) {
    case DType::kF32:
      std::memcpy(row, in, 4 * n);
      return;
    case DType::kF16: {
      auto* p = reinterpret_cast<uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) p[i] = F32ToF16(in[i]);
      return;
    }
    case DType::kBF16: {
      auto* p = reinterpret_cast<uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) p[i] = F32ToBF16(in[i]);
      return;
    }
    case DType::kI32: {
      auto* p = reinterpret_cast<int32_t*>(row);
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(std::nearbyint(in[i]));
      return;
    }
    case DType::kQ8_0:
      return;  // quantized tensors are inputs only
  }
}

int SimdF32Lanes() { return HWY_DYNAMIC_DISPATCH(F32Lanes)(); }

}  // namespace kiln::cpu
#endif  // HWY_ONCE
