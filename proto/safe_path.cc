#include "proto/safe_path.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kiln {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ResolveInsideFolder(const std::string& folder,
                                                absl::string_view relative) {
  auto bad = [&](absl::string_view why) {
    // Escaped: the path is untrusted and may hold control bytes.
    return absl::InvalidArgumentError(
        absl::StrCat("external path \"", absl::CHexEscape(relative), "\" ", why));
  };
  if (relative.empty()) return bad("is empty");
  if (relative.find('\0') != absl::string_view::npos) return bad("contains a NUL byte");
  const fs::path rel{std::string(relative)};
  if (rel.is_absolute() || relative.front() == '/') {
    return bad("is absolute; it must be relative to the graph's folder");
  }
  for (const fs::path& part : rel) {
    if (part == "..") return bad("contains \"..\"; it may not leave the graph's folder");
  }
  // Every filesystem call takes an error_code: kiln does not use exceptions.
  std::error_code ec;
  const fs::path root = fs::canonical(folder.empty() ? fs::path(".") : fs::path(folder), ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat("graph folder \"", folder, "\": ", ec.message()));
  }
  const fs::path target = fs::canonical(root / rel, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("external file \"", absl::CHexEscape(relative), "\" in \"",
                                                  root.string(), "\": ", ec.message()));
  // Compare whole components, so "/a/bc" is not taken to be inside "/a/b".
  auto [r, t] = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
  if (r != root.end() || t == target.end()) {
    return bad(absl::StrCat("resolves to \"", target.string(), "\", outside the graph's folder \"",
                            root.string(), "\""));
  }
  const fs::file_status st = fs::status(target, ec);
  if (ec || !fs::is_regular_file(st)) return bad("is not a regular file");
  return target.string();
}

}  // namespace kiln
