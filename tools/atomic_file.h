// Writing a file so that readers see the old contents or the new, never a
// torn mix: a temporary file in the same folder, fsync, then rename.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kiln::tools {

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes);
// The same for a file made of several parts (no copy joins them first).
absl::Status WriteFileAtomically(const std::string& path, const std::vector<absl::string_view>& parts);

// Reads a whole file, refusing files over `max_bytes`.
absl::StatusOr<std::string> ReadFile(const std::string& path, int64_t max_bytes);

}  // namespace kiln::tools
