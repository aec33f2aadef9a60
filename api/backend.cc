// Backends of the public API: kiln's backend registry behind a shared handle.
#include "absl/strings/str_join.h"
#include "api/internal.h"
#include "backends/cache_dir.h"
#include "backends/registry.h"

namespace kiln::api {
namespace {

DeviceInfo ToPublic(const kiln::DeviceInfo& d) {
  DeviceInfo p;
  p.backend = d.backend;
  p.kind = d.kind;
  p.name = d.name;
  p.driver = d.driver;
  p.id = d.id;
  p.memory_bytes = d.memory_bytes;
  p.compute_units = d.compute_units;
  p.subgroup_size = d.subgroup_size;
  p.features = d.features;
  return p;
}

absl::Status CheckCompiledIn(std::string_view name) {
  for (const std::string& n : kiln::BackendNames()) {
    if (n == name) return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no backend named '", Sv(name), "' in this build; it has ",
                                          absl::StrJoin(kiln::BackendNames(), ", ")));
}

}  // namespace

std::vector<std::string> BackendNames() {
  try {
    return kiln::BackendNames();
  } catch (...) {
    return {};  // only bad_alloc can get here
  }
}

absl::StatusOr<std::vector<DeviceInfo>> ListDevices(std::string_view name) {
  return Guard("ListDevices", [&]() -> absl::StatusOr<std::vector<DeviceInfo>> {
    if (auto st = CheckCompiledIn(name); !st.ok()) return st;
    auto devices = kiln::ListDevices(absl::string_view(name.data(), name.size()));
    if (!devices.ok()) return devices.status();
    std::vector<DeviceInfo> out;
    for (const kiln::DeviceInfo& d : *devices) out.push_back(ToPublic(d));
    return out;
  });
}

std::string DefaultCacheDir() {
  try {
    return kiln::PipelineCacheDir();
  } catch (...) {
    return "";
  }
}

absl::StatusOr<Backend> Backend::Open(std::string_view name, const BackendOptions& options) {
  return Guard("Backend::Open", [&]() -> absl::StatusOr<Backend> {
    if (auto st = CheckCompiledIn(name); !st.ok()) return st;
    kiln::BackendOptions o;
    o.threads = options.threads;
    o.device = options.device;
    o.cache_dir = options.cache_dir;
    o.flags = options.flags;
    auto b = kiln::CreateBackend(absl::string_view(name.data(), name.size()), o);
    if (!b.ok()) return b.status();
    return Access::MakeBackend(std::shared_ptr<kiln::Backend>(std::move(*b)));
  });
}

const std::string& Backend::name() const { return impl_->name; }

DeviceInfo Backend::device() const {
  try {
    return ToPublic(impl_->backend->device());
  } catch (...) {
    return {};
  }
}

PipelineStats Backend::pipeline_stats() const { return api::ToPublic(impl_->backend->pipeline_stats()); }

}  // namespace kiln::api
