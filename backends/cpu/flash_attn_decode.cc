// CPU flash attention for decode (OPS.md): a few query positions (Sq <=
// kDecodeMaxSq) over a KV cache, bound by reading K and V once.
//
// - A work unit is one batch row and a range of key tiles, over every KV
//   head: tiles outermost, heads inside, so a thread walks the cache in
//   address order ([cell][head][d]) and a page serves every head before the
//   next (one head over the whole cache touches a page per two cells: TLB
//   misses and strides the prefetcher does not follow, ~3x slower).
// - Per tile and KV head, f16/bf16/f32 K and V rows are read in place and
//   widened a vector at a time inside the products, each vector once for
//   every query row of the head (GQA group x positions): scores 4 rows x 3-4
//   keys per step, P.V 4 rows x 3-4 vectors per key (a conversion pass into
//   scratch cost ~1/3 of the instructions per key). q8_0, head sizes that
//   are not whole vectors and tiles whose rows see different keys are
//   converted to f32 scratch first (keys no row sees zero-filled, unread).
// - Tiles masked for every row are skipped without reading K/V (the mask is
//   classified a vector at a time); in a partly masked tile, keys masked for
//   every row of a head are zero-filled, not read; a row takes part in a tile
//   only if it sees one of its keys, so a sequence of a shared cache pays for
//   its own cells only.
// - Online softmax per tile of 32 keys, not per key.
// - Threads: the key range is split into several ranges per thread, taken
//   dynamically (masked ranges cost nothing, so balance needs slack), and the
//   partial softmax states merged; one thread without a parallel region when
//   the problem is small. Scratch is per thread and kept across calls.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <type_traits>
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
#define HWY_TARGET_INCLUDE "backends/cpu/flash_attn_decode.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "backends/cpu/flash_attn-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu::fa {
namespace HWY_NAMESPACE {

// Register tiles (16 vector registers on AVX2, 32 on AVX-512): scores of
// kScoreRows rows x kScoreKeys keys, P.V of 4 rows x kPvVecs vectors.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr size_t kPvVecs = 4;
constexpr size_t kScoreKeys = 4;
#else
constexpr size_t kPvVecs = 3;  // 12 accumulators + 3 V + 1 P broadcast
constexpr size_t kScoreKeys = 3;  // 12 accumulators + 3 K + 1 Q
#endif
constexpr size_t kScoreRows = 4;
// Floats per row of the score scratch: a tile plus the lanes a 4-key
// reduction writes past the last key, rounded up so that rows stay aligned
// to 64 bytes (the softmax loads them aligned).
constexpr size_t kScoreStride = kTileKeys + 16;

// Below AVX2 Highway emulates f16 without inf/NaN handling (convert-inl.h):
// those targets read f16 K/V through the exact scalar conversion only.
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX2
constexpr bool kVectorF16 = false;
#else
constexpr bool kVectorF16 = true;
#endif

// Rows of a K or V tile of element type T, `stride` elements apart, widened
// to f32 a vector at a time where the products read them: either the f32
// scratch a tile was converted into, or the cache itself (f16, bf16, f32
// rows read in place: no conversion pass, and each value is widened once
// for every query row of its KV head).
template <class T>
struct Rows {
  const T* p;
  size_t stride;
  HWY_INLINE VF Load(size_t j, size_t x) const {
    const DF df;
    if constexpr (std::is_same_v<T, float>) {
      return hn::LoadU(df, p + j * stride + x);
    } else if constexpr (std::is_same_v<T, hwy::float16_t>) {
      return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(), p + j * stride + x));
    } else {  // uint16_t: bf16 bits, the high half of an f32
      const hn::RebindToUnsigned<DF> du;
      const hn::Rebind<uint16_t, DF> du16;
      return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, p + j * stride + x))));
    }
  }
};

