#include "backends/cache_dir.h"

#include <cstdlib>

namespace kiln {

std::string PipelineCacheDir() {
  if (const char* dir = std::getenv("KILN_CACHE_DIR")) {
    const std::string d = dir;
    return d == "off" ? "" : d;
  }
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("XDG_CACHE_HOME").empty()) return env("XDG_CACHE_HOME") + "/kiln";
  if (!env("HOME").empty()) return env("HOME") + "/.cache/kiln";
  return "";
}

}  // namespace kiln
