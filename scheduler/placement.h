// Placement: which backend runs each node, and the splits (maximal runs of
// consecutive nodes on one backend) that follow from it.
//
// Each node first goes to the first backend in the priority list whose
// supports() says yes. Then islands are merged to avoid ping-pong: a node
// moves to a neighbour's backend (a producer of its inputs or a reader of its
// outputs) when that backend supports it and the move lowers the number of
// per-run transfers, counted as (tensor, reading backend) pairs where the
// backend is not the one holding the tensor. Every move lowers that count,
// so merging ends. Constants (weights) never count: they are uploaded once to
// every backend that reads them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/backend.h"
#include "graph/graph.h"

namespace kiln {

struct PlacementOptions {
  // Every node must run on the first backend of the list: otherwise fail
  // before anything runs, listing each node that would leave it and the
  // reason its supports() gave.
  bool strict = false;
  bool merge_islands = true;
  // "backend:op" pairs (e.g. "vulkan:flash_attn"): that backend does not run
  // that op even where its supports() says yes. For testing a mixed
  // placement on devices that decline nothing, and for routing around a
  // kernel problem without a rebuild. A pair naming no backend of the list,
  // or no op, is an error.
  std::vector<std::string> disabled_ops;
};

struct Placement {
  struct SplitPlan {
    int backend = -1;
    std::vector<int> nodes;  // consecutive node indices, in order
  };

  std::vector<int> node_backend;  // per node: index into the backend list
  // Per node, why it runs where it does (one line, names the backends).
  std::vector<std::string> node_reason;
  // Per node, per backend in list order: what supports() said.
  std::vector<std::vector<Support>> support;
  std::vector<SplitPlan> splits;

  // Backends (indices) that run at least one node, in first-use order.
  std::vector<int> UsedBackends() const;
};

// Maximal runs of consecutive nodes with the same backend.
std::vector<Placement::SplitPlan> SplitRuns(const std::vector<int>& node_backend);

// Places every node of a validated graph (see the top of this file). When no
// backend runs a node, fails listing every such node with each backend's
// reason (one line, entries separated by "; ").
absl::StatusOr<Placement> PlaceNodes(const Graph& graph, absl::Span<Backend* const> backends,
                                     const PlacementOptions& options = {});

}  // namespace kiln
