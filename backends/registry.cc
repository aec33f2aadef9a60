#include "backends/registry.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/cpu/cpu_backend.h"
#ifdef KILN_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif
#ifdef KILN_HAVE_OPENCL
#include "backends/opencl/opencl_backend.h"
#endif

namespace kiln {

const std::vector<BackendFactory>& BackendFactories() {
  static const std::vector<BackendFactory> factories = [] {
    std::vector<BackendFactory> f;
#ifdef KILN_HAVE_VULKAN
    f.push_back(VulkanBackendFactory());
#endif
#ifdef KILN_HAVE_OPENCL
    f.push_back(OpenClBackendFactory());
#endif
    f.push_back(CpuBackendFactory());
    return f;
  }();
  return factories;
}

std::vector<std::string> BackendNames() {
  std::vector<std::string> names;
  for (const BackendFactory& f : BackendFactories()) names.push_back(f.name);
  return names;
}

namespace {
const BackendFactory* FindFactory(absl::string_view name) {
  for (const BackendFactory& f : BackendFactories()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}
absl::Status Unknown(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("unknown backend '", absl::CHexEscape(name), "' (this build has: ",
                                          absl::StrJoin(BackendNames(), ", "), ")"));
}
}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(absl::string_view name, const BackendOptions& options) {
  const BackendFactory* f = FindFactory(name);
  if (!f) return Unknown(name);
  return f->create(options);
}

absl::StatusOr<std::vector<DeviceInfo>> ListDevices(absl::string_view name) {
  const BackendFactory* f = FindFactory(name);
  if (!f) return Unknown(name);
  return f->list_devices();
}

absl::StatusOr<int> ChooseDevice(absl::string_view backend, const std::vector<DeviceInfo>& devices,
                                 absl::string_view requested, int preferred) {
  std::string asked(requested);
  std::string source = "the device option";
  if (asked.empty()) {
    const std::string env = absl::StrCat("KILN_", absl::AsciiStrToUpper(backend), "_DEVICE");
    if (const char* v = std::getenv(env.c_str()); v && *v) {
      asked = v;
      source = env;
    }
  }
  if (asked.empty()) return preferred;
  auto list = [&] {
    std::vector<std::string> names;
    for (size_t i = 0; i < devices.size(); ++i) names.push_back(absl::StrCat(i, ": ", devices[i].name));
    return names.empty() ? std::string("none") : absl::StrJoin(names, "; ");
  };
  int index = -1;
  if (absl::SimpleAtoi(asked, &index)) {
    if (index < 0 || index >= static_cast<int>(devices.size())) {
      return absl::NotFoundError(absl::StrCat(backend, ": ", source, " asks for device ", index,
                                              ", but the devices are: ", list()));
    }
    return index;
  }
  const std::string needle = absl::AsciiStrToLower(asked);
  for (size_t i = 0; i < devices.size(); ++i) {
    if (absl::StrContains(absl::AsciiStrToLower(devices[i].name), needle)) return static_cast<int>(i);
  }
  return absl::NotFoundError(absl::StrCat(backend, ": ", source, " '", absl::CHexEscape(asked),
                                          "' matches no device; the devices are: ", list()));
}

absl::Status CheckBackendFlags(absl::string_view backend, const std::map<std::string, std::string>& flags,
                               const std::vector<std::string>& known) {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : flags) {
    bool found = false;
    for (const std::string& k : known) found |= k == key;
    if (!found) unknown.push_back(absl::CHexEscape(key));
  }
  if (unknown.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(backend, ": unknown flag", unknown.size() > 1 ? "s " : " ",
                                                 absl::StrJoin(unknown, ", "), " (known: ",
                                                 known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
}

}  // namespace kiln
