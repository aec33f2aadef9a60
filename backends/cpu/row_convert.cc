// Row conversions between tensor dtypes and f32 (LoadRow / StoreRow of
// kernel_util.h); the widening loads are convert-inl.h's.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/row_convert.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "backends/cpu/convert-inl.h"

#include <cmath>
#include <cstring>

#include "backends/cpu/kernel_util.h"
#include "graph/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Out-of-line entry points for dynamic dispatch.
void F16ToF32Row(const uint16_t* in, int64_t n, float* out) { F16RowToF32(in, n, out); }
void BF16ToF32Row(const uint16_t* in, int64_t n, float* out) { BF16RowToF32(in, n, out); }
void Q8ToF32Row(const std::byte* in, int64_t blocks, float* out) {
  Q8BlocksToF32(in, blocks, out);
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
