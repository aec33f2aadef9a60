// CPU flash attention (OPS.md): online softmax in one pass over the keys, f32
// accumulation, Highway SIMD, OpenMP over (batch, KV head, query-row block).
//
// - A work item is one KV head of one batch and a block of query positions;
//   its rows are every (position, query head) pair that reads that KV head
//   (GQA), so each K/V row is read and converted once per item.
// - Keys go in tiles of kTileKeys. A tile whose keys are all masked (-inf
//   mask, or past the causal limit) for every row of the item is skipped:
//   its K/V rows are never read (the mask is classified a vector at a time).
//   Within a tile, keys masked for every row are not read either
//   (zero-filled), so unwritten cache cells never matter; rows that see no
//   key of the tile take no part in it (several sequences in one item each
//   pay only for their own cells).
// - f16/bf16/q8_0 K/V rows are converted to f32 tile by tile into L1-sized
//   scratch, padded with zeros to whole vectors; the next tile's rows are
//   prefetched (one head's rows are too sparse for the hardware prefetcher).
// - Scores: 4 keys x up to 4 rows per step, the 4 dot products of a row
//   reduced together; then softcap, ALiBi-scaled mask, causal limit and the
//   online softmax update (Highway Exp/Tanh), and P.V with the row's output
//   accumulators in registers.
// - With fewer work items than threads (decode of one sequence), the key
//   range of an item is split and the partial softmax states are merged.
//
// Specialization: template instances for the common head sizes (Dk, Dv)
// (compile-time trip counts, unrolled vector loops); a generic instance takes
// any head size, so every valid node runs. The K/V dtype is switched once per
// tile, each case a tight loop of one inlined converter: the same inner code
// a dtype template parameter would give, without 4x the instances (the
// conversion is a small part of a tile's work).
// Highway runtime dispatch: the target-specific code builds one table of
// instances per target; select() reads the best target's table through
// HWY_DYNAMIC_DISPATCH of a plain function returning it (HWY_EXPORT cannot
// name a template instance). SSSE3 is not compiled (SSE4 covers those CPUs
// with one target less to build).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/kernel_util.h"
#include "graph/dtype.h"
#include "ops/flash_attn.h"

#ifndef KILN_BACKENDS_CPU_FLASH_ATTN_SHARED_
#define KILN_BACKENDS_CPU_FLASH_ATTN_SHARED_

#include <omp.h>

