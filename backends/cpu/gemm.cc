// kiln's GEMM (see gemm.h). Many rows of A: the BLIS loop nest. A block of
// B (KC x NC, widened to f32 as it is packed, kept in L3) and a block of A
// (MC x KC, in L2) feed a 6 x 2-vector register-tile micro-kernel, whose B
// micro-panel (KC x NR) stays in L1 while it sweeps the A block. Few rows of
// A (decode): the weights are streamed once, several rows per pass.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/gemm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "backends/cpu/convert-inl.h"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/tuning.h"
#include "graph/dtype.h"
#include "hwy/aligned_allocator.h"
#include "hwy/cache_control.h"

#ifndef KILN_CPU_GEMM_Q8_KNOB
#define KILN_CPU_GEMM_Q8_KNOB
namespace kiln::cpu {
// q8_0 GEMV with A quantized to int16 per block (the default), or
// KILN_CPU_Q8_GEMV=f32: every weight widened to f32 (to compare).
inline bool Q8Int16Enabled() {
  static const bool on = [] {
    const char* e = std::getenv("KILN_CPU_Q8_GEMV");
    return !(e && std::string(e) == "f32");
  }();
  return on;
}
}  // namespace kiln::cpu
#endif

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Register tile: kMR rows of A by two vectors of B's columns (12 f32
// accumulators: enough independent FMA chains for two FMA pipes of 4-cycle
// latency, and room for the B vectors and a broadcast in 16 registers).
constexpr int64_t kMR = 6;
// Cache blocks (Zen 3 / Skylake-class: 32 KiB L1, >= 512 KiB L2).
constexpr int64_t kKC = 256;   // depth: a KC x NR micro-panel of B is 16-32 KiB (L1)
constexpr int64_t kMC = 144;   // rows of A per block: MC x KC is 144 KiB (L2)
constexpr int64_t kNC = 2048;  // columns of B per block: KC x NC is 2 MiB (L3)

HWY_INLINE int64_t NR() { return 2 * static_cast<int64_t>(hn::Lanes(DF())); }

// GEMV software prefetch distance in bytes along each weight row (past
// its end: into the rows after it, which lie next in memory). By default
// 8 KiB for rows under 8 KiB (K <= 1024 at 16 bits: a group of 4 rows
// is one contiguous 8 KiB, too short a stream for the hardware prefetcher;
// on the Xeon 0.6B.up ran 1.4x faster, 4B.up's 5 KiB rows 1.04x,
// bench/RESULTS.md), none for longer rows (8B.up's 8 KiB and 8B.down's
// 24 KiB rows ran 1-5% slower with it). q8_0 rows, whose int8 x int16 loop leaves the
// hardware prefetcher further behind, 8 KiB at every length (1.7B.up
// 1.03-1.4x, 8B.up ~1.07x). KILN_CPU_GEMV=prefetch=BYTES overrides (0: none).
HWY_INLINE int64_t GemvPrefetch(int64_t row_bytes, bool q8 = false) {
  static const int64_t bytes = TuningValue("KILN_CPU_GEMV", "prefetch", -1);
  if (bytes >= 0) return bytes;
  return q8 || row_bytes < 8192 ? 8192 : 0;
}

// Widens k in [k0, k0 + n) of one weight row to f32 (q8_0: k0 % 32 == 0).
HWY_INLINE void WidenRow(DType t, const std::byte* row, int64_t k0, int64_t n, float* out) {
  switch (t) {
    case DType::kF32:
      std::memcpy(out, row + 4 * k0, 4 * n);
      return;
    case DType::kF16:
      F16RowToF32(reinterpret_cast<const uint16_t*>(row) + k0, n, out);
      return;
    case DType::kBF16:
      BF16RowToF32(reinterpret_cast<const uint16_t*>(row) + k0, n, out);
      return;
    case DType::kQ8_0: {
      const std::byte* blocks = row + k0 / kQ8BlockSize * kQ8BlockBytes;
      const int64_t whole = n / kQ8BlockSize;
      Q8BlocksToF32(blocks, whole, out);
      if (n % kQ8BlockSize) {
        float tmp[kQ8BlockSize];
        Q8BlocksToF32(blocks + whole * kQ8BlockBytes, 1, tmp);
        std::memcpy(out + whole * kQ8BlockSize, tmp, 4 * (n % kQ8BlockSize));
      }
      return;
    }
    case DType::kI32:
      std::memset(out, 0, 4 * n);
      return;
  }
}

