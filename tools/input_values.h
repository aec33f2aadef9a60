// Values `kiln run` binds to inputs the user did not give as files: random
// (seeded) or zeros. Random values honor the graph metadata
// "input_range.<input name>" = "lo,hi" (inclusive): uniform integers for i32,
// uniform reals for floats. Without a range, floats are N(0, 1) * 0.5 (the
// scale of activations and weights after normalization) and i32 values are
// uniform in [0, 15].
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/graph.h"
#include "scheduler/host_tensor.h"

namespace kiln::tools {

struct InputRange {
  double lo = 0;
  double hi = 0;
};

// The range the graph's metadata gives for `input_name`, if any; an entry
// that does not parse as "lo,hi" with lo <= hi is an error.
absl::StatusOr<std::optional<InputRange>> InputRangeFor(const Graph& graph,
                                                        absl::string_view input_name);

// Random values for tensor `t` (q8_0 is quantized from random floats).
HostTensor RandomInput(const TensorInfo& t, const std::optional<InputRange>& range, uint64_t seed);

}  // namespace kiln::tools
