// kiln's own f32 GEMM and GEMV for linear and matmul (gemm.cc): Highway
// micro-kernels over packed panels, so that speed does not hang on a BLAS
// library knowing the CPU model. The weight operand may be f32, f16, bf16
// or q8_0; it is widened to f32 one packed panel at a time, exactly (f16 is
// never rounded to bf16), and every product accumulates in f32. Where the
// host has AMX or AVX512-BF16, bf16 weights with many rows of A run there
// instead (gemm_bf16.h), with A rounded to bf16.
#pragma once

#include <cstddef>
#include <cstdint>

#include "graph/dtype.h"

namespace kiln::cpu {

// The B operand of C = A B: either weight rows (`rows_are_n`: row n holds
// B[:, n], as linear's W[N, K]) or B[K, N] row-major (matmul). `row_stride`
// in bytes; the innermost dim is contiguous. q8_0 only as weight rows, with
// K a multiple of 32.
struct GemmB {
  DType dtype = DType::kF32;
  const std::byte* data = nullptr;
  int64_t row_stride = 0;
  bool rows_are_n = true;
};

// C[M, N] (row stride ldc) = A[M, K] (row stride lda, f32) * B, plus C when
// `accumulate`. Runs on up to `threads` OpenMP threads (one, without a
// parallel region, when the product is small). Few rows of A (decode) take
// the GEMV path, which streams B once.
void Gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const GemmB& b, float* c,
          int64_t ldc, bool accumulate, int threads);

// Rows of A up to which Gemm streams the weights (GEMV) instead of packing.
inline constexpr int64_t kGemvMaxRows = 4;

}  // namespace kiln::cpu
