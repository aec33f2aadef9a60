// bf16 GEMM on matrix units for bf16 weight rows (gemm_bf16.h).
// AMX: the weight rows are the tiles' first operand as they lie in memory
// (16 rows x 32 bf16 of depth, no packing); A, rounded to bf16, is packed
// once into the second operand's pair-interleaved layout; each thread takes
// a range of columns, in chunks of 384, and per block of 256 rows of A
// keeps the product (C^T) in f32 tiles of a buffer across depth blocks of
// 2048 (256 rows x 384 columns: 384 KiB, with 1 MiB of packed A, inside a
// 2 MiB L2), then transposes it into C.
// AVX512-BF16: A rounded to bf16 row-major; per 32 weight rows and depth
// block a panel of (k, k+1) pairs, 32 columns a row; a 6 x 32 register tile
// of vdpbf16ps (two products per f32 lane and instruction).
#include "backends/cpu/gemm_bf16.h"

#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/tuning.h"
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
constexpr int64_t kMc = 256;        // rows of A per block (multiple of 32); KILN_CPU_AMX=rows=N
constexpr int64_t kKc = 2048;       // depth per block (multiple of 32); KILN_CPU_AMX=depth=N
constexpr int64_t kNc = 384;        // columns per block of a thread (multiple of 32); KILN_CPU_AMX=cols=N
constexpr int64_t kDotMr = 6;       // AVX512-BF16 register tile: 6 rows x 2 vectors (12 accumulators)
constexpr int64_t kDotKcPairs = 256;  // depth pairs per panel: 32 columns x 256 pairs = 32 KiB (L1)

// The AMX path's settings (KILN_CPU_AMX): rows of A and depth per block;
// `panel`: the first pass over a block's rows stores each 32-row weight
// panel in tile order (contiguous 1 KiB tiles: weight rows 2K bytes apart
// fall in one L1 set when 2K is a multiple of 4 KiB) and the other passes load
// it from there; `prefetch`: the next panel is prefetched into L2 while
// this one runs (both on by default).
struct AmxTuning {
  int64_t rows = kMc, depth = kKc, cols = kNc;
  bool panel = true, prefetch = true;
};

uint8_t* Scratch(hwy::AlignedFreeUniquePtr<uint8_t[]>& buf, size_t& cap, size_t n) {
  if (cap < n) {
    buf = hwy::AllocateAligned<uint8_t>(n);
    cap = n;
  }
  return buf.get();
}

#if defined(__x86_64__)
// 16 floats to bf16 as F32ToBF16 does (nearest even, NaN kept quiet), in
// the low half of each 32-bit lane.
__attribute__((target("avx512f"))) inline __m512i Bf16Lanes(__m512 x) {
  // The maskz forms: GCC 12 warns of the undefined pass-through of the plain ones.
  const __m512i u = _mm512_castps_si512(x);
  const __m512i hi = _mm512_maskz_srli_epi32(0xFFFF, u, 16);
  const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(hi, _mm512_set1_epi32(1)));
  const __m512i r = _mm512_maskz_srli_epi32(0xFFFF, _mm512_add_epi32(u, bias), 16);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}

// A rows [0, M) as bf16 pairs: tile (mt, kb) holds, at row p and column m,
// the u32 {A[16 mt + m][32 kb + 2p], A[...][32 kb + 2p + 1]}; rows of A
// beyond M are zero. With AVX-512 (every AMX host has it): per row and
// tile, 32 values rounded at once and scattered to their 16 pair positions.
__attribute__((target("avx512f"))) void PackA(int64_t mt0, int64_t mt1, int64_t M, int64_t K, const float* a,
                                              int64_t lda, uint32_t* dst) {
  const int64_t kb_n = K / kTileK;
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i idx = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(kTile));
  for (int64_t mt = mt0; mt < mt1; ++mt) {
    for (int64_t m = 0; m < kTile; ++m) {
      const int64_t row = mt * kTile + m;
      uint32_t* out = dst + mt * kb_n * (kTileBytes / 4) + m;
      for (int64_t kb = 0; kb < kb_n; ++kb) {
        __m512i pairs = _mm512_setzero_si512();  // rows past M
        if (row < M) {
          // bf16 of values 0-15 and 16-31, then lane p = value 2p | value 2p + 1 << 16.
          const float* x = a + row * lda + kb * kTileK;
          const __m512i r0 = Bf16Lanes(_mm512_loadu_ps(x));
          const __m512i r1 = Bf16Lanes(_mm512_loadu_ps(x + 16));
          const __m512i even = _mm512_permutex2var_epi32(r0, evens, r1);
          const __m512i odd = _mm512_permutex2var_epi32(r0, _mm512_add_epi32(evens, one), r1);
          pairs = _mm512_or_si512(even, _mm512_maskz_slli_epi32(0xFFFF, odd, 16));
        }
        _mm512_i32scatter_epi32(out + kb * (kTileBytes / 4), idx, pairs, 4);
      }
    }
  }
}

