#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "backends/vulkan/vk_kernels.h"

namespace kiln::vk {
namespace {

std::vector<VkKernelEntry> Build() {
  std::vector<VkKernelEntry> k;
  RegisterElementwiseKernels(k);
  RegisterMatmulKernels(k);
  RegisterNormKernels(k);
  RegisterIndexKernels(k);
  RegisterAttentionKernels(k);
  std::sort(k.begin(), k.end(), [](const VkKernelEntry& a, const VkKernelEntry& b) { return a.op < b.op; });
  for (size_t i = 1; i < k.size(); ++i) {
    if (k[i].op == k[i - 1].op) {  // a programming error in a Register function
      std::fprintf(stderr, "kiln: two Vulkan kernels registered for op '%s'\n", k[i].op.c_str());
      std::abort();
    }
  }
  return k;
}

}  // namespace

const VkKernelEntry* FindKernel(absl::string_view op) {
  static const std::vector<VkKernelEntry>* table = new std::vector<VkKernelEntry>(Build());
  auto it = std::lower_bound(table->begin(), table->end(), op,
                             [](const VkKernelEntry& e, absl::string_view n) { return e.op < n; });
  return it != table->end() && it->op == op ? &*it : nullptr;
}

}  // namespace kiln::vk
