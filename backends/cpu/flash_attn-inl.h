// Highway pieces both CPU flash attention kernels use: K/V rows to f32
// scratch (keys masked for every row zero-filled, never read), mask tiles
// classified a vector at a time, the horizontal sums of dot products,
// softcap and mask applied to a tile of scores, and the online softmax
// update of one row over a tile. Include after hwy/highway.h inside
// a HWY_TARGET_INCLUDE'd file, like any Highway -inl.h.

// Per-target include guard.
#if defined(KILN_BACKENDS_CPU_FLASH_ATTN_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KILN_BACKENDS_CPU_FLASH_ATTN_INL_H_
#undef KILN_BACKENDS_CPU_FLASH_ATTN_INL_H_
#else
#define KILN_BACKENDS_CPU_FLASH_ATTN_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/convert-inl.h"
#include "backends/cpu/flash_attn_problem.h"
#include "backends/cpu/simd_math-inl.h"
#include "hwy/aligned_allocator.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu::fa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr size_t RoundUp(size_t x, size_t m) { return (x + m - 1) / m * m; }

// An aligned float buffer that only grows: per-thread scratch kept across
// calls, so the hot path neither allocates nor zeroes.
class Buffer {
 public:
  float* get(size_t n) {
    if (n > size_) {
      p_ = hwy::AllocateAligned<float>(n);
      size_ = n;
    }
    return p_.get();
  }

 private:
  hwy::AlignedFreeUniquePtr<float[]> p_;
  size_t size_ = 0;
};

// The cache lines of one tile's K and V rows (of one KV head), prefetched
// a few at a time between the micro-tiles of the work before them: issued
// in one burst (256 lines for 32 keys of f16 K/V at D = 128) they filled the
// line-fill buffers and stalled the FMA loops of the prefill kernel about as
// long as its conversion then waited without them (a head's rows are Hkv
// row sizes apart, a stride the hardware prefetcher follows late).
class TileLines {
 public:
  TileLines() = default;
  TileLines(const std::byte* k, int64_t ks, int64_t kbytes, const std::byte* v, int64_t vs,
            int64_t vbytes, int64_t rows)
      : k_(k), v_(v), ks_(ks), vs_(vs), kl_((kbytes + 63) / 64), per_row_(kl_ + (vbytes + 63) / 64),
        total_(rows * per_row_) {}

  // Issues the next n lines (fewer at the end). The (row, line) position
  // is kept as two counters: a division per line cost about as much as
  // the decode kernel's products (AVX2 EPYC, bench/RESULTS.md session 8).
  void Issue(int64_t n) {
    for (const int64_t end = std::min(total_, next_ + n); next_ < end; ++next_) {
      const std::byte* p = x_ < kl_ ? k_ + row_ * ks_ + x_ * 64 : v_ + row_ * vs_ + (x_ - kl_) * 64;
      __builtin_prefetch(p, 0, 3);
      if (++x_ == per_row_) x_ = 0, ++row_;
    }
    for (const int64_t end = std::min(2 * far_lines_, far_next_ + far_per_); far_next_ < end; ++far_next_) {
      __builtin_prefetch(far_next_ < far_lines_ ? far_k_ + far_next_ * 64 : far_v_ + (far_next_ - far_lines_) * 64, 0, 2);
    }
  }
  // Also brings `lines` lines from each of far_k and far_v towards the L2,
  // `per` of them on each Issue.
  void SetFar(const std::byte* far_k, const std::byte* far_v, int64_t lines, int64_t per) {
    far_k_ = far_k, far_v_ = far_v, far_lines_ = lines, far_per_ = per;
  }
  int64_t lines() const { return total_; }

 private:
  const std::byte *k_ = nullptr, *v_ = nullptr;
  int64_t ks_ = 0, vs_ = 0, kl_ = 0, per_row_ = 0, total_ = 0, next_ = 0, row_ = 0, x_ = 0;
  const std::byte *far_k_ = nullptr, *far_v_ = nullptr;
  int64_t far_lines_ = 0, far_next_ = 0, far_per_ = 0;
};

// ---------------------------------------------------------------- conversion

// Tile converters in the (bytes, values, out) form ConvertRows takes; the
// conversions themselves are convert-inl.h's, shared with LoadRow.
HWY_INLINE void F16ToF32(const std::byte* src, size_t n, float* dst) {
  kiln::cpu::HWY_NAMESPACE::F16RowToF32(reinterpret_cast<const uint16_t*>(src), n, dst);
}
HWY_INLINE void BF16ToF32(const std::byte* src, size_t n, float* dst) {
  kiln::cpu::HWY_NAMESPACE::BF16RowToF32(reinterpret_cast<const uint16_t*>(src), n, dst);
}
// n is a multiple of 32 (q8_0 rows are whole blocks).
HWY_INLINE void Q8ToF32(const std::byte* src, size_t n, float* dst) {
  kiln::cpu::HWY_NAMESPACE::Q8BlocksToF32(src, n / kQ8BlockSize, dst);
}
HWY_INLINE void F32ToF32(const std::byte* src, size_t n, float* dst) {
  std::memcpy(dst, src, n * sizeof(float));
}

