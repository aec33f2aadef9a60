// Small helpers around the OpenCL C API: error names and statuses.
#pragma once

#include <CL/cl.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kiln::opencl {

// "CL_OUT_OF_RESOURCES (-5)".
std::string ClErrorName(cl_int err);

// The status for a failed call: ResourceExhausted for allocation failures,
// Internal otherwise; `what` says what was being done.
absl::Status ClError(cl_int err, absl::string_view what);

inline bool IsAllocationFailure(cl_int err) {
  return err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY;
}

}  // namespace kiln::opencl