// Per target: AVX2 and up transpose with 256-bit shuffles.
#undef KILN_GEMM_AVX_TRANSPOSE
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define KILN_GEMM_AVX_TRANSPOSE 1
// dst[k * ldd + r] = row r's k-th value for an 8 x 8 block; load(r) gives
// row r's 8 values as f32.
template <class Load>
HWY_INLINE void Transpose8x8(const Load& load, float* HWY_RESTRICT dst, int64_t ldd) {
  const __m256 r0 = load(0), r1 = load(1), r2 = load(2), r3 = load(3);
  const __m256 r4 = load(4), r5 = load(5), r6 = load(6), r7 = load(7);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}

// A whole panel (nr == NR rows, kc % 8 == 0) of weight rows, widened and
// transposed straight from the weights, 8 x 8 at a time.
bool PackBRowsDirect(const GemmB& b, int64_t n0, int64_t k0, int64_t kc, float* HWY_RESTRICT dst) {
  const int64_t nrv = NR();
  if (kc % 8 != 0 || b.dtype == DType::kQ8_0 || b.dtype == DType::kI32) return false;
  for (int64_t j0 = 0; j0 < nrv; j0 += 8) {
    const std::byte* base = b.data + (n0 + j0) * b.row_stride;
    const int64_t rs = b.row_stride;
    for (int64_t k = 0; k < kc; k += 8) {
      float* d = dst + k * nrv + j0;
      const int64_t kk = k0 + k;
      if (b.dtype == DType::kF32) {
        Transpose8x8([&](int r) { return _mm256_loadu_ps(reinterpret_cast<const float*>(base + r * rs) + kk); },
                     d, nrv);
      } else if (b.dtype == DType::kF16) {
        Transpose8x8(
            [&](int r) {
              return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + r * rs + 2 * kk)));
            },
            d, nrv);
      } else {
        Transpose8x8(
            [&](int r) {
              const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + r * rs + 2 * kk));
              return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
            },
            d, nrv);
      }
    }
  }
  return true;
}
#endif

