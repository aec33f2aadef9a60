// Plan and Profile as text and as JSON.
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "api/internal.h"
#include "nlohmann/json.hpp"

namespace kiln::api {
namespace {

std::string Bytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return absl::StrFormat("%.2f GiB", n / double(int64_t{1} << 30));
  if (n >= (1 << 20)) return absl::StrFormat("%.2f MiB", n / double(1 << 20));
  if (n >= (1 << 10)) return absl::StrFormat("%.1f KiB", n / double(1 << 10));
  return absl::StrCat(n, " B");
}

// Dumps with invalid UTF-8 replaced, not thrown on (names come from files).
std::string Dump(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string Plan::ToText() const {
  std::string out = absl::StrCat("entry ", entry, " on ", absl::StrJoin(backends, ", "), "\n");
  absl::StrAppend(&out, "nodes:\n");
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    absl::StrAppendFormat(&out, "  %4d  %-28s %-16s %-8s split %d  %s\n", i, n.name, n.op, n.backend, n.split,
                          n.reason);
  }
  absl::StrAppend(&out, "splits:\n");
  for (size_t s = 0; s < splits.size(); ++s) {
    absl::StrAppendFormat(&out, "  %d  %s  %d nodes\n", s, splits[s].backend, splits[s].nodes.size());
  }
  absl::StrAppend(&out, "transfers per run: ", transfers.size(), " (", Bytes(transfer_bytes_per_run), ")\n");
  for (const Transfer& t : transfers) {
    absl::StrAppendFormat(&out, "  %s  %s -> %s  for split %d  %s\n", t.tensor, t.from, t.to, t.split, Bytes(t.bytes));
  }
  absl::StrAppend(&out, "memory:\n");
  for (const Memory& m : memory) {
    absl::StrAppendFormat(&out, "  %-8s arena %s (%s without reuse), inputs %s, states %s, constants %s\n", m.backend,
                          Bytes(m.arena_bytes), Bytes(m.arena_naive_bytes), Bytes(m.input_bytes),
                          Bytes(m.state_bytes), Bytes(m.constant_bytes));
  }
  return out;
}

std::string Plan::ToJson() const {
  try {
    nlohmann::json j;
    j["entry"] = entry;
    j["backends"] = backends;
    j["nodes"] = nlohmann::json::array();
    for (const Node& n : nodes) {
      j["nodes"].push_back({{"name", n.name}, {"op", n.op}, {"backend", n.backend}, {"reason", n.reason}, {"split", n.split}});
    }
    j["splits"] = nlohmann::json::array();
    for (const Split& s : splits) j["splits"].push_back({{"backend", s.backend}, {"nodes", s.nodes}});
    j["transfers"] = nlohmann::json::array();
    for (const Transfer& t : transfers) {
      j["transfers"].push_back({{"tensor", t.tensor}, {"from", t.from}, {"to", t.to}, {"split", t.split}, {"bytes", t.bytes}});
    }
    j["memory"] = nlohmann::json::array();
    for (const Memory& m : memory) {
      j["memory"].push_back({{"backend", m.backend},
                             {"arena_bytes", m.arena_bytes},
                             {"arena_naive_bytes", m.arena_naive_bytes},
                             {"input_bytes", m.input_bytes},
                             {"state_bytes", m.state_bytes},
                             {"constant_bytes", m.constant_bytes}});
    }
    j["transfer_bytes_per_run"] = transfer_bytes_per_run;
    return Dump(j);
  } catch (...) {
    return "";  // out of host memory
  }
}

std::string Profile::ToText() const {
  std::string out = absl::StrCat("runs: ", runs, "\n");
  absl::StrAppendFormat(&out, "  %-20s %-8s %8s %12s %10s\n", "op", "backend", "count", "total ms", "mean us");
  for (const Op& o : ops) {
    absl::StrAppendFormat(&out, "  %-20s %-8s %8d %12.3f %10.1f\n", o.op, o.backend, o.count, o.total_us / 1000,
                          o.count ? o.total_us / o.count : 0.0);
  }
  return out;
}

std::string Profile::ToJson() const {
  try {
    nlohmann::json j;
    j["runs"] = runs;
    j["nodes"] = nlohmann::json::array();
    for (const Node& n : nodes) {
      j["nodes"].push_back({{"name", n.name}, {"op", n.op}, {"backend", n.backend}, {"count", n.count},
                            {"total_us", n.total_us}, {"last_us", n.last_us}});
    }
    j["ops"] = nlohmann::json::array();
    for (const Op& o : ops) {
      j["ops"].push_back({{"op", o.op}, {"backend", o.backend}, {"count", o.count}, {"total_us", o.total_us}});
    }
    return Dump(j);
  } catch (...) {
    return "";
  }
}

}  // namespace kiln::api
