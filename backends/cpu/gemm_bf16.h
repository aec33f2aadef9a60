// bf16 weight rows on the CPU's bf16 matrix units (gemm_bf16.cc), used by
// Gemm (gemm.h) where the host has them: AMX tiles, or AVX512-BF16 dot
// products when asked for (cpu_features.h says why not by default). C += A W^T with A rounded to bf16 (to nearest even) and f32
// accumulation. Never for f16 weights: those are not rounded to bf16.
#pragma once

#include <cstdint>

#include "backends/cpu/gemm.h"

namespace kiln::cpu {

// Columns of C per pass (two 16-row AMX weight tiles; two 16-lane vectors).
inline constexpr int64_t kBf16Columns = 32;

// Whether GemmBf16Units takes this product: AMX (or the AVX512-BF16 GEMM) usable, bf16
// weight rows, K a multiple of 32 (an AMX tile's depth: a weight row is read
// in whole tiles), at least 16 rows of A and kBf16Columns columns.
bool Bf16UnitsSuit(int64_t M, int64_t N, int64_t K, const GemmB& b);

// Columns [0, N - N % kBf16Columns) of Gemm's product (Bf16UnitsSuit must
// hold); returns how many columns it did. The rest is the caller's.
int64_t GemmBf16Units(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const GemmB& b, float* c,
                      int64_t ldc, bool accumulate, int threads);

}  // namespace kiln::cpu