namespace kiln::cpu::fa {

inline constexpr int64_t kTileKeys = 32;   // keys per tile: the unit of mask skipping
inline constexpr int64_t kBlockRows = 32;  // rows (positions x heads) per work item, target

// Everything a kernel instance needs, resolved once per call.
struct Problem {
  TensorView q, k, v, mask, out;
  const float* sinks = nullptr;  // [Hq] (innermost contiguous), or null
  int64_t B = 0, Sq = 0, Hq = 0, Dk = 0, Skv = 0, Hkv = 0, Dv = 0, G = 0;
  int64_t mask_b = 1, mask_h = 1;  // the mask's broadcast dims (Bm, Hm)
  float scale = 1, softcap = 0;
  bool causal = false;
  std::vector<float> slopes;  // ALiBi slope per query head (1 without ALiBi)
  int64_t positions = 1;      // query positions per work item
  int64_t blocks = 1;         // work items per (batch, KV head)
  int64_t max_rows = 1;       // positions * G
  int64_t items = 0;          // B * Hkv * blocks
  int64_t splits = 1;         // key-range splits per item (decode parallelism)
  int threads = 1;
};

inline TensorView InputOrAbsent(const KernelArgs& a, int i) {
  return i < static_cast<int>(a.inputs.size()) ? a.inputs[i] : TensorView{};
}

// Shapes and attributes come from ResolveFlashAttn (ops/flash_attn.h), once
// per call; the rest is this kernel's work split.
inline absl::Status MakeProblem(const KernelArgs& a, Problem& p) {
  auto params = ResolveFlashAttn(*a.node, a.inputs, a.outputs);
  if (!params.ok()) return params.status();
  const FlashAttnParams& prm = *params;
  p.q = a.inputs[kFlashAttnQ];
  p.k = a.inputs[kFlashAttnK];
  p.v = a.inputs[kFlashAttnV];
  p.mask = InputOrAbsent(a, kFlashAttnMask);
  const TensorView sinks = InputOrAbsent(a, kFlashAttnSinks);
  p.sinks = sinks.present() ? reinterpret_cast<const float*>(sinks.data) : nullptr;
  p.out = a.outputs[kFlashAttnOut];
  p.B = prm.B, p.Sq = prm.Sq, p.Hq = prm.Hq, p.Dk = prm.Dk;
  p.Skv = prm.Skv, p.Hkv = prm.Hkv, p.Dv = prm.Dv;
  p.G = prm.gqa;
  p.mask_b = prm.mask_b, p.mask_h = prm.mask_h;
  p.scale = static_cast<float>(prm.scale);
  p.softcap = static_cast<float>(prm.softcap);
  p.causal = prm.causal;
  p.slopes.resize(p.Hq);
  for (int64_t h = 0; h < p.Hq; ++h) p.slopes[h] = static_cast<float>(prm.slope(h));

  p.positions = std::clamp<int64_t>(kBlockRows / p.G, 1, std::max<int64_t>(p.Sq, 1));
  p.blocks = (p.Sq + p.positions - 1) / p.positions;
  p.max_rows = p.positions * p.G;
  p.items = p.B * p.Hkv * p.blocks;

  // Threads: none for tiny problems; split the keys when items are too few.
  const double work = static_cast<double>(p.B) * p.Hq * p.Sq * p.Skv * (p.Dk + p.Dv);
  p.threads = work < 2e5 ? 1 : std::max(1, a.threads);
  const int64_t tiles = (p.Skv + kTileKeys - 1) / kTileKeys;
  if (p.threads > 1 && p.items < 2 * p.threads && tiles >= 8) {
    const int64_t want = (2 * p.threads + p.items - 1) / p.items;
    p.splits = std::clamp<int64_t>(want, 1, tiles / 4);
  }
  p.threads = static_cast<int>(std::min<int64_t>(p.threads, p.items * p.splits));
  return absl::OkStatus();
}

// One kernel instance of the table a target exports.
struct Variant {
  int dk, dv;  // 0: any
  KernelFn fn;
};
struct VariantTable {
  const Variant* begin;
  size_t size;
};

}  // namespace kiln::cpu::fa

#endif  // KILN_BACKENDS_CPU_FLASH_ATTN_SHARED_

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/flash_attn.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/aligned_allocator.h"
#include "hwy/cache_control.h"
#include "hwy/contrib/math/math-inl.h"
#include "backends/cpu/convert-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu::fa {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr size_t RoundUp(size_t x, size_t m) { return (x + m - 1) / m * m; }

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

// Converts rows [j0, j0+n) of a K or V head (row stride `stride` bytes, d
// values each) to f32 rows of dp floats; rows whose live[c] is 0 become zeros.
// The dtype switch is per tile; each case is a tight loop of one converter.
template <class Convert>
HWY_INLINE void ConvertRows(Convert convert, const std::byte* src, int64_t stride, int64_t n,
                            const uint8_t* live, size_t d, size_t dp, float* dst) {
  for (int64_t c = 0; c < n; ++c) {
    float* row = dst + c * dp;
    if (live[c]) {
      convert(src + c * stride, d, row);
    } else {
      std::fill(row, row + d, 0.0f);
    }
  }
}

HWY_INLINE void F32ToF32(const std::byte* src, size_t n, float* dst) {
  std::memcpy(dst, src, n * sizeof(float));
}

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