// One micro-panel of B: columns [n0, n0 + nr), depth [k0, k0 + kc), stored
// as dst[k * NR + j], zero beyond nr. `tmp` holds NR * kc floats.
void PackB(const GemmB& b, int64_t n0, int64_t nr, int64_t k0, int64_t kc, float* HWY_RESTRICT tmp,
           float* HWY_RESTRICT dst) {
  const int64_t nrv = NR();
  if (b.rows_are_n) {
#ifdef KILN_GEMM_AVX_TRANSPOSE
    if (nr == nrv && PackBRowsDirect(b, n0, k0, kc, dst)) return;
#endif
    // Widen the rows (vectorized), then transpose into the panel.
    for (int64_t j = 0; j < nr; ++j) WidenRow(b.dtype, b.data + (n0 + j) * b.row_stride, k0, kc, tmp + j * kc);
    if (nr < nrv) std::memset(tmp + nr * kc, 0, 4 * (nrv - nr) * kc);
    int64_t k = 0;
#ifdef KILN_GEMM_AVX_TRANSPOSE
    for (; k + 8 <= kc; k += 8) {
      for (int64_t j0 = 0; j0 < nrv; j0 += 8) {
        Transpose8x8([&](int r) { return _mm256_loadu_ps(tmp + (j0 + r) * kc + k); }, dst + k * nrv + j0, nrv);
      }
    }
#endif
    for (; k < kc; ++k) {
      float* HWY_RESTRICT d = dst + k * nrv;
      for (int64_t j = 0; j < nrv; ++j) d[j] = tmp[j * kc + k];
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    float* d = dst + k * nrv;
    const std::byte* row = b.data + (k0 + k) * b.row_stride;
    switch (b.dtype) {
      case DType::kF16: F16RowToF32(reinterpret_cast<const uint16_t*>(row) + n0, nr, d); break;
      case DType::kBF16: BF16RowToF32(reinterpret_cast<const uint16_t*>(row) + n0, nr, d); break;
      default: std::memcpy(d, reinterpret_cast<const float*>(row) + n0, 4 * nr); break;
    }
    for (int64_t j = nr; j < nrv; ++j) d[j] = 0.0f;
  }
}

// One micro-panel of A: rows [m0, m0 + mr), depth [k0, k0 + kc), stored as
// dst[k * kMR + i], zero beyond mr.
void PackA(const float* a, int64_t lda, int64_t m0, int64_t mr, int64_t k0, int64_t kc,
           float* HWY_RESTRICT dst) {
  int64_t k = 0;
#ifdef KILN_GEMM_AVX_TRANSPOSE
  // 8 x 8 transposes stored 6 apart, in increasing k: each store's two extra
  // lanes are overwritten by the next (the buffer has slack for the last).
  static_assert(kMR == 6);
  for (; k + 8 <= kc; k += 8) {
    Transpose8x8(
        [&](int r) { return r < mr ? _mm256_loadu_ps(a + (m0 + r) * lda + k0 + k) : _mm256_setzero_ps(); },
        dst + k * kMR, kMR);
  }
#endif
  if (k == kc) return;
  if (mr < kMR) std::memset(dst + k * kMR, 0, 4 * kMR * (kc - k));
  for (int64_t i = 0; i < mr; ++i) {
    const float* HWY_RESTRICT row = a + (m0 + i) * lda + k0;
    for (int64_t kk = k; kk < kc; ++kk) dst[kk * kMR + i] = row[kk];
  }
}

// c[i * ldc + j] (+)= sum_k a[k * kMR + i] * b[k * NR + j] for i < mr, j < nr.
HWY_INLINE void MicroKernel(int64_t kc, const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, float* c,
                            int64_t ldc, int64_t mr, int64_t nr, bool add) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  // The C tile's rows are ldc apart and at best in L3 (MC x NC of C is over
  // L2): fetch them while the products run, not after.
  for (int64_t i = 0; i < mr; ++i) {
    hwy::Prefetch(c + i * ldc);
    hwy::Prefetch(c + i * ldc + 2 * N - 1);
  }
  VF c00 = hn::Zero(d), c01 = hn::Zero(d), c10 = hn::Zero(d), c11 = hn::Zero(d);
  VF c20 = hn::Zero(d), c21 = hn::Zero(d), c30 = hn::Zero(d), c31 = hn::Zero(d);
  VF c40 = hn::Zero(d), c41 = hn::Zero(d), c50 = hn::Zero(d), c51 = hn::Zero(d);
  auto step = [&](const float* HWY_RESTRICT ak, const float* HWY_RESTRICT bk) HWY_ATTR {
    const VF b0 = hn::Load(d, bk), b1 = hn::Load(d, bk + N);
    VF t = hn::Set(d, ak[0]);
    c00 = hn::MulAdd(t, b0, c00), c01 = hn::MulAdd(t, b1, c01);
    t = hn::Set(d, ak[1]);
    c10 = hn::MulAdd(t, b0, c10), c11 = hn::MulAdd(t, b1, c11);
    t = hn::Set(d, ak[2]);
    c20 = hn::MulAdd(t, b0, c20), c21 = hn::MulAdd(t, b1, c21);
    t = hn::Set(d, ak[3]);
    c30 = hn::MulAdd(t, b0, c30), c31 = hn::MulAdd(t, b1, c31);
    t = hn::Set(d, ak[4]);
    c40 = hn::MulAdd(t, b0, c40), c41 = hn::MulAdd(t, b1, c41);
    t = hn::Set(d, ak[5]);
    c50 = hn::MulAdd(t, b0, c50), c51 = hn::MulAdd(t, b1, c51);
  };
  // Four steps per iteration: fewer loop branches and pointer updates per FMA.
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    step(a, b);
    step(a + kMR, b + 2 * N);
    step(a + 2 * kMR, b + 4 * N);
    step(a + 3 * kMR, b + 6 * N);
    a += 4 * kMR;
    b += 8 * N;
  }
  for (; k < kc; ++k) {
    step(a, b);
    a += kMR;
    b += 2 * N;
  }
  if (mr == kMR && nr == 2 * N) {
    auto put = [&](float* p, VF v0, VF v1) {
      if (add) v0 = hn::Add(v0, hn::LoadU(d, p)), v1 = hn::Add(v1, hn::LoadU(d, p + N));
      hn::StoreU(v0, d, p);
      hn::StoreU(v1, d, p + N);
    };
    put(c, c00, c01);
    put(c + ldc, c10, c11);
    put(c + 2 * ldc, c20, c21);
    put(c + 3 * ldc, c30, c31);
    put(c + 4 * ldc, c40, c41);
    put(c + 5 * ldc, c50, c51);
    return;
  }
  // Edge tile: through a buffer, then only the valid part.
  HWY_ALIGN float tile[kMR * 2 * HWY_MAX_BYTES / 4];
  const VF rows[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t i = 0; i < kMR; ++i) {
    hn::Store(rows[i][0], d, tile + i * 2 * N);
    hn::Store(rows[i][1], d, tile + i * 2 * N + N);
  }
  for (int64_t i = 0; i < mr; ++i) {
    for (int64_t j = 0; j < nr; ++j) {
      c[i * ldc + j] = (add ? c[i * ldc + j] : 0.0f) + tile[i * 2 * N + j];
    }
  }
}

