// bf16 GEMM on matrix units for bf16 weight rows (gemm_bf16.h).
// AMX: the weight rows are the tiles' first operand as they lie in memory
// (16 rows x 32 bf16 of depth, no packing); A, rounded to bf16, is packed
// once into the second operand's pair-interleaved layout; the product is
// C^T, kept in f32 tiles of a per-thread buffer across depth blocks and
// transposed into C at the end.
// AVX512-BF16: A rounded to bf16 row-major; per 32 weight rows and depth
// block a panel of (k, k+1) pairs, 32 columns a row; a 6 x 32 register tile
// of vdpbf16ps (two products per f32 lane and instruction).
#include "backends/cpu/gemm_bf16.h"

#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/parallel.h"
#include "graph/dtype.h"
#include "hwy/aligned_allocator.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace kiln::cpu {
namespace {

constexpr int64_t kTile = 16;       // rows of a tile; f32 columns of an accumulator tile
constexpr int64_t kTileK = 32;      // bf16 depth of one tdpbf16ps
constexpr int64_t kTileBytes = 1024;
constexpr int64_t kMc = 512;        // rows of A per block (multiple of 32)
constexpr int64_t kKc = 512;        // depth per block: a block of packed A is kMc x kKc bf16 = 512 KiB (L2)
constexpr int64_t kDotMr = 6;       // AVX512-BF16 register tile: 6 rows x 2 vectors (12 accumulators)
constexpr int64_t kDotKcPairs = 256;  // depth pairs per panel: 32 columns x 256 pairs = 32 KiB (L1)

uint8_t* Scratch(hwy::AlignedFreeUniquePtr<uint8_t[]>& buf, size_t& cap, size_t n) {
  if (cap < n) {
    buf = hwy::AllocateAligned<uint8_t>(n);
    cap = n;
  }
  return buf.get();
}

// A rows [0, M) as bf16 pairs: tile (mt, kb) holds, at row p and column m,
// the u32 {A[16 mt + m][32 kb + 2p], A[...][32 kb + 2p + 1]}; rows of A
// beyond M are zero.
void PackA(int64_t mt0, int64_t mt1, int64_t M, int64_t K, const float* a, int64_t lda, uint32_t* dst) {
  const int64_t kb_n = K / kTileK;
  for (int64_t mt = mt0; mt < mt1; ++mt) {
    for (int64_t m = 0; m < kTile; ++m) {
      const int64_t row = mt * kTile + m;
      uint32_t* out = dst + mt * kb_n * (kTileBytes / 4) + m;
      if (row >= M) {
        for (int64_t i = 0; i < K / 2; ++i) out[(i / kTile) * (kTileBytes / 4) + (i % kTile) * kTile] = 0;
        continue;
      }
      const float* x = a + row * lda;
      for (int64_t kb = 0; kb < kb_n; ++kb) {
        uint32_t* t = out + kb * (kTileBytes / 4);
        for (int64_t p = 0; p < kTile; ++p) {
          const int64_t k = kb * kTileK + 2 * p;
          t[p * kTile] = F32ToBF16(x[k]) | (static_cast<uint32_t>(F32ToBF16(x[k + 1])) << 16);
        }
      }
    }
  }
}

#if defined(__x86_64__)
// Columns [n0, n1) (multiples of 32) for the rows of A packed in `ap`
// (mp_n pairs of m-tiles, the block's rows [m0, m0 + rows)).
__attribute__((target("amx-tile,amx-bf16"))) void Block(int64_t n0, int64_t n1, int64_t m0, int64_t rows,
                                                        int64_t K, const uint32_t* ap, const GemmB& b,
                                                        float* c, int64_t ldc, bool accumulate, float* cbuf) {
  alignas(64) uint8_t cfg[64] = {};
  cfg[0] = 1;  // palette 1; tmm0-7 all 16 rows x 64 bytes
  for (int t = 0; t < 8; ++t) {
    cfg[16 + 2 * t] = 64;
    cfg[48 + t] = kTile;
  }
  _tile_loadconfig(cfg);
  const int64_t kb_n = K / kTileK, mp_n = (rows + 31) / 32, np_n = (n1 - n0) / 32;
  const int64_t tile_u32 = kTileBytes / 4;
  for (int64_t kc = 0; kc < K; kc += kKc) {
    const int64_t kb0 = kc / kTileK, kb1 = std::min(K, kc + kKc) / kTileK;
    for (int64_t np = 0; np < np_n; ++np) {
      const std::byte* w0 = b.data + (n0 + 32 * np) * b.row_stride;
      const std::byte* w1 = w0 + kTile * b.row_stride;
      for (int64_t mp = 0; mp < mp_n; ++mp) {
        float* acc = cbuf + (np * mp_n + mp) * 4 * 256;  // tiles (n0,m0) (n0,m1) (n1,m0) (n1,m1)
        if (kc == 0) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else {
          _tile_loadd(0, acc, 64);
          _tile_loadd(1, acc + 256, 64);
          _tile_loadd(2, acc + 512, 64);
          _tile_loadd(3, acc + 768, 64);
        }
        const uint32_t* a0 = ap + (2 * mp) * kb_n * tile_u32;
        const uint32_t* a1 = a0 + kb_n * tile_u32;
        for (int64_t kb = kb0; kb < kb1; ++kb) {
          _tile_loadd(4, w0 + kb * 64, b.row_stride);
          _tile_loadd(5, w1 + kb * 64, b.row_stride);
          _tile_loadd(6, a0 + kb * tile_u32, 64);
          _tile_loadd(7, a1 + kb * tile_u32, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, acc, 64);
        _tile_stored(1, acc + 256, 64);
        _tile_stored(2, acc + 512, 64);
        _tile_stored(3, acc + 768, 64);
      }
    }
  }
  _tile_release();
  // C^T tiles into C: tile t covers n-tile t / 2, m-tile t % 2 of its pair.
  for (int64_t np = 0; np < np_n; ++np) {
    for (int64_t mp = 0; mp < mp_n; ++mp) {
      const float* acc = cbuf + (np * mp_n + mp) * 4 * 256;
      for (int t = 0; t < 4; ++t) {
        const int64_t nb = n0 + 32 * np + kTile * (t / 2), mb = 32 * mp + kTile * (t % 2);
        for (int64_t i = 0; i < kTile; ++i) {
          for (int64_t j = 0; j < kTile && mb + j < rows; ++j) {
            float* y = c + (m0 + mb + j) * ldc + nb + i;
            *y = (accumulate ? *y : 0.0f) + acc[t * 256 + i * kTile + j];
          }
        }
      }
    }
  }
}

// rows [0, mr) of C's tile (+)= A's bf16 rows (`ar`, K apart, from pair p0)
// times a panel of kcn pairs.
__attribute__((target("avx512f,avx512bf16"))) void DotTile(int64_t kcn, const uint16_t* ar, int64_t K,
                                                           const uint32_t* panel, float* c, int64_t ldc,
                                                           int64_t mr, bool add) {
  __m512 acc[kDotMr][2];
  const uint16_t* row[kDotMr];
  for (int64_t i = 0; i < kDotMr; ++i) {
    acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    row[i] = ar + std::min(i, mr - 1) * K;  // rows past mr repeat the last (not stored)
  }
  for (int64_t p = 0; p < kcn; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel + p * 32);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + p * 32 + 16);
    for (int64_t i = 0; i < kDotMr; ++i) {
      uint32_t pair;
      std::memcpy(&pair, row[i] + 2 * p, 4);
      const __m512bh x = (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], x, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], x, b1);
    }
  }
  for (int64_t i = 0; i < mr; ++i) {
    float* y = c + i * ldc;
    __m512 v0 = acc[i][0], v1 = acc[i][1];
    if (add) v0 = _mm512_add_ps(v0, _mm512_loadu_ps(y)), v1 = _mm512_add_ps(v1, _mm512_loadu_ps(y + 16));
    _mm512_storeu_ps(y, v0);
    _mm512_storeu_ps(y + 16, v1);
  }
}