// s[r][c] = <q[r], k_c> for kRows rows and 4 keys (rows ks floats apart);
// rows are zero-padded to dkp (a multiple of the vector length).
template <size_t kRows>
HWY_INLINE void Dot4(const float* const* q, const float* HWY_RESTRICT k, size_t ks, size_t dkp,
                     float* const* s) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[kRows][4];
  for (size_t r = 0; r < kRows; ++r) {
    for (size_t c = 0; c < 4; ++c) acc[r][c] = hn::Zero(df);
  }
  for (size_t x = 0; x < dkp; x += N) {
    const VF k0 = hn::Load(df, k + x), k1 = hn::Load(df, k + ks + x);
    const VF k2 = hn::Load(df, k + 2 * ks + x), k3 = hn::Load(df, k + 3 * ks + x);
    for (size_t r = 0; r < kRows; ++r) {
      const VF qv = hn::Load(df, q[r] + x);
      acc[r][0] = hn::MulAdd(qv, k0, acc[r][0]);
      acc[r][1] = hn::MulAdd(qv, k1, acc[r][1]);
      acc[r][2] = hn::MulAdd(qv, k2, acc[r][2]);
      acc[r][3] = hn::MulAdd(qv, k3, acc[r][3]);
    }
  }
  for (size_t r = 0; r < kRows; ++r) Reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3], s[r]);
}

// Rows of Dot4 per call: register budget (32 vector registers on AVX-512).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr size_t kDotRows = 4;
#else
constexpr size_t kDotRows = 2;
#endif

// o[0..kVecs*N) = o * corr + sum_j p[j] * v_j over the keys with p[j] != 0.
template <size_t kVecs>
HWY_INLINE void AccumulateV(const float* HWY_RESTRICT p, size_t nk, const float* HWY_RESTRICT v,
                            size_t vs, float corr, float* HWY_RESTRICT o) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc[kVecs];
  const VF vc = hn::Set(df, corr);
  for (size_t i = 0; i < kVecs; ++i) acc[i] = hn::Mul(hn::Load(df, o + i * N), vc);
  for (size_t j = 0; j < nk; ++j) {
    if (p[j] == 0.0f) continue;  // masked for this row: its V row may be unwritten
    const VF pj = hn::Set(df, p[j]);
    const float* vj = v + j * vs;
    for (size_t i = 0; i < kVecs; ++i) acc[i] = hn::MulAdd(pj, hn::Load(df, vj + i * N), acc[i]);
  }
  for (size_t i = 0; i < kVecs; ++i) hn::Store(acc[i], df, o + i * N);
}

// ---------------------------------------------------------------- the kernel

// Per-thread scratch, sized for the largest block.
struct Scratch {
  hwy::AlignedFreeUniquePtr<float[]> q, k, v, s, mv;
  std::vector<float> corr;
  std::vector<uint8_t> live;               // per key of the tile: unmasked for some row
  std::vector<const std::byte*> mask_rows;  // distinct mask rows of the block
  std::vector<uint8_t> mask_row_live;       // per distinct mask row: some key unmasked
  std::vector<int64_t> rows;                // rows that see some key of the tile
  std::vector<int64_t> valid;               // per row: keys before its causal limit
};

// The rows of a work item: positions [i0, i0+np) of batch b, query heads of KV
// head kvh; row r is position i0 + r / G, head kvh * G + r % G.
struct Block {
  int64_t b, kvh, i0, np, rows;
};

inline Block BlockOf(const Problem& p, int64_t item) {
  Block blk;
  const int64_t bi = item % p.blocks;
  blk.kvh = (item / p.blocks) % p.Hkv;
  blk.b = item / (p.blocks * p.Hkv);
  blk.i0 = bi * p.positions;
  blk.np = std::min(p.positions, p.Sq - blk.i0);
  blk.rows = blk.np * p.G;
  return blk;
}

// Keys [0, KeyEnd) can be visible to some row of the block.
inline int64_t KeyEnd(const Problem& p, const Block& blk) {
  if (!p.causal) return p.Skv;
  return std::clamp<int64_t>(blk.i0 + blk.np - 1 + (p.Skv - p.Sq) + 1, 0, p.Skv);
}

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

