// Resolving a path named by an untrusted graph file inside the graph's folder.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kiln {

// Resolves `relative` against `folder` and returns the canonical path of an
// existing regular file inside that folder. Refuses empty or absolute paths,
// ".." components, NUL bytes, and anything (symlinks included) that resolves
// outside the folder.
absl::StatusOr<std::string> ResolveInsideFolder(const std::string& folder,
                                                absl::string_view relative);

}  // namespace kiln
