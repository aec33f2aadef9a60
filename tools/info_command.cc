// kiln info: the backends compiled in, their devices and features, and the
// pipeline cache folder.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/cache_dir.h"
#include "backends/disk_cache.h"
#include "backends/registry.h"
#include "tools/args.h"
#include "tools/command.h"

namespace kiln::tools {
namespace {

std::string FormatMemory(uint64_t bytes) {
  if (bytes == 0) return "unknown";
  return absl::StrCat(bytes >> 20, " MiB");
}

}  // namespace

int InfoCommand(const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, {});
  if (!args.ok()) return Fail(kExitUsage, absl::StrCat("info: ", args.status().message()));
  if (args->help) {
    std::printf("usage: kiln info\n\nLists the backends in this build, their devices and features,\n"
                "and the folder of the on-disk pipeline cache.\n");
    return kExitOk;
  }
  if (!args->positional.empty()) {
    return Fail(kExitUsage, absl::StrCat("info: unexpected argument '", args->positional[0], "'"));
  }
  std::printf("kiln %s\n\n", KILN_VERSION);
  for (const std::string& name : BackendNames()) {
    auto devices = ListDevices(name);
    if (!devices.ok()) {
      std::printf("backend %s: not available (%s)\n", name.c_str(), std::string(devices.status().message()).c_str());
      continue;
    }
    std::printf("backend %s: %zu device%s\n", name.c_str(), devices->size(), devices->size() == 1 ? "" : "s");
    for (size_t i = 0; i < devices->size(); ++i) {
      const DeviceInfo& d = (*devices)[i];
      std::printf("  [%zu] %s (%s)\n", i, d.name.c_str(), d.kind.c_str());
      if (!d.driver.empty()) std::printf("      driver          %s\n", d.driver.c_str());
      std::printf("      memory          %s\n", FormatMemory(d.memory_bytes).c_str());
      if (d.compute_units) std::printf("      compute units   %d\n", d.compute_units);
      if (d.subgroup_size) std::printf("      subgroup size   %d\n", d.subgroup_size);
      if (!d.features.empty()) {
        std::printf("      features        %s\n", absl::StrJoin(d.features, " ").c_str());
      }
    }
  }
  const std::string cache_dir = PipelineCacheDir();
  std::printf("\npipeline cache  %s\n",
              cache_dir.empty() ? "(off: KILN_CACHE_DIR is empty or \"off\", or there is no HOME)" : cache_dir.c_str());
  if (!cache_dir.empty()) {
    const DiskCache disk(DiskCacheOptions::FromEnvironment());
    std::printf("                %.1f MiB used of %.1f MiB (KILN_CACHE_MAX_BYTES)\n",
                static_cast<double>(disk.UsedBytes()) / (1 << 20), static_cast<double>(disk.max_bytes()) / (1 << 20));
  }
  return kExitOk;
}

}  // namespace kiln::tools