// Per-thread packing buffers, grown once (repeat runs do not allocate).
float* Scratch(hwy::AlignedFreeUniquePtr<float[]>& buf, size_t& cap, size_t n) {
  if (cap < n) {
    buf = hwy::AllocateAligned<float>(n);
    cap = n;
  }
  return buf.get();
}

// C rows [m0, m1) x columns [n0, n1) of the product (see Gemm); K > 0.
void GemmBlock(int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, const float* a, int64_t lda,
               const GemmB& b, float* c, int64_t ldc, bool accumulate) {
  const int64_t nrv = NR();
  thread_local hwy::AlignedFreeUniquePtr<float[]> abuf, bbuf, tbuf;
  thread_local size_t acap = 0, bcap = 0, tcap = 0;
  float* ap = Scratch(abuf, acap, kMC * kKC + 8);  // + slack of PackA's transposes
  float* bp = Scratch(bbuf, bcap, (kNC + nrv) * kKC);
  float* tmp = Scratch(tbuf, tcap, nrv * kKC);
  for (int64_t jc = n0; jc < n1; jc += kNC) {
    const int64_t nc = std::min(kNC, n1 - jc);
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      const bool add = accumulate || pc > 0;
      for (int64_t jr = 0; jr < nc; jr += nrv) {
        PackB(b, jc + jr, std::min(nrv, nc - jr), pc, kc, tmp, bp + jr * kc);
      }
      for (int64_t ic = m0; ic < m1; ic += kMC) {
        const int64_t mc = std::min(kMC, m1 - ic);
        for (int64_t ir = 0; ir < mc; ir += kMR) PackA(a, lda, ic + ir, std::min(kMR, mc - ir), pc, kc, ap + ir * kc);
        for (int64_t jr = 0; jr < nc; jr += nrv) {
          const int64_t nr = std::min(nrv, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            MicroKernel(kc, ap + ir * kc, bp + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc,
                        std::min(kMR, mc - ir), nr, add);
          }
        }
      }
    }
  }
}

