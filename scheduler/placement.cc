#include "scheduler/placement.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/container/flat_hash_set.h"
#include "ops/registry.h"
#include "ops/op_schema.h"

namespace kiln {
namespace {

// Per-run data a placement decides transfers for: every storage tensor that
// is not a constant, with the nodes reading it (through any view) and the
// node whose backend holds it.
struct DataFlow {
  std::vector<std::vector<int>> readers;  // per tensor id, sorted, unique
  std::vector<int> home_node;             // per tensor id; -1: nowhere
  std::vector<std::vector<int>> affected; // per node: tensors whose transfers its backend changes
};

DataFlow AnalyzeDataFlow(const Graph& graph) {
  const int num_tensors = static_cast<int>(graph.tensors.size());
  const int num_nodes = static_cast<int>(graph.nodes.size());
  DataFlow f;
  f.readers.resize(num_tensors);
  f.home_node.assign(num_tensors, -1);
  f.affected.resize(num_nodes);
  auto is_data = [&](int id) { return id >= 0 && !graph.tensors[id].is_constant(); };
  for (int ni = 0; ni < num_nodes; ++ni) {
    for (int id : graph.nodes[ni].inputs) {
      if (id < 0) continue;
      const int root = graph.StorageOf(id);
      if (!is_data(root)) continue;
      std::vector<int>& r = f.readers[root];
      if (r.empty() || r.back() != ni) r.push_back(ni);
      f.affected[ni].push_back(root);
    }
    for (int id : graph.nodes[ni].outputs) f.affected[ni].push_back(id);
  }
  // Where each tensor lives (the memory plan decides the same way): a node
  // output with its producer, a state with the producer of its next value,
  // another graph input with its first reader.
  for (int id = 0; id < num_tensors; ++id) {
    const TensorInfo& t = graph.tensors[id];
    if (t.is_view() || !is_data(id)) continue;
    if (t.producer >= 0) {
      f.home_node[id] = t.producer;
    } else if (!f.readers[id].empty()) {
      f.home_node[id] = f.readers[id][0];
    }
  }
  for (const StatePair& s : graph.states) {
    const int producer = graph.tensors[s.output].producer;
    if (producer < 0) continue;
    f.home_node[s.input] = producer;
    f.affected[producer].push_back(s.input);
  }
  for (std::vector<int>& a : f.affected) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }
  return f;
}

// Backends other than the tensor's own that read it: its transfers per run.
int Crossings(const DataFlow& f, const std::vector<int>& node_backend, int id,
              std::vector<char>& seen) {
  if (f.home_node[id] < 0) return 0;
  std::fill(seen.begin(), seen.end(), 0);
  seen[node_backend[f.home_node[id]]] = 1;
  int n = 0;
  for (int r : f.readers[id]) {
    char& s = seen[node_backend[r]];
    if (!s) ++n;
    s = 1;
  }
  return n;
}

// Moves single nodes to a neighbour's backend while that lowers the
// transfer count; records why in `reason`.
void MergeIslands(const Graph& graph, const std::vector<std::vector<Support>>& support,
                  absl::Span<Backend* const> backends, std::vector<int>& node_backend,
                  std::vector<std::string>& reason) {
  const DataFlow f = AnalyzeDataFlow(graph);
  const int num_nodes = static_cast<int>(graph.nodes.size());
  std::vector<char> seen(backends.size());
  auto cost = [&](int ni, int b) {
    const int saved = node_backend[ni];
    node_backend[ni] = b;
    int c = 0;
    for (int id : f.affected[ni]) c += Crossings(f, node_backend, id, seen);
    node_backend[ni] = saved;
    return c;
  };
  std::vector<int> original = node_backend;
  std::vector<int> candidates;
  for (bool moved = true; moved;) {
    moved = false;
    for (int ni = 0; ni < num_nodes; ++ni) {
      const Node& node = graph.nodes[ni];
      // Neighbours: producers of the inputs, readers of the outputs.
      candidates.clear();
      for (int id : node.inputs) {
        if (id < 0) continue;
        const int p = graph.tensors[graph.StorageOf(id)].producer;
        if (p >= 0) candidates.push_back(node_backend[p]);
      }
      for (int id : node.outputs) {
        for (int r : f.readers[id]) candidates.push_back(node_backend[r]);
      }
      std::sort(candidates.begin(), candidates.end());  // priority order breaks ties
      candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
      const int here = node_backend[ni];
      const int current = cost(ni, here);
      int best = here, best_cost = current;
      for (int b : candidates) {
        if (b == here || !support[ni][b].ok) continue;
        const int c = cost(ni, b);
        if (c < best_cost) best = b, best_cost = c;
      }
      if (best == here) continue;
      node_backend[ni] = best;
      moved = true;
      reason[ni] = absl::StrCat("moved from ", backends[original[ni]]->name(), " to its neighbours' backend (",
                                current - best_cost, " fewer transfers per run)");
    }
  }
}

// Per backend (list order), the ops options.disabled_ops takes from it.
absl::StatusOr<std::vector<absl::flat_hash_set<std::string>>> ParseDisabledOps(
    const std::vector<std::string>& pairs, absl::Span<Backend* const> backends) {
  std::vector<absl::flat_hash_set<std::string>> disabled(backends.size());
  for (const std::string& pair : pairs) {
    std::vector<std::string> parts = absl::StrSplit(pair, ':');
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("disabled op '", pair, "': expected BACKEND:OP, e.g. vulkan:flash_attn"));
    }
    if (FindOp(parts[1]) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("disabled op '", pair, "': no op named '", parts[1], "'"));
    }
    bool found = false;
    for (size_t b = 0; b < backends.size(); ++b) {
      if (backends[b]->name() == parts[0]) {
        disabled[b].insert(parts[1]);
        found = true;
      }
    }
    if (!found) {
      std::vector<std::string> names;
      for (Backend* b : backends) names.emplace_back(b->name());
      return absl::InvalidArgumentError(absl::StrCat("disabled op '", pair, "': no backend '", parts[0],
                                                     "' in the list (", absl::StrJoin(names, ", "), ")"));
    }
  }
  return disabled;
}

}  // namespace

