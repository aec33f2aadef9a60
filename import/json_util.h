// Parsing untrusted JSON (checkpoint headers, config.json, index files) with
// nlohmann-json: nesting depth capped, duplicate keys refused (nlohmann would
// keep the last one silently), parse errors as statuses with their position.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace kiln::import {

// The text must be one JSON object.
absl::StatusOr<nlohmann::json> ParseJsonObject(absl::string_view text, int max_depth);

// The same from a regular file of at most `max_bytes`; errors name the file.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path, int64_t max_bytes, int max_depth);

}  // namespace kiln::import