// Columns [n0, n1) (multiples of 32) of C's rows [0, M) from A in bf16
// (`abf`, rows K apart).
void DotBlock(int64_t n0, int64_t n1, int64_t M, int64_t K, const uint16_t* abf, const GemmB& b, float* c,
              int64_t ldc, bool accumulate, uint32_t* panel) {
  const int64_t kp_n = K / 2;
  for (int64_t kc = 0; kc < kp_n; kc += kDotKcPairs) {
    const int64_t kcn = std::min(kDotKcPairs, kp_n - kc);
    const bool add = accumulate || kc > 0;
    for (int64_t n = n0; n < n1; n += kBf16Columns) {
      // panel[p * 32 + j]: the (k, k+1) pair p of weight row n + j.
      for (int64_t j = 0; j < kBf16Columns; ++j) {
        const std::byte* w = b.data + (n + j) * b.row_stride + 4 * kc;
        for (int64_t p = 0; p < kcn; ++p) std::memcpy(panel + p * kBf16Columns + j, w + 4 * p, 4);
      }
      for (int64_t m = 0; m < M; m += kDotMr) {
        DotTile(kcn, abf + m * K + 2 * kc, K, panel, c + m * ldc + n, ldc, std::min(kDotMr, M - m), add);
      }
    }
  }
}
#endif

}  // namespace