// Rows of weights in one pass of the GEMV: each x vector loaded feeds this
// many rows; with one reduction per row at the end of the group.
template <int64_t kRows, int64_t kGroup, DType kType>
HWY_INLINE void GemvGroup(int64_t K, const float* a, int64_t lda, const GemmB& b, int64_t n, float* c,
                          int64_t ldc, bool accumulate) {
  const DF d;
  const int64_t N = hn::Lanes(d);
  const uint16_t* w16[kGroup];
  const float* w32[kGroup];
  for (int64_t g = 0; g < kGroup; ++g) {
    w16[g] = reinterpret_cast<const uint16_t*>(b.data + (n + g) * b.row_stride);
    w32[g] = reinterpret_cast<const float*>(b.data + (n + g) * b.row_stride);
  }
  auto load_w = [&](int64_t g, int64_t k) -> VF {
    if constexpr (kType == DType::kF32) {
      return hn::LoadU(d, w32[g] + k);
    } else if constexpr (kType == DType::kBF16) {
      const hn::RebindToUnsigned<DF> du;
      const hn::Rebind<uint16_t, DF> d16;
      return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, w16[g] + k))));
    } else {
      const hn::Rebind<hwy::float16_t, DF> dh;
      return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(w16[g]) + k));
    }
  };
  VF acc[kRows][kGroup];
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t g = 0; g < kGroup; ++g) acc[r][g] = hn::Zero(d);
  }
  int64_t k = 0;
  const int64_t pf = GemvPrefetch(b.row_stride);
  constexpr int64_t kBytes = kType == DType::kF32 ? 4 : 2;  // per weight
  for (; k + N <= K; k += N) {
    if (pf > 0 && (k * kBytes) % 64 == 0) {  // once per cache line of each row
      for (int64_t g = 0; g < kGroup; ++g) hwy::Prefetch(reinterpret_cast<const char*>(w16[g]) + k * kBytes + pf);
    }
    VF w[kGroup];
    for (int64_t g = 0; g < kGroup; ++g) w[g] = load_w(g, k);
    for (int64_t r = 0; r < kRows; ++r) {
      const VF x = hn::LoadU(d, a + r * lda + k);
      for (int64_t g = 0; g < kGroup; ++g) acc[r][g] = hn::MulAdd(x, w[g], acc[r][g]);
    }
  }
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t g = 0; g < kGroup; ++g) {
      float s = hn::GetLane(hn::SumOfLanes(d, acc[r][g]));
      for (int64_t kk = k; kk < K; ++kk) {
        float wk;
        if constexpr (kType == DType::kF32) {
          wk = w32[g][kk];
        } else if constexpr (kType == DType::kBF16) {
          wk = BF16ToF32(w16[g][kk]);
        } else {
          wk = F16ToF32(w16[g][kk]);
        }
        s += a[r * lda + kk] * wk;
      }
      float* y = c + r * ldc + n + g;
      *y = (accumulate ? *y : 0.0f) + s;
    }
  }
}

// y rows [n0, n1) for M (<= kGemvMaxRows) rows of A, B as weight rows
// (f32/f16/bf16).
template <int64_t kRows, DType kType>
void GemvRowsT(int64_t n0, int64_t n1, int64_t K, const float* a, int64_t lda, const GemmB& b, float* c,
               int64_t ldc, bool accumulate) {
  // Groups of 4 weight rows (2 for 3-4 activation rows, to stay in registers).
  constexpr int64_t kGroup = kRows <= 2 ? 4 : 2;
  int64_t n = n0;
  for (; n + kGroup <= n1; n += kGroup) GemvGroup<kRows, kGroup, kType>(K, a, lda, b, n, c, ldc, accumulate);
  for (; n < n1; ++n) GemvGroup<kRows, 1, kType>(K, a, lda, b, n, c, ldc, accumulate);
}

// Block `blk` of q8_0 weight row `row`: its 32 int8 values; its scale in *scale.
HWY_INLINE const int8_t* Q8Block(const GemmB& b, int64_t row, int64_t blk, float* scale) {
  const std::byte* p = b.data + row * b.row_stride + blk * kQ8BlockBytes;
  uint16_t h;
  std::memcpy(&h, p, 2);
  *scale = F16ScaleToF32(h);
  return reinterpret_cast<const int8_t*>(p + 2);
}

// y[r][n + g] (+)= the lanes of total[r][g] summed.
template <int64_t kRows, int64_t kGroup>
HWY_INLINE void StoreRowSums(const VF (&total)[kRows][kGroup], float* c, int64_t ldc, int64_t n, bool accumulate) {
  const DF d;
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t g = 0; g < kGroup; ++g) {
      float* y = c + r * ldc + n + g;
      *y = (accumulate ? *y : 0.0f) + hn::GetLane(hn::SumOfLanes(d, total[r][g]));
    }
  }
}