// Columns [n0, n1) (multiples of 32) for the rows of A packed in `ap`
// (mp_n pairs of m-tiles, the block's rows [m0, m0 + rows)). `cbuf` holds
// the C^T tiles across depth blocks; `bpanel` one 32-row panel of weights
// in tile order (2 tiles per 32 of depth), with tune.panel.
__attribute__((target("amx-tile,amx-bf16"))) void Block(int64_t n0, int64_t n1, int64_t m0, int64_t rows,
                                                        int64_t K, const uint32_t* ap, const GemmB& b,
                                                        float* c, int64_t ldc, bool accumulate, const AmxTuning& tune,
                                                        float* cbuf, uint8_t* bpanel) {
  alignas(64) uint8_t cfg[64] = {};
  cfg[0] = 1;  // palette 1; tmm0-7 all 16 rows x 64 bytes
  for (int t = 0; t < 8; ++t) {
    cfg[16 + 2 * t] = 64;
    cfg[48 + t] = kTile;
  }
  _tile_loadconfig(cfg);
  const int64_t kb_n = K / kTileK, mp_n = (rows + 31) / 32, np_n = (n1 - n0) / 32;
  const int64_t tile_u32 = kTileBytes / 4;
  const int64_t rs = b.row_stride, depth = tune.depth;
  const bool bpack = tune.panel, pf = tune.prefetch;
  for (int64_t kc = 0; kc < K; kc += depth) {
    const int64_t kb0 = kc / kTileK, kb1 = std::min(K, kc + depth) / kTileK;
    // Lines of the next panel (32 rows x the block's depth) to prefetch
    // per step, spread over all the steps of this panel.
    const int64_t lines = 32 * (kb1 - kb0), steps = mp_n * (kb1 - kb0);
    const int64_t pf_step = (lines + steps - 1) / steps;
    for (int64_t np = 0; np < np_n; ++np) {
      const std::byte* w0 = b.data + (n0 + 32 * np) * rs;
      const std::byte* w1 = w0 + kTile * rs;
      // The next panel: this depth block's next 32 rows, else the next
      // depth block's first (none after the last).
      const std::byte* wn = np + 1 < np_n ? w0 + 32 * rs : (kc + depth < K ? b.data + n0 * rs : nullptr);
      const int64_t wn_kb0 = np + 1 < np_n ? kb0 : kb1;
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
          uint8_t* bt = bpanel + (kb - kb0) * 2 * kTileBytes;
          if (mp == 0 || !bpack) {
            _tile_loadd(4, w0 + kb * 64, rs);
            _tile_loadd(5, w1 + kb * 64, rs);
            if (bpack) {
              _tile_stored(4, bt, 64);
              _tile_stored(5, bt + kTileBytes, 64);
            }
          } else {
            _tile_loadd(4, bt, 64);
            _tile_loadd(5, bt + kTileBytes, 64);
          }
          if (pf && wn) {
            for (int64_t q = 0; q < pf_step; ++q) {
              const int64_t i = (mp * (kb1 - kb0) + kb - kb0) * pf_step + q;
              if (i < lines) {
                _mm_prefetch(reinterpret_cast<const char*>(wn + (i % 32) * rs + 64 * (wn_kb0 + i / 32)), _MM_HINT_T1);
              }
            }
          }
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
        for (int64_t j = 0; j < kTile && mb + j < rows; ++j) {
          float* y = c + (m0 + mb + j) * ldc + nb;
          for (int64_t i = 0; i < kTile; ++i) y[i] = (accumulate ? y[i] : 0.0f) + acc[t * 256 + i * kTile + j];
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
  // Blocking and its variants (docs/DESIGN.md, KILN_CPU_AMX): multiples of
  // 32 rows and depth, else the defaults.
  static const AmxTuning tune = [] {
    AmxTuning t;
    const int64_t rows = TuningValue("KILN_CPU_AMX", "rows", kMc), depth = TuningValue("KILN_CPU_AMX", "depth", kKc);
    t.rows = rows >= 32 && rows % 32 == 0 ? rows : kMc;
    t.depth = depth >= kTileK && depth % kTileK == 0 ? depth : kKc;
    const int64_t cols = TuningValue("KILN_CPU_AMX", "cols", kNc);
    t.cols = cols >= 32 && cols % 32 == 0 ? cols : kNc;
    t.panel = TuningValue("KILN_CPU_AMX", "panel", 1) != 0;
    t.prefetch = TuningValue("KILN_CPU_AMX", "prefetch", 1) != 0;
    return t;
  }();
  // A packed whole (all threads), then each thread its columns, a block of
  // tune.rows rows at a time (its C^T buffer, rows x columns f32).
  const int64_t mt_n = 2 * ((M + 31) / 32);  // whole pairs of m-tiles
  const int64_t kb_n = K / kTileK;
  auto* ap = reinterpret_cast<uint32_t*>(Scratch(abuf, acap, mt_n * kb_n * kTileBytes));
  const int pack_threads = static_cast<int>(std::min<int64_t>(threads, mt_n));
  ParallelFor(mt_n, pack_threads, [&](int64_t t0, int64_t t1) { PackA(t0, t1, M, K, a, lda, ap); });
  ParallelFor(
      cols, threads,
      [&](int64_t n0, int64_t n1) {
        thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> cb, bb;
        thread_local size_t ccap = 0, bcap = 0;
        const int64_t nc = std::min(tune.cols, n1 - n0);
        float* cbuf = reinterpret_cast<float*>(Scratch(cb, ccap, nc * std::min(tune.rows, mt_n * kTile) * 4));
        uint8_t* bpanel = Scratch(bb, bcap, 2 * (tune.depth / kTileK) * kTileBytes);
        // A thread's columns in chunks of tune.cols, so that its C^T buffer
        // stays in L2 however few threads share N.
        for (int64_t c0 = n0; c0 < n1; c0 += nc) {
          const int64_t c1 = std::min(n1, c0 + nc);
          for (int64_t m0 = 0; m0 < M; m0 += tune.rows) {
            Block(c0, c1, m0, std::min(tune.rows, M - m0), K, ap + (m0 / kTile) * kb_n * (kTileBytes / 4), b, c,
                  ldc, accumulate, tune, cbuf, bpanel);
          }
        }
      },
      kBf16Columns);
  return cols;
#else
  return 0;
#endif
}

}  // namespace kiln::cpu
