// kiln plan FILE --backend LIST: where each node would run and why, the
// splits, the bytes transferred per run and the memory per backend, without
// running (or compiling) anything.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "backends/registry.h"
#include "nlohmann/json.hpp"
#include "ops/op_schema.h"
#include "proto/graph_io.h"
#include "scheduler/execution_plan.h"
#include "tools/args.h"
#include "base/atomic_file.h"
#include "tools/command.h"

namespace kiln::tools {
namespace {

const FlagSpec kFlags[] = {
    {"backend", "LIST", "backends in priority order, comma-separated (default: cpu)"},
    {"strict", "", "fail, listing each node the first backend does not run and why"},
    {"disable-op", "BACKEND:OP", "BACKEND does not run OP even where it could (repeatable), e.g. vulkan:flash_attn"},
    {"keep-islands", "", "do not move lone nodes to their neighbours' backend"},
    {"json", "FILE", "also write the plan as JSON to FILE"},
};

void PrintUsage() {
  std::printf("%s", absl::StrCat("usage: kiln plan FILE [flags]\n\n"
                                 "Shows where each node of a graph file would run and why, the splits\n"
                                 "(runs of nodes on one backend), the tensors copied between backends\n"
                                 "on every run, and the memory each backend needs. Runs nothing.\n\n",
                                 FlagsHelp(kFlags))
                        .c_str());
}

std::string FormatBytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return absl::StrFormat("%.2f GiB", n / double(int64_t{1} << 30));
  if (n >= (1 << 20)) return absl::StrFormat("%.2f MiB", n / double(1 << 20));
  if (n >= (1 << 10)) return absl::StrFormat("%.1f KiB", n / double(1 << 10));
  return absl::StrCat(n, " B");
}

struct PlanReport {
  std::string path;
  const Graph* graph;
  std::vector<std::shared_ptr<Backend>> backends;
  const ExecutionPlan* plan;

