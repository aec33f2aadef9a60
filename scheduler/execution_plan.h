// The plan of a graph on a list of backends, made without allocating or
// compiling anything: placement (node -> backend, with reasons), splits,
// transfers per run and memory per backend. `kiln plan` prints it; the
// executor carries it out.
#pragma once

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/backend.h"
#include "graph/graph.h"
#include "scheduler/memory_plan.h"
#include "scheduler/placement.h"

namespace kiln {

struct PlanOptions {
  PlacementOptions placement;
  MemoryPlanOptions memory;
};

struct ExecutionPlan {
  Placement placement;
  MemoryPlan memory;
};

// Validates `graph` (filling attribute defaults and producers), places its
// nodes on `backends` (in priority order) and plans memory and transfers.
absl::StatusOr<ExecutionPlan> PlanExecution(Graph& graph, absl::Span<Backend* const> backends,
                                            const PlanOptions& options = {});

}  // namespace kiln
