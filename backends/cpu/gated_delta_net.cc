// CPU gated delta net (OPS.md): the fused recurrence, token by token, with the
// state in L1-sized column blocks.
//
// The recurrence is independent across value columns j (u[j], d[j], S[:,j]
// and out[j] only read column j), so a work item is one (batch, value head,
// column group), and within it the state is swept one block of columns
// (4 vectors wide: K x 64 floats on AVX-512, 32 KB for K = 128) at a time
// through a chunk of tokens, staying in L1 (the local copy of the state is
// block-major, so a block's rows are contiguous). Per token and state element
// the work is one decay multiply and three FMAs, fused in one sweep over the
// block's rows:
//   S[i] = decay_i * S[i] + k_i * d      (update of token t)
//   o   += q_i * S[i]                    (output of token t)
//   u'  += decay'_i k'_i * S[i]          (S^T k of token t+1, after its decay)
// so each state element is loaded and stored once per token.
//
// Chunked (WY/UT) form (gated_delta_net_chunked-inl.h): opt-in, see
// ChunkedMinTokens. For K = V = 128 and chunks of 64 it does ~1.16x this
// recurrence's FLOPs, all as FMAs, while the recurrence spends 4 vector ops
// on its 7 FLOPs per element (bound 7/8 of peak): both have about the same
// bound, and on the Zen 3 measured the chunked form came out 15-50% slower.
// A chunked prefill runs on a row-major local state (rows padded to an odd
// number of cache lines); a chunk with a non-finite gate runs the recurrence
// on that state instead.
//
// q/k rows are converted, l2-normalized and scaled per chunk of tokens. The
// state of an item is read whole into local memory before final_state is
// written, so final_state may alias state. Decode (T = 1) skips the local
// copy: each column block is read from state, then written to final_state
// (row by row, after its reads), which is alias-safe too.
//
// Specialization: instances for K = V in {32, 64, 128, 256} and a generic
// one (any K, V), each for GDA (scalar gate) and KDA (per-key gate). Highway
// runtime dispatch through a per-target table, as in flash_attn.cc.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/kernel_util.h"
#include "backends/cpu/tuning.h"
#include "graph/dtype.h"
#include "ops/gated_delta_net.h"

#ifndef KILN_BACKENDS_CPU_GATED_DELTA_NET_SHARED_
#define KILN_BACKENDS_CPU_GATED_DELTA_NET_SHARED_

#include <omp.h>

namespace kiln::cpu::gdn {

inline constexpr int64_t kChunkTokens = 64;  // tokens prepared at once
// Prefill from this many tokens on takes the chunked form. Off unless the
// environment asks (KILN_CPU_GDN_CHUNKED_MIN_T=64): on the 2-vCPU Zen 3 this
// was measured on, it ran 15-50% slower than the recurrence
// (bench/RESULTS.md), so the recurrence stays the default until a quieter
// measurement says otherwise.
inline int64_t ChunkedMinTokens() {
  static const int64_t v = [] {
    const char* env = std::getenv("KILN_CPU_GDN_CHUNKED_MIN_T");
    const long long n = env && *env ? std::atoll(env) : 0;
    return n > 0 ? static_cast<int64_t>(n) : std::numeric_limits<int64_t>::max();
  }();
  return v;
}

// Everything a kernel instance needs, resolved once per call.
struct Problem {
  TensorView q, k, v, g, beta, state, out, final_state;
  int64_t B = 0, T = 0, Hk = 0, K = 0, Hv = 0, V = 0;
  float scale = 1;
  bool l2norm = false;
  GdnHeadMap head_map = GdnHeadMap::kGrouped;
  int threads = 1;
};

// Shapes and attributes come from ResolveGatedDeltaNet (ops/gated_delta_net.h),
// once per call.
inline absl::Status MakeProblem(const KernelArgs& a, Problem& p) {
  auto params = ResolveGatedDeltaNet(*a.node, a.inputs, a.outputs);
  if (!params.ok()) return params.status();
  const GdnParams& prm = *params;
  p.q = a.inputs[kGdnQ];
  p.k = a.inputs[kGdnK];
  p.v = a.inputs[kGdnV];
  p.g = a.inputs[kGdnG];
  p.beta = a.inputs[kGdnBeta];
  if (prm.has_state) p.state = a.inputs[kGdnState];
  p.out = a.outputs[kGdnOut];
  p.final_state = a.outputs[kGdnFinalState];
  p.B = prm.B, p.T = prm.T, p.Hk = prm.Hk, p.K = prm.K;
  p.Hv = prm.Hv, p.V = prm.V;
  p.scale = static_cast<float>(prm.scale);
  p.l2norm = prm.l2norm_qk;
  p.head_map = prm.head_map;
  const double work = static_cast<double>(p.B) * p.Hv * std::max<int64_t>(p.T, 1) * p.K * p.V;
  p.threads = work < 1e5 ? 1 : std::max(1, a.threads);
  return absl::OkStatus();
}

struct Variant {
  int k, v;  // 0: any
  bool kda;
  KernelFn fn;
};
struct VariantTable {
  const Variant* begin;
  size_t size;
};

}  // namespace kiln::cpu::gdn

