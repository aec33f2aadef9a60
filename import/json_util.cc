#include "import/json_util.h"

#include <set>
#include <stdexcept>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/read_file.h"
#include "graph/message_text.h"

namespace kiln::import {
namespace {

using json = nlohmann::json;

// Thrown from the parser callback to stop at the first problem; caught below.
struct Refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

absl::StatusOr<json> ParseJsonObject(absl::string_view text, int max_depth) {
  // One key set per open object, to find duplicates at any level.
  std::vector<std::set<std::string>> keys;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth) throw Refused(absl::StrCat("nested deeper than ", max_depth, " levels"));
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!keys.empty() && !keys.back().insert(key).second) {
          throw Refused(absl::StrCat("the key ", QuoteName(key), " appears twice in one object"));
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  json value;
  try {
    value = json::parse(text.begin(), text.end(), check);
  } catch (const Refused& e) {
    return absl::InvalidArgumentError(e.what());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", e.what()));
  }
  if (!value.is_object()) return absl::InvalidArgumentError("not a JSON object");
  return value;
}

absl::StatusOr<json> ReadJsonFile(const std::string& path, int64_t max_bytes, int max_depth) {
  auto text = ReadFile(path, max_bytes);
  if (!text.ok()) return text.status();
  auto value = ParseJsonObject(*text, max_depth);
  if (!value.ok()) return absl::InvalidArgumentError(absl::StrCat("\"", path, "\": ", value.status().message()));
  return value;
}

}  // namespace kiln::import
