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
// returns a value that depends on all of them.
float FmaLoop(int64_t iters) {
  const hn::ScalableTag<float> d;
  const auto a = hn::Set(d, 0.999f), b = hn::Set(d, 1e-3f);
  auto c0 = hn::Zero(d), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  auto c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
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

// Sum of n u32 (n a multiple of 4 vectors), four accumulators.
uint32_t SumU32(const uint32_t* p, int64_t n) {
  const hn::ScalableTag<uint32_t> d;
  const int64_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::Add(s0, hn::Load(d, p + i));
    s1 = hn::Add(s1, hn::Load(d, p + i + N));
    s2 = hn::Add(s2, hn::Load(d, p + i + 2 * N));
    s3 = hn::Add(s3, hn::Load(d, p + i + 3 * N));
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
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
#include "tools/bench_limits.h"

namespace kiln::tools {

HWY_EXPORT(FmaLoop);
HWY_EXPORT(F32Lanes);
HWY_EXPORT(SumU32);

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

bool CpuFlag(const std::string& flag) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) == 0) return (line + " ").find(" " + flag + " ") != std::string::npos;
  }
  return false;
}

}  // namespace

int64_t LastLevelCacheBytes() {
  int64_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string s;
    if (!(f >> s) || s.empty()) continue;
    int64_t mult = 1;
    if (s.back() == 'K') mult = 1024, s.pop_back();
    else if (s.back() == 'M') mult = 1 << 20, s.pop_back();
    int64_t v = 0;
    if (absl::SimpleAtoi(s, &v)) best = std::max(best, v * mult);
  }
  return best;
}

HostLimits MeasureHostLimits(int threads) {
  HostLimits l;
  l.threads = std::max(threads, 1);
  l.llc_bytes = LastLevelCacheBytes();
  l.fma_target = hwy::TargetName(hwy::SupportedAndGeneratedTargets()[0]);
  l.amx_bf16 = CpuFlag("amx_bf16");
  l.avx512_bf16 = CpuFlag("avx512_bf16");

  // FMA: about 50 ms per round.
  const int64_t iters = int64_t{1} << 21;
  std::vector<float> sink(l.threads);
  const double fma_s = BestParallelSeconds(l.threads, 5, [&](int t) {
    sink[t] = HWY_DYNAMIC_DISPATCH(FmaLoop)(iters);
  });
  l.fma_f32_flops = 2.0 * 12 * HWY_DYNAMIC_DISPATCH(F32Lanes)() * iters * l.threads / fma_s;

  // Bandwidth: each thread sums its slice of a buffer of >= 4x the LLC.
  const int64_t bytes = std::max<int64_t>(int64_t{256} << 20, 4 * l.llc_bytes);
  const int64_t n = bytes / 4;
  auto buf = hwy::AllocateAligned<uint32_t>(n);
  std::vector<uint32_t> sums(l.threads);
  const int64_t per = (n / l.threads) & ~int64_t{255};
  // First touch on the reading thread.
  BestParallelSeconds(l.threads, 1, [&](int t) { std::fill(buf.get() + t * per, buf.get() + (t + 1) * per, 1u); });
  const double bw_s = BestParallelSeconds(l.threads, 4, [&](int t) {
    sums[t] = HWY_DYNAMIC_DISPATCH(SumU32)(buf.get() + t * per, per);
  });
  l.read_set_bytes = 4 * per * l.threads;
  l.read_bytes_per_s = l.read_set_bytes / bw_s;
  return l;
}

}  // namespace kiln::tools
#endif  // HWY_ONCE
