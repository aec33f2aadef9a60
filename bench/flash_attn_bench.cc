// flash_attn CPU kernel benchmarks: decode over growing caches, multi-sequence
// decode over a shared cache (block-diagonal mask, masked tiles skipped) vs one
// sequence, and causal prefill. Counters: bytes/s of K/V that must be read
// (decode) and FLOP/s (prefill); BM_MemoryReadBandwidth and BM_PeakFmaF32 give
// this machine's ceilings to read them against.
#include <immintrin.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "bench/kernel_bench_util.h"
#include "ops/flash_attn.h"

namespace kiln::bench {
namespace {

constexpr int64_t kHq = 32, kHkv = 8, kD = 128;  // GQA 4, head size 128

Attrs FaAttrs(bool causal) {
  return {{"scale", 0.0}, {"softcap", 0.0}, {"max_bias", 0.0}, {"causal", causal},
          {"out_dtype", std::string("f32")}};
}

// K/V bytes of `cells` cache cells (f16).
double KvBytes(int64_t cells) { return 2.0 * cells * kHkv * kD * 2; }

void SetBlockDiagonalMask(const TensorView& mask, int64_t n, int64_t len) {
  // Row i (sequence i) sees cells [i*len, (i+1)*len).
  ForEachIndex(mask.rank, mask.dims, [&](const int64_t* idx) {
    const bool own = idx[3] / len == idx[2];
    StoreElement(mask, idx, own ? 0.0 : -std::numeric_limits<double>::infinity());
  });
}

// One sequence, Sq = 1, no mask, over Skv = range(0) cells.
void BM_FlashAttnDecode(benchmark::State& state) {
  const int64_t skv = state.range(0);
  KernelRunner r("flash_attn",
                 {{DType::kF32, {1, 1, kHq, kD}}, {DType::kF16, {1, skv, kHkv, kD}},
                  {DType::kF16, {1, skv, kHkv, kD}}},
                 FaAttrs(false));
  if (!r.error().empty()) return state.SkipWithError(r.error().c_str());
  for (auto _ : state) r.Run(state);
  state.counters["kv_bytes/s"] = benchmark::Counter(KvBytes(skv), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(r.key());
}
BENCHMARK(BM_FlashAttnDecode)->RangeMultiplier(2)->Range(512, 8192)->UseRealTime();

// The baseline of the multi-sequence case: N = range(0) separate decode calls,
// one sequence each over its own L = range(1) cells (distinct memory, so the
// caches see what the shared cache sees), with a (zero) mask.
void BM_FlashAttnDecodeSeparateSequences(benchmark::State& state) {
  const int64_t n = state.range(0), len = state.range(1);
  std::vector<std::unique_ptr<KernelRunner>> runs;
  for (int64_t i = 0; i < n; ++i) {
    runs.push_back(std::make_unique<KernelRunner>(
        "flash_attn",
        std::vector<BenchInput>{{DType::kF32, {1, 1, kHq, kD}}, {DType::kF16, {1, len, kHkv, kD}},
                                {DType::kF16, {1, len, kHkv, kD}}, {DType::kF16, {1, 1, 1, len}, 0, 0}},
        FaAttrs(false)));
    if (!runs.back()->error().empty()) return state.SkipWithError(runs.back()->error().c_str());
  }
  for (auto _ : state) {
    for (auto& r : runs) r->Run(state);
  }
  state.counters["kv_bytes/s"] = benchmark::Counter(KvBytes(n * len), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["time_per_sequence"] = benchmark::Counter(
      n, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(runs[0]->key());
}
BENCHMARK(BM_FlashAttnDecodeSeparateSequences)->ArgsProduct({{2, 4, 8}, {1024, 4096}})->UseRealTime();

// N = range(0) sequences, one query row each, sharing a cache of N*L cells
// (L = range(1)); each row sees its own L cells (block-diagonal mask). Should
// cost about what N separate one-sequence calls over L cells cost
// (BM_FlashAttnDecodeSeparateSequences), not N times that: masked tiles are
// skipped. kv_bytes counts the N*L cells actually needed.
void BM_FlashAttnDecodeMultiSequence(benchmark::State& state) {
  const int64_t n = state.range(0), len = state.range(1);
  KernelRunner r("flash_attn",
                 {{DType::kF32, {1, n, kHq, kD}}, {DType::kF16, {1, n * len, kHkv, kD}},
                  {DType::kF16, {1, n * len, kHkv, kD}}, {DType::kF16, {1, 1, n, n * len}, 0, 0}},
                 FaAttrs(false));
  if (!r.error().empty()) return state.SkipWithError(r.error().c_str());
  SetBlockDiagonalMask(r.input(kFlashAttnMask), n, len);
  for (auto _ : state) r.Run(state);
  state.counters["kv_bytes/s"] = benchmark::Counter(KvBytes(n * len), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["time_per_sequence"] = benchmark::Counter(
      n, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(r.key());
}
BENCHMARK(BM_FlashAttnDecodeMultiSequence)->ArgsProduct({{2, 4, 8}, {1024, 4096}})->UseRealTime();

// The same N rows over the N*L cells without a mask: every row sees every
// cell, which is the work a kernel that did not skip masked tiles would do.
void BM_FlashAttnDecodeMultiSequenceUnmasked(benchmark::State& state) {
  const int64_t n = state.range(0), len = state.range(1);
  KernelRunner r("flash_attn",
                 {{DType::kF32, {1, n, kHq, kD}}, {DType::kF16, {1, n * len, kHkv, kD}},
                  {DType::kF16, {1, n * len, kHkv, kD}}},
                 FaAttrs(false));
  if (!r.error().empty()) return state.SkipWithError(r.error().c_str());
  for (auto _ : state) r.Run(state);
  state.counters["time_per_sequence"] = benchmark::Counter(
      n, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(r.key());
}
BENCHMARK(BM_FlashAttnDecodeMultiSequenceUnmasked)->ArgsProduct({{2, 4, 8}, {1024, 4096}})->UseRealTime();

// Causal prefill: Sq = Skv = range(0).
void BM_FlashAttnPrefillCausal(benchmark::State& state) {
  const int64_t s = state.range(0);
  KernelRunner r("flash_attn",
                 {{DType::kF32, {1, s, kHq, kD}}, {DType::kF16, {1, s, kHkv, kD}},
                  {DType::kF16, {1, s, kHkv, kD}}},
                 FaAttrs(true));
  if (!r.error().empty()) return state.SkipWithError(r.error().c_str());
  for (auto _ : state) r.Run(state);
  // QK^T and PV over the visible (i, j) pairs: 2 FLOPs per multiply-add.
  const double pairs = s * (s + 1) / 2.0;
  state.counters["FLOP/s"] =
      benchmark::Counter(4.0 * kD * kHq * pairs, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(r.key());
}
BENCHMARK(BM_FlashAttnPrefillCausal)->Arg(512)->UseRealTime();

// Ceiling 1: streaming read bandwidth of all threads (1 GiB, beyond any L3;
// summed as integers so that the loop vectorizes and memory is the limit).
void BM_MemoryReadBandwidth(benchmark::State& state) {
  const int64_t n = int64_t{256} << 20;
  std::vector<uint32_t> a(n, 1);
  for (auto _ : state) {
    uint32_t sum = 0;
#pragma omp parallel for reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) sum += a[i];
    benchmark::DoNotOptimize(sum);
  }
  state.counters["bytes/s"] = benchmark::Counter(4.0 * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MemoryReadBandwidth)->UseRealTime();

// Ceiling 2: f32 FMA throughput of all threads, 12 independent chains of the
// widest FMA the CPU has (AVX-512 where present: some cores issue two per
// cycle, others split them in halves; AVX2 otherwise).
__attribute__((target("avx2,fma"))) float Fma256Loop(int64_t iters) {
  __m256 acc[12];
  for (auto& x : acc) x = _mm256_setzero_ps();
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& x : acc) x = _mm256_fmadd_ps(x, a, b);
  }
  float sum = 0;
  for (auto& x : acc) sum += _mm256_cvtss_f32(x);
  return sum;
}

__attribute__((target("avx512f"))) float Fma512Loop(int64_t iters) {
  __m512 acc[12];
  for (auto& x : acc) x = _mm512_setzero_ps();
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& x : acc) x = _mm512_fmadd_ps(x, a, b);
  }
  float sum = 0;
  for (auto& x : acc) sum += _mm512_cvtss_f32(x);
  return sum;
}

void BM_PeakFmaF32(benchmark::State& state) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))) {
    return state.SkipWithError("needs AVX2 and FMA");
  }
  const int64_t iters = 1 << 22;
  int threads = 1;
  for (auto _ : state) {
#pragma omp parallel
    {
#pragma omp single
      threads = omp_get_num_threads();
      benchmark::DoNotOptimize(avx512 ? Fma512Loop(iters) : Fma256Loop(iters));
    }
  }
  const double lanes = avx512 ? 16 : 8;
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * lanes * 12 * iters * threads,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(avx512 ? "avx512" : "avx2");
}
BENCHMARK(BM_PeakFmaF32)->UseRealTime();

}  // namespace
}  // namespace kiln::bench
