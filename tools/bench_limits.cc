// Host ceilings for `kiln bench` (bench_limits.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tools/bench_limits.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cstddef>
#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace kiln::tools {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 12 independent FMA chains (enough for two pipes of 4-5 cycles latency);
// returns a value that depends on all of them. The chains start from
// different values: identical chains are one chain to the compiler (GCC
// merged them, and the "peak" counted 12 FMAs per 4-cycle latency).
float FmaLoop(int64_t iters) {
  const hn::ScalableTag<float> d;
  const auto a = hn::Set(d, 0.999f), b = hn::Set(d, 1e-3f);
  auto c0 = hn::Set(d, 0.f), c1 = hn::Set(d, 1.f), c2 = hn::Set(d, 2.f), c3 = hn::Set(d, 3.f);
  auto c4 = hn::Set(d, 4.f), c5 = hn::Set(d, 5.f), c6 = hn::Set(d, 6.f), c7 = hn::Set(d, 7.f);
  auto c8 = hn::Set(d, 8.f), c9 = hn::Set(d, 9.f), c10 = hn::Set(d, 10.f), c11 = hn::Set(d, 11.f);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = hn::MulAdd(c0, a, b), c1 = hn::MulAdd(c1, a, b), c2 = hn::MulAdd(c2, a, b);
    c3 = hn::MulAdd(c3, a, b), c4 = hn::MulAdd(c4, a, b), c5 = hn::MulAdd(c5, a, b);
    c6 = hn::MulAdd(c6, a, b), c7 = hn::MulAdd(c7, a, b), c8 = hn::MulAdd(c8, a, b);
    c9 = hn::MulAdd(c9, a, b), c10 = hn::MulAdd(c10, a, b), c11 = hn::MulAdd(c11, a, b);
  }
  const auto s = hn::Add(hn::Add(hn::Add(c0, c1), hn::Add(c2, c3)),
                         hn::Add(hn::Add(hn::Add(c4, c5), hn::Add(c6, c7)),
                                 hn::Add(hn::Add(c8, c9), hn::Add(c10, c11))));
  return hn::GetLane(s);
}

int64_t F32Lanes() { return static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>())); }

// Sum of n f32 read as kStreams interleaved sequential streams (one vector
// of each per step, an accumulator each): one stream per core leaves the
// hardware prefetchers idle and under-measures what several-row GEMV
// reads. n is a multiple of kStreams vectors.
constexpr int64_t kStreams = 8;
float SumStreams(const float* HWY_RESTRICT p, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d), part = n / kStreams;
  auto s0 = hn::Zero(d), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  for (int64_t i = 0; i + N <= part; i += N) {
    s0 = hn::Add(s0, hn::Load(d, p + i)), s1 = hn::Add(s1, hn::Load(d, p + part + i));
    s2 = hn::Add(s2, hn::Load(d, p + 2 * part + i)), s3 = hn::Add(s3, hn::Load(d, p + 3 * part + i));
    s4 = hn::Add(s4, hn::Load(d, p + 4 * part + i)), s5 = hn::Add(s5, hn::Load(d, p + 5 * part + i));
    s6 = hn::Add(s6, hn::Load(d, p + 6 * part + i)), s7 = hn::Add(s7, hn::Load(d, p + 7 * part + i));
  }
  const auto s = hn::Add(hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)), hn::Add(hn::Add(s4, s5), hn::Add(s6, s7)));
  return hn::GetLane(hn::SumOfLanes(d, s));
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::tools
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "hwy/aligned_allocator.h"
#include "hwy/targets.h"
#include "backends/cpu/cpu_features.h"
#include "tools/bench_limits.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace kiln::tools {

HWY_EXPORT(FmaLoop);
HWY_EXPORT(F32Lanes);
HWY_EXPORT(SumStreams);

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best of `rounds` wall times of fn(thread) run on `threads` threads at once.
template <class F>
double BestParallelSeconds(int threads, int rounds, F&& fn) {
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        fn(t);
      });
    }
    while (ready.load() < threads) std::this_thread::yield();
    const double t0 = Now();
    go.store(true, std::memory_order_release);
    for (auto& th : pool) th.join();
    best = std::min(best, Now() - t0);
  }
  return best;
}

#if defined(__x86_64__)
// 12 independent vdpbf16ps chains: 16 lanes x 2 products each (64 FLOP).
__attribute__((target("avx512f,avx512bf16"))) float DotBf16Loop(int64_t iters) {
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3F80), b = (__m512bh)_mm512_set1_epi16(0x3A83);  // 1, 1e-3
  __m512 c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm512_set1_ps(static_cast<float>(i));
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < 12; ++j) c[j] = _mm512_dpbf16_ps(c[j], a, b);
  }
  __m512 s = c[0];
  for (int j = 1; j < 12; ++j) s = _mm512_add_ps(s, c[j]);
  return _mm512_reduce_add_ps(s);
}

