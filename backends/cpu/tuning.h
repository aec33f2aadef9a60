// Tuning settings of the CPU GEMM paths, for measuring variants on a CPU
// without rebuilding (docs/DESIGN.md lists them): an environment variable
// holds comma-separated `key=value` (or bare `key`, meaning 1), e.g.
// KILN_CPU_AMX=rows=128,panel,prefetch. Absent keys keep their defaults.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace kiln::cpu {

// The value of `key` in environment variable `env`, else `def`. Read on
// each call: callers keep it in a static.
inline int64_t TuningValue(const char* env, std::string_view key, int64_t def) {
  const char* e = std::getenv(env);
  if (!e) return def;
  std::string_view s(e);
  while (!s.empty()) {
    const size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    const size_t eq = item.find('=');
    if (item.substr(0, eq) != key) continue;
    if (eq == std::string_view::npos) return 1;
    return std::strtoll(std::string(item.substr(eq + 1)).c_str(), nullptr, 10);
  }
  return def;
}

}  // namespace kiln::cpu
