// Reading a whole file with a size cap (the counterpart of atomic_file.h).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace kiln {

// Reads a whole regular file, refusing files over `max_bytes`. Errors keep
// the errno's code (NotFound, PermissionDenied, ...).
absl::StatusOr<std::string> ReadFile(const std::string& path, int64_t max_bytes);

}  // namespace kiln