// AMX: 4 independent 16x16 f32 tiles, each += a 16x32 bf16 tile times a
// 32x16 one per step (16384 FLOP a tdpbf16ps). The calling thread must
// have been granted the tile state (HostMatrixUnits does it process-wide).
__attribute__((target("amx-tile,amx-bf16"))) float AmxBf16Loop(int64_t iters) {
  alignas(64) unsigned char cfg[64] = {};
  cfg[0] = 1;  // palette 1: rows x bytes per row for each of tmm0-7
  for (int t = 0; t < 8; ++t) {
    cfg[16 + 2 * t] = 64;
    cfg[48 + t] = 16;
  }
  alignas(64) uint16_t src[16 * 32];
  for (auto& x : src) x = 0x3A83;  // bf16 1e-3
  alignas(64) float out[16 * 16];
  _tile_loadconfig(cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, src, 64);
  _tile_loadd(5, src, 64);
  _tile_loadd(6, src, 64);
  _tile_loadd(7, src, 64);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, out, 64);
  _tile_release();
  return out[0];
}
#endif

bool CpuFlag(const std::string& flag) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) == 0) return (line + " ").find(" " + flag + " ") != std::string::npos;
  }
  return false;
}

}  // namespace

int64_t LastLevelCacheBytes() { return cpu::HostLastLevelCacheBytes(); }

HostLimits MeasureHostLimits(int threads) {
  HostLimits l;
  l.threads = std::max(threads, 1);
  l.llc_bytes = LastLevelCacheBytes();
  l.fma_target = hwy::TargetName(hwy::SupportedAndGeneratedTargets()[0]);
  l.amx_bf16 = CpuFlag("amx_bf16");
  l.avx512_bf16 = CpuFlag("avx512_bf16");

  // FMA: about 2 ms per round, best of 15 (short rounds find quiet slices).
  const int64_t iters = int64_t{1} << 20;
  std::vector<float> sink(l.threads);
  const double fma_s = BestParallelSeconds(l.threads, 15, [&](int t) {
    sink[t] = HWY_DYNAMIC_DISPATCH(FmaLoop)(iters);
  });
  l.fma_f32_flops = 2.0 * 12 * HWY_DYNAMIC_DISPATCH(F32Lanes)() * iters * l.threads / fma_s;

  // bf16 matrix peak: AMX where granted, else AVX512-BF16.
#if defined(__x86_64__)
  const cpu::MatrixUnits& mu = cpu::HostMatrixUnits();
  if (mu.amx_bf16) {
    const int64_t amx_iters = int64_t{1} << 16;
    std::vector<float> amx_sink(l.threads);
    const double s = BestParallelSeconds(l.threads, 5, [&](int t) { amx_sink[t] = AmxBf16Loop(amx_iters); });
    l.bf16_matrix_flops = 4.0 * 16384 * amx_iters * l.threads / s;
    l.bf16_unit = "AMX";
  } else if (mu.avx512_bf16) {
    const int64_t dot_iters = int64_t{1} << 20;
    std::vector<float> dot_sink(l.threads);
    const double s = BestParallelSeconds(l.threads, 5, [&](int t) { dot_sink[t] = DotBf16Loop(dot_iters); });
    l.bf16_matrix_flops = 12.0 * 64 * dot_iters * l.threads / s;
    l.bf16_unit = "AVX512-BF16";
  }
#endif

  // Bandwidth: each thread sums its slice of a buffer of >= 8x the LLC (so
  // no cache level holds a useful part of it) as several streams; best of
  // rounds (the busiest round is someone else's).
  const int64_t bytes = std::max<int64_t>(int64_t{256} << 20, 8 * l.llc_bytes);
  const int64_t n = bytes / 4;
  auto buf = hwy::AllocateAligned<float>(n);
  cpu::AdviseHugePages(buf.get(), 4 * static_cast<size_t>(n));  // the pages the kernels get
  std::vector<float> sums(l.threads);
  const int64_t per = (n / l.threads) & ~int64_t{4095};
  // First touch on the reading thread.
  BestParallelSeconds(l.threads, 1, [&](int t) { std::fill(buf.get() + t * per, buf.get() + (t + 1) * per, 1.0f); });
  const double bw_s = BestParallelSeconds(l.threads, 8, [&](int t) {
    sums[t] = HWY_DYNAMIC_DISPATCH(SumStreams)(buf.get() + t * per, per);
  });
  l.read_set_bytes = 4 * per * l.threads;
  l.read_bytes_per_s = l.read_set_bytes / bw_s;
  return l;
}

}  // namespace kiln::tools
#endif  // HWY_ONCE
