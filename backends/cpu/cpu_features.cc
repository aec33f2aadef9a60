// Host matrix units (cpu_features.h).
#include "backends/cpu/cpu_features.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace kiln::cpu {
namespace {

// XCR0 state components: SSE|AVX (1, 2), opmask|ZMM_Hi256|Hi16_ZMM (5-7),
// XTILECFG|XTILEDATA (17, 18).
constexpr unsigned long long kXcr0Avx512 = 0xE6;
constexpr unsigned long long kXcr0Amx = (1ull << 17) | (1ull << 18);

#if defined(__x86_64__)
CpuidBits ReadCpuid() {
  CpuidBits b;
  unsigned a, bx, c, d;
  if (!__get_cpuid(1, &a, &bx, &c, &d)) return b;
  if (c & (1u << 27)) {  // OSXSAVE: xgetbv may be used
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    b.xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  if (__get_cpuid_max(0, nullptr) < 7) return b;
  __cpuid_count(7, 0, a, bx, c, d);
  b.avx512f = bx & (1u << 16);
  b.amx_bf16 = d & (1u << 22);
  b.amx_tile = d & (1u << 24);
  __cpuid_count(7, 1, a, bx, c, d);
  b.avx512_bf16 = a & (1u << 5);
  return b;
}

// Linux >= 5.16 keeps AMX's 8 KiB tile state off until a process asks.
bool RequestAmx() {
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}
#endif

MatrixUnits Detect() {
  const char* env = std::getenv("KILN_CPU_MATRIX");
  if (env && std::strcmp(env, "off") == 0) return {};
#if defined(__x86_64__)
  const CpuidBits bits = ReadCpuid();
  const bool no_amx = env && std::strcmp(env, "avx512bf16") == 0;
  const bool amx_possible = bits.amx_tile && bits.amx_bf16 && (bits.xcr0 & kXcr0Amx) == kXcr0Amx && !no_amx;
  MatrixUnits u = DecideMatrixUnits(bits, amx_possible && RequestAmx());
  u.avx512_bf16_gemm = u.avx512_bf16 && no_amx;
  return u;
#else
  return {};
#endif
}

}  // namespace

MatrixUnits DecideMatrixUnits(const CpuidBits& bits, bool amx_granted) {
  MatrixUnits u;
  u.avx512_bf16 = bits.avx512f && bits.avx512_bf16 && (bits.xcr0 & kXcr0Avx512) == kXcr0Avx512;
  u.amx_bf16 = bits.amx_tile && bits.amx_bf16 && (bits.xcr0 & kXcr0Amx) == kXcr0Amx && amx_granted;
  return u;
}

int64_t HostLastLevelCacheBytes() {
  static const int64_t bytes = [] {
    int64_t best = 0;
    for (int i = 0; i < 8; ++i) {
      std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
      std::string s;
      if (!(f >> s) || s.empty()) continue;
      int64_t mult = 1;
      if (s.back() == 'K') mult = 1024, s.pop_back();
      else if (s.back() == 'M') mult = 1 << 20, s.pop_back();
      char* end = nullptr;
      const long long v = std::strtoll(s.c_str(), &end, 10);
      if (end && *end == 0 && v > 0) best = std::max<int64_t>(best, v * mult);
    }
    return best;
  }();
  return bytes;
}

void AdviseHugePages(void* p, size_t bytes) {
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + kHugePageBytes - 1) & ~(uintptr_t{kHugePageBytes} - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(uintptr_t{kHugePageBytes} - 1);
  if (e > a) madvise(reinterpret_cast<void*>(a), e - a, MADV_HUGEPAGE);  // EINVAL without THP: fine
}

const MatrixUnits& HostMatrixUnits() {
  static const MatrixUnits units = Detect();
  return units;
}

}  // namespace kiln::cpu
