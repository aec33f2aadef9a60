// kiln's own GEMM / GEMV (backends/cpu/gemm.h) against an f64 reference:
// sizes around the tile and block edges, both B layouts, every weight
// dtype, strided operands, accumulation, one and several threads.
#include "backends/cpu/gemm.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace kiln::cpu {
namespace {

struct Params {
  int64_t m, n, k;
  DType w;
  bool rows_are_n;
};

// Stores f32 values in dtype t (q8_0: one scale per 32 values), returns the
// values as they read back.
std::vector<float> Encode(DType t, const std::vector<float>& v, int64_t rows, int64_t cols, int64_t row_bytes,
                          std::vector<std::byte>& out) {
  out.assign(rows * row_bytes, std::byte{0x7f});  // padding bytes are garbage
  std::vector<float> back(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    std::byte* row = out.data() + r * row_bytes;
    for (int64_t c = 0; c < cols; ++c) {
      const float x = v[r * cols + c];
      switch (t) {
        case DType::kF32: std::memcpy(row + 4 * c, &x, 4), back[r * cols + c] = x; break;
        case DType::kF16: {
          const uint16_t h = F32ToF16(x);
          std::memcpy(row + 2 * c, &h, 2), back[r * cols + c] = F16ToF32(h);
          break;
        }
        case DType::kBF16: {
          const uint16_t h = F32ToBF16(x);
          std::memcpy(row + 2 * c, &h, 2), back[r * cols + c] = BF16ToF32(h);
          break;
        }
        default: break;
      }
    }
    if (t == DType::kQ8_0) {
      for (int64_t b = 0; b < cols / kQ8BlockSize; ++b) {
        float amax = 0;
        for (int i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(v[r * cols + b * 32 + i]));
        const uint16_t hs = F32ToF16(amax / 127);
        const float s = F16ToF32(hs);
        std::byte* blk = row + b * kQ8BlockBytes;
        std::memcpy(blk, &hs, 2);
        for (int i = 0; i < kQ8BlockSize; ++i) {
          const int q = s > 0 ? static_cast<int>(std::lround(v[r * cols + b * 32 + i] / s)) : 0;
          blk[2 + i] = static_cast<std::byte>(static_cast<int8_t>(q));
          back[r * cols + b * 32 + i] = s * static_cast<int8_t>(q);
        }
      }
    }
  }
  return back;
}

void Check(const Params& p, int threads, bool accumulate) {
  std::mt19937 rng(static_cast<unsigned>(p.m * 131 + p.n * 7 + p.k));
  std::uniform_real_distribution<float> u(-1, 1);
  const int64_t lda = p.k + 3, ldc = p.n + 5;
  std::vector<float> a(p.m * lda, NAN), c(p.m * ldc, NAN), c0(p.m * ldc);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.k; ++j) a[i * lda + j] = u(rng);
  }
  for (float& x : c0) x = u(rng);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) c[i * ldc + j] = accumulate ? c0[i * ldc + j] : NAN;
  }
  // B values as [N, K] (rows_are_n) or [K, N], with padded rows.
  const int64_t rows = p.rows_are_n ? p.n : p.k, cols = p.rows_are_n ? p.k : p.n;
  std::vector<float> bv(rows * cols);
  for (float& x : bv) x = u(rng);
  std::vector<std::byte> bytes;
  const int64_t row_bytes = RowBytes(p.w, cols) + 64;
  const std::vector<float> b = Encode(p.w, bv, rows, cols, row_bytes, bytes);
  Gemm(p.m, p.n, p.k, a.data(), lda, GemmB{p.w, bytes.data(), row_bytes, p.rows_are_n}, c.data(), ldc,
       accumulate, threads);
  double err = 0, ref2 = 0;
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double r = accumulate ? c0[i * ldc + j] : 0;
      for (int64_t k = 0; k < p.k; ++k) {
        r += static_cast<double>(a[i * lda + k]) * (p.rows_are_n ? b[j * cols + k] : b[k * cols + j]);
      }
      const double d = c[i * ldc + j] - r;
      err += d * d, ref2 += r * r;
    }
  }
  EXPECT_LE(err, 1e-10 * ref2 + 1e-20) << "m=" << p.m << " n=" << p.n << " k=" << p.k << " w=" << DTypeName(p.w)
                                       << " rows_are_n=" << p.rows_are_n << " threads=" << threads
                                       << " accumulate=" << accumulate;
}

TEST(CpuGemm, MatchesReferenceAcrossTileEdges) {
  for (DType w : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (bool rows_are_n : {true, false}) {
      for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 13, 150}) {
        for (int64_t n : {1, 17, 33, 70}) {
          for (int64_t k : {1, 9, 257}) {
            Check({m, n, k, w, rows_are_n}, (m + n) % 2 ? 1 : 2, (m + k) % 3 == 0);
          }
        }
      }
    }
  }
}

TEST(CpuGemm, Q8WeightRows) {
  for (int64_t m : {1, 3, 4, 7, 20}) {
    for (int64_t k : {32, 288}) Check({m, 37, k, DType::kQ8_0, true}, 2, m == 3);
  }
}

TEST(CpuGemm, WideAndDeep) {
  // Past the 2048-column block and several depth blocks, on 2 threads.
  Check({9, 2100, 40, DType::kF16, true}, 2, false);
  Check({20, 300, 1030, DType::kBF16, false}, 2, true);
  Check({1, 5000, 600, DType::kF16, true}, 2, false);
}

TEST(CpuGemm, KZeroFillsOrKeeps) {
  std::vector<float> c(6, 5.0f);
  Gemm(2, 3, 0, nullptr, 0, GemmB{DType::kF32, nullptr, 0, true}, c.data(), 3, true, 1);
  EXPECT_EQ(c[0], 5.0f);
  Gemm(2, 3, 0, nullptr, 0, GemmB{DType::kF32, nullptr, 0, true}, c.data(), 3, false, 1);
  EXPECT_EQ(c[5], 0.0f);
}

}  // namespace
}  // namespace kiln::cpu