// s[r][0, 4) = <q[r], k_key[c]> for kRows rows and kKeys <= 4 keys (lanes
// past kKeys hold garbage the next call or the tile's end overwrites); q
// rows and k rows are dk floats (a multiple of the vector length). Each K
// vector is loaded once for all rows.
template <size_t kRows, size_t kKeys, class R>
HWY_INLINE void DotKeys(const float* const* q, const R& k, const size_t* key, size_t dk,
                        float* const* s) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[kRows][kKeys];
  for (size_t r = 0; r < kRows; ++r) {
    for (size_t c = 0; c < kKeys; ++c) acc[r][c] = hn::Zero(df);
  }
  for (size_t x = 0; x < dk; x += N) {
    VF kv[kKeys];
    for (size_t c = 0; c < kKeys; ++c) kv[c] = k.Load(key[c], x);
    for (size_t r = 0; r < kRows; ++r) {
      const VF qv = hn::Load(df, q[r] + x);
      for (size_t c = 0; c < kKeys; ++c) acc[r][c] = hn::MulAdd(qv, kv[c], acc[r][c]);
    }
  }
  for (size_t r = 0; r < kRows; ++r) {
    const VF a1 = kKeys > 1 ? acc[r][kKeys > 1 ? 1 : 0] : acc[r][0];
    const VF a2 = kKeys > 2 ? acc[r][kKeys > 2 ? 2 : 0] : acc[r][0];
    const VF a3 = kKeys > 3 ? acc[r][kKeys > 3 ? 3 : 0] : acc[r][0];
    Reduce4(acc[r][0], a1, a2, a3, s[r]);
  }
}

// o[r][0, kVecs*N) = o[r] * corr[r] + sum_j p[r][j] v_j[c0, c0 + kVecs*N)
// for kRows rows: each V vector loaded (and widened) once for all rows.
template <size_t kRows, size_t kVecs, class R>
HWY_INLINE void AccumulateRowsV(const float* const* p, size_t nk, const R& v, size_t c0,
                                const float* corr, float* const* o) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[kRows][kVecs];
  for (size_t r = 0; r < kRows; ++r) {
    const VF vc = hn::Set(df, corr[r]);
    for (size_t i = 0; i < kVecs; ++i) acc[r][i] = hn::Mul(hn::Load(df, o[r] + i * N), vc);
  }
  for (size_t j = 0; j < nk; ++j) {
    VF vv[kVecs];
    for (size_t i = 0; i < kVecs; ++i) vv[i] = v.Load(j, c0 + i * N);
    for (size_t r = 0; r < kRows; ++r) {
      const VF pj = hn::Set(df, p[r][j]);
      for (size_t i = 0; i < kVecs; ++i) acc[r][i] = hn::MulAdd(pj, vv[i], acc[r][i]);
    }
  }
  for (size_t r = 0; r < kRows; ++r) {
    for (size_t i = 0; i < kVecs; ++i) hn::Store(acc[r][i], df, o[r] + i * N);
  }
}

// Per-thread scratch, kept across calls (it only grows).
struct DecodeScratch {
  Buffer q, k, v, s, mv, state;
  std::vector<Masked> mclass;   // per distinct mask row of the tile
  std::vector<uint8_t> live;    // per key of the tile: some row of the head sees it
  std::vector<int64_t> valid;   // per position: keys of the tile before its causal limit
  std::vector<int64_t> slots;   // the rows taking part in the tile (one KV head)
  std::vector<float> corr, slope;

  static DecodeScratch& Get() {
    static thread_local DecodeScratch s;
    return s;
  }
};

template <class T>
void Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Rows of a batch row: ri = (kvh * Sq + i) * G + g is position i of query
// head kvh * G + g, so the rows of one KV head are adjacent.
template <int kDk, int kDv>
class Decoder {
 public:
  explicit Decoder(const Problem& p)
      : p_(p),
        dk_(kDk ? kDk : p.Dk),
        dv_(kDv ? kDv : p.Dv),
        dkp_(RoundUp(dk_, hn::Lanes(DF()))),
        dvp_(RoundUp(dv_, hn::Lanes(DF()))),
        rows_(p.Sq * p.Hq),
        nmask_(!p.mask.present() ? 0 : (p.mask_h == 1 ? p.Sq : p.Sq * p.Hq)),
        direct_(Direct(p, dk_, dv_)),
        far_(TuningValue("KILN_CPU_FA", "far", 1)) {}

  int64_t rows() const { return rows_; }
  size_t dvp() const { return dvp_; }

  void Reset(float* m, float* l, float* o) const {
    std::fill(m, m + rows_, -std::numeric_limits<float>::infinity());
    std::fill(l, l + rows_, 0.0f);
    std::fill(o, o + rows_ * dvp_, 0.0f);
  }

