// The chunked (WY / UT-transform) form of the gated delta rule (OPS.md) for
// one chunk of n <= 64 tokens of one head: the same result as n steps of the
// recurrence, with most of the work in GEMM-shaped products. Included by
// gated_delta_net.cc inside its Highway target namespace.
//
// With G_t the cumulative log gate from the chunk start through token t (per
// key for KDA, scalar for GDA) and E(t,s) = diag(exp(G_t - G_s)) (s <= t):
//   X   = V - KG S0                  KG_t = exp(G_t) k_t        [n x V]
//   A_ts = k_t^T E(t,s) k_s  (s < t), P_ts = q_t^T E(t,s) k_s  (s <= t)
//   D_t = beta_t (X_t - sum_{s<t} A_ts D_s)   (forward substitution)
//   out = QG S0 + P D                QG_t = exp(G_t) q_t
//   S   = exp(G_last) S0 + Kend^T D  Kend_s = exp(G_last - G_s) k_s
// (d_t is the recurrence's beta_t (v_t - u_t)). A and P are built per block
// of 16 rows t in [t0, t1) against a reference point r = t0 - 1:
// E(t,s) = exp(G_t - G_r) exp(G_r - G_s); for s <= r both factors are <= 1
// (g <= 0), so nothing overflows whatever the gates (FLA keeps its exponents
// bounded the same way, per sub-chunk). The block's own columns (s > r) take
// the same factorization only while exp(G_r - G_s) stays below e^40;
// otherwise they are computed pair by pair.
//
// Cost for K = V = 128, n = 64: the three n x K x V products (X, QG S0, the
// state update) are 6/7 of the recurrence's FLOPs, the 16-row blocks of
// A, P and their products with D add ~2.2 M, about 1.16x the recurrence's
// 7.3 M in all, most of it in the register-tiled MatMul below.

// Per-target include guard.
#if defined(KILN_BACKENDS_CPU_GATED_DELTA_NET_CHUNKED_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KILN_BACKENDS_CPU_GATED_DELTA_NET_CHUNKED_INL_H_
#undef KILN_BACKENDS_CPU_GATED_DELTA_NET_CHUNKED_INL_H_
#else
#define KILN_BACKENDS_CPU_GATED_DELTA_NET_CHUNKED_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "backends/cpu/simd_math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu::gdn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

inline constexpr size_t kChunk = 64;     // tokens per chunk
inline constexpr size_t kBlockRows = 16;  // rows t of A and P built at once
inline constexpr float kMaxGrowth = 40;   // largest exponent of a factor (e^40 ~ 2e17)
inline constexpr size_t kRtStride = kChunk + 16;  // odd cache lines: see RowStride

// One register tile: C[m][n] (=, += or -=) sum_k A(m,k) B[k][n] for m < MR
// and n < NV vectors, A(m,k) = a[m*ars + k*acs], B rows ldb floats apart.
template <size_t MR, size_t NV, bool kAcc, bool kSub>
HWY_INLINE void Tile(size_t kk, const float* HWY_RESTRICT a, size_t ars, size_t acs,
                     const float* HWY_RESTRICT b, size_t ldb, float* HWY_RESTRICT c, size_t ldc) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const size_t N = hn::Lanes(df);
  V acc[MR][NV];
  for (size_t m = 0; m < MR; ++m) {
    for (size_t v = 0; v < NV; ++v) acc[m][v] = kAcc ? hn::LoadU(df, c + m * ldc + v * N) : hn::Zero(df);
  }
  for (size_t k = 0; k < kk; ++k) {
    V bv[NV];
    for (size_t v = 0; v < NV; ++v) bv[v] = hn::LoadU(df, b + k * ldb + v * N);
    for (size_t m = 0; m < MR; ++m) {
      const V av = hn::Set(df, a[m * ars + k * acs]);
      for (size_t v = 0; v < NV; ++v) {
        acc[m][v] = kSub ? hn::NegMulAdd(av, bv[v], acc[m][v]) : hn::MulAdd(av, bv[v], acc[m][v]);
      }
    }
  }
  for (size_t m = 0; m < MR; ++m) {
    for (size_t v = 0; v < NV; ++v) hn::StoreU(acc[m][v], df, c + m * ldc + v * N);
  }
}