#endif  // KILN_BACKENDS_CPU_GATED_DELTA_NET_SHARED_

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/gated_delta_net.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/aligned_allocator.h"
#include "hwy/cache_control.h"
#include "backends/cpu/gated_delta_net_chunked-inl.h"
#include "backends/cpu/simd_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kiln::cpu::gdn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr size_t RoundUp(size_t x, size_t m) { return (x + m - 1) / m * m; }

// Vectors per column block (4: 1.04-1.05x over 2 at T = 4096 on the Xeon,
// fewer broadcasts of q, k and decay per vector of work; 32 KB in L1).
constexpr size_t kBlockVecs = 4;

// Per-token inputs of a chunk, as f32.
struct Chunk {
  size_t tokens = 0;
  float* q = nullptr;      // [tokens][K]: scale * q (l2-normalized if asked)
  float* k = nullptr;      // [tokens][K]
  float* kd = nullptr;     // [tokens][K]: decay_i * k_i
  float* decay = nullptr;  // [tokens] (GDA) or [tokens][K] (KDA)
  float* beta = nullptr;   // [tokens]
  float* v = nullptr;      // [tokens][cw]: the item's columns, zero-padded
  float* o = nullptr;      // [tokens][cw]: outputs of the item's columns
};

// u[c] = sum_i kd[i] * S[i][c] for one block of kC vectors.
template <size_t kC>
HWY_INLINE void ProjectKeys(const float* HWY_RESTRICT kd, size_t K, const float* S, size_t ss,
                            VF* u) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF a0[kC], a1[kC];
  for (size_t c = 0; c < kC; ++c) a0[c] = hn::Zero(df), a1[c] = hn::Zero(df);
  size_t i = 0;
  for (; i + 2 <= K; i += 2) {
    const VF k0 = hn::Set(df, kd[i]), k1 = hn::Set(df, kd[i + 1]);
    for (size_t c = 0; c < kC; ++c) {
      a0[c] = hn::MulAdd(k0, hn::LoadU(df, S + i * ss + c * N), a0[c]);
      a1[c] = hn::MulAdd(k1, hn::LoadU(df, S + (i + 1) * ss + c * N), a1[c]);
    }
  }
  if (i < K) {
    const VF k0 = hn::Set(df, kd[i]);
    for (size_t c = 0; c < kC; ++c) a0[c] = hn::MulAdd(k0, hn::LoadU(df, S + i * ss + c * N), a0[c]);
  }
  for (size_t c = 0; c < kC; ++c) u[c] = hn::Add(a0[c], a1[c]);
}

