// gated_delta_net CPU kernel benchmarks for K = V = 128 (Qwen3.5-like: 16 q/k
// heads, 32 value heads): decode (T = 1, memory-bound on the state) and
// prefill (T = 512 and 4096, compute-bound; the chunked form). Counters: state bytes/s (decode) and
// FLOP/s of the recurrence, 7 FLOPs per state element per token (decay, S^T k,
// rank-1 update, S^T q); read them against BM_MemoryReadBandwidth and
// BM_PeakFmaF32 (flash_attn_bench.cc).
#include <string>

#include "bench/kernel_bench_util.h"

namespace kiln::bench {
namespace {

constexpr int64_t kHk = 16, kHv = 32, kK = 128, kV = 128;

void RunGdn(benchmark::State& state, int64_t batch, int64_t tokens, bool kda) {
  const std::vector<int64_t> gate = kda ? std::vector<int64_t>{batch, tokens, kHv, kK}
                                        : std::vector<int64_t>{batch, tokens, kHv};
  KernelRunner r("gated_delta_net",
                 {{DType::kF32, {batch, tokens, kHk, kK}},
                  {DType::kF32, {batch, tokens, kHk, kK}},
                  {DType::kF32, {batch, tokens, kHv, kV}},
                  {DType::kF32, gate, -0.1f, 0.0f},
                  {DType::kF32, {batch, tokens, kHv}, 0.1f, 0.9f},
                  {DType::kF32, {batch, kHv, kK, kV}, -0.1f, 0.1f}},
                 {{"scale", 0.0}, {"l2norm_qk", true}, {"head_map", std::string("grouped")}});
  if (!r.error().empty()) return state.SkipWithError(r.error().c_str());
  for (auto _ : state) r.Run(state);
  const double elems = static_cast<double>(batch) * kHv * kK * kV;
  state.counters["state_bytes/s"] =
      benchmark::Counter(2.0 * 4 * elems, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] =
      benchmark::Counter(7.0 * elems * tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(r.key());
}

void BM_GatedDeltaNetDecode(benchmark::State& state) { RunGdn(state, state.range(0), 1, state.range(1)); }
BENCHMARK(BM_GatedDeltaNetDecode)->ArgsProduct({{1, 8}, {0, 1}})->ArgNames({"B", "kda"})->UseRealTime();

void BM_GatedDeltaNetPrefill(benchmark::State& state) { RunGdn(state, 1, state.range(0), state.range(1)); }
BENCHMARK(BM_GatedDeltaNetPrefill)->ArgsProduct({{512, 4096}, {0, 1}})->ArgNames({"T", "kda"})->UseRealTime();

}  // namespace
}  // namespace kiln::bench