template <size_t NV, bool kAcc, bool kSub>
HWY_INLINE void TileRows(size_t mr, size_t kk, const float* a, size_t ars, size_t acs, const float* b,
                         size_t ldb, float* c, size_t ldc) {
  switch (mr) {
    case 6: return Tile<6, NV, kAcc, kSub>(kk, a, ars, acs, b, ldb, c, ldc);
    case 5: return Tile<5, NV, kAcc, kSub>(kk, a, ars, acs, b, ldb, c, ldc);
    case 4: return Tile<4, NV, kAcc, kSub>(kk, a, ars, acs, b, ldb, c, ldc);
    case 3: return Tile<3, NV, kAcc, kSub>(kk, a, ars, acs, b, ldb, c, ldc);
    case 2: return Tile<2, NV, kAcc, kSub>(kk, a, ars, acs, b, ldb, c, ldc);
    default: return Tile<1, NV, kAcc, kSub>(kk, a, ars, acs, b, ldb, c, ldc);
  }
}

// C[M x N] (=, += or -=) A[M x kk] B[kk x N] with N a multiple of the
// vector length; A(m,k) = a[m*ars + k*acs] (row-major or transposed).
// Column panels of 2 vectors outermost, so a panel of B stays in L1 while
// the 6-row tiles of A pass over it.
template <bool kAcc, bool kSub>
HWY_NOINLINE void MatMul(size_t M, size_t N, size_t kk, const float* a, size_t ars, size_t acs,
                         const float* b, size_t ldb, float* c, size_t ldc) {
  const size_t L = hn::Lanes(hn::ScalableTag<float>());
  if (kk == 0 && kAcc) return;
  for (size_t n0 = 0; n0 < N; n0 += 2 * L) {
    const bool two = n0 + 2 * L <= N;
    for (size_t m0 = 0; m0 < M; m0 += 6) {
      const size_t mr = std::min<size_t>(6, M - m0);
      const float* am = a + m0 * ars;
      float* cm = c + m0 * ldc + n0;
      if (two) {
        TileRows<2, kAcc, kSub>(mr, kk, am, ars, acs, b + n0, ldb, cm, ldc);
      } else {
        TileRows<1, kAcc, kSub>(mr, kk, am, ars, acs, b + n0, ldb, cm, ldc);
      }
    }
  }
}

// Row stride for rows of V floats that a product reads down a column: an
// odd number of cache lines, so that the rows of a panel spread over all of
// L1's sets (512 bytes apart they would share 8 of 64 sets and miss).
inline size_t RowStride(size_t V) { return V % 32 == 0 ? V + 16 : V; }

// The chunk's inputs (rows of K or ldv floats) and outputs.
struct ChunkIo {
  size_t n = 0, K = 0, V = 0;
  size_t ldv = 0;  // row stride of x, o and the state: RowStride(V)
  const float* q = nullptr;     // [n][K]: scale * q (l2-normalized if asked)
  const float* k = nullptr;     // [n][K]
  const float* g = nullptr;     // [n][K] (KDA) or [n] (GDA): log gates
  const float* beta = nullptr;  // [n]
  float* x = nullptr;           // [n][ldv]: v in; overwritten (D)
  float* o = nullptr;           // [n][ldv]: out
};

