// The CPU kernel table: every CpuKernelEntry the kernel family files register,
// looked up by op name.
#pragma once

#include <vector>

#include "absl/strings/string_view.h"
#include "backends/cpu/cpu_kernel.h"

namespace kiln::cpu {

// nullptr when no CPU kernel handles `op`.
const CpuKernelEntry* FindCpuKernel(absl::string_view op);
// All entries, sorted by op name.
const std::vector<CpuKernelEntry>& CpuKernels();

}  // namespace kiln::cpu