  // Continues the softmax states (m, l, o) of batch row b's rows over the key
  // tiles [t0, t1).
  void Attend(int64_t b, int64_t t0, int64_t t1, DecodeScratch& s, float* m, float* l,
              float* o) const {
    const int64_t Sq = p_.Sq, G = p_.G, tk = kTileKeys;
    const bool has_mask = nmask_ > 0;
    float* q = s.q.get(rows_ * dkp_);
    float* kt = s.k.get(tk * dkp_);
    float* vt = s.v.get(tk * dvp_);
    float* sc = s.s.get(Sq * G * kScoreStride);
    float* mv = s.mv.get(tk);
    Grow(s.mclass, nmask_), Grow(s.live, tk), Grow(s.valid, Sq);
    Grow(s.slots, Sq * G), Grow(s.corr, Sq * G), Grow(s.slope, p_.Hq);
    for (int64_t h = 0; h < p_.Hq; ++h) s.slope[h] = p_.slope(h);
    LoadQueries(b, q);

    for (int64_t tile = t0; tile < t1; ++tile) {
      const int64_t j0 = tile * tk;
      if (j0 >= p_.Skv) break;
      const int64_t nk = std::min<int64_t>(tk, p_.Skv - j0);
      bool any = false, partial = false;  // partial: some row's causal limit inside the tile
      for (int64_t i = 0; i < Sq; ++i) {
        s.valid[i] = std::clamp<int64_t>(p_.KeyEnd(i) - j0, 0, nk);
        any = any || s.valid[i] > 0;
        partial = partial || (s.valid[i] > 0 && s.valid[i] < nk);
      }
      if (!any) continue;
      if (has_mask) {
        any = false;
        for (int64_t u = 0; u < nmask_; ++u) {
          s.mclass[u] = s.valid[u % Sq] == 0
                            ? Masked::kAll
                            : ClassifyMaskTile(p_.mask.dtype, MaskRowOf(b, u), j0, nk);
          any = any || s.mclass[u] != Masked::kAll;
        }
        if (!any) continue;  // every key masked for every row: K/V not read
      }
      // Keys some row sees: one set for every head unless the mask is per head.
      const uint8_t* shared_live = p_.mask_h == 1 ? KeysLive(b, 0, j0, s) : nullptr;
      for (int64_t kvh = 0; kvh < p_.Hkv; ++kvh) {
        size_t n = 0;
        int64_t positions = 0;
        for (int64_t i = 0; i < Sq; ++i) {
          if (s.valid[i] == 0) continue;
          const size_t n0 = n;
          for (int64_t g = 0; g < G; ++g) {
            if (has_mask && s.mclass[MaskIndex(i, kvh * G + g)] == Masked::kAll) continue;
            s.slots[n++] = (kvh * Sq + i) * G + g;
          }
          positions += n > n0;
        }
        if (n == 0) continue;
        // Whether the rows may see different keys of the tile.
        const bool mixed = (positions > 1 && (has_mask || partial)) || (p_.mask_h > 1 && n > 1);
        const uint8_t* live = p_.mask_h == 1 ? shared_live : KeysLive(b, kvh, j0, s);
        // The next head's rows of this tile (or the first head's of the
        // next tile), spread over this head's products.
        TileLines next = NextLines(b, kvh, j0, t1);
        const int64_t calls = static_cast<int64_t>((n + kScoreRows - 1) / kScoreRows) *
                              ((nk + kScoreKeys - 1) / kScoreKeys + (dvp_ + kPvVecs * hn::Lanes(DF()) - 1) / (kPvVecs * hn::Lanes(DF())));
        const int64_t per = (next.lines() + calls - 1) / calls;
        SetFarLines(b, kvh, j0, t1, calls, next);
        // In place when every row sees the same keys and all of them (a key
        // no row sees may hold anything, and is not read), else from
        // converted scratch with those keys zero.
        const bool in_place = direct_ && !mixed && AllLive(live, nk);
        if (in_place) {
          TileOf(p_.k, b, kvh, j0, [&](const auto& k) { Scores(q, k, dk_, s.slots.data(), n, nk, sc, next, per); });
        } else {
          LoadTile(p_.k, b, kvh, j0, nk, live, dk_, dkp_, kt);
          Scores(q, Rows<float>{kt, dkp_}, dkp_, s.slots.data(), n, nk, sc, next, per);
        }

        // Softcap, mask, causal limit; then the online softmax update.
        size_t active = 0;
        for (size_t x = 0; x < n; ++x) {
          const int64_t ri = s.slots[x], i = (ri / G) % Sq, h = kvh * G + ri % G;
          float* sr = sc + x * kScoreStride;
          const float* mrow =
              has_mask ? MaskValues(p_.mask.dtype, MaskRowOf(b, MaskIndex(i, h)), j0, nk, mv)
                       : nullptr;
          TransformTile(sr, mrow, p_.softcap, s.slope[h]);
          const float corr = SoftmaxTile(sr, s.valid[i], m[ri], l[ri]);
          if (corr < 0) continue;
          if (active != x) std::copy(sr, sr + tk, sc + active * kScoreStride);
          s.slots[active] = ri, s.corr[active] = corr;
          ++active;
        }
        if (active == 0) continue;
        if (in_place) {
          TileOf(p_.v, b, kvh, j0, [&](const auto& v) {
            AccumulateV(sc, v, s.slots.data(), s.corr.data(), active, nk, o, next, per);
          });
          continue;
        }
        LoadTile(p_.v, b, kvh, j0, nk, live, dv_, dvp_, vt);
        if (mixed && !AllFinite(vt, nk * dvp_)) {
          // A non-finite V row must only reach the rows that see it: rescale
          // now, add its terms one by one, then P.V without it.
          for (size_t x = 0; x < active; ++x) {
            float* orow = o + s.slots[x] * dvp_;
            for (size_t c = 0; c < dvp_; ++c) orow[c] *= s.corr[x];
            s.corr[x] = 1.0f;
          }
          SplitNonFiniteV(
              vt, nk, dvp_, dv_, active, [&](size_t x, size_t j) { return sc[x * kScoreStride + j]; },
              [&](size_t x, const float* vj, float pj) {
                float* orow = o + s.slots[x] * dvp_;
                for (size_t c = 0; c < dv_; ++c) orow[c] += pj * vj[c];
              });
        }
        AccumulateV(sc, Rows<float>{vt, dvp_}, s.slots.data(), s.corr.data(), active, nk, o, next, per);
      }
    }
  }

