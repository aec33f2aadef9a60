// TEMPORARY (cpu backend helper): empty kernel families until their files exist.
#include "backends/cpu/cpu_kernel.h"
namespace kiln::cpu {
void RegisterCpuMatmulKernels(std::vector<CpuKernelEntry>&) {}
void RegisterCpuNormKernels(std::vector<CpuKernelEntry>&) {}
void RegisterCpuLayoutKernels(std::vector<CpuKernelEntry>&) {}
void RegisterCpuRopeKernels(std::vector<CpuKernelEntry>&) {}
void RegisterCpuReduceKernels(std::vector<CpuKernelEntry>&) {}
void RegisterCpuConvKernels(std::vector<CpuKernelEntry>&) {}
void RegisterCpuWriteRowsKernels(std::vector<CpuKernelEntry>&) {}
void RegisterCpuFlashAttnKernels(std::vector<CpuKernelEntry>&) {}
void RegisterCpuGatedDeltaNetKernels(std::vector<CpuKernelEntry>&) {}
}  // namespace kiln::cpu
