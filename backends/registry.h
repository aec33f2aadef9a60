// The backends compiled into this build, by name. A backend whose driver or
// device is missing is "not available" (an error status), never a crash.
//
// Each backend registers a BackendFactory (see registry.cc: the list is made
// from what CMake compiled in, KILN_HAVE_VULKAN / KILN_HAVE_OPENCL).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/backend.h"

namespace kiln {

struct BackendOptions {
  int threads = 0;     // CPU threads; 0 = all cores
  // Which device: an index into ListDevices(name), or a case-insensitive
  // substring of its name; "" = $KILN_<NAME>_DEVICE, else the backend's
  // preferred device (a discrete GPU first).
  std::string device;
  // Folder of the on-disk pipeline cache; "" = PipelineCacheDir(), "off" =
  // no disk cache.
  std::string cache_dir;
  // Backend-specific switches, e.g. {"coopmat", "off"}; unknown keys are an
  // error naming the keys the backend knows.
  std::map<std::string, std::string> flags;
};

struct BackendFactory {
  std::string name;
  // The devices this backend can use here, without creating a backend (no
  // pipelines, no queues); an error with the reason when there are none.
  absl::StatusOr<std::vector<DeviceInfo>> (*list_devices)() = nullptr;
  absl::StatusOr<std::unique_ptr<Backend>> (*create)(const BackendOptions& options) = nullptr;
};

// The factories compiled in, in default priority order (GPUs first, cpu last).
const std::vector<BackendFactory>& BackendFactories();
// Their names, in the same order.
std::vector<std::string> BackendNames();
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(absl::string_view name,
                                                       const BackendOptions& options = {});
absl::StatusOr<std::vector<DeviceInfo>> ListDevices(absl::string_view name);

// Picks a device for BackendOptions::device (or the backend's $KILN_<NAME>_DEVICE
// when it is empty): returns an index into `devices`, or `preferred` when
// nothing was asked for; an error listing the devices when the choice
// matches none.
absl::StatusOr<int> ChooseDevice(absl::string_view backend, const std::vector<DeviceInfo>& devices,
                                 absl::string_view requested, int preferred);

// An error for `flags` keys not in `known`; OK when every key is known.
absl::Status CheckBackendFlags(absl::string_view backend, const std::map<std::string, std::string>& flags,
                               const std::vector<std::string>& known);

}  // namespace kiln