  // Normalizes row ri of batch row b (sinks included) and writes it to out.
  void FinishRow(int64_t b, int64_t ri, float m, float l, float* orow) const {
    const DF df;
    const size_t N = hn::Lanes(df);
    const int64_t g = ri % p_.G, i = (ri / p_.G) % p_.Sq, h = ri / (p_.G * p_.Sq) * p_.G + g;
    const float factor = NormalizeFactor(m, l, p_.sinks ? p_.sinks + h : nullptr);
    const VF vf = hn::Set(df, factor);
    for (size_t c = 0; c < dvp_; c += N) hn::Store(hn::Mul(hn::Load(df, orow + c), vf), df, orow + c);
    StoreRow(p_.out.dtype, orow, dv_, p_.OutRow(b, i, h));
  }

 private:
  // Distinct mask rows: one per position, or per (head, position).
  int64_t MaskIndex(int64_t i, int64_t h) const { return p_.mask_h == 1 ? i : h * p_.Sq + i; }
  const std::byte* MaskRowOf(int64_t b, int64_t u) const {
    return p_.mask_h == 1 ? p_.MaskRow(b, 0, u) : p_.MaskRow(b, u / p_.Sq, u % p_.Sq);
  }

  // Per key of the tile: some row of KV head kvh sees it (null: every key
  // is seen, nothing to look up).
  const uint8_t* KeysLive(int64_t b, int64_t kvh, int64_t j0, DecodeScratch& s) const {
    const bool has_mask = nmask_ > 0;
    bool all = true;
    for (int64_t i = 0; i < p_.Sq; ++i) all = all && s.valid[i] == kTileKeys;
    if (!has_mask && all) return nullptr;
    uint8_t* live = s.live.data();
    std::fill(live, live + kTileKeys, 0);
    const int64_t heads = has_mask && p_.mask_h > 1 ? p_.G : 1;
    for (int64_t i = 0; i < p_.Sq; ++i) {
      const int64_t valid = s.valid[i];
      for (int64_t g = 0; g < heads && valid > 0; ++g) {
        const int64_t u = MaskIndex(i, kvh * p_.G + g);
        const Masked cls = has_mask ? s.mclass[u] : Masked::kNone;
        if (cls == Masked::kNone) {
          std::fill(live, live + valid, 1);
        } else if (cls == Masked::kSome) {
          const std::byte* row = MaskRowOf(b, u);
          for (int64_t c = 0; c < valid; ++c) live[c] |= !IsNegInfBits(p_.mask.dtype, row, j0 + c);
        }
      }
    }
    return live;
  }

