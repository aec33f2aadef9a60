// Placement: which backend runs each node, and the splits (maximal runs of
// consecutive nodes on one backend) that follow from it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/backend.h"
#include "graph/graph.h"

namespace kiln {

struct Placement {
  std::vector<int> node_backend;  // per node: index into the backend list
  struct SplitPlan {
    int backend = -1;
    std::vector<int> nodes;  // consecutive node indices, in order
  };
  std::vector<SplitPlan> splits;

  // Backends (indices) that run at least one node, in first-use order.
  std::vector<int> UsedBackends() const;
};

// Puts each node on the first backend in priority order whose supports()
// says yes. When no backend runs a node, fails listing every such node with
// each backend's reason (one line, entries separated by "; ").
absl::StatusOr<Placement> PlaceNodes(const Graph& graph, absl::Span<Backend* const> backends);

}  // namespace kiln