// Scratch of one thread, every buffer written before it is read.
struct ChunkScratch {
  float* G;     // [kChunk][K or 1]: cumulative log gates
  float* kg;    // [kChunk][K]: KG
  float* qg;    // [kChunk][K]: QG
  float* l;     // [kBlockRows][K]: k_t exp(G_t - G_r)
  float* ql;    // [kBlockRows][K]: q_t exp(G_t - G_r)
  float* rt;    // [K][kRtStride]: (k_s exp(G_r - G_s))^T, then Kend^T
  float* kt;    // [K][kChunk]: k^T
  float* gt;    // [K][kChunk]: G^T (KDA)
  float* e;     // [kChunk]: exp(G_r - G_s) (GDA)
  float* f;     // [K]: per-key factors
  float* ab;    // [kBlockRows][kChunk]: rows of A
  float* pb;    // [kBlockRows][kChunk]: rows of P
  static size_t Floats(size_t K) {
    return kChunk * K * 5 + K * kRtStride + kBlockRows * K * 2 + 2 * kBlockRows * kChunk + kChunk + K;
  }
  void Carve(float* base, size_t K) {
    G = base, kg = G + kChunk * K, qg = kg + kChunk * K, l = qg + kChunk * K;
    ql = l + kBlockRows * K, rt = ql + kBlockRows * K, ab = rt + K * kRtStride;
    pb = ab + kBlockRows * kChunk, kt = pb + kBlockRows * kChunk, gt = kt + K * kChunk;
    e = gt + K * kChunk, f = e + kChunk;
  }
};

// dst[i] = src[i] * exp(ga[i] - gb[i]) over K keys (a null gate is 0), and
// the same for src2/dst2 when given (one exp for both); GDA reads one gate
// of each.
template <bool kKda>
HWY_INLINE void ScaleByDecay(const float* ga, const float* gb, size_t K, const float* HWY_RESTRICT src,
                             float* HWY_RESTRICT dst, const float* HWY_RESTRICT src2 = nullptr,
                             float* HWY_RESTRICT dst2 = nullptr) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  if (!kKda) {
    const float e = std::exp((ga ? ga[0] : 0.0f) - (gb ? gb[0] : 0.0f));
    const auto ev = hn::Set(df, e);
    size_t i = 0;
    for (; i + N <= K; i += N) {
      hn::StoreU(hn::Mul(hn::LoadU(df, src + i), ev), df, dst + i);
      if (src2) hn::StoreU(hn::Mul(hn::LoadU(df, src2 + i), ev), df, dst2 + i);
    }
    for (; i < K; ++i) {
      dst[i] = src[i] * e;
      if (src2) dst2[i] = src2[i] * e;
    }
    return;
  }
  size_t i = 0;
  for (; i + N <= K; i += N) {
    auto x = ga ? hn::LoadU(df, ga + i) : hn::Zero(df);
    if (gb) x = hn::Sub(x, hn::LoadU(df, gb + i));
    const auto e = kiln::cpu::HWY_NAMESPACE::SafeExp(df, x);
    hn::StoreU(hn::Mul(hn::LoadU(df, src + i), e), df, dst + i);
    if (src2) hn::StoreU(hn::Mul(hn::LoadU(df, src2 + i), e), df, dst2 + i);
  }
  for (; i < K; ++i) {
    const float e = std::exp((ga ? ga[i] : 0.0f) - (gb ? gb[i] : 0.0f));
    dst[i] = src[i] * e;
    if (src2) dst2[i] = src2[i] * e;
  }
}

// f[i] = exp(ga[i] - gb[i]) for the K keys (KDA; a null gate is 0), or
// f[0] for all of them (GDA).
template <bool kKda>
HWY_INLINE void KeyFactors(const float* ga, const float* gb, size_t K, float* f) {
  if (!kKda) {
    f[0] = std::exp((ga ? ga[0] : 0.0f) - (gb ? gb[0] : 0.0f));
    return;
  }
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= K; i += N) {
    auto x = ga ? hn::LoadU(df, ga + i) : hn::Zero(df);
    if (gb) x = hn::Sub(x, hn::LoadU(df, gb + i));
    hn::StoreU(kiln::cpu::HWY_NAMESPACE::SafeExp(df, x), df, f + i);
  }
  for (; i < K; ++i) f[i] = std::exp((ga ? ga[i] : 0.0f) - (gb ? gb[i] : 0.0f));
}

