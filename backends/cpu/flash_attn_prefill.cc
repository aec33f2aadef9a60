// CPU flash attention for prefill (OPS.md): many query positions, bound by
// FLOPs. GEMM-shaped, with the query rows in vector lanes.
//
// - A work item is one KV head of one batch row and a block of query
//   positions; its rows are every (position, query head) pair that reads
//   that KV head (the GQA group), padded to whole micro-tiles of lanes.
// - Per tile of 32 keys: the K and V rows are converted to f32 once (keys
//   masked for every row zero-filled, never read) and used by every row of
//   the item. Scores S^T = K Q^T with Q^T (d x rows, built once per item)
//   in lanes and K values broadcast: a 4-key x 3-vector register tile, no
//   horizontal reductions. The online softmax runs on S^T with rows in lanes
//   (one max, one exp per score, one rescale per tile). P.V accumulates
//   O^T (dv x rows) the same way: 4 columns x 3 vectors, V broadcast.
// - Tiles past every row's causal limit are never visited; tiles whose keys
//   are all masked for every row of the item are skipped without reading
//   K/V; partial tiles mask per score (mask values transposed into lanes).
// - Items are taken dynamically, the most expensive (latest positions)
//   first. Scratch is per thread and kept across calls.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/flash_attn_problem.h"
#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/tuning.h"
#include "graph/dtype.h"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/flash_attn_prefill.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "backends/cpu/flash_attn-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu::fa {
namespace HWY_NAMESPACE {

// Register tile: kTileVecs vectors of rows x 4 keys (scores) or 4 columns
// (P.V): 12 accumulators + 3 loads + 1 broadcast = 16 AVX2 registers.
constexpr size_t kTileVecs = 3;
constexpr size_t kTileCols = 4;
// With 32 vector registers (AVX-512), 8 keys or columns: 24 accumulators,
// half the passes over Q^T and O^T per tile (KILN_CPU_FA=wide=0 for 4).
#if HWY_TARGET <= HWY_AVX3 && HWY_ARCH_X86
constexpr size_t kWideCols = 8;
#else
constexpr size_t kWideCols = 4;
#endif
// Keys (scores) or columns (P.V) of the wide tiles, 0 for none.
inline size_t WideCols() {
  static const bool on = TuningValue("KILN_CPU_FA", "wide", 1) != 0;
  return kWideCols > kTileCols && on ? kWideCols : 0;
}
// Micro-tiles of rows per item (target): enough rows to reuse each K/V tile.
constexpr size_t kItemTiles = 2;

// st[c][0, kV*N) (rows st_stride apart) = sum_d k_c[d] * qt[d][0, kV*N) for
// kKeys keys (rows ks apart).
template <size_t kKeys, size_t kV>
HWY_INLINE void ScoreTile(const float* HWY_RESTRICT qt, size_t qs, const float* HWY_RESTRICT k,
                          size_t ks, size_t dk, float* HWY_RESTRICT st, size_t ss) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[kKeys][kV];
  for (size_t c = 0; c < kKeys; ++c) {
    for (size_t i = 0; i < kV; ++i) acc[c][i] = hn::Zero(df);
  }
  for (size_t d = 0; d < dk; ++d) {
    VF q[kV];
    for (size_t i = 0; i < kV; ++i) q[i] = hn::Load(df, qt + d * qs + i * N);
    for (size_t c = 0; c < kKeys; ++c) {
      const VF kc = hn::Set(df, k[c * ks + d]);
      for (size_t i = 0; i < kV; ++i) acc[c][i] = hn::MulAdd(kc, q[i], acc[c][i]);
    }
  }
  for (size_t c = 0; c < kKeys; ++c) {
    for (size_t i = 0; i < kV; ++i) hn::Store(acc[c][i], df, st + c * ss + i * N);
  }
}