// One token on one block of kC vectors: S = decay S + k d^T, o = S^T q, and
// (kNext) u_next = S^T kd_next, in one sweep over the K rows. S is read from
// Sin (rows si floats apart) and written to Sout (rows so apart), which may
// be the same memory: each row is read before it is written.
template <size_t kC, bool kKda, bool kNext, bool kStream = false>
HWY_INLINE void Step(const float* HWY_RESTRICT q, const float* HWY_RESTRICT k,
                     const float* HWY_RESTRICT decay, const float* HWY_RESTRICT kd_next, size_t K,
                     const VF* d, const float* Sin, size_t si, float* Sout, size_t so, VF* o,
                     VF* u_next) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF o0[kC], o1[kC], n0[kC], n1[kC];
  for (size_t c = 0; c < kC; ++c) {
    o0[c] = hn::Zero(df), o1[c] = hn::Zero(df);
    if (kNext) n0[c] = hn::Zero(df), n1[c] = hn::Zero(df);
  }
  const VF gda_decay = hn::Set(df, kKda ? 0.0f : decay[0]);
  auto row = [&](size_t i, VF* oa, VF* na) HWY_ATTR {
    const VF ki = hn::Set(df, k[i]), qi = hn::Set(df, q[i]);
    const VF di = kKda ? hn::Set(df, decay[i]) : gda_decay;
    const float* in = Sin + i * si;
    float* out = Sout + i * so;
    for (size_t c = 0; c < kC; ++c) {
      const VF s = hn::MulAdd(di, hn::LoadU(df, in + c * N), hn::Mul(ki, d[c]));
      if constexpr (kStream) {
        hn::Stream(s, df, out + c * N);
      } else {
        hn::StoreU(s, df, out + c * N);
      }
      oa[c] = hn::MulAdd(qi, s, oa[c]);
      if (kNext) na[c] = hn::MulAdd(hn::Set(df, kd_next[i]), s, na[c]);
    }
  };
  size_t i = 0;
  for (; i + 2 <= K; i += 2) {
    row(i, o0, n0);
    row(i + 1, o1, n1);
  }
  if (i < K) row(i, o0, n0);
  for (size_t c = 0; c < kC; ++c) {
    o[c] = hn::Add(o0[c], o1[c]);
    if (kNext) u_next[c] = hn::Add(n0[c], n1[c]);
  }
}

// Runs the chunk's tokens over kC vectors of state columns: Sb holds their K
// rows, ss floats apart; col is their offset in the chunk's v and o rows.
template <size_t kC, bool kKda>
HWY_INLINE void RunBlock(const Chunk& ch, size_t K, size_t cw, size_t col, float* Sb, size_t ss) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF u[kC], d[kC], o[kC];
  ProjectKeys<kC>(ch.kd, K, Sb, ss, u);
  for (size_t t = 0; t < ch.tokens; ++t) {
    const VF bt = hn::Set(df, ch.beta[t]);
    const float* vt = ch.v + t * cw + col;
    for (size_t c = 0; c < kC; ++c) d[c] = hn::Mul(bt, hn::Sub(hn::Load(df, vt + c * N), u[c]));
    const float* decay = kKda ? ch.decay + t * K : ch.decay + t;
    if (t + 1 < ch.tokens) {
      Step<kC, kKda, true>(ch.q + t * K, ch.k + t * K, decay, ch.kd + (t + 1) * K, K, d, Sb, ss,
                           Sb, ss, o, u);
    } else {
      Step<kC, kKda, false>(ch.q + t * K, ch.k + t * K, decay, nullptr, K, d, Sb, ss, Sb, ss, o, u);
    }
    float* ot = ch.o + t * cw + col;
    for (size_t c = 0; c < kC; ++c) hn::Store(o[c], df, ot + c * N);
  }
}

// One token (decode) straight from the state rows Sin to the final_state
// rows Sout (si, so floats apart; possibly the same memory): no local copy.
template <size_t kC, bool kKda, bool kStream>
HWY_INLINE void RunTokenDirect(const Chunk& ch, size_t K, size_t col, const float* Sin, size_t si,
                               float* Sout, size_t so) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF u[kC], d[kC], o[kC];
  ProjectKeys<kC>(ch.kd, K, Sin, si, u);
  const VF bt = hn::Set(df, ch.beta[0]);
  for (size_t c = 0; c < kC; ++c) d[c] = hn::Mul(bt, hn::Sub(hn::Load(df, ch.v + col + c * N), u[c]));
  Step<kC, kKda, false, kStream>(ch.q, ch.k, ch.decay, nullptr, K, d, Sin, si, Sout, so, o, nullptr);
  for (size_t c = 0; c < kC; ++c) hn::Store(o[c], df, ch.o + col + c * N);
}

// n floats; whole blocks of W floats with vectors.
template <size_t W>
HWY_INLINE void CopyFloats(const float* src, float* dst, size_t n) {
  const DF df;
  if (n == W) {
    for (size_t x = 0; x < W; x += hn::Lanes(df)) hn::StoreU(hn::LoadU(df, src + x), df, dst + x);
  } else {
    std::memcpy(dst, src, n * sizeof(float));
  }
}

