#include "backends/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/cpu/cpu_backend.h"

namespace kiln {

std::vector<std::string> BackendNames() { return {"cpu"}; }

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(absl::string_view name,
                                                       const BackendOptions& options) {
  if (name == "cpu") return CreateCpuBackend(options);
  return absl::NotFoundError(absl::StrCat("unknown backend '", name, "' (this build has: ",
                                          absl::StrJoin(BackendNames(), ", "), ")"));
}

absl::StatusOr<std::vector<DeviceInfo>> ListDevices(absl::string_view name) {
  auto backend = CreateBackend(name);
  if (!backend.ok()) return backend.status();
  return std::vector<DeviceInfo>{(*backend)->device()};
}

}  // namespace kiln
