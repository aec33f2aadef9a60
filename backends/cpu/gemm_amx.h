// bf16 weight rows on AMX tiles (gemm_amx.cc), used by Gemm (gemm.h) where
// the host grants AMX: C += A W^T with A rounded to bf16 (round to nearest
// even) and f32 accumulation. Not for f16 weights: those are never rounded.
#pragma once

#include <cstdint>

#include "backends/cpu/gemm.h"

namespace kiln::cpu {

// Columns of C per AMX pass (two 16-row weight tiles).
inline constexpr int64_t kAmxColumns = 32;

// Whether GemmAmxBf16 takes this product: AMX granted, bf16 weight rows, K
// a multiple of 32 (a tile's depth; a weight row is read in whole tiles),
// at least 16 rows of A and kAmxColumns columns.
bool AmxBf16Suits(int64_t M, int64_t N, int64_t K, const GemmB& b);

// Columns [0, N - N % kAmxColumns) of Gemm's product on AMX (AmxBf16Suits
// must hold); returns how many columns it did. The rest is the caller's.
int64_t GemmAmxBf16(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const GemmB& b, float* c,
                    int64_t ldc, bool accumulate, int threads);

}  // namespace kiln::cpu
