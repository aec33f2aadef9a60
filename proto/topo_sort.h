// Putting a loaded graph's nodes into topological order.
#pragma once

#include "absl/status/status.h"
#include "graph/graph.h"

namespace kiln {

// Reorders graph.nodes so that every node comes after the nodes writing its
// inputs (or, for a view, its base). Kahn's algorithm, keeping file order
// wherever the dependencies allow; a graph already in order is left as is.
// Errors: a tensor written by two nodes, or a cycle (naming the nodes on it).
// Tensor ids in node inputs/outputs and view bases must be in range.
absl::Status SortNodesTopologically(Graph& graph);

}  // namespace kiln
