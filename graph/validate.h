// Whole-graph checks: every id, size, stride, view extent, op, attribute and
// inferred shape. Loaded graphs come from strangers, so nothing is assumed.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "ops/op_schema.h"

namespace kiln {

// Caps that keep sizes far from int64 overflow.
inline constexpr int64_t kMaxDim = int64_t{1} << 40;
inline constexpr int64_t kMaxTensorBytes = int64_t{1} << 46;

// Checks one tensor's own description (rank, dims, strides, q8_0 blocks,
// view extent within its base, constant size).
absl::Status ValidateTensor(const Graph& graph, int id);

// Normalizes the node's attributes and infers its output types from the
// graph's tensors. Checks input count and ids, not definition order.
absl::StatusOr<std::vector<TensorType>> InferNode(const Graph& graph, Node& node);

// Validates the whole graph: tensors, inputs, nodes in topological order
// (every input defined before use, each output written once), declared output
// types against inference, graph outputs and states. Fills attribute defaults
// and each tensor's producer.
absl::Status ValidateGraph(Graph& graph);

}  // namespace kiln