// Converts rows [0, n) from src (row stride `stride` bytes, d values each) to
// f32 rows of dp floats (the padding past d is zeroed too); rows whose
// live[c] is 0 (null: all live) become zeros without being read.
template <class Convert>
HWY_INLINE void ConvertRows(Convert convert, const std::byte* src, int64_t stride, int64_t n,
                            const uint8_t* live, size_t d, size_t dp, float* dst) {
  for (int64_t c = 0; c < n; ++c) {
    float* row = dst + c * dp;
    if (!live || live[c]) {
      convert(src + c * stride, d, row);
      std::fill(row + d, row + dp, 0.0f);
    } else {
      std::fill(row, row + dp, 0.0f);
    }
  }
}

// The dtype switch is per tile; each case is a tight loop of one converter.
HWY_INLINE void RowsToF32(DType t, const std::byte* src, int64_t stride, int64_t n,
                          const uint8_t* live, size_t d, size_t dp, float* dst) {
  switch (t) {
    case DType::kF16: return ConvertRows(F16ToF32, src, stride, n, live, d, dp, dst);
    case DType::kBF16: return ConvertRows(BF16ToF32, src, stride, n, live, d, dp, dst);
    case DType::kQ8_0: return ConvertRows(Q8ToF32, src, stride, n, live, d, dp, dst);
    default: return ConvertRows(F32ToF32, src, stride, n, live, d, dp, dst);
  }
}

// ---------------------------------------------------------------- dot products

#if HWY_TARGET != HWY_SCALAR
// Adds the 128-bit blocks of v: a vector of 4 lanes.
template <class D>
HWY_INLINE hn::Vec<hn::Full128<float>> SumBlocks(D d, hn::Vec<D> v) {
  if constexpr (hn::MaxLanes(D()) <= 4) {
    return v;
  } else {
    const hn::Half<D> dh;
    return SumBlocks(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  }
}
#endif

// out[c] = sum of the lanes of a_c, for 4 vectors at once (one shuffle tree).
HWY_INLINE void Reduce4(VF a0, VF a1, VF a2, VF a3, float* out) {
#if HWY_TARGET == HWY_SCALAR
  out[0] = hn::GetLane(a0), out[1] = hn::GetLane(a1);
  out[2] = hn::GetLane(a2), out[3] = hn::GetLane(a3);
#else
  const DF df;
  const hn::Repartition<uint64_t, DF> du64;
  const VF t01 = hn::Add(hn::InterleaveLower(a0, a1), hn::InterleaveUpper(df, a0, a1));
  const VF t23 = hn::Add(hn::InterleaveLower(a2, a3), hn::InterleaveUpper(df, a2, a3));
  const auto w01 = hn::BitCast(du64, t01), w23 = hn::BitCast(du64, t23);
  const VF lo = hn::BitCast(df, hn::InterleaveLower(w01, w23));
  const VF hi = hn::BitCast(df, hn::InterleaveUpper(du64, w01, w23));
  hn::StoreU(SumBlocks(df, hn::Add(lo, hi)), hn::Full128<float>(), out);
#endif
}

// ---------------------------------------------------------------- masks

// How many of the kTileKeys mask values from row[j0] are -inf: kNone, kAll,
// or kSome (then the caller looks key by key).
enum class Masked { kNone, kAll, kSome };

template <class D>
HWY_INLINE Masked ClassifyBits(D d, const hn::TFromD<D>* p, hn::TFromD<D> neg_inf) {
  const size_t n = hn::Lanes(d);
  const auto ninf = hn::Set(d, neg_inf);
  bool all = true, none = true;
  for (size_t x = 0; x < static_cast<size_t>(kTileKeys); x += n) {
    const auto eq = hn::Eq(hn::LoadU(d, p + x), ninf);
    all = all && hn::AllTrue(d, eq);
    none = none && hn::AllFalse(d, eq);
  }
  return all ? Masked::kAll : (none ? Masked::kNone : Masked::kSome);
}

inline bool IsNegInfBits(DType t, const std::byte* row, int64_t j) {
  if (t == DType::kF32) {
    uint32_t u;
    std::memcpy(&u, row + 4 * j, 4);
    return u == 0xff800000u;
  }
  uint16_t h;
  std::memcpy(&h, row + 2 * j, 2);
  return h == 0xfc00u;
}

// Classifies keys [j0, j0 + nk) of a mask row (f32 or f16), nk <= kTileKeys.
HWY_INLINE Masked ClassifyMaskTile(DType t, const std::byte* row, int64_t j0, int64_t nk) {
  if (nk == kTileKeys) {  // the common case at vector speed
    if (t == DType::kF32) {
      return ClassifyBits(hn::ScalableTag<uint32_t>(),
                          reinterpret_cast<const uint32_t*>(row) + j0, 0xff800000u);
    }
    return ClassifyBits(hn::ScalableTag<uint16_t>(), reinterpret_cast<const uint16_t*>(row) + j0,
                        static_cast<uint16_t>(0xfc00u));
  }
  int64_t masked = 0;
  for (int64_t c = 0; c < nk; ++c) masked += IsNegInfBits(t, row, j0 + c);
  return masked == nk ? Masked::kAll : (masked == 0 ? Masked::kNone : Masked::kSome);
}

// Mask values of keys [j0, j0+nk) of a mask row as f32 in buf (rest: -inf).
HWY_INLINE const float* MaskValues(DType t, const std::byte* row, int64_t j0, int64_t nk,
                                   float* buf) {
  if (t == DType::kF32) {
    std::memcpy(buf, row + 4 * j0, nk * sizeof(float));
  } else {
    F16ToF32(row + 2 * j0, nk, buf);
  }
  std::fill(buf + nk, buf + kTileKeys, -std::numeric_limits<float>::infinity());
  return buf;
}

// ---------------------------------------------------------------- softmax

// s = softcap(s) + slope * mask over one tile, with s = -inf wherever the
// mask is -inf (even if the key's K row held NaN); mrow null: no mask.
HWY_INLINE void TransformTile(float* sr, const float* mrow, float softcap, float slope) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const bool cap = softcap > 0;
  if (!cap && !mrow) return;
  const VF vcap = hn::Set(df, softcap), vinv = hn::Set(df, cap ? 1.0f / softcap : 0.0f);
  const VF vslope = hn::Set(df, slope);
  const VF ninf = hn::Set(df, -std::numeric_limits<float>::infinity());
  for (size_t c = 0; c < static_cast<size_t>(kTileKeys); c += N) {
    VF x = hn::Load(df, sr + c);
    if (cap) x = hn::Mul(vcap, hn::Tanh(df, hn::Mul(x, vinv)));
    if (mrow) {
      const VF mv = hn::Load(df, mrow + c);
      x = hn::IfThenElse(hn::Eq(mv, ninf), ninf, hn::MulAdd(vslope, mv, x));
    }
    hn::Store(x, df, sr + c);
  }
}