bool Bf16UnitsSuit(int64_t M, int64_t N, int64_t K, const GemmB& b) {
  const MatrixUnits& u = HostMatrixUnits();
  return b.dtype == DType::kBF16 && b.rows_are_n && K % kTileK == 0 && M >= kTile && N >= kBf16Columns &&
         (u.amx_bf16 || u.avx512_bf16_gemm);
}

int64_t GemmBf16Units(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const GemmB& b, float* c,
                      int64_t ldc, bool accumulate, int threads) {
#if defined(__x86_64__)
  const int64_t cols = N - N % kBf16Columns;
  if (!HostMatrixUnits().amx_bf16) {
    thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> abuf;
    thread_local size_t acap = 0;
    auto* abf = reinterpret_cast<uint16_t*>(Scratch(abuf, acap, 2 * M * K));
    ParallelFor(M, threads, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        for (int64_t k = 0; k < K; ++k) abf[m * K + k] = F32ToBF16(a[m * lda + k]);
      }
    });
    ParallelFor(
        cols, threads,
        [&](int64_t n0, int64_t n1) {
          thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> pb;
          thread_local size_t pcap = 0;
          auto* panel = reinterpret_cast<uint32_t*>(Scratch(pb, pcap, 4 * kDotKcPairs * kBf16Columns));
          DotBlock(n0, n1, M, K, abf, b, c, ldc, accumulate, panel);
        },
        kBf16Columns);
    return cols;
  }
  thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> abuf;
  thread_local size_t acap = 0;
  for (int64_t m0 = 0; m0 < M; m0 += kMc) {
    const int64_t rows = std::min(kMc, M - m0);
    const int64_t mt_n = 2 * ((rows + 31) / 32);  // whole pairs of m-tiles
    auto* ap = reinterpret_cast<uint32_t*>(Scratch(abuf, acap, mt_n * (K / kTileK) * kTileBytes));
    const float* am = a + m0 * lda;
    const int pack_threads = static_cast<int>(std::min<int64_t>(threads, mt_n));
    ParallelFor(mt_n, pack_threads, [&](int64_t t0, int64_t t1) { PackA(t0, t1, rows, K, am, lda, ap); });
    ParallelFor(
        cols, threads,
        [&](int64_t n0, int64_t n1) {
          thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> cb;
          thread_local size_t ccap = 0;
          float* cbuf = reinterpret_cast<float*>(Scratch(cb, ccap, (n1 - n0) * (mt_n * kTile) * 4));
          Block(n0, n1, m0, rows, K, ap, b, c, ldc, accumulate, cbuf);
        },
        kBf16Columns);
  }
  return cols;
#else
  return 0;
#endif
}

}  // namespace kiln::cpu
