#include "scheduler/execution_plan.h"

#include <utility>

#include "graph/validate.h"

namespace kiln {

absl::StatusOr<ExecutionPlan> PlanExecution(Graph& graph, absl::Span<Backend* const> backends,
                                            const PlanOptions& options) {
  if (backends.empty()) return absl::InvalidArgumentError("no backend given");
  if (auto st = ValidateGraph(graph); !st.ok()) return st;
  ExecutionPlan plan;
  auto placement = PlaceNodes(graph, backends, options.placement);
  if (!placement.ok()) return placement.status();
  plan.placement = std::move(*placement);
  MemoryPlanOptions memory_options = options.memory;
  if (memory_options.alignment.empty()) {
    for (Backend* b : backends) {
      memory_options.alignment.push_back(static_cast<int64_t>(b->limits().buffer_alignment));
    }
  }
  auto memory = PlanMemory(graph, plan.placement.node_backend, static_cast<int>(backends.size()),
                           memory_options);
  if (!memory.ok()) return memory.status();
  plan.memory = std::move(*memory);
  return plan;
}

}  // namespace kiln