// q8_0 weight rows [n, n + kGroup) against kRows rows of A: per 32-value
// block the int8 x f32 products of each (row, weight row) pair are summed,
// then scaled into its total; each x vector loaded feeds kGroup weight
// rows, and each total is reduced once at the end.
template <int64_t kRows, int64_t kGroup>
HWY_INLINE void GemvQ8Group(int64_t K, const float* a, int64_t lda, const GemmB& b, int64_t n, float* c,
                            int64_t ldc, bool accumulate) {
  const DF d;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int64_t N = hn::Lanes(d);
  VF total[kRows][kGroup];
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t g = 0; g < kGroup; ++g) total[r][g] = hn::Zero(d);
  }
  for (int64_t blk = 0; blk < K / kQ8BlockSize; ++blk) {
    const int8_t* p[kGroup];
    VF scale[kGroup];
    for (int64_t g = 0; g < kGroup; ++g) {
      float sc;
      p[g] = Q8Block(b, n + g, blk, &sc);
      scale[g] = hn::Set(d, sc);
    }
    VF part[kRows][kGroup];
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t g = 0; g < kGroup; ++g) part[r][g] = hn::Zero(d);
    }
    for (int64_t j = 0; j < kQ8BlockSize; j += N) {  // N divides 32 on every target
      VF w[kGroup];
      for (int64_t g = 0; g < kGroup; ++g) {
        w[g] = hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, p[g] + j)));
      }
      for (int64_t r = 0; r < kRows; ++r) {
        const VF x = hn::LoadU(d, a + r * lda + blk * kQ8BlockSize + j);
        for (int64_t g = 0; g < kGroup; ++g) part[r][g] = hn::MulAdd(x, w[g], part[r][g]);
      }
    }
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t g = 0; g < kGroup; ++g) total[r][g] = hn::MulAdd(scale[g], part[r][g], total[r][g]);
    }
  }
  StoreRowSums<kRows, kGroup>(total, c, ldc, n, accumulate);
}

#if HWY_TARGET != HWY_SCALAR
// The same with A's rows quantized per 32-value block to int16 (xq, one
// scale per block in xs): each block of a weight row is then a few int8 x
// int16 pair multiply-adds into int32 (vpmaddwd on x86) and one conversion,
// instead of widening every weight to f32. |q| <= 32767 and 32 products of
// |w| <= 127 stay far inside int32.
template <int64_t kRows, int64_t kGroup>
HWY_INLINE void GemvQ8I16Group(int64_t K, const int16_t* xq, const float* xs, const GemmB& b, int64_t n, float* c,
                               int64_t ldc, bool accumulate) {
  const DF d;
  const hn::Repartition<int32_t, DF> di;
  const hn::Repartition<int16_t, DF> dw;
  const hn::Rebind<int8_t, decltype(dw)> d8;
  const int64_t N16 = hn::Lanes(dw);
  const int64_t blocks = K / kQ8BlockSize;
  VF total[kRows][kGroup];
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t g = 0; g < kGroup; ++g) total[r][g] = hn::Zero(d);
  }
  const int64_t pf = GemvPrefetch(b.row_stride, /*q8=*/true);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int8_t* p[kGroup];
    float wscale[kGroup];
    for (int64_t g = 0; g < kGroup; ++g) p[g] = Q8Block(b, n + g, blk, &wscale[g]);
    if (pf > 0 && (blk & 1) == 0) {  // about once per cache line (68 bytes per 2 blocks)
      for (int64_t g = 0; g < kGroup; ++g) hwy::Prefetch(reinterpret_cast<const char*>(p[g]) + pf);
    }
    hn::Vec<decltype(di)> s0[kRows][kGroup], s1[kRows][kGroup];
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t g = 0; g < kGroup; ++g) s0[r][g] = s1[r][g] = hn::Zero(di);
    }
    for (int64_t j = 0; j < kQ8BlockSize; j += N16) {  // N16 divides 32 on every target
      hn::Vec<decltype(dw)> w[kGroup];
      for (int64_t g = 0; g < kGroup; ++g) {
        w[g] = hn::PromoteTo(dw, hn::LoadU(d8, p[g] + j));
      }
      for (int64_t r = 0; r < kRows; ++r) {
        const auto x = hn::LoadU(dw, xq + r * K + blk * kQ8BlockSize + j);
        for (int64_t g = 0; g < kGroup; ++g) s0[r][g] = hn::ReorderWidenMulAccumulate(di, x, w[g], s0[r][g], s1[r][g]);
      }
    }
    for (int64_t r = 0; r < kRows; ++r) {
      const float x_scale = xs[r * blocks + blk];
      for (int64_t g = 0; g < kGroup; ++g) {
        const VF dot = hn::ConvertTo(d, hn::RearrangeToOddPlusEven(s0[r][g], s1[r][g]));
        total[r][g] = hn::MulAdd(hn::Set(d, wscale[g] * x_scale), dot, total[r][g]);
      }
    }
  }
  StoreRowSums<kRows, kGroup>(total, c, ldc, n, accumulate);
}

