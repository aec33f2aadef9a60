// The OpenCL backend: any OpenCL 1.2+ device (GPUs first across platforms;
// $KILN_OPENCL_DEVICE picks "platform:device", an index or a name
// substring). Programs are built on first use with -D specializations and
// cached on disk; see docs/DESIGN.md.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "backends/registry.h"

namespace kiln {

absl::StatusOr<std::unique_ptr<Backend>> CreateOpenClBackend(const BackendOptions& options);
BackendFactory OpenClBackendFactory();

}  // namespace kiln