// ot[c][0, kV*N) (rows os apart) += sum_j v_j[c] * pt[j][0, kV*N) for kCols
// columns, j < nk (V rows vs apart, P^T rows ps apart).
template <size_t kCols, size_t kV>
HWY_INLINE void PvTile(const float* HWY_RESTRICT pt, size_t ps, const float* HWY_RESTRICT v,
                       size_t vs, size_t nk, float* HWY_RESTRICT ot, size_t os) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[kCols][kV];
  for (size_t c = 0; c < kCols; ++c) {
    for (size_t i = 0; i < kV; ++i) acc[c][i] = hn::Load(df, ot + c * os + i * N);
  }
  for (size_t j = 0; j < nk; ++j) {
    VF p[kV];
    for (size_t i = 0; i < kV; ++i) p[i] = hn::Load(df, pt + j * ps + i * N);
    for (size_t c = 0; c < kCols; ++c) {
      const VF vc = hn::Set(df, v[j * vs + c]);
      for (size_t i = 0; i < kV; ++i) acc[c][i] = hn::MulAdd(vc, p[i], acc[c][i]);
    }
  }
  for (size_t c = 0; c < kCols; ++c) {
    for (size_t i = 0; i < kV; ++i) hn::Store(acc[c][i], df, ot + c * os + i * N);
  }
}

// Per-thread scratch, kept across calls (it only grows).
struct PrefillScratch {
  Buffer qt, ot, k, v, st, mt, mv, m, l, lim, slope, qrow;
  std::vector<int64_t> pos, head;  // per row: position, query head
  std::vector<Masked> mclass;            // per distinct mask row of the item
  std::vector<uint8_t> live;             // per key of the tile: some row sees it

  static PrefillScratch& Get() {
    static thread_local PrefillScratch s;
    return s;
  }
};

template <class T>
void Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// The rows of a work item: positions [i0, i0+np) of batch row b, query heads
// of KV head kvh; row r is position i0 + r / G, head kvh * G + r % G; rows
// from np * G up to the padded count repeat the last row (outputs dropped).
struct Item {
  int64_t b, kvh, i0, np;
};

template <int kDk, int kDv>
class Prefiller {
 public:
  Prefiller(const Problem& p, int64_t positions)
      : p_(p),
        dk_(kDk ? kDk : p.Dk),
        dv_(kDv ? kDv : p.Dv),
        dkp_(RoundUp(dk_, hn::Lanes(DF()))),
        positions_(positions),
        tv_(kTileVecs * hn::Lanes(DF())),
        rows_(RoundUp(positions * p.G, tv_)) {}