// A's kRows rows as int16 blocks (xq: kRows x K, xs: kRows x K/32 scales);
// false when a value is not finite (then the f32 path keeps inf and NaN).
// The rounding error is at most max|x| / 65534 per value of a block, about
// 1e-9 relative NMSE: far inside linear's tolerance (docs/OPS.md).
bool QuantizeRowsI16(int64_t rows, int64_t K, const float* a, int64_t lda, int16_t* xq, float* xs) {
  const int64_t blocks = K / kQ8BlockSize;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const float* x = a + r * lda + blk * kQ8BlockSize;
      float amax = 0.0f;
      for (int64_t i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(x[i]));
      if (!std::isfinite(amax)) return false;
      const float scale = amax / 32767.0f;
      const float inv = amax > 0.0f ? 32767.0f / amax : 0.0f;
      int16_t* q = xq + r * K + blk * kQ8BlockSize;
      for (int64_t i = 0; i < kQ8BlockSize; ++i) q[i] = static_cast<int16_t>(std::lrint(x[i] * inv));
      xs[r * blocks + blk] = scale;
    }
  }
  return true;
}
#endif  // HWY_TARGET != HWY_SCALAR

template <int64_t kRows>
void GemvQ8RowsT(int64_t n0, int64_t n1, int64_t K, const float* a, int64_t lda, const GemmB& b, float* c,
                 int64_t ldc, bool accumulate) {
  constexpr int64_t kGroup = kRows <= 2 ? 4 : 2;  // totals and partials stay in registers
  int64_t n = n0;
#if HWY_TARGET != HWY_SCALAR
  if (Q8Int16Enabled()) {
    thread_local std::vector<int16_t> xq;
    thread_local std::vector<float> xs;
    xq.resize(kRows * K);
    xs.resize(kRows * (K / kQ8BlockSize));
    if (QuantizeRowsI16(kRows, K, a, lda, xq.data(), xs.data())) {
      for (; n + kGroup <= n1; n += kGroup) GemvQ8I16Group<kRows, kGroup>(K, xq.data(), xs.data(), b, n, c, ldc, accumulate);
      for (; n < n1; ++n) GemvQ8I16Group<kRows, 1>(K, xq.data(), xs.data(), b, n, c, ldc, accumulate);
      return;
    }
  }
#endif
  for (; n + kGroup <= n1; n += kGroup) GemvQ8Group<kRows, kGroup>(K, a, lda, b, n, c, ldc, accumulate);
  for (; n < n1; ++n) GemvQ8Group<kRows, 1>(K, a, lda, b, n, c, ldc, accumulate);
}

void GemvQ8(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* a, int64_t lda, const GemmB& b,
            float* c, int64_t ldc, bool accumulate) {
  switch (M) {
    case 1: return GemvQ8RowsT<1>(n0, n1, K, a, lda, b, c, ldc, accumulate);
    case 2: return GemvQ8RowsT<2>(n0, n1, K, a, lda, b, c, ldc, accumulate);
    case 3: return GemvQ8RowsT<3>(n0, n1, K, a, lda, b, c, ldc, accumulate);
    default: return GemvQ8RowsT<4>(n0, n1, K, a, lda, b, c, ldc, accumulate);
  }
}

