// The backends compiled into this build, by name. A backend whose driver is
// missing is "not available" (an error status), never a crash.
#pragma once

#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"

namespace kiln {

struct BackendOptions {
  int threads = 0;  // CPU threads; 0 = all cores
  int device = -1;  // device index; -1 = the backend's preferred device
};

// Names of the backends compiled in, in default priority order.
std::vector<std::string> BackendNames();
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(absl::string_view name,
                                                       const BackendOptions& options = {});
// The devices a backend can use here (empty, with the reason, when none).
absl::StatusOr<std::vector<DeviceInfo>> ListDevices(absl::string_view name);

}  // namespace kiln