template <int kK, int kV, bool kKda>
class Kernel {
 public:
  explicit Kernel(const Problem& p)
      : p_(p), K_(kK ? kK : p.K), V_(kV ? kV : p.V), vp_(RoundUp(V_, hn::Lanes(DF()))) {
    const size_t block = kBlockVecs * hn::Lanes(DF());
    const size_t blocks = (vp_ + block - 1) / block;
    // Column groups: enough work items for the threads.
    const int64_t heads = p.B * p.Hv;
    chunked_ = p.T >= ChunkedMinTokens() && V_ % hn::Lanes(DF()) == 0;
    size_t groups = 1;
    if (!chunked_ && p.threads > 1 && heads < 2 * p.threads) {
      groups = std::min<size_t>(blocks, (2 * p.threads + heads - 1) / heads);
    }
    group_width_ = (blocks + groups - 1) / groups * block;
    // Decode's block width and store kind (RunDirect), once per call.
    direct_vecs_ = static_cast<size_t>(std::clamp<int64_t>(TuningValue("KILN_CPU_GDN", "vecs", 8), 1, 8));
    const int64_t forced = TuningValue("KILN_CPU_GDN", "stream", -1);
    const double bytes = 4.0 * p.B * p.Hv * p.K * p.V;
    const int64_t llc = HostLastLevelCacheBytes();
    // From 1 MiB (or half the LLC if smaller): in a VM the LLC it reports is
    // the host's, shared with other tenants (480 MiB on the 2-vCPU Xeon,
    // where 2 MiB of state streamed ran 1.7x faster than with plain stores).
    double from = 1 << 20;
    if (llc > 0) from = std::min(from, 0.5 * static_cast<double>(llc));
    stream_ = forced >= 0 ? forced > 0 : bytes >= from;
    groups_ = (vp_ + group_width_ - 1) / group_width_;
  }

  int64_t items() const { return p_.B * p_.Hv * static_cast<int64_t>(groups_); }

  struct Scratch {
    hwy::AlignedFreeUniquePtr<float[]> S, q, k, kd, decay, beta, v, o, g, chunk;
    std::vector<float> row;
  };

  // Nothing is zeroed: every scratch value is written before it is read (S
  // from the state or zeros, the token rows by Prepare, o by the blocks).
  // Decode sizes for its one token and, in place, needs no local state.
  void Allocate(Scratch& s) const {
    const size_t tc = static_cast<size_t>(std::clamp<int64_t>(p_.T, 1, kChunkTokens)), cw = group_width_;
    const size_t rows = chunked_ ? RowStride(V_) : cw;  // floats per row of S, v, o
    s.S = Uninitialized(Direct() ? 1 : K_ * rows);
    s.q = Uninitialized(tc * K_);
    s.k = Uninitialized(tc * K_);
    s.kd = Uninitialized(tc * K_);
    s.decay = Uninitialized(kKda ? tc * K_ : tc);
    s.beta = Uninitialized(tc);
    s.v = Uninitialized(tc * rows);
    s.o = Uninitialized(tc * rows);
    s.row.resize(std::max(K_, V_));
    if (chunked_) {
      s.g = Uninitialized(tc * (kKda ? K_ : 1));
      s.chunk = Uninitialized(ChunkScratch::Floats(K_));
    }
  }