  // q rows of batch row b, scaled, as f32 rows of dkp_ (padding zero).
  void LoadQueries(int64_t b, float* q) const {
    for (int64_t ri = 0; ri < rows_; ++ri) {
      const int64_t g = ri % p_.G, i = (ri / p_.G) % p_.Sq, h = ri / (p_.G * p_.Sq) * p_.G + g;
      float* dst = q + ri * dkp_;
      LoadRow(p_.q.dtype, p_.QRow(b, i, h), dk_, dst);
      for (size_t d = 0; d < dk_; ++d) dst[d] *= p_.scale;
      std::fill(dst + dk_, dst + dkp_, 0.0f);
    }
  }

  // Rows [j0, j0+nk) of K or V for KV head kvh as f32 (dead keys zero).
  static void LoadTile(const TensorView& t, int64_t b, int64_t kvh, int64_t j0, int64_t nk,
                       const uint8_t* live, size_t d, size_t dp, float* dst) {
    const std::byte* base = t.data + b * t.strides[0] + j0 * t.strides[1] + kvh * t.strides[2];
    RowsToF32(t.dtype, base, t.strides[1], nk, live, d, dp, dst);
  }

  // K and V lines of the work after head kvh's tile at j0: the next head's
  // rows of the tile, or the first head's of the next tile (none past t1).
  TileLines NextLines(int64_t b, int64_t kvh, int64_t j0, int64_t t1) const {
    if (kvh + 1 == p_.Hkv) kvh = -1, j0 += kTileKeys;
    const int64_t nk = std::min<int64_t>(kTileKeys, std::min(t1 * kTileKeys, p_.Skv) - j0);
    if (nk <= 0) return TileLines();
    auto at = [&](const TensorView& t) {
      return t.data + b * t.strides[0] + j0 * t.strides[1] + (kvh + 1) * t.strides[2];
    };
    return TileLines(at(p_.k), p_.k.strides[1], RowBytes(p_.k.dtype, static_cast<int64_t>(dk_)), at(p_.v),
                     p_.v.strides[1], RowBytes(p_.v.dtype, static_cast<int64_t>(dv_)), nk);
  }

  // Part kvh (of Hkv) of tile (j0 / kTileKeys + far_)'s K and V rows, for
  // all heads, towards the L2, spread over `calls` Issue calls: the rows of
  // a tile are one contiguous run of K and one of V when the heads are
  // adjacent in a cell, and a tile ahead is the lead the per-head L1
  // prefetch (NextLines) does not give: on the Zen 4 decode at d8192 /
  // d32768 ran 1.1-1.3x faster with it (bench/RESULTS.md, session 9).
  // Called from live tiles only: a masked run of tiles costs at most the
  // one tile after the last live one.
  void SetFarLines(int64_t b, int64_t kvh, int64_t j0, int64_t t1, int64_t calls, TileLines& next) const {
    const int64_t jf = j0 + far_ * kTileKeys;
    const TensorView &k = p_.k, &v = p_.v;
    if (far_ <= 0 || jf >= std::min(t1 * kTileKeys, p_.Skv)) return;
    if (k.strides[2] * p_.Hkv != k.strides[1] || v.strides[2] * p_.Hkv != v.strides[1] || k.strides[1] != v.strides[1]) {
      return;
    }
    const int64_t nk = std::min<int64_t>(kTileKeys, p_.Skv - jf);
    const int64_t lines = nk * k.strides[1] / 64 / p_.Hkv;
    const int64_t at = jf * k.strides[1] + kvh * lines * 64;
    next.SetFar(k.data + b * k.strides[0] + at, v.data + b * v.strides[0] + at, lines, (lines + calls - 1) / calls);
  }

  static bool AllLive(const uint8_t* live, int64_t nk) {
    return !live || std::all_of(live, live + nk, [](uint8_t x) { return x != 0; });
  }