HWY_INLINE Masked ClassifyMaskTile(DType t, const std::byte* row, int64_t j0) {
  if (t == DType::kF32) {
    return ClassifyBits(hn::ScalableTag<uint32_t>(), reinterpret_cast<const uint32_t*>(row) + j0,
                        0xff800000u);
  }
  return ClassifyBits(hn::ScalableTag<uint16_t>(), reinterpret_cast<const uint16_t*>(row) + j0,
                      static_cast<uint16_t>(0xfc00u));
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

template <int kDk, int kDv>
class Kernel {
 public:
  explicit Kernel(const Problem& p)
      : p_(p),
        dk_(kDk ? kDk : p.Dk),
        dv_(kDv ? kDv : p.Dv),
        dkp_(RoundUp(dk_, hn::Lanes(DF()))),
        dvp_(RoundUp(dv_, hn::Lanes(DF()))) {}

  size_t dvp() const { return dvp_; }

  void Allocate(Scratch& s) const {
    const size_t rows = p_.max_rows, tk = kTileKeys;
    s.q = Zeroed(rows * dkp_);
    s.k = Zeroed(tk * dkp_);
    s.v = Zeroed(tk * dvp_);
    s.s = Zeroed(rows * tk);
    s.mv = Zeroed(tk);
    s.corr.resize(rows), s.valid.resize(rows);
    s.live.resize(tk);
    s.mask_rows.reserve(rows), s.mask_row_live.resize(rows), s.rows.reserve(rows);
  }

  // Runs the block's rows over the key tiles [t0, t1), continuing the online
  // softmax state (m, l, o) of each row. Per tile, only the rows that see
  // some key of it take part (a multi-sequence block pays for its own rows).
  void Attend(const Block& blk, int64_t t0, int64_t t1, Scratch& s, float* m, float* l,
              float* o) const {
    const DF df;
    const size_t N = hn::Lanes(df), tk = kTileKeys;
    const int64_t rows = blk.rows, G = p_.G;
    const int64_t kend = KeyEnd(p_, blk);
    const bool has_mask = p_.mask.present();
    const int64_t mask_group = has_mask && p_.mask_h == 1 ? G : 1;  // rows per mask row
    LoadQueries(blk, s);
    CollectMaskRows(blk, s);

    for (int64_t tile = t0; tile < t1; ++tile) {
      const int64_t j0 = tile * kTileKeys;
      if (j0 >= kend) break;
      const int64_t nk = std::min<int64_t>(kTileKeys, kend - j0);
      if (!MarkLiveKeys(s, j0, nk)) continue;  // every key masked for every row
      // One head's K/V rows are short and far apart (a page holds a few), too
      // sparse for the hardware prefetcher: fetch the next tile's ahead.
      if (j0 + kTileKeys < kend) {
        const int64_t nn = std::min<int64_t>(kTileKeys, kend - j0 - kTileKeys);
        Prefetch(p_.k, blk, j0 + kTileKeys, nn, dk_);
        Prefetch(p_.v, blk, j0 + kTileKeys, nn, dv_);
      }

      // The rows that see some key of the tile.
      s.rows.clear();
      for (int64_t r = 0; r < rows; ++r) {
        int64_t valid = nk;
        if (p_.causal) {
          const int64_t i = blk.i0 + r / G;
          valid = std::clamp<int64_t>(i + (p_.Skv - p_.Sq) - j0 + 1, 0, nk);
        }
        s.valid[r] = valid;
        if (valid > 0 && (!has_mask || s.mask_row_live[r / mask_group])) s.rows.push_back(r);
      }
      if (s.rows.empty()) continue;

      LoadTile(p_.k, blk, j0, nk, s.live.data(), dk_, dkp_, s.k.get());
      Scores(s, nk);

      // Softcap, mask, causal limit; then the online softmax update.
      size_t active = 0;
      for (const int64_t r : s.rows) {
        float* sr = s.s.get() + r * tk;
        const float* mrow = has_mask ? MaskValues(blk, r, j0, nk, s.mv.get()) : nullptr;
        Transform(sr, mrow, p_.slopes[blk.kvh * G + r % G]);
        for (int64_t c = s.valid[r]; c < kTileKeys; ++c) sr[c] = -std::numeric_limits<float>::infinity();

        VF vmax = hn::Load(df, sr);
        for (size_t c = N; c < tk; c += N) vmax = hn::Max(vmax, hn::Load(df, sr + c));
        const float tmax = hn::GetLane(hn::MaxOfLanes(df, vmax));
        const float mnew = std::max(m[r], tmax);
        if (mnew == -std::numeric_limits<float>::infinity()) continue;
        const VF vm = hn::Set(df, mnew);
        VF vsum = hn::Zero(df);
        for (size_t c = 0; c < tk; c += N) {
          const VF e = hn::Exp(df, hn::Sub(hn::Load(df, sr + c), vm));
          hn::Store(e, df, sr + c);
          vsum = hn::Add(vsum, e);
        }
        const float corr = std::exp(m[r] - mnew);  // 0 when m was -inf
        l[r] = l[r] * corr + hn::GetLane(hn::SumOfLanes(df, vsum));
        m[r] = mnew;
        s.corr[r] = corr;
        s.rows[active++] = r;  // keep the rows with some p != 0
      }
      if (active == 0) continue;
      s.rows.resize(active);

      LoadTile(p_.v, blk, j0, nk, s.live.data(), dv_, dvp_, s.v.get());
      for (const int64_t r : s.rows) {
        AccumulateRow(s.s.get() + r * tk, nk, s.v.get(), s.corr[r], o + r * dvp_);
      }
    }
  }

  // Normalizes the rows (sinks included) and writes them to out.
  void Finish(const Block& blk, const float* m, const float* l, float* o) const {
    const DF df;
    const size_t N = hn::Lanes(df);
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    for (int64_t r = 0; r < blk.rows; ++r) {
      const int64_t i = blk.i0 + r / p_.G, h = blk.kvh * p_.G + r % p_.G;
      float factor = 0;
      if (p_.sinks) {
        const float sink = p_.sinks[h];
        const float M = std::max(m[r], sink);
        if (M != kNegInf) {
          const float em = m[r] == kNegInf ? 0.0f : std::exp(m[r] - M);
          const float den = l[r] * em + std::exp(sink - M);
          factor = den > 0 ? em / den : 0.0f;
        }
      } else if (m[r] != kNegInf && l[r] > 0) {
        factor = 1.0f / l[r];
      }
      float* orow = o + r * dvp_;
      const VF vf = hn::Set(df, factor);
      for (size_t c = 0; c < dvp_; c += N) hn::Store(hn::Mul(hn::Load(df, orow + c), vf), df, orow + c);
      std::byte* dst = p_.out.data + blk.b * p_.out.strides[0] + i * p_.out.strides[1] +
                       h * p_.out.strides[2];
      StoreRow(p_.out.dtype, orow, dv_, dst);
    }
  }

  void Reset(int64_t rows, float* m, float* l, float* o) const {
    std::fill(m, m + rows, -std::numeric_limits<float>::infinity());
    std::fill(l, l + rows, 0.0f);
    std::fill(o, o + rows * dvp_, 0.0f);
  }

 private:
  static hwy::AlignedFreeUniquePtr<float[]> Zeroed(size_t n) {
    auto p = hwy::AllocateAligned<float>(std::max<size_t>(n, 1));
    std::fill(p.get(), p.get() + std::max<size_t>(n, 1), 0.0f);
    return p;
  }

  // s[r][c] = <q_r, k_c> (q already scaled) for the tile's rows s.rows.
  void Scores(Scratch& s, int64_t nk) const {
    const size_t tk = kTileKeys, nk4 = RoundUp(nk, 4), nr = s.rows.size();
    const float* qp[kDotRows];
    float* sp[kDotRows];
    for (size_t c = 0; c < nk4; c += 4) {
      const float* kc = s.k.get() + c * dkp_;
      size_t x = 0;
      for (; x + kDotRows <= nr; x += kDotRows) {
        for (size_t y = 0; y < kDotRows; ++y) {
          qp[y] = s.q.get() + s.rows[x + y] * dkp_;
          sp[y] = s.s.get() + s.rows[x + y] * tk + c;
        }
        Dot4<kDotRows>(qp, kc, dkp_, dkp_, sp);
      }
      for (; x < nr; ++x) {
        qp[0] = s.q.get() + s.rows[x] * dkp_;
        sp[0] = s.s.get() + s.rows[x] * tk + c;
        Dot4<1>(qp, kc, dkp_, dkp_, sp);
      }
    }
  }

  // q rows of the block, scaled, as f32 (padding stays zero).
  void LoadQueries(const Block& blk, Scratch& s) const {
    for (int64_t r = 0; r < blk.rows; ++r) {
      const int64_t i = blk.i0 + r / p_.G, h = blk.kvh * p_.G + r % p_.G;
      const std::byte* src =
          p_.q.data + blk.b * p_.q.strides[0] + i * p_.q.strides[1] + h * p_.q.strides[2];
      float* dst = s.q.get() + r * dkp_;
      LoadRow(p_.q.dtype, src, dk_, dst);
      for (size_t d = 0; d < dk_; ++d) dst[d] *= p_.scale;
    }
  }

  const std::byte* MaskRow(const Block& blk, int64_t r) const {
    const TensorView& mk = p_.mask;
    const int64_t i = blk.i0 + r / p_.G, h = blk.kvh * p_.G + r % p_.G;
    return mk.data + (blk.b % p_.mask_b) * mk.strides[0] + (h % p_.mask_h) * mk.strides[1] +
           i * mk.strides[2];
  }

  // The distinct mask rows of the block (one per position when Hm == 1).
  void CollectMaskRows(const Block& blk, Scratch& s) const {
    s.mask_rows.clear();
    if (!p_.mask.present()) return;
    const int64_t step = p_.mask_h == 1 ? p_.G : 1;
    for (int64_t r = 0; r < blk.rows; r += step) s.mask_rows.push_back(MaskRow(blk, r));
  }

  // live[c]: key j0 + c is unmasked for some row. False when none is.
  bool MarkLiveKeys(Scratch& s, int64_t j0, int64_t nk) const {
    uint8_t* live = s.live.data();
    if (s.mask_rows.empty()) {
      std::fill(live, live + nk, 1);
      return true;
    }
    std::fill(live, live + nk, 0);
    const DType mt = p_.mask.dtype;
    bool any = false;
    for (size_t u = 0; u < s.mask_rows.size(); ++u) {
      const std::byte* row = s.mask_rows[u];
      if (nk == kTileKeys) {  // the common cases at vector speed
        const Masked m = ClassifyMaskTile(mt, row, j0);
        if (m == Masked::kAll) {
          s.mask_row_live[u] = 0;
          continue;
        }
        if (m == Masked::kNone) {
          std::fill(live, live + nk, 1);
          s.mask_row_live[u] = 1;
          any = true;
          continue;
        }
      }
      uint8_t row_any = 0;
      for (int64_t c = 0; c < nk; ++c) {
        const uint8_t on = !IsNegInfBits(mt, row, j0 + c);
        live[c] |= on;
        row_any |= on;
      }
      s.mask_row_live[u] = row_any;
      any |= row_any != 0;
    }
    return any;
  }

  // Mask values of row r for keys [j0, j0+nk) as f32 in buf (rest: -inf).
  const float* MaskValues(const Block& blk, int64_t r, int64_t j0, int64_t nk, float* buf) const {
    const std::byte* row = MaskRow(blk, r);
    if (p_.mask.dtype == DType::kF32) {
      std::memcpy(buf, row + 4 * j0, nk * sizeof(float));
    } else {
      F16ToF32(row + 2 * j0, nk, buf);
    }
    std::fill(buf + nk, buf + kTileKeys, -std::numeric_limits<float>::infinity());
    return buf;
  }

  // s = softcap(s) + slope * mask, with s = -inf wherever the mask is -inf
  // (even if the key's K row held NaN).
  void Transform(float* sr, const float* mrow, float slope) const {
    const DF df;
    const size_t N = hn::Lanes(df);
    const bool cap = p_.softcap > 0;
    if (!cap && !mrow) return;
    const VF vcap = hn::Set(df, p_.softcap), vinv = hn::Set(df, cap ? 1.0f / p_.softcap : 0.0f);
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

  // Rows [j0, j0+nk) of K or V for the block's KV head as f32 (dead keys zero).
  void LoadTile(const TensorView& t, const Block& blk, int64_t j0, int64_t nk,
                const uint8_t* live, size_t d, size_t dp, float* dst) const {
    const std::byte* base =
        t.data + blk.b * t.strides[0] + j0 * t.strides[1] + blk.kvh * t.strides[2];
    RowsToF32(t.dtype, base, t.strides[1], nk, live, d, dp, dst);
  }

  static void Prefetch(const TensorView& t, const Block& blk, int64_t j0, int64_t n, size_t d) {
    const std::byte* base =
        t.data + blk.b * t.strides[0] + j0 * t.strides[1] + blk.kvh * t.strides[2];
    const int64_t bytes = RowBytes(t.dtype, static_cast<int64_t>(d));
    for (int64_t c = 0; c < n; ++c) {
      for (int64_t x = 0; x < bytes; x += 64) hwy::Prefetch(base + c * t.strides[1] + x);
    }
  }

  void AccumulateRow(const float* pr, int64_t nk, const float* v, float corr, float* o) const {
    const size_t N = hn::Lanes(DF());
    size_t c = 0;
    for (; c + 8 * N <= dvp_; c += 8 * N) AccumulateV<8>(pr, nk, v + c, dvp_, corr, o + c);
    for (; c + 4 * N <= dvp_; c += 4 * N) AccumulateV<4>(pr, nk, v + c, dvp_, corr, o + c);
    for (; c < dvp_; c += N) AccumulateV<1>(pr, nk, v + c, dvp_, corr, o + c);
  }

  const Problem& p_;
  const size_t dk_, dv_, dkp_, dvp_;
};

template <int kDk, int kDv>
absl::Status FlashAttn(const KernelArgs& args) {
  Problem p;
  if (absl::Status st = MakeProblem(args, p); !st.ok()) return st;
  if (p.items == 0) return absl::OkStatus();
  const Kernel<kDk, kDv> kernel(p);
  const int64_t rows = p.max_rows;
  const size_t dvp = kernel.dvp();

  if (p.splits == 1) {
#pragma omp parallel num_threads(p.threads)
    {
      Scratch s;
      kernel.Allocate(s);
      std::vector<float> m(rows), l(rows);
      auto o = hwy::AllocateAligned<float>(rows * dvp);
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < p.items; ++item) {
        const Block blk = BlockOf(p, item);
        kernel.Reset(blk.rows, m.data(), l.data(), o.get());
        const int64_t tiles = (KeyEnd(p, blk) + kTileKeys - 1) / kTileKeys;
        kernel.Attend(blk, 0, tiles, s, m.data(), l.data(), o.get());
        kernel.Finish(blk, m.data(), l.data(), o.get());
      }
    }
    return absl::OkStatus();
  }

  // Split keys: unit = (item, split) writes a partial softmax state; then the
  // partials of each item are merged and normalized.
  const int64_t units = p.items * p.splits;
  std::vector<float> pm(units * rows), pl(units * rows);
  auto po = hwy::AllocateAligned<float>(units * rows * dvp);
#pragma omp parallel num_threads(p.threads)
  {
    Scratch s;
    kernel.Allocate(s);
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t item = u / p.splits, sp = u % p.splits;
      const Block blk = BlockOf(p, item);
      float* m = pm.data() + u * rows;
      float* l = pl.data() + u * rows;
      float* o = po.get() + u * rows * dvp;
      kernel.Reset(blk.rows, m, l, o);
      const int64_t tiles = (KeyEnd(p, blk) + kTileKeys - 1) / kTileKeys;
      kernel.Attend(blk, tiles * sp / p.splits, tiles * (sp + 1) / p.splits, s, m, l, o);
    }
#pragma omp for schedule(static)
    for (int64_t item = 0; item < p.items; ++item) {
      const Block blk = BlockOf(p, item);
      const int64_t u0 = item * p.splits;
      float* m = pm.data() + u0 * rows;
      float* l = pl.data() + u0 * rows;
      float* o = po.get() + u0 * rows * dvp;
      for (int64_t r = 0; r < blk.rows; ++r) {
        float M = m[r];
        for (int64_t sp = 1; sp < p.splits; ++sp) M = std::max(M, m[sp * rows + r]);
        if (M == -std::numeric_limits<float>::infinity()) continue;  // all masked
        float lsum = 0;
        float* orow = o + r * dvp;
        for (int64_t sp = 0; sp < p.splits; ++sp) {
          const float ms = m[sp * rows + r];
          if (ms == -std::numeric_limits<float>::infinity()) continue;
          const float w = std::exp(ms - M);
          lsum += l[sp * rows + r] * w;
          const float* os = o + (sp * rows + r) * dvp;
          if (sp == 0) {
            for (size_t c = 0; c < dvp; ++c) orow[c] *= w;
          } else {
            for (size_t c = 0; c < dvp; ++c) orow[c] += w * os[c];
          }
        }
        m[r] = M;
        l[r] = lsum;
      }
      kernel.Finish(blk, m, l, o);
    }
  }
  return absl::OkStatus();
}