  void Run(int64_t item, Scratch& s) const {
    const int64_t grp = item % groups_;
    const int64_t hv = (item / groups_) % p_.Hv;
    const int64_t b = item / (groups_ * p_.Hv);
    const int64_t kh = GdnKeyHead(hv, p_.Hv, p_.Hk, p_.head_map);
    const size_t c0 = grp * group_width_;
    const size_t cw = std::min(group_width_, vp_ - c0);    // padded columns of this item
    const size_t cn = std::min<size_t>(cw, V_ - std::min<size_t>(c0, V_));  // real ones
    // The local state is block-major: block bi (columns [bi*W, bi*W + W) of
    // the item) is K contiguous rows of W floats, so that a block's rows do
    // not crowd a few L1 sets (a row stride of V floats would).
    const size_t N = hn::Lanes(DF());
    constexpr size_t W = kBlockVecs * hn::MaxLanes(DF());
    const size_t nb = (cw + W - 1) / W;
    Chunk ch;
    ch.q = s.q.get(), ch.k = s.k.get(), ch.kd = s.kd.get(), ch.decay = s.decay.get();
    ch.beta = s.beta.get(), ch.v = s.v.get(), ch.o = s.o.get();
    if (Direct()) {
      RunDirect(b, hv, kh, c0, cw, ch, s.row.data());
      return;
    }
    if (chunked_) {
      RunChunked(b, hv, kh, ch, s);
      return;
    }
    float* S = s.S.get();
    auto block_row = [&](size_t bi, size_t i) { return S + (bi * K_ + i) * W; };

    // The whole (b, hv) state block is read before anything is written.
    for (size_t i = 0; i < K_; ++i) {
      const std::byte* src = p_.state.present()
                                 ? p_.state.data + b * p_.state.strides[0] +
                                       hv * p_.state.strides[1] + i * p_.state.strides[2]
                                 : nullptr;
      for (size_t bi = 0; bi < nb; ++bi) {
        float* dst = block_row(bi, i);
        const size_t first = bi * W, n = first < cn ? std::min(W, cn - first) : 0;
        if (src) {
          CopyFloats<W>(reinterpret_cast<const float*>(src) + c0 + first, dst, n);
        } else {
          std::fill(dst, dst + n, 0.0f);
        }
        std::fill(dst + n, dst + W, 0.0f);
      }
    }

    for (int64_t t0 = 0; t0 < p_.T; t0 += kChunkTokens) {
      ch.tokens = std::min<int64_t>(kChunkTokens, p_.T - t0);
      Prepare(b, hv, kh, t0, c0, cw, cn, ch, s.row.data());
      for (size_t bi = 0; bi < nb; ++bi) {
        const size_t col = bi * W;
        if (col + W <= cw) {
          RunBlock<kBlockVecs, kKda>(ch, K_, cw, col, block_row(bi, 0), W);
        } else {
          for (size_t x = 0; col + x < cw; x += N) {
            RunBlock<1, kKda>(ch, K_, cw, col + x, block_row(bi, 0) + x, W);
          }
        }
      }
      for (size_t t = 0; t < ch.tokens; ++t) {
        std::byte* dst = p_.out.data + b * p_.out.strides[0] + (t0 + t) * p_.out.strides[1] +
                         hv * p_.out.strides[2];
        StoreRow(p_.out.dtype, ch.o + t * cw, cn, dst + c0 * ElementSize(p_.out.dtype));
      }
    }

    for (size_t i = 0; i < K_; ++i) {
      std::byte* dst = p_.final_state.data + b * p_.final_state.strides[0] +
                       hv * p_.final_state.strides[1] + i * p_.final_state.strides[2];
      for (size_t bi = 0; bi < nb && bi * W < cn; ++bi) {
        const size_t first = bi * W, n = std::min(W, cn - first);
        CopyFloats<W>(block_row(bi, i), reinterpret_cast<float*>(dst) + c0 + first, n);
      }
    }
  }

 private:
  // Decode (one token) works on the state and final_state rows in place of
  // a local copy, when their rows are whole vectors of f32.
  bool Direct() const {
    const size_t N = hn::Lanes(DF());
    return p_.T == 1 && p_.state.present() && V_ % N == 0 && p_.state.strides[2] % 4 == 0 &&
           p_.final_state.strides[2] % 4 == 0;
  }