// Cumulative gates into s.G; false when a gate is not finite (the caller
// then runs the recurrence, which defines those cases).
template <bool kKda>
HWY_INLINE bool CumulativeGates(const ChunkIo& c, ChunkScratch& s) {
  const size_t gk = kKda ? c.K : 1;
  bool finite = true;
  for (size_t i = 0; i < gk; ++i) {
    float acc = 0;
    for (size_t t = 0; t < c.n; ++t) {
      const float g = c.g[t * gk + i];
      finite &= std::isfinite(g);
      acc += g;
      s.G[t * gk + i] = acc;
    }
  }
  return finite;
}

// Pairwise A_ts, P_ts for the block's own columns s in [t0, t], when the
// factorization around r would need factors beyond e^kMaxGrowth.
template <bool kKda>
HWY_INLINE void DiagonalPairs(const ChunkIo& c, const ChunkScratch& s, size_t t0, size_t t1, size_t ld) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df), K = c.K, gk = kKda ? K : 1;
  for (size_t t = t0; t < t1; ++t) {
    const float *kt = c.k + t * K, *qt = c.q + t * K, *Gt = s.G + t * gk;
    for (size_t j = t0; j <= t; ++j) {
      const float *ks = c.k + j * K, *Gs = s.G + j * gk;
      float a = 0, p = 0;
      if (kKda) {
        auto av = hn::Zero(df), pv = hn::Zero(df);
        size_t i = 0;
        for (; i + N <= K; i += N) {
          const auto e = kiln::cpu::HWY_NAMESPACE::SafeExp(df, hn::Sub(hn::LoadU(df, Gt + i), hn::LoadU(df, Gs + i)));
          const auto ke = hn::Mul(hn::LoadU(df, ks + i), e);
          av = hn::MulAdd(hn::LoadU(df, kt + i), ke, av);
          pv = hn::MulAdd(hn::LoadU(df, qt + i), ke, pv);
        }
        a = hn::GetLane(hn::SumOfLanes(df, av)), p = hn::GetLane(hn::SumOfLanes(df, pv));
        for (; i < K; ++i) {
          const float ke = ks[i] * std::exp(Gt[i] - Gs[i]);
          a += kt[i] * ke, p += qt[i] * ke;
        }
      } else {
        for (size_t i = 0; i < K; ++i) a += kt[i] * ks[i], p += qt[i] * ks[i];
        const float e = std::exp(Gt[0] - Gs[0]);
        a *= e, p *= e;
      }
      s.ab[(t - t0) * ld + j] = a;
      s.pb[(t - t0) * ld + j] = p;
    }
  }
}

// D_t = beta (X_t - sum_{j in [j0, t)} a[j] D_j) in place over row t of x
// (rows ldv floats apart), 4 vectors at a time so that the FMAs of one row j
// do not wait on each other.
HWY_INLINE void SolveRow(float* x, size_t ldv, size_t V, const float* a, size_t j0, size_t t, float beta) {
  const hn::ScalableTag<float> df;
  using VF = hn::Vec<decltype(df)>;
  const size_t L = hn::Lanes(df);
  float* xt = x + t * ldv;
  const VF bt = hn::Set(df, beta);
  size_t v0 = 0;
  for (; v0 + 4 * L <= V; v0 += 4 * L) {
    VF acc[4];
    for (size_t u = 0; u < 4; ++u) acc[u] = hn::LoadU(df, xt + v0 + u * L);
    for (size_t j = j0; j < t; ++j) {
      const VF aj = hn::Set(df, a[j]);
      for (size_t u = 0; u < 4; ++u) acc[u] = hn::NegMulAdd(aj, hn::LoadU(df, x + j * ldv + v0 + u * L), acc[u]);
    }
    for (size_t u = 0; u < 4; ++u) hn::StoreU(hn::Mul(acc[u], bt), df, xt + v0 + u * L);
  }
  for (; v0 < V; v0 += L) {
    VF acc = hn::LoadU(df, xt + v0);
    for (size_t j = j0; j < t; ++j) acc = hn::NegMulAdd(hn::Set(df, a[j]), hn::LoadU(df, x + j * ldv + v0), acc);
    hn::StoreU(hn::Mul(acc, bt), df, xt + v0);
  }
}

