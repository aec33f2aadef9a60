#include "backends/cache_dir.h"

#include <cstdlib>

namespace kiln {

std::string PipelineCacheDir() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("KILN_CACHE_DIR").empty()) return env("KILN_CACHE_DIR");
  if (!env("XDG_CACHE_HOME").empty()) return env("XDG_CACHE_HOME") + "/kiln";
  if (!env("HOME").empty()) return env("HOME") + "/.cache/kiln";
  return "";
}

}  // namespace kiln