template <DType kType>
void GemvRowsM(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* a, int64_t lda, const GemmB& b,
               float* c, int64_t ldc, bool accumulate) {
  switch (M) {
    case 1: return GemvRowsT<1, kType>(n0, n1, K, a, lda, b, c, ldc, accumulate);
    case 2: return GemvRowsT<2, kType>(n0, n1, K, a, lda, b, c, ldc, accumulate);
    case 3: return GemvRowsT<3, kType>(n0, n1, K, a, lda, b, c, ldc, accumulate);
    default: return GemvRowsT<4, kType>(n0, n1, K, a, lda, b, c, ldc, accumulate);
  }
}

void GemvRows(int64_t M, int64_t n0, int64_t n1, int64_t K, const float* a, int64_t lda, const GemmB& b,
              float* c, int64_t ldc, bool accumulate) {
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX2
  // Below AVX2 Highway emulates f16 without inf/NaN handling: widen exactly.
  if (b.dtype == DType::kF16) {
    GemmBlock(0, M, n0, n1, K, a, lda, b, c, ldc, accumulate);
    return;
  }
#endif
  switch (b.dtype) {
    case DType::kF32: return GemvRowsM<DType::kF32>(M, n0, n1, K, a, lda, b, c, ldc, accumulate);
    case DType::kF16: return GemvRowsM<DType::kF16>(M, n0, n1, K, a, lda, b, c, ldc, accumulate);
    case DType::kBF16: return GemvRowsM<DType::kBF16>(M, n0, n1, K, a, lda, b, c, ldc, accumulate);
    case DType::kQ8_0: return GemvQ8(M, n0, n1, K, a, lda, b, c, ldc, accumulate);
    case DType::kI32: return;
  }
}

int64_t GemmNR() { return NR(); }

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "backends/cpu/gemm_bf16.h"
#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"

namespace kiln::cpu {

HWY_EXPORT(GemmBlock);
HWY_EXPORT(GemvRows);
HWY_EXPORT(GemmNR);

void Gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const GemmB& b, float* c, int64_t ldc,
          bool accumulate, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate) {
      for (int64_t m = 0; m < M; ++m) std::fill(c + m * ldc, c + m * ldc + N, 0.0f);
    }
    return;
  }
  const int nt = ThreadsFor(M * N * K / 4, threads);
  if (b.rows_are_n && M <= kGemvMaxRows) {
    // Each thread streams its own contiguous range of weight rows.
    ParallelFor(
        N, nt, [&](int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(GemvRows)(M, n0, n1, K, a, lda, b, c, ldc, accumulate); },
        4);
    return;
  }
  if (Bf16UnitsSuit(M, N, K, b)) {
    // bf16 weights on AMX / AVX512-BF16; the last N % 32 columns below.
    const int64_t done = GemmBf16Units(M, N, K, a, lda, b, c, ldc, accumulate, nt);
    if (done == N) return;
    GemmB rest = b;
    rest.data += done * b.row_stride;
    Gemm(M, N - done, K, a, lda, rest, c + done, ldc, accumulate, threads);
    return;
  }
  // Split the columns when each thread gets a few micro-panels, else the rows.
  const int64_t nr = HWY_DYNAMIC_DISPATCH(GemmNR)();
  if (N >= int64_t{nt} * 4 * nr) {
    ParallelFor(
        N, nt,
        [&](int64_t n0, int64_t n1) { HWY_DYNAMIC_DISPATCH(GemmBlock)(0, M, n0, n1, K, a, lda, b, c, ldc, accumulate); },
        nr);
  } else {
    ParallelFor(
        M, nt,
        [&](int64_t m0, int64_t m1) { HWY_DYNAMIC_DISPATCH(GemmBlock)(m0, m1, 0, N, K, a, lda, b, c, ldc, accumulate); },
        6);
  }
}

}  // namespace kiln::cpu
#endif  // HWY_ONCE