  void Run(const Item& it, PrefillScratch& s) const {
    const size_t R = rows_, tk = kTileKeys;
    const int64_t G = p_.G, real = it.np * G;
    const bool has_mask = p_.mask.present();
    float* qt = s.qt.get(dk_ * R);
    float* ot = s.ot.get(dv_ * R);
    float* kt = s.k.get(tk * dkp_);
    float* vt = s.v.get(tk * dv_);
    float* st = s.st.get(tk * R);
    float* mt = s.mt.get(tk * R);
    float* mv = s.mv.get(tk);
    float* m = s.m.get(R);
    float* l = s.l.get(R);
    float* lim = s.lim.get(R);
    float* slope = s.slope.get(R);
    Grow(s.pos, R), Grow(s.head, R), Grow(s.mclass, R), Grow(s.live, tk);

    // Rows: position, head, causal limit, slope; Q^T.
    const int64_t nmask = !has_mask ? 0 : (p_.mask_h == 1 ? it.np : real);
    int64_t kend = 0, kmin = p_.Skv;
    for (size_t r = 0; r < R; ++r) {
      const int64_t rr = std::min<int64_t>(r, real - 1);
      s.pos[r] = it.i0 + rr / G;
      s.head[r] = it.kvh * G + rr % G;
      const int64_t e = p_.KeyEnd(s.pos[r]);
      lim[r] = static_cast<float>(e);
      kend = std::max(kend, e), kmin = std::min(kmin, e);
      slope[r] = p_.slope(s.head[r]);
    }
    LoadQueriesT(it, real, s.qrow.get(dk_), qt);
    std::fill(m, m + R, -std::numeric_limits<float>::infinity());
    std::fill(l, l + R, 0.0f);
    std::fill(ot, ot + dv_ * R, 0.0f);

    for (int64_t j0 = 0; j0 < kend; j0 += tk) {
      const int64_t nk = std::min<int64_t>(tk, kend - j0);
      // The next tile's rows, spread over this tile's micro-tiles.
      TileLines next = Lines(it, j0 + tk, std::min<int64_t>(tk, kend - j0 - tk));
      const int64_t calls = static_cast<int64_t>(R / tv_) * ((nk + 3) / 4 + (dv_ + kTileCols - 1) / kTileCols);
      const int64_t per_call = (next.lines() + calls - 1) / calls;
      const uint8_t* live = nullptr;
      if (has_mask) {
        bool any = false;
        for (int64_t u = 0; u < nmask; ++u) {
          const int64_t r = p_.mask_h == 1 ? u * G : u;
          s.mclass[u] = ClassifyMaskTile(p_.mask.dtype, MaskRowOf(it, r), j0, nk);
          any = any || s.mclass[u] != Masked::kAll;
        }
        if (!any) continue;  // every key masked for every row: K/V not read
        live = MarkLive(it, j0, nk, nmask, s);
      }
      LoadTile(p_.k, it, j0, nk, live, dk_, dkp_, kt);
      Scores(qt, kt, nk, st, next, per_call);
      const bool limited = j0 + tk > kmin;  // some key past some row's causal limit or Skv
      if (has_mask) TransposeMask(it, j0, nk, nmask, s, mv, mt);
      Mask(st, has_mask ? mt : nullptr, lim, slope, j0, limited);
      Softmax(st, m, l, ot);
      LoadTile(p_.v, it, j0, nk, live, dv_, dv_, vt);
      // Rows see different keys of this tile: a non-finite V row must only
      // reach the rows that see it.
      if ((has_mask || limited) && !AllFinite(vt, nk * dv_)) {
        SplitNonFiniteV(
            vt, nk, dv_, dv_, R, [&](size_t r, size_t j) { return st[At(j, r, tk)]; },
            [&](size_t r, const float* vj, float pj) {
              float* col = ot + At(0, r, dv_);
              for (size_t d = 0; d < dv_; ++d) col[d * tv_] += pj * vj[d];
            });
      }
      Accumulate(st, vt, nk, ot, next, per_call);
    }
    Finish(it, real, m, l, ot, s);
  }

 private:
  // Lane arrays (Q^T, S^T, mask, O^T) are blocked per register tile of
  // rows, so that one tile's slice is contiguous (L1-sized): element (x, r)
  // of an array with `extent` values of x per row.
  size_t At(size_t x, size_t r, size_t extent) const {
    return r / tv_ * extent * tv_ + x * tv_ + r % tv_;
  }

  const std::byte* MaskRowOf(const Item& it, int64_t r) const {
    return p_.MaskRow(it.b, it.kvh * p_.G + r % p_.G, it.i0 + r / p_.G);
  }

  // live[c]: key j0 + c is unmasked for some row (within its causal limit
  // or not: keys past every row's limit are never in a tile).
  const uint8_t* MarkLive(const Item& it, int64_t j0, int64_t nk, int64_t nmask,
                          PrefillScratch& s) const {
    uint8_t* live = s.live.data();
    std::fill(live, live + kTileKeys, 0);
    for (int64_t u = 0; u < nmask; ++u) {
      if (s.mclass[u] == Masked::kNone) {
        std::fill(live, live + nk, 1);
        return live;
      }
    }
    for (int64_t u = 0; u < nmask; ++u) {
      if (s.mclass[u] != Masked::kSome) continue;
      const std::byte* row = MaskRowOf(it, p_.mask_h == 1 ? u * p_.G : u);
      for (int64_t c = 0; c < nk; ++c) live[c] |= !IsNegInfBits(p_.mask.dtype, row, j0 + c);
    }
    return live;
  }

