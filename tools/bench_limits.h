// The ceilings `kiln bench` reads its figures against, measured in the same
// run on the host: f32 FMA throughput (the widest FMA Highway dispatches to,
// 12 independent chains per thread) and streaming read bandwidth beyond the
// last-level cache, on the given number of threads.
#pragma once

#include <cstdint>
#include <string>

namespace kiln::tools {

struct HostLimits {
  int threads = 1;
  double fma_f32_flops = 0;      // FLOP/s (an FMA counts 2)
  std::string fma_target;        // Highway target of the FMA loop, e.g. "AVX2"
  double read_bytes_per_s = 0;   // bytes/s
  int64_t read_set_bytes = 0;    // the buffer read (>= 8x the LLC)
  int64_t llc_bytes = 0;         // last-level cache (0: unknown)
  bool amx_bf16 = false;         // AMX-BF16 in /proc/cpuinfo
  bool avx512_bf16 = false;
  double bf16_matrix_flops = 0;  // FLOP/s of bf16 products into f32 (0: no unit usable)
  std::string bf16_unit;         // "AMX" or "AVX512-BF16" (what kiln's bf16 GEMM uses)
};

// Size of the largest CPU cache sysfs reports (0 when unknown).
int64_t LastLevelCacheBytes();

HostLimits MeasureHostLimits(int threads);

}  // namespace kiln::tools