// The instances this target compiles: the common head sizes, plus the
// generic one.
VariantTable Variants() {
  static const Variant kVariants[] = {
      {32, 32, &FlashAttn<32, 32>},     {40, 40, &FlashAttn<40, 40>},
      {64, 64, &FlashAttn<64, 64>},     {72, 72, &FlashAttn<72, 72>},
      {80, 80, &FlashAttn<80, 80>},     {96, 96, &FlashAttn<96, 96>},
      {112, 112, &FlashAttn<112, 112>}, {128, 128, &FlashAttn<128, 128>},
      {192, 128, &FlashAttn<192, 128>}, {192, 192, &FlashAttn<192, 192>},
      {256, 256, &FlashAttn<256, 256>}, {0, 0, &FlashAttn<0, 0>},
  };
  return {kVariants, sizeof(kVariants) / sizeof(kVariants[0])};
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu::fa
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::cpu {
namespace fa {

HWY_EXPORT(Variants);

namespace {

Support SupportsFlashAttn(const Graph& graph, const Node& node) {
  auto p = ResolveFlashAttn(graph, node);
  if (!p.ok()) return Support::No(std::string(p.status().message()));
  // Every dtype the op allows (q f32/f16/bf16; K/V also q8_0; mask f32/f16),
  // any head size, any strides with a contiguous innermost dim.
  return Support::Yes();
}

absl::StatusOr<CpuPipeline> SelectFlashAttn(const Graph& graph, const Node& node) {
  auto p = ResolveFlashAttn(graph, node);
  if (!p.ok()) return p.status();
  const int64_t dk = p->Dk, dv = p->Dv;
  const VariantTable table = HWY_DYNAMIC_DISPATCH(Variants)();
  const Variant* generic = nullptr;
  for (size_t i = 0; i < table.size; ++i) {
    const Variant& var = table.begin[i];
    if (var.dk == 0) {
      generic = &var;
    } else if (var.dk == dk && var.dv == dv) {
      return CpuPipeline{absl::StrCat("flash_attn[dk=", dk, ",dv=", dv, "]"), var.fn};
    }
  }
  if (!generic) return absl::InternalError("flash_attn: no generic CPU kernel");
  return CpuPipeline{"flash_attn[dk=any,dv=any]", generic->fn};
}

}  // namespace
}  // namespace fa

void RegisterCpuFlashAttnKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"flash_attn", &fa::SupportsFlashAttn, &fa::SelectFlashAttn});
}

}  // namespace kiln::cpu
#endif  // HWY_ONCE