  // Calls f(Rows<T>) over rows [j0, ...) of K or V for KV head kvh in the
  // cache, T its element type (direct_: f16, bf16 or f32).
  template <class F>
  static void TileOf(const TensorView& t, int64_t b, int64_t kvh, int64_t j0, F&& f) {
    const std::byte* base = t.data + b * t.strides[0] + j0 * t.strides[1] + kvh * t.strides[2];
    const size_t stride = t.strides[1] / ElementSize(t.dtype);
    if (t.dtype == DType::kF16) {
      f(Rows<hwy::float16_t>{reinterpret_cast<const hwy::float16_t*>(base), stride});
    } else if (t.dtype == DType::kBF16) {
      f(Rows<uint16_t>{reinterpret_cast<const uint16_t*>(base), stride});
    } else {
      f(Rows<float>{reinterpret_cast<const float*>(base), stride});
    }
  }

  // sc[x][c] = <q_{slots[x]}, k_c> for the n rows taking part (dk floats
  // per row, a multiple of the vector length), kScoreRows rows x
  // kScoreKeys keys per step; a last short group of keys repeats the tile's
  // last key (its extra scores land past nk, where the softmax puts -inf).
  template <class R>
  void Scores(const float* q, const R& k, size_t dk, const int64_t* slots, size_t n, int64_t nk,
              float* sc, TileLines& next, int64_t per) const {
    const float* qp[kScoreRows];
    float* sp[kScoreRows];
    size_t key[kScoreKeys];
    for (size_t x = 0; x < n; x += kScoreRows) {
      const size_t nr = std::min(kScoreRows, n - x);
      for (size_t y = 0; y < nr; ++y) qp[y] = q + slots[x + y] * dkp_;
      for (int64_t c = 0; c < nk; c += kScoreKeys) {
        for (size_t y = 0; y < nr; ++y) sp[y] = sc + (x + y) * kScoreStride + c;
        for (size_t i = 0; i < kScoreKeys; ++i) key[i] = std::min<int64_t>(c + i, nk - 1);
        switch (nr) {
          case 4: DotKeys<4, kScoreKeys>(qp, k, key, dk, sp); break;
          case 3: DotKeys<3, kScoreKeys>(qp, k, key, dk, sp); break;
          case 2: DotKeys<2, kScoreKeys>(qp, k, key, dk, sp); break;
          default: DotKeys<1, kScoreKeys>(qp, k, key, dk, sp); break;
        }
        next.Issue(per);
      }
    }
  }

  // o_r = o_r * corr + P.V for the active rows, 4 rows per pass over V.
  template <class R>
  void AccumulateV(const float* sc, const R& v, const int64_t* slots, const float* corr, size_t n,
                   int64_t nk, float* o, TileLines& next, int64_t per) const {
    const size_t N = hn::Lanes(DF());
    for (size_t x = 0; x < n; x += 4) {
      const size_t nr = std::min<size_t>(4, n - x);
      const float* pr[4];
      float* orow[4];
      for (size_t y = 0; y < nr; ++y) {
        pr[y] = sc + (x + y) * kScoreStride, orow[y] = o + slots[x + y] * dvp_;
      }
      for (size_t c = 0; c < dvp_;) {
        const size_t vecs = c + kPvVecs * N <= dvp_ ? kPvVecs : 1;
        float* oc[4];
        for (size_t y = 0; y < nr; ++y) oc[y] = orow[y] + c;
        switch (nr * 8 + vecs) {
          case 4 * 8 + kPvVecs: AccumulateRowsV<4, kPvVecs>(pr, nk, v, c, corr + x, oc); break;
          case 3 * 8 + kPvVecs: AccumulateRowsV<3, kPvVecs>(pr, nk, v, c, corr + x, oc); break;
          case 2 * 8 + kPvVecs: AccumulateRowsV<2, kPvVecs>(pr, nk, v, c, corr + x, oc); break;
          case 1 * 8 + kPvVecs: AccumulateRowsV<1, kPvVecs>(pr, nk, v, c, corr + x, oc); break;
          case 4 * 8 + 1: AccumulateRowsV<4, 1>(pr, nk, v, c, corr + x, oc); break;
          case 3 * 8 + 1: AccumulateRowsV<3, 1>(pr, nk, v, c, corr + x, oc); break;
          case 2 * 8 + 1: AccumulateRowsV<2, 1>(pr, nk, v, c, corr + x, oc); break;
          default: AccumulateRowsV<1, 1>(pr, nk, v, c, corr + x, oc); break;
        }
        next.Issue(per);
        c += vecs * N;
      }
    }
  }

