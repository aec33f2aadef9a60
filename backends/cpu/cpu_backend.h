// The CPU backend: OpenMP threads, Highway SIMD, kiln's own GEMM; runs every op.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "backends/registry.h"

namespace kiln {

absl::StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const BackendOptions& options);
BackendFactory CpuBackendFactory();

}  // namespace kiln