  // mt[c][r] = mask value of row r at key j0 + c (-inf for a row whose mask
  // row is -inf over the whole tile).
  void TransposeMask(const Item& it, int64_t j0, int64_t nk, int64_t nmask, PrefillScratch& s,
                     float* mv, float* mt) const {
    const size_t R = rows_, tk = kTileKeys;
    const int64_t G = p_.G, per = p_.mask_h == 1 ? G : 1;
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    for (int64_t u = 0; u < nmask; ++u) {
      const int64_t r0 = u * per;
      if (s.mclass[u] == Masked::kAll) {
        for (int64_t r = r0; r < r0 + per; ++r) {
          float* col = mt + At(0, r, tk);
          for (int64_t c = 0; c < nk; ++c) col[c * tv_] = kNegInf;
        }
        continue;
      }
      MaskValues(p_.mask.dtype, MaskRowOf(it, r0), j0, nk, mv);
      for (int64_t r = r0; r < r0 + per; ++r) {
        float* col = mt + At(0, r, tk);
        for (int64_t c = 0; c < nk; ++c) col[c * tv_] = mv[c];
      }
    }
    // Padded rows repeat the last real row.
    const int64_t real = nmask * per;
    const float* last = mt + At(0, real - 1, tk);
    for (size_t r = real; r < R; ++r) {
      float* col = mt + At(0, r, tk);
      for (int64_t c = 0; c < nk; ++c) col[c * tv_] = last[c * tv_];
    }
  }

  // Q^T of the item, scaled: qt[d][r] (padded rows zero); buf: dk floats.
  void LoadQueriesT(const Item& it, int64_t real, float* buf, float* qt) const {
    const size_t R = rows_;
    for (int64_t r = 0; r < static_cast<int64_t>(R); ++r) {
      if (r < real) {
        LoadRow(p_.q.dtype, p_.QRow(it.b, it.i0 + r / p_.G, it.kvh * p_.G + r % p_.G), dk_, buf);
      }
      float* col = qt + At(0, r, dk_);
      for (size_t d = 0; d < dk_; ++d) col[d * tv_] = r < real ? buf[d] * p_.scale : 0.0f;
    }
  }

  // Rows [j0, j0+nk) of K or V for the item's KV head as f32 (dead keys and
  // rows up to the next multiple of 4 zero).
  static void LoadTile(const TensorView& t, const Item& it, int64_t j0, int64_t nk,
                       const uint8_t* live, size_t d, size_t dp, float* dst) {
    const std::byte* base =
        t.data + it.b * t.strides[0] + j0 * t.strides[1] + it.kvh * t.strides[2];
    RowsToF32(t.dtype, base, t.strides[1], nk, live, d, dp, dst);
    std::fill(dst + nk * dp, dst + RoundUp(nk, 4) * dp, 0.0f);
  }

  // K and V lines of keys [j0, j0 + nk) of the item's KV head (none for nk <= 0).
  TileLines Lines(const Item& it, int64_t j0, int64_t nk) const {
    if (nk <= 0) return TileLines();
    auto at = [&](const TensorView& t) {
      return t.data + it.b * t.strides[0] + j0 * t.strides[1] + it.kvh * t.strides[2];
    };
    return TileLines(at(p_.k), p_.k.strides[1], RowBytes(p_.k.dtype, static_cast<int64_t>(dk_)), at(p_.v),
                     p_.v.strides[1], RowBytes(p_.v.dtype, static_cast<int64_t>(dv_)), nk);
  }

  // st[c][r] = <k_c, q_r> for keys c < nk rounded up to 4; `per` lines of
  // `next` after each micro-tile.
  void Scores(const float* qt, const float* kt, int64_t nk, float* st, TileLines& next,
              int64_t per) const {
    const size_t R = rows_, tv = tv_, tk = kTileKeys;
    const int64_t wide = static_cast<int64_t>(WideCols());
    for (size_t r = 0; r < R; r += tv) {
      int64_t c = 0;
      for (; wide && c + wide <= nk; c += wide) {
        ScoreTile<kWideCols, kTileVecs>(qt + At(0, r, dk_), tv, kt + c * dkp_, dkp_, dk_, st + At(c, r, tk), tv);
        next.Issue(2 * per);
      }
      for (; c < nk; c += 4) {
        ScoreTile<4, kTileVecs>(qt + At(0, r, dk_), tv, kt + c * dkp_, dkp_, dk_, st + At(c, r, tk), tv);
        next.Issue(per);
      }
    }
  }

