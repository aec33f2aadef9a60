#include "backends/cpu/kernel_table.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>

namespace kiln::cpu {
namespace {

std::vector<CpuKernelEntry> Build() {
  std::vector<CpuKernelEntry> k;
  RegisterCpuElementwiseKernels(k);
  RegisterCpuMatmulKernels(k);
  RegisterCpuNormKernels(k);
  RegisterCpuLayoutKernels(k);
  RegisterCpuRopeKernels(k);
  RegisterCpuReduceKernels(k);
  RegisterCpuConvKernels(k);
  RegisterCpuWriteRowsKernels(k);
  RegisterCpuFlashAttnKernels(k);
  RegisterCpuGatedDeltaNetKernels(k);
  std::sort(k.begin(), k.end(),
            [](const CpuKernelEntry& a, const CpuKernelEntry& b) { return a.op < b.op; });
  for (size_t i = 1; i < k.size(); ++i) {
    if (k[i].op == k[i - 1].op) {  // a programming error in a Register function
      std::fprintf(stderr, "kiln: two CPU kernels registered for op '%s'\n", k[i].op.c_str());
      std::abort();
    }
  }
  return k;
}

}  // namespace

const std::vector<CpuKernelEntry>& CpuKernels() {
  static const std::vector<CpuKernelEntry>* table = new std::vector<CpuKernelEntry>(Build());
  return *table;
}

const CpuKernelEntry* FindCpuKernel(absl::string_view op) {
  const auto& k = CpuKernels();
  auto it = std::lower_bound(k.begin(), k.end(), op,
                             [](const CpuKernelEntry& e, absl::string_view n) { return e.op < n; });
  return it != k.end() && it->op == op ? &*it : nullptr;
}

}  // namespace kiln::cpu
