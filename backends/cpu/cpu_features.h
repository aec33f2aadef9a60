// Matrix instructions of the host CPU that Highway's targets do not cover:
// AVX512-BF16 (vdpbf16ps) and AMX-BF16 (tile dpbf16ps). Checked with cpuid
// and the OS's saved-state mask (XCR0); AMX also needs the kernel to grant
// this process the tile data state (Linux arch_prctl), asked for once.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::cpu {

struct MatrixUnits {
  bool avx512_bf16 = false;  // AVX-512F + AVX512-BF16, ZMM state enabled by the OS
  bool amx_bf16 = false;     // AMX-TILE + AMX-BF16, tile data granted to this process
  // Whether bf16 GEMM without AMX uses AVX512-BF16: only when asked
  // (KILN_CPU_MATRIX=avx512bf16). On the one such CPU measured (Xeon,
  // family 6 model 207) vdpbf16ps ran at half the f32 FMA rate and the
  // AVX512-BF16 GEMM at half the f32 path's speed (bench/RESULTS.md).
  bool avx512_bf16_gemm = false;
};

// The host's units (computed once, thread-safe). For comparisons, the
// environment's KILN_CPU_MATRIX=off reports none (the f32 FMA path
// everywhere) and KILN_CPU_MATRIX=avx512bf16 leaves AMX out and runs bf16
// GEMM on AVX512-BF16.
const MatrixUnits& HostMatrixUnits();

// The largest cache of cpu0 in bytes (sysfs; 0 when unknown), read once.
int64_t HostLastLevelCacheBytes();

// Transparent huge pages (x86-64 / arm64: 2 MiB) asked for the whole huge
// pages inside [p, p + bytes); a hint, ignored where the kernel has none.
// The CPU backend's large buffers and `kiln bench`'s bandwidth buffer use
// it, so that the limit is read with the pages the kernels get.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;
void AdviseHugePages(void* p, size_t bytes);

// What the cpuid bits and XCR0 say, before asking the OS for AMX: the pure
// decision, exposed for the unit test.
struct CpuidBits {
  bool avx512f = false, avx512_bf16 = false, amx_tile = false, amx_bf16 = false;
  unsigned long long xcr0 = 0;  // 0 when OSXSAVE is off
};
MatrixUnits DecideMatrixUnits(const CpuidBits& bits, bool amx_granted);

}  // namespace kiln::cpu