  // Softcap, mask (slope-scaled, -inf kept), causal limits and keys past
  // the tile's end, on S^T.
  void Mask(float* st, const float* mt, const float* lim, const float* slope, int64_t j0,
            bool limited) const {
    const DF df;
    const size_t N = hn::Lanes(df), R = rows_;
    const bool cap = p_.softcap > 0;
    if (!cap && !mt && !limited) return;
    const VF vcap = hn::Set(df, p_.softcap), vinv = hn::Set(df, cap ? 1.0f / p_.softcap : 0.0f);
    const VF ninf = hn::Set(df, -std::numeric_limits<float>::infinity());
    for (size_t r0 = 0; r0 < R; r0 += tv_) {
      float* tile = st + At(0, r0, kTileKeys);
      const float* mtile = mt ? mt + At(0, r0, kTileKeys) : nullptr;
      for (int64_t c = 0; c < kTileKeys; ++c) {
        // Keys from a row's end on (its causal limit, or Skv) are -inf; keys
        // past the tile's end are past every row's end.
        const VF key = hn::Set(df, static_cast<float>(j0 + c));
        for (size_t i = 0; i < tv_; i += N) {
          float* at = tile + c * tv_ + i;
          VF x = hn::Load(df, at);
          if (cap) x = hn::Mul(vcap, hn::Tanh(df, hn::Mul(x, vinv)));
          if (mtile) {
            const VF mvv = hn::Load(df, mtile + c * tv_ + i);
            x = hn::IfThenElse(hn::Eq(mvv, ninf), ninf,
                               hn::MulAdd(hn::Load(df, slope + r0 + i), mvv, x));
          }
          if (limited) x = hn::IfThenElse(hn::Le(hn::Load(df, lim + r0 + i), key), ninf, x);
          hn::Store(x, df, at);
        }
      }
    }
  }

  // Online softmax on S^T (rows in lanes): st becomes p, m and l updated,
  // O^T rescaled where the max moved.
  void Softmax(float* st, float* m, float* l, float* ot) const {
    const DF df;
    const size_t N = hn::Lanes(df), R = rows_, tv = tv_;
    const VF ninf = hn::Set(df, -std::numeric_limits<float>::infinity());
    const VF one = hn::Set(df, 1.0f);
    for (size_t r = 0; r < R; r += N) {
      float* col = st + At(0, r, kTileKeys);  // key c of these rows: col + c * tv
      VF mx = hn::Load(df, col);
      for (int64_t c = 1; c < kTileKeys; ++c) mx = hn::Max(mx, hn::Load(df, col + c * tv));
      const VF mold = hn::Load(df, m + r);
      const VF mnew = hn::Max(mold, mx);
      // Rows that saw no key yet: subtract 0, so e^(-inf) = 0, not NaN.
      const VF msub = hn::IfThenZeroElse(hn::Eq(mnew, ninf), mnew);
      const VF corr = hn::Exp(df, hn::Sub(mold, msub));
      VF sum = hn::Zero(df);
      for (int64_t c = 0; c < kTileKeys; ++c) {
        // SafeExp: a NaN score (a NaN K cell the row sees) stays NaN.
        const VF e = kiln::cpu::HWY_NAMESPACE::SafeExp(df, hn::Sub(hn::Load(df, col + c * tv), msub));
        hn::Store(e, df, col + c * tv);
        sum = hn::Add(sum, e);
      }
      hn::Store(hn::MulAdd(hn::Load(df, l + r), corr, sum), df, l + r);
      hn::Store(mnew, df, m + r);
      if (hn::AllTrue(df, hn::Eq(corr, one))) continue;
      float* o = ot + At(0, r, dv_);  // column d: o + d * tv
      for (size_t d = 0; d < dv_; ++d) hn::Store(hn::Mul(hn::Load(df, o + d * tv), corr), df, o + d * tv);
    }
  }

  // O^T += V^T P^T over the tile's keys.
  void Accumulate(const float* pt, const float* vt, int64_t nk, float* ot, TileLines& next,
                  int64_t per) const {
    const size_t R = rows_, tv = tv_, tk = kTileKeys;
    for (size_t r = 0; r < R; r += tv) {
      size_t c = 0;
      for (const size_t wide = WideCols(); wide && c + wide <= dv_; c += wide) {
        PvTile<kWideCols, kTileVecs>(pt + At(0, r, tk), tv, vt + c, dv_, nk, ot + At(c, r, dv_), tv);
        next.Issue(2 * per);
      }
      for (; c + kTileCols <= dv_; c += kTileCols) {
        PvTile<kTileCols, kTileVecs>(pt + At(0, r, tk), tv, vt + c, dv_, nk, ot + At(c, r, dv_), tv);
        next.Issue(per);
      }
      for (; c < dv_; ++c) {
        PvTile<1, kTileVecs>(pt + At(0, r, tk), tv, vt + c, dv_, nk, ot + At(c, r, dv_), tv);
      }
    }
  }