  // K and V are read in place (f16 with vector conversion, bf16 or f32;
  // rows of whole vectors); else every tile goes through scratch.
  static bool Direct(const Problem& p, size_t dk, size_t dv) {
    const size_t N = hn::Lanes(DF());
    auto ok = [](DType t) { return t == DType::kF32 || t == DType::kBF16 || (t == DType::kF16 && kVectorF16); };
    return ok(p.k.dtype) && ok(p.v.dtype) && dk % N == 0 && dv % N == 0;
  }

  const Problem& p_;
  const size_t dk_, dv_, dkp_, dvp_;
  const int64_t rows_, nmask_;
  const bool direct_;
  const int64_t far_;  // KILN_CPU_FA=far=N: tiles ahead for the L2 prefetch (0: none)
};

// Partial states of the split key ranges, on the calling thread, kept across calls.
struct DecodeParts {
  Buffer m, l, o;
  static DecodeParts& Get() {
    static thread_local DecodeParts p;
    return p;
  }
};

template <int kDk, int kDv>
absl::Status FlashAttnDecode(const KernelArgs& args) {
  Problem p;
  if (absl::Status st = ResolveProblem(args, p); !st.ok()) return st;
  if (p.B == 0 || p.Sq == 0 || p.Hq == 0) return absl::OkStatus();
  const Decoder<kDk, kDv> dec(p);
  const int64_t rows = dec.rows(), dvp = static_cast<int64_t>(dec.dvp());
  const int64_t tiles = (p.Skv + kTileKeys - 1) / kTileKeys;

  // Threads: none for tiny problems; split the keys when batch rows are few.
  const double work = static_cast<double>(p.B) * p.Hq * p.Sq * p.Skv * (p.Dk + p.Dv);
  int threads = work < 2e5 ? 1 : p.threads;
  int64_t splits = 1;
  if (threads > 1 && p.B < 4 * threads) {
    splits = std::clamp<int64_t>((8 * threads + p.B - 1) / p.B, 1, std::max<int64_t>(tiles / 2, 1));
  }
  const int64_t units = p.B * splits;
  threads = static_cast<int>(std::min<int64_t>(threads, units));

  DecodeParts& parts = DecodeParts::Get();
  float* pm = parts.m.get(units * rows);
  float* pl = parts.l.get(units * rows);
  float* po = parts.o.get(units * rows * dvp);
  // One parallel region: a second one would wake the pool again (a
  // scheduler tick when another process holds the core).
  std::atomic<int64_t> next{0};
  ParallelRun(threads, [&](int t, int nt) {
    DecodeScratch& s = DecodeScratch::Get();
    for (int64_t u = next++; u < units; u = next++) {
      const int64_t b = u / splits, sp = u % splits;
      float *m = pm + u * rows, *l = pl + u * rows, *o = po + u * rows * dvp;
      dec.Reset(m, l, o);
      dec.Attend(b, tiles * sp / splits, tiles * (sp + 1) / splits, s, m, l, o);
      if (splits == 1) {
        for (int64_t ri = 0; ri < rows; ++ri) dec.FinishRow(b, ri, m[ri], l[ri], o + ri * dvp);
      }
    }
    if (splits == 1) return;
#pragma omp barrier
    // Merge the parts of each row (rows split evenly over the threads).
    const int64_t total = p.B * rows;
    for (int64_t r = total * t / nt; r < total * (t + 1) / nt; ++r) {
      const int64_t b = r / rows, ri = r % rows, base = b * splits * rows + ri;
      float *m = pm + base, *l = pl + base, *o = po + base * dvp;
      MergeParts(splits, m, l, o, rows, rows * dvp, dvp);
      dec.FinishRow(b, ri, *m, *l, o);
    }
  });
  return absl::OkStatus();
}

VariantTable DecodeTable() {
#define KILN_FA_DECODE_VARIANT(dk, dv) {dk, dv, &FlashAttnDecode<dk, dv>},
  static const Variant kVariants[] = {KILN_FA_HEAD_SIZES(KILN_FA_DECODE_VARIANT)};
#undef KILN_FA_DECODE_VARIANT
  return {kVariants, sizeof(kVariants) / sizeof(kVariants[0])};
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu::fa
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::cpu::fa {
HWY_EXPORT(DecodeTable);
VariantTable DecodeVariants() { return HWY_DYNAMIC_DISPATCH(DecodeTable)(); }
}  // namespace kiln::cpu::fa
#endif  // HWY_ONCE
