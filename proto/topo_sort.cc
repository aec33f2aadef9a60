#include "proto/topo_sort.h"
#include "graph/message_text.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ops/op_schema.h"

namespace kiln {
namespace {

// Names the nodes of one cycle among `remaining` (nodes Kahn could not place:
// each has a remaining predecessor, so walking predecessors must loop).
std::string DescribeCycle(const Graph& graph, const std::vector<int>& writer,
                          const std::vector<bool>& remaining, int start) {
  std::vector<int> seen_at(graph.nodes.size(), -1);
  std::vector<int> path;
  int n = start;
  while (seen_at[n] < 0) {
    seen_at[n] = static_cast<int>(path.size());
    path.push_back(n);
    int next = -1;
    for (int id : graph.nodes[n].inputs) {
      const int w = id >= 0 ? writer[graph.StorageOf(id)] : -1;
      if (w >= 0 && remaining[w]) { next = w; break; }
    }
    if (next < 0) break;  // cannot happen; stay safe
    n = next;
  }
  // path[seen_at[n]..] is the cycle walked against the data flow; name it
  // along the flow, from n back to n.
  const size_t first = static_cast<size_t>(std::max(seen_at[n], 0));
  constexpr size_t kMaxNames = 8;  // a long cycle is summarized
  auto quoted = [&](int node) { return QuoteName(graph.nodes[node].name); };
  std::vector<std::string> names = {quoted(n)};
  for (size_t i = path.size() - 1; i > first && names.size() < kMaxNames; --i) {
    names.push_back(quoted(path[i]));
  }
  const size_t length = path.size() - first;
  names.push_back(length > kMaxNames ? absl::StrCat("... (", length, " nodes)") : quoted(n));
  return absl::StrCat(NodeLabel(graph.nodes[n]), " is on a cycle: ", absl::StrJoin(names, " -> "));
}

}  // namespace

absl::Status SortNodesTopologically(Graph& graph) {
  const int num_nodes = static_cast<int>(graph.nodes.size());
  const int num_tensors = static_cast<int>(graph.tensors.size());
  std::vector<int> writer(num_tensors, -1);
  for (int ni = 0; ni < num_nodes; ++ni) {
    for (int id : graph.nodes[ni].outputs) {
      if (writer[id] >= 0 && writer[id] != ni) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor ", QuoteName(graph.tensors[id].name), " is written by two nodes: ",
            QuoteName(graph.nodes[writer[id]].name), " and ", QuoteName(graph.nodes[ni].name)));
      }
      writer[id] = ni;
    }
  }
  // Edges writer -> reader, one per input (a repeated edge is counted twice
  // in both places, which is harmless).
  std::vector<std::vector<int>> readers(num_nodes);
  std::vector<int> pending(num_nodes, 0);
  bool in_order = true;
  for (int ni = 0; ni < num_nodes; ++ni) {
    for (int id : graph.nodes[ni].inputs) {
      if (id < 0) continue;
      const int w = writer[graph.StorageOf(id)];
      if (w < 0) continue;
      readers[w].push_back(ni);
      ++pending[ni];
      in_order &= w < ni;
    }
  }
  if (in_order) return absl::OkStatus();

  // Smallest file index first among the ready nodes.
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int ni = 0; ni < num_nodes; ++ni) {
    if (pending[ni] == 0) ready.push(ni);
  }
  std::vector<int> order;
  order.reserve(num_nodes);
  while (!ready.empty()) {
    const int ni = ready.top();
    ready.pop();
    order.push_back(ni);
    for (int r : readers[ni]) {
      if (--pending[r] == 0) ready.push(r);
    }
  }
  if (static_cast<int>(order.size()) != num_nodes) {
    std::vector<bool> remaining(num_nodes);
    int start = -1;
    for (int ni = 0; ni < num_nodes; ++ni) {
      remaining[ni] = pending[ni] > 0;
      if (remaining[ni] && start < 0) start = ni;
    }
    return absl::InvalidArgumentError(DescribeCycle(graph, writer, remaining, start));
  }
  std::vector<Node> sorted;
  sorted.reserve(num_nodes);
  for (int ni : order) sorted.push_back(std::move(graph.nodes[ni]));
  graph.nodes = std::move(sorted);
  return absl::OkStatus();
}

}  // namespace kiln