// k^T and (KDA) G^T of the chunk, kChunk columns, so that the blocks'
// right factors are built a row of keys at a time.
template <bool kKda>
HWY_INLINE void Transpose(const ChunkIo& c, ChunkScratch& s) {
  const size_t K = c.K;
  for (size_t j = 0; j < c.n; ++j) {
    for (size_t i = 0; i < K; ++i) s.kt[i * kChunk + j] = c.k[j * K + i];
    if (kKda) {
      for (size_t i = 0; i < K; ++i) s.gt[i * kChunk + j] = s.G[j * K + i];
    }
  }
  for (size_t i = 0; i < K && c.n < kChunk; ++i) std::fill(s.kt + i * kChunk + c.n, s.kt + (i + 1) * kChunk, 0.0f);
}

// rt[i][j] = k_j[i] exp(G_r[i] - G_j[i]) for j < cols (a null gate row is
// G = 0), zero for j in [cols, ldn). Columns [0, valid) hold the same for
// the previous reference Gp and are rescaled by exp(G_r - G_p) <= 1 (one exp
// per key, not per element); the others take an exp each.
template <bool kKda>
HWY_INLINE void RightFactors(ChunkScratch& s, size_t K, const float* Gr, const float* Gp, size_t valid,
                             size_t cols, size_t ldn) {
  const hn::ScalableTag<float> df;
  const size_t L = hn::Lanes(df);
  const size_t v0 = valid / L * L;  // rescale whole vectors; recompute the rest
  auto g = [](const float* G, size_t i) { return G ? G[kKda ? i : 0] : 0.0f; };
  if (!kKda) {
    for (size_t j = v0; j < cols; ++j) s.e[j] = std::exp(g(Gr, 0) - s.G[j]);
  }
  if (v0 > 0) KeyFactors<kKda>(Gr, Gp, K, s.f);
  for (size_t i = 0; i < K; ++i) {
    const float* kr = s.kt + i * kChunk;
    float* out = s.rt + i * kRtStride;
    const auto f = hn::Set(df, v0 > 0 ? s.f[kKda ? i : 0] : 1.0f);
    for (size_t j = 0; j < v0; j += L) hn::StoreU(hn::Mul(hn::LoadU(df, out + j), f), df, out + j);
    if (kKda) {
      const float* gr = s.gt + i * kChunk;
      const auto g0 = hn::Set(df, g(Gr, i));
      size_t j = v0;
      for (; j + L <= cols; j += L) {
        const auto e = kiln::cpu::HWY_NAMESPACE::SafeExp(df, hn::Sub(g0, hn::LoadU(df, gr + j)));
        hn::StoreU(hn::Mul(hn::LoadU(df, kr + j), e), df, out + j);
      }
      for (; j < cols; ++j) out[j] = kr[j] * std::exp(g(Gr, i) - gr[j]);
    } else {
      for (size_t j = v0; j < cols; ++j) out[j] = kr[j] * s.e[j];
    }
    std::fill(out + cols, out + ldn, 0.0f);
  }
}