// The online softmax update of one row over a tile of scores sr (kTileKeys,
// keys from `valid` on are past its causal limit): sr becomes
// p = e^(s - m_new), l and m are updated; returns the factor the row's
// output must be scaled by, or a negative value when the row saw no key yet
// (then sr is untouched and the row takes no part in the tile).
HWY_INLINE float SoftmaxTile(float* sr, int64_t valid, float& m, float& l) {
  const DF df;
  const size_t N = hn::Lanes(df), tk = kTileKeys;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t c = valid; c < kTileKeys; ++c) sr[c] = kNegInf;
  VF vmax = hn::Load(df, sr);
  for (size_t c = N; c < tk; c += N) vmax = hn::Max(vmax, hn::Load(df, sr + c));
  const float mnew = std::max(m, hn::GetLane(hn::MaxOfLanes(df, vmax)));
  if (mnew == kNegInf) return -1.0f;
  const VF vm = hn::Set(df, mnew);
  VF vsum = hn::Zero(df);
  for (size_t c = 0; c < tk; c += N) {
    const VF e = kiln::cpu::HWY_NAMESPACE::SafeExp(df, hn::Sub(hn::Load(df, sr + c), vm));  // NaN stays
    hn::Store(e, df, sr + c);
    vsum = hn::Add(vsum, e);
  }
  const float corr = std::exp(m - mnew);  // 0 when m was -inf
  l = l * corr + hn::GetLane(hn::SumOfLanes(df, vsum));
  m = mnew;
  return corr;
}

// ---------------------------------------------------------------- P.V

// True when the n floats from v are all finite (0 * x is NaN exactly for
// inf and NaN).
HWY_INLINE bool AllFinite(const float* v, size_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const VF zero = hn::Zero(df);
  VF acc = zero;
  size_t i = 0;
  for (; i + N <= n; i += N) acc = hn::MulAdd(hn::LoadU(df, v + i), zero, acc);
  float tail = 0;
  for (; i < n; ++i) tail += v[i] * 0.0f;
  return !std::isnan(tail) && hn::AllFalse(df, hn::IsNaN(acc));
}

// A V row may hold inf/NaN while its key is masked for some rows of a tile
// and seen by others: 0 * NaN must not reach the rows it is masked for.
// For each such row of v (nk rows vs apart, d values), adds p(r, j) * v_j to
// the rows r that see it (add(r, v_j, p)) and zeroes it, so that the
// vector P.V then adds 0 for it. Rare: callers check AllFinite first.
template <class P, class Add>
HWY_INLINE void SplitNonFiniteV(float* v, size_t nk, size_t vs, size_t d, size_t rows, P p,
                                Add add) {
  for (size_t j = 0; j < nk; ++j) {
    float* vj = v + j * vs;
    if (AllFinite(vj, d)) continue;
    for (size_t r = 0; r < rows; ++r) {
      const float pj = p(r, j);
      if (pj != 0.0f) add(r, vj, pj);
    }
    std::fill(vj, vj + d, 0.0f);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu::fa
HWY_AFTER_NAMESPACE();

#endif  // KILN_BACKENDS_CPU_FLASH_ATTN_INL_H_