std::vector<int> Placement::UsedBackends() const {
  std::vector<int> used;
  for (const SplitPlan& s : splits) {
    if (std::find(used.begin(), used.end(), s.backend) == used.end()) used.push_back(s.backend);
  }
  return used;
}

std::vector<Placement::SplitPlan> SplitRuns(const std::vector<int>& node_backend) {
  std::vector<Placement::SplitPlan> splits;
  for (size_t ni = 0; ni < node_backend.size(); ++ni) {
    if (splits.empty() || splits.back().backend != node_backend[ni]) {
      splits.push_back({node_backend[ni], {}});
    }
    splits.back().nodes.push_back(static_cast<int>(ni));
  }
  return splits;
}

absl::StatusOr<Placement> PlaceNodes(const Graph& graph, absl::Span<Backend* const> backends,
                                     const PlacementOptions& options) {
  if (backends.empty()) return absl::InvalidArgumentError("no backend given");
  auto disabled = ParseDisabledOps(options.disabled_ops, backends);
  if (!disabled.ok()) return disabled.status();
  const int num_nodes = static_cast<int>(graph.nodes.size());
  Placement placement;
  placement.support.resize(num_nodes);
  for (int ni = 0; ni < num_nodes; ++ni) {
    for (size_t b = 0; b < backends.size(); ++b) {
      const std::string& op = graph.nodes[ni].op;
      Support s = backends[b]->supports(graph, graph.nodes[ni]);
      if (s.ok && (*disabled)[b].contains(op)) {
        s = Support::No(absl::StrCat("disabled by the placement option ", backends[b]->name(), ":", op));
      }
      if (!s.ok && s.reason.empty()) s.reason = "not supported";
      placement.support[ni].push_back(std::move(s));
    }
  }

  if (options.strict) {
    std::vector<std::string> leaving;
    for (int ni = 0; ni < num_nodes; ++ni) {
      const Support& s = placement.support[ni][0];
      if (!s.ok) leaving.push_back(absl::StrCat(NodeLabel(graph.nodes[ni]), ": ", s.reason));
    }
    if (!leaving.empty()) {
      return absl::UnimplementedError(absl::StrCat(
          "strict mode: ", leaving.size(), leaving.size() == 1 ? " node" : " nodes",
          " would not run on ", backends[0]->name(), ": ", absl::StrJoin(leaving, "; ")));
    }
  }

  // Listing every unplaceable node helps more than stopping at the first,
  // but a huge graph should not give a huge message.
  constexpr int kMaxListed = 8;
  std::vector<std::string> failures;
  int failed = 0;
  placement.node_backend.assign(num_nodes, -1);
  placement.node_reason.resize(num_nodes);
  for (int ni = 0; ni < num_nodes; ++ni) {
    std::vector<std::string> declined;
    for (size_t b = 0; b < backends.size(); ++b) {
      const Support& s = placement.support[ni][b];
      if (s.ok) {
        placement.node_backend[ni] = static_cast<int>(b);
        break;
      }
      declined.push_back(absl::StrCat(backends[b]->name(), ": ", s.reason));
    }
    if (placement.node_backend[ni] < 0) {
      if (++failed <= kMaxListed) {
        failures.push_back(absl::StrCat(NodeLabel(graph.nodes[ni]), " (", absl::StrJoin(declined, ", "), ")"));
      }
      continue;
    }
    placement.node_reason[ni] = declined.empty() ? "first choice" : absl::StrJoin(declined, "; ");
  }
  if (failed > 0) {
    std::string more = failed > kMaxListed ? absl::StrCat("; and ", failed - kMaxListed, " more") : "";
    return absl::UnimplementedError(absl::StrCat("no backend runs ", failed,
                                                 failed == 1 ? " node: " : " nodes: ",
                                                 absl::StrJoin(failures, "; "), more));
  }
  if (options.merge_islands && backends.size() > 1) {
    MergeIslands(graph, placement.support, backends, placement.node_backend, placement.node_reason);
  }
  placement.splits = SplitRuns(placement.node_backend);
  return placement;
}

}  // namespace kiln
