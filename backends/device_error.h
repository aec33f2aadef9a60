// Errors raised on the device while a split runs.
//
// A kernel that finds a bad value at run time (a gather id or a write_rows
// row out of range) must not write out of bounds and must fail the run with
// an error naming the node. On the CPU the kernel returns the error from
// Execute. A GPU kernel cannot return: it skips the bad write and records the
// first error of the submission in a small device buffer, one per prepared
// split, laid out as DeviceErrorRecord (five 32-bit words, declared the same
// way in the shaders and OpenCL sources). The kernel claims the record with
// an atomic compare-and-swap of `code` from 0, then fills the other words.
// The backend reads the record when the submission's SyncPoint is waited for,
// turns it into a status with DeviceErrorStatus(), and clears it.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "graph/graph.h"

namespace kiln {

enum DeviceErrorCode : uint32_t {
  kDeviceErrorNone = 0,
  kDeviceErrorIndexOutOfRange = 1,  // gather: an id outside [0, limit)
  kDeviceErrorRowOutOfRange = 2,    // write_rows: a row outside [0, limit)
};

struct DeviceErrorRecord {
  uint32_t code = kDeviceErrorNone;
  uint32_t node = 0;      // index into graph.nodes
  int32_t value = 0;      // the bad value
  int32_t limit = 0;      // valid values are [0, limit)
  uint32_t position = 0;  // its index in the ids / rows tensor
};
static_assert(sizeof(DeviceErrorRecord) == 20, "shaders declare five 32-bit words");

// The run's error for a record whose code is not kDeviceErrorNone, naming
// the node and its tensors; OkStatus for kDeviceErrorNone.
absl::Status DeviceErrorStatus(const Graph& graph, const DeviceErrorRecord& record);

}  // namespace kiln