  void RunDirect(int64_t b, int64_t hv, int64_t kh, size_t c0, size_t cw, Chunk& ch,
                 float* row) const {
    const size_t N = hn::Lanes(DF());
    ch.tokens = 1;
    Prepare(b, hv, kh, 0, c0, cw, cw, ch, row);
    const auto* in = reinterpret_cast<const float*>(p_.state.data + b * p_.state.strides[0] +
                                                    hv * p_.state.strides[1]) + c0;
    auto* out = reinterpret_cast<float*>(p_.final_state.data + b * p_.final_state.strides[0] +
                                         hv * p_.final_state.strides[1]) + c0;
    const size_t si = p_.state.strides[2] / 4, so = p_.final_state.strides[2] / 4;
    // Column blocks as wide as the row (up to 8 vectors): the state is then
    // read as one sequential stream (2-vector blocks, rows 512 bytes apart,
    // ran 1.2-1.7x slower). final_state is written around the caches when it
    // is not the state itself and is at least 1 MiB (stream_): between two
    // steps a model's weights pass through the caches, so it would not stay
    // cached anyway, and plain stores read each line first (a third of the
    // traffic). Both: bench/RESULTS.md, sessions 8 and 17.
    const bool stream = stream_ && static_cast<const void*>(in) != out &&
                        reinterpret_cast<uintptr_t>(out) % (4 * N) == 0 && so % N == 0;
    size_t col = 0;
    auto blocks = [&](auto kc, auto st) HWY_ATTR {
      constexpr size_t kC = decltype(kc)::value;
      for (; col + kC * N <= cw; col += kC * N) {
        RunTokenDirect<kC, kKda, decltype(st)::value>(ch, K_, col, in + col, si, out + col, so);
      }
    };
    auto all = [&](auto st) HWY_ATTR {
      if (direct_vecs_ >= 8) blocks(std::integral_constant<size_t, 8>(), st);
      if (direct_vecs_ >= 4) blocks(std::integral_constant<size_t, 4>(), st);
      if (direct_vecs_ >= 2) blocks(std::integral_constant<size_t, 2>(), st);
      blocks(std::integral_constant<size_t, 1>(), st);
    };
    if (stream) {
      all(std::true_type());
      hwy::FlushStream();
    } else {
      all(std::false_type());
    }
    std::byte* dst = p_.out.data + b * p_.out.strides[0] + hv * p_.out.strides[2];
    StoreRow(p_.out.dtype, ch.o, cw, dst + c0 * ElementSize(p_.out.dtype));
  }

  // Prefill in the chunked form (gated_delta_net_chunked-inl.h) on a local
  // row-major copy of the (b, hv) state; a chunk whose gates are not all
  // finite runs the recurrence on that copy instead.
  void RunChunked(int64_t b, int64_t hv, int64_t kh, Chunk& ch, Scratch& s) const {
    const size_t N = hn::Lanes(DF()), W = kBlockVecs * N, gk = kKda ? K_ : 1, ldv = RowStride(V_);
    float* S = s.S.get();
    for (size_t i = 0; i < K_; ++i) {
      if (p_.state.present()) {
        const std::byte* src = At(p_.state, b, hv, i);
        std::memcpy(S + i * ldv, src, V_ * sizeof(float));
      } else {
        std::fill(S + i * ldv, S + i * ldv + V_, 0.0f);
      }
    }
    ChunkScratch cs;
    cs.Carve(s.chunk.get(), K_);
    for (int64_t t0 = 0; t0 < p_.T; t0 += kChunkTokens) {
      ch.tokens = std::min<int64_t>(kChunkTokens, p_.T - t0);
      Prepare(b, hv, kh, t0, 0, ldv, V_, ch, s.row.data(), /*decays=*/false);
      for (size_t t = 0; t < ch.tokens; ++t) std::memcpy(s.g.get() + t * gk, At(p_.g, b, t0 + t, hv), gk * 4);
      const ChunkIo io{.n = ch.tokens, .K = K_, .V = V_, .ldv = ldv, .q = ch.q, .k = ch.k, .g = s.g.get(),
                       .beta = ch.beta, .x = ch.v, .o = ch.o};
      if (CumulativeGates<kKda>(io, cs)) {
        ChunkStep<kKda>(io, cs, S);
      } else {
        PrepareDecays(b, hv, t0, ch);
        size_t col = 0;
        for (; col + W <= V_; col += W) RunBlock<kBlockVecs, kKda>(ch, K_, ldv, col, S + col, ldv);
        for (; col < V_; col += N) RunBlock<1, kKda>(ch, K_, ldv, col, S + col, ldv);
      }
      for (size_t t = 0; t < ch.tokens; ++t) {
        std::byte* dst = p_.out.data + b * p_.out.strides[0] + (t0 + t) * p_.out.strides[1] +
                         hv * p_.out.strides[2];
        StoreRow(p_.out.dtype, ch.o + t * ldv, V_, dst);
      }
    }
    for (size_t i = 0; i < K_; ++i) {
      std::byte* dst = p_.final_state.data + b * p_.final_state.strides[0] +
                       hv * p_.final_state.strides[1] + i * p_.final_state.strides[2];
      std::memcpy(dst, S + i * ldv, V_ * sizeof(float));
    }
  }

  static hwy::AlignedFreeUniquePtr<float[]> Uninitialized(size_t n) {
    return hwy::AllocateAligned<float>(std::max<size_t>(n, 1));
  }

