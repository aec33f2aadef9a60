// Element types of kiln tensors and their scalar conversions.
#pragma once

#include <cstddef>
#include <cstdint>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace kiln {

enum class DType : uint8_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kI32 = 3,
  // Blocks of 32 values along the innermost dim: an f16 scale then 32 int8.
  kQ8_0 = 4,
};

inline constexpr int kQ8BlockSize = 32;     // values per q8_0 block
inline constexpr int kQ8BlockBytes = 34;    // f16 scale + 32 int8

absl::string_view DTypeName(DType t);
absl::StatusOr<DType> ParseDType(absl::string_view name);
bool IsFloat(DType t);  // f32, f16, bf16 (q8_0 is quantized, not float)

// Bytes of `n` consecutive innermost elements; for q8_0, n must be a multiple
// of 32 (callers validate that first).
int64_t RowBytes(DType t, int64_t n);
// Bytes per element for non-block types; 0 for q8_0.
int ElementSize(DType t);

// IEEE binary16 and bfloat16, round to nearest even.
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
float BF16ToF32(uint16_t b);
uint16_t F32ToBF16(float f);

}  // namespace kiln