  std::string name(int b) const { return std::string(backends[b]->name()); }
  const std::string& tensor(int id) const { return graph->tensors[id].name; }
  // Transfers into each split: count and bytes.
  std::pair<int, int64_t> Incoming(int split) const {
    int n = 0;
    int64_t bytes = 0;
    for (const TransferPlan& t : plan->memory.transfers) {
      if (t.split == split) ++n, bytes += t.bytes;
    }
    return {n, bytes};
  }
};

void PrintPlan(const PlanReport& r) {
  const Graph& g = *r.graph;
  const Placement& p = r.plan->placement;
  const MemoryPlan& m = r.plan->memory;
  std::printf("graph     %s: %zu nodes, %zu splits, %zu transfers per run (%s)\n", g.name.c_str(), g.nodes.size(),
              p.splits.size(), m.transfers.size(), FormatBytes(m.transfer_bytes()).c_str());
  for (size_t b = 0; b < r.backends.size(); ++b) {
    std::printf("backend   %zu. %s: %s\n", b + 1, r.name(b).c_str(), r.backends[b]->device().name.c_str());
  }

  size_t width = 4;
  for (const Node& n : g.nodes) width = std::max(width, n.name.size());
  width = std::min<size_t>(width, 40);
  std::printf("\n%-5s %-*s %-16s %-8s %s\n", "split", static_cast<int>(width), "node", "op", "backend", "why");
  for (size_t si = 0; si < p.splits.size(); ++si) {
    for (int ni : p.splits[si].nodes) {
      const Node& n = g.nodes[ni];
      std::printf("%-5zu %-*s %-16s %-8s %s\n", si, static_cast<int>(width), n.name.c_str(), n.op.c_str(),
                  r.name(p.node_backend[ni]).c_str(), p.node_reason[ni].c_str());
    }
  }

  std::printf("\nsplits\n");
  for (size_t si = 0; si < p.splits.size(); ++si) {
    const auto& s = p.splits[si];
    const auto [n, bytes] = r.Incoming(static_cast<int>(si));
    std::printf("  #%-3zu %-8s %4zu nodes  %s .. %s", si, r.name(s.backend).c_str(), s.nodes.size(),
                g.nodes[s.nodes.front()].name.c_str(), g.nodes[s.nodes.back()].name.c_str());
    if (n) std::printf("  (in: %d tensors, %s)", n, FormatBytes(bytes).c_str());
    std::printf("\n");
  }

  if (!m.transfers.empty()) {
    std::printf("\ntransfers per run: %zu, %s\n", m.transfers.size(), FormatBytes(m.transfer_bytes()).c_str());
    for (const TransferPlan& t : m.transfers) {
      std::printf("  '%s' %s -> %s for split #%d, %s\n", r.tensor(t.tensor).c_str(), r.name(t.from).c_str(),
                  r.name(t.to).c_str(), t.split, FormatBytes(t.bytes).c_str());
    }
  }

  std::printf("\n%-10s %12s %16s %12s %12s %12s %12s\n", "memory", "arena peak", "(without reuse)", "inputs",
              "states", "weights", "total");
  for (size_t b = 0; b < r.backends.size(); ++b) {
    const ArenaPlan& a = m.arenas[b];
    const BackendBytes& h = m.held[b];
    std::printf("%-10s %12s %16s %12s %12s %12s %12s\n", r.name(b).c_str(), FormatBytes(a.peak_bytes).c_str(),
                FormatBytes(a.naive_bytes).c_str(), FormatBytes(h.inputs).c_str(), FormatBytes(h.states).c_str(),
                FormatBytes(h.constants).c_str(),
                FormatBytes(a.peak_bytes + h.inputs + h.states + h.constants).c_str());
  }
}

std::string JsonPlan(const PlanReport& r) {
  using nlohmann::json;
  const Graph& g = *r.graph;
  const Placement& p = r.plan->placement;
  const MemoryPlan& m = r.plan->memory;
  json j;
  j["graph"] = {{"file", r.path}, {"name", g.name}, {"nodes", g.nodes.size()}};
  j["backends"] = json::array();
  for (size_t b = 0; b < r.backends.size(); ++b) {
    const ArenaPlan& a = m.arenas[b];
    const BackendBytes& h = m.held[b];
    j["backends"].push_back({{"name", r.name(b)},
                             {"device", r.backends[b]->device().name},
                             {"arena_peak_bytes", a.peak_bytes},
                             {"arena_naive_bytes", a.naive_bytes},
                             {"input_bytes", h.inputs},
                             {"state_bytes", h.states},
                             {"constant_bytes", h.constants},
                             {"peak_bytes", a.peak_bytes + h.inputs + h.states + h.constants}});
  }
  j["nodes"] = json::array();
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    json declined = json::array();
    for (size_t b = 0; b < r.backends.size(); ++b) {
      const Support& s = p.support[ni][b];
      if (!s.ok) declined.push_back({{"backend", r.name(b)}, {"reason", s.reason}});
    }
    j["nodes"].push_back({{"name", g.nodes[ni].name},
                          {"op", g.nodes[ni].op},
                          {"backend", r.name(p.node_backend[ni])},
                          {"reason", p.node_reason[ni]},
                          {"declined", declined}});
  }
  j["splits"] = json::array();
  for (size_t si = 0; si < p.splits.size(); ++si) {
    json nodes = json::array();
    for (int ni : p.splits[si].nodes) nodes.push_back(g.nodes[ni].name);
    const auto [n, bytes] = r.Incoming(static_cast<int>(si));
    j["splits"].push_back({{"index", si},
                           {"backend", r.name(p.splits[si].backend)},
                           {"nodes", nodes},
                           {"transfers_in", n},
                           {"transfer_bytes_in", bytes}});
  }
  json transfers = json::array();
  for (const TransferPlan& t : m.transfers) {
    transfers.push_back({{"tensor", r.tensor(t.tensor)},
                         {"from", r.name(t.from)},
                         {"to", r.name(t.to)},
                         {"split", t.split},
                         {"bytes", t.bytes}});
  }
  j["transfers"] = {{"count", m.transfers.size()}, {"bytes_per_run", m.transfer_bytes()}, {"list", transfers}};
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

int Plan(const ParsedArgs& args) {
  auto usage = [](absl::string_view msg) { return Fail(kExitUsage, absl::StrCat("plan: ", msg)); };
  if (args.positional.size() != 1) {
    return usage(args.positional.empty() ? "no graph file given (see kiln plan --help)"
                                         : "give exactly one graph file (see kiln plan --help)");
  }
  PlanReport report;
  report.path = args.positional[0];
  std::vector<Backend*> raw;
  for (absl::string_view name : absl::StrSplit(args.Get("backend", "cpu"), ',', absl::SkipWhitespace())) {
    auto backend = CreateBackend(name);
    if (!backend.ok()) return Fail(kExitRunError, backend.status());
    report.backends.push_back(std::move(*backend));
    raw.push_back(report.backends.back().get());
  }
  if (raw.empty()) return usage("--backend names no backend");

  auto graph = LoadGraph(report.path);
  auto in_file = [&](const absl::Status& st) {
    return absl::StrContains(st.message(), report.path) ? std::string(st.message())
                                                         : absl::StrCat(report.path, ": ", st.message());
  };
  if (!graph.ok()) return Fail(kExitRunError, in_file(graph.status()));
  PlanOptions options;
  options.placement.strict = args.has("strict");
  options.placement.merge_islands = !args.has("keep-islands");
  options.placement.disabled_ops = args.GetAll("disable-op");
  auto plan = PlanExecution(*graph, raw, options);
  if (!plan.ok()) return Fail(kExitRunError, in_file(plan.status()));
  report.graph = &*graph;
  report.plan = &*plan;

  PrintPlan(report);
  const std::string json_path = args.Get("json");
  if (!json_path.empty()) {
    if (auto st = WriteFileAtomically(json_path, JsonPlan(report)); !st.ok()) return Fail(kExitRunError, st);
  }
  return kExitOk;
}

}  // namespace

int PlanCommand(const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, kFlags);
  if (!args.ok()) {
    return Fail(kExitUsage, absl::StrCat("plan: ", args.status().message(), " (see kiln plan --help)"));
  }
  if (args->help) {
    PrintUsage();
    return kExitOk;
  }
  return Plan(*args);
}

}  // namespace kiln::tools