// One chunk: out rows into c.o, S [K x V] (row stride c.ldv) advanced by n
// tokens. c.x is used as the D rows. Requires V a multiple of the vector
// length and CumulativeGates() true.
template <bool kKda>
void ChunkStep(const ChunkIo& c, ChunkScratch& s, float* S) {
  const size_t n = c.n, K = c.K, V = c.V, ldv = c.ldv, gk = kKda ? K : 1;
  const size_t L = hn::Lanes(hn::ScalableTag<float>());
  // X = V - KG S0, O = QG S0.
  for (size_t t = 0; t < n; ++t) {
    ScaleByDecay<kKda>(s.G + t * gk, nullptr, K, c.k + t * K, s.kg + t * K, c.q + t * K, s.qg + t * K);
  }
  MatMul<true, true>(n, V, K, s.kg, K, 1, S, ldv, c.x, ldv);
  MatMul<false, false>(n, V, K, s.qg, K, 1, S, ldv, c.o, ldv);
  Transpose<kKda>(c, s);

  const float* Gp = nullptr;  // reference of rt's first `valid` columns
  size_t valid = 0;
  for (size_t t0 = 0; t0 < n; t0 += kBlockRows) {
    const size_t t1 = std::min(n, t0 + kBlockRows), rows = t1 - t0;
    const float* Gr = t0 > 0 ? s.G + (t0 - 1) * gk : nullptr;  // null: G = 0
    // Can the block's own columns share the factorization around r?
    float grow = 0;
    for (size_t j = t0; j < t1; ++j) {
      for (size_t i = 0; i < gk; ++i) grow = std::max(grow, (Gr ? Gr[i] : 0.0f) - s.G[j * gk + i]);
    }
    const bool own = grow <= kMaxGrowth;
    const size_t cols = own ? t1 : t0;
    const size_t ld = (std::max<size_t>(t1, 1) + L - 1) / L * L;  // row stride of ab, pb
    RightFactors<kKda>(s, K, Gr, Gp, valid, cols, ld);
    Gp = Gr, valid = cols;
    for (size_t t = t0; t < t1; ++t) {
      ScaleByDecay<kKda>(s.G + t * gk, Gr, K, c.k + t * K, s.l + (t - t0) * K, c.q + t * K,
                         s.ql + (t - t0) * K);
    }
    MatMul<false, false>(rows, ld, K, s.l, K, 1, s.rt, kRtStride, s.ab, ld);
    MatMul<false, false>(rows, ld, K, s.ql, K, 1, s.rt, kRtStride, s.pb, ld);
    if (!own) DiagonalPairs<kKda>(c, s, t0, t1, ld);
    for (size_t t = t0; t < t1; ++t) {
      float* prow = s.pb + (t - t0) * ld;
      std::fill(prow + t + 1, prow + ld, 0.0f);  // P is lower triangular
    }
    // D rows of the block: the earlier blocks' D as one product, then the
    // block's own rows one by one.
    MatMul<true, true>(rows, V, t0, s.ab, ld, 1, c.x, ldv, c.x + t0 * ldv, ldv);
    for (size_t t = t0; t < t1; ++t) SolveRow(c.x, ldv, V, s.ab + (t - t0) * ld, t0, t, c.beta[t]);
    // out rows of the block += P D (P is zero above the diagonal).
    MatMul<true, false>(rows, V, t1, s.pb, ld, 1, c.x, ldv, c.o + t0 * ldv, ldv);
  }

  // S = exp(G_last) S0 + Kend^T D, with Kend^T built transposed (rt is free
  // now) so that the product reads it along rows: read down columns of
  // Kend, its rows 512 bytes apart missed L1 at every step.
  const float* Gl = s.G + (n - 1) * gk;
  RightFactors<kKda>(s, K, Gl, nullptr, 0, n, n);
  const hn::ScalableTag<float> df;
  KeyFactors<kKda>(Gl, nullptr, K, s.f);
  for (size_t i = 0; i < K; ++i) {
    const auto e = hn::Set(df, s.f[kKda ? i : 0]);
    float* row = S + i * ldv;
    for (size_t v0 = 0; v0 < V; v0 += L) hn::StoreU(hn::Mul(hn::LoadU(df, row + v0), e), df, row + v0);
  }
  MatMul<true, false>(K, V, n, s.rt, kRtStride, 1, c.x, ldv, S, ldv);
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu::gdn
HWY_AFTER_NAMESPACE();

#endif  // KILN_BACKENDS_CPU_GATED_DELTA_NET_CHUNKED_INL_H_