  // Address of [i0, i1, i2] (a row when the view has rank 4, else an element).
  static const std::byte* At(const TensorView& t, int64_t i0, int64_t i1, int64_t i2) {
    return t.data + i0 * t.strides[0] + i1 * t.strides[1] + i2 * t.strides[2];
  }

  // Loads row (b, t, kh) of q or k as f32, l2-normalized if asked, times mul.
  void LoadKeyRow(const TensorView& x, int64_t b, int64_t t, int64_t kh, float mul,
                  float* out) const {
    LoadRow(x.dtype, At(x, b, t, kh), K_, out);
    if (p_.l2norm) {
      const DF df;
      const size_t N = hn::Lanes(df);
      VF acc = hn::Zero(df);
      size_t i = 0;
      for (; i + N <= K_; i += N) {
        const VF x = hn::LoadU(df, out + i);
        acc = hn::MulAdd(x, x, acc);
      }
      float sumsq = hn::GetLane(hn::SumOfLanes(df, acc));
      for (; i < K_; ++i) sumsq += out[i] * out[i];
      mul /= std::sqrt(sumsq + static_cast<float>(kGdnL2Eps));
    }
    if (mul != 1.0f) {
      for (size_t i = 0; i < K_; ++i) out[i] *= mul;
    }
  }

  // Rows of one token are short and far apart: fetch a few tokens ahead.
  void PrefetchToken(int64_t b, int64_t t, int64_t hv, int64_t kh) const {
    auto rows = [&](const TensorView& x, int64_t h, int64_t bytes) {
      const std::byte* p = At(x, b, t, h);
      for (int64_t o = 0; o < bytes; o += 64) hwy::Prefetch(p + o);
    };
    rows(p_.q, kh, RowBytes(p_.q.dtype, K_));
    rows(p_.k, kh, RowBytes(p_.k.dtype, K_));
    rows(p_.v, hv, RowBytes(p_.v.dtype, V_));
    if (kKda) rows(p_.g, hv, 4 * K_);
  }

  // decay and kd of the chunk's tokens (what the recurrence needs).
  void PrepareDecays(int64_t b, int64_t hv, int64_t t0, Chunk& ch) const {
    const DF df;
    const size_t N = hn::Lanes(df);
    for (size_t t = 0; t < ch.tokens; ++t) {
      const int64_t tt = t0 + t;
      const float* kt = ch.k + t * K_;
      float* kd = ch.kd + t * K_;
      if (kKda) {
        const auto* g = reinterpret_cast<const float*>(At(p_.g, b, tt, hv));
        float* dec = ch.decay + t * K_;
        size_t i = 0;
        for (; i + N <= K_; i += N) {
          const VF e = kiln::cpu::HWY_NAMESPACE::SafeExp(df, hn::LoadU(df, g + i));
          hn::StoreU(e, df, dec + i);
          hn::StoreU(hn::Mul(e, hn::LoadU(df, kt + i)), df, kd + i);
        }
        for (; i < K_; ++i) dec[i] = std::exp(g[i]), kd[i] = dec[i] * kt[i];
      } else {
        float g;
        std::memcpy(&g, At(p_.g, b, tt, hv), 4);
        const float dec = std::exp(g);
        ch.decay[t] = dec;
        for (size_t i = 0; i < K_; ++i) kd[i] = dec * kt[i];
      }
    }
  }

  // Token rows of a chunk as f32 (q scaled, q and k l2-normalized if asked;
  // v's columns [c0, c0 + cn) zero-padded to cw); with `decays`, also what
  // PrepareDecays fills.
  void Prepare(int64_t b, int64_t hv, int64_t kh, int64_t t0, size_t c0, size_t cw, size_t cn,
               Chunk& ch, float* row, bool decays = true) const {
    constexpr int64_t kAhead = 4;
    for (int64_t t = 0; t < std::min<int64_t>(kAhead, p_.T - t0); ++t) PrefetchToken(b, t0 + t, hv, kh);
    for (size_t t = 0; t < ch.tokens; ++t) {
      const int64_t tt = t0 + t;
      if (tt + kAhead < p_.T) PrefetchToken(b, tt + kAhead, hv, kh);
      LoadKeyRow(p_.q, b, tt, kh, p_.scale, ch.q + t * K_);
      LoadKeyRow(p_.k, b, tt, kh, 1.0f, ch.k + t * K_);
      std::memcpy(&ch.beta[t], At(p_.beta, b, tt, hv), 4);
      float* vt = ch.v + t * cw;
      if (c0 == 0 && cn == V_) {
        LoadRow(p_.v.dtype, At(p_.v, b, tt, hv), cn, vt);
      } else {
        LoadRow(p_.v.dtype, At(p_.v, b, tt, hv), V_, row);
        std::memcpy(vt, row + c0, cn * sizeof(float));
      }
      std::fill(vt + cn, vt + cw, 0.0f);
    }
    if (decays) PrepareDecays(b, hv, t0, ch);
  }