  // Normalizes the real rows (sinks included) and writes them to out.
  void Finish(const Item& it, int64_t real, const float* m, const float* l, const float* ot,
              PrefillScratch& s) const {
    float* row = s.mv.get(std::max<size_t>(dv_, kTileKeys));
    for (int64_t r = 0; r < real; ++r) {
      const int64_t h = s.head[r];
      const float f = NormalizeFactor(m[r], l[r], p_.sinks ? p_.sinks + h : nullptr);
      const float* col = ot + At(0, r, dv_);
      for (size_t d = 0; d < dv_; ++d) row[d] = col[d * tv_] * f;
      StoreRow(p_.out.dtype, row, dv_, p_.OutRow(it.b, s.pos[r], h));
    }
  }

  const Problem& p_;
  const size_t dk_, dv_, dkp_;
  const int64_t positions_;
  const size_t tv_;    // rows per register tile
  const size_t rows_;  // per item, padded to whole register tiles
};

template <int kDk, int kDv>
absl::Status FlashAttnPrefill(const KernelArgs& args) {
  Problem p;
  if (absl::Status st = ResolveProblem(args, p); !st.ok()) return st;
  if (p.B == 0 || p.Sq == 0 || p.Hq == 0) return absl::OkStatus();
  const size_t tile_rows = kTileVecs * hn::Lanes(DF());

  // Positions per item: a few register tiles of rows, fewer when that
  // leaves threads idle.
  int threads = p.threads;
  int64_t positions = std::max<int64_t>(1, kItemTiles * tile_rows / p.G);
  const int64_t heads = p.B * p.Hkv;
  if (threads > 1 && heads * ((p.Sq + positions - 1) / positions) < 2 * threads) {
    const int64_t blocks = (2 * threads + heads - 1) / heads;
    positions = std::max<int64_t>(1, (p.Sq + blocks - 1) / blocks);
  }
  const int64_t blocks = (p.Sq + positions - 1) / positions;
  const int64_t items = heads * blocks;
  const double work = static_cast<double>(p.B) * p.Hq * p.Sq * p.Skv * (p.Dk + p.Dv);
  if (work < 2e5) threads = 1;
  threads = static_cast<int>(std::min<int64_t>(threads, items));

  const Prefiller<kDk, kDv> pre(p, positions);
  std::atomic<int64_t> next{0};
  ParallelRun(threads, [&](int, int) {
    PrefillScratch& s = PrefillScratch::Get();
    for (int64_t n = next++; n < items; n = next++) {
      // Head by head, so that the threads share one head's K/V in the
      // caches (all heads' K/V at depth 8192 are past a 32 MiB L3); within
      // a head the latest position blocks first: they see the most keys.
      const int64_t blk = blocks - 1 - n % blocks, hb = n / blocks;
      const Item it{hb / p.Hkv, hb % p.Hkv, blk * positions,
                    std::min(positions, p.Sq - blk * positions)};
      pre.Run(it, s);
    }
  });
  return absl::OkStatus();
}

VariantTable PrefillTable() {
#define KILN_FA_PREFILL_VARIANT(dk, dv) {dk, dv, &FlashAttnPrefill<dk, dv>},
  static const Variant kVariants[] = {KILN_FA_HEAD_SIZES(KILN_FA_PREFILL_VARIANT)};
#undef KILN_FA_PREFILL_VARIANT
  return {kVariants, sizeof(kVariants) / sizeof(kVariants[0])};
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu::fa
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::cpu::fa {
HWY_EXPORT(PrefillTable);
VariantTable PrefillVariants() { return HWY_DYNAMIC_DISPATCH(PrefillTable)(); }
}  // namespace kiln::cpu::fa
#endif  // HWY_ONCE