  const Problem& p_;
  const size_t K_, V_, vp_;
  bool chunked_ = false;
  size_t group_width_ = 0, groups_ = 1;
  size_t direct_vecs_ = 8;  // KILN_CPU_GDN=vecs=1|2|4|8
  bool stream_ = false;     // final_state streamed when it is not the state, from 1 MiB (KILN_CPU_GDN=stream=0|1)
};

template <int kK, int kV, bool kKda>
absl::Status GatedDeltaNet(const KernelArgs& args) {
  Problem p;
  if (absl::Status st = MakeProblem(args, p); !st.ok()) return st;
  const Kernel<kK, kV, kKda> kernel(p);
  const int64_t items = kernel.items();
  if (items == 0) return absl::OkStatus();
  const int threads = static_cast<int>(std::min<int64_t>(p.threads, items));
#pragma omp parallel num_threads(threads)
  {
    typename Kernel<kK, kV, kKda>::Scratch s;
    kernel.Allocate(s);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) kernel.Run(item, s);
  }
  return absl::OkStatus();
}

#define KILN_GDN_SIZE(n) \
  {n, n, false, &GatedDeltaNet<n, n, false>}, { n, n, true, &GatedDeltaNet<n, n, true> }

VariantTable Variants() {
  static const Variant kVariants[] = {
      KILN_GDN_SIZE(32), KILN_GDN_SIZE(64), KILN_GDN_SIZE(128), KILN_GDN_SIZE(256),
      KILN_GDN_SIZE(0),
  };
  return {kVariants, sizeof(kVariants) / sizeof(kVariants[0])};
}
#undef KILN_GDN_SIZE

}  // namespace HWY_NAMESPACE
}  // namespace kiln::cpu::gdn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kiln::cpu {
namespace gdn {

HWY_EXPORT(Variants);

namespace {

Support SupportsGatedDeltaNet(const Graph& graph, const Node& node) {
  auto p = ResolveGatedDeltaNet(graph, node);
  if (!p.ok()) return Support::No(std::string(p.status().message()));
  // Every dtype the op allows (q/k/v f32/f16/bf16; g, beta, state f32), any
  // head size, GDA and KDA, any strides with a contiguous innermost dim.
  return Support::Yes();
}

absl::StatusOr<CpuPipeline> SelectGatedDeltaNet(const Graph& graph, const Node& node) {
  auto p = ResolveGatedDeltaNet(graph, node);
  if (!p.ok()) return p.status();
  const int64_t K = p->K, V = p->V;
  const bool kda = p->kda;
  const VariantTable table = HWY_DYNAMIC_DISPATCH(Variants)();
  for (size_t i = 0; i < table.size; ++i) {
    const Variant& var = table.begin[i];
    if (var.kda == kda && var.k == K && var.v == V) {
      return CpuPipeline{absl::StrCat("gated_delta_net[k=", K, ",v=", V, ",kda=", kda, "]"), var.fn};
    }
  }
  for (size_t i = 0; i < table.size; ++i) {
    const Variant& var = table.begin[i];
    if (var.kda == kda && var.k == 0) {
      return CpuPipeline{absl::StrCat("gated_delta_net[k=any,v=any,kda=", kda, "]"), var.fn};
    }
  }
  return absl::InternalError("gated_delta_net: no generic CPU kernel");
}

}  // namespace
}  // namespace gdn

void RegisterCpuGatedDeltaNetKernels(std::vector<CpuKernelEntry>& k) {
  k.push_back({"gated_delta_net", &gdn::SupportsGatedDeltaNet, &gdn::SelectGatedDeltaNet});
}

}  // namespace kiln::cpu
#endif  // HWY_ONCE
