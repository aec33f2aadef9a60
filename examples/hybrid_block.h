// The Qwen3.5-style hybrid pair: a gated delta net layer, then an attention
// layer.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "graph/graph.h"

namespace kiln::examples {

absl::StatusOr<Graph> MakeHybridBlock(bool decode, uint64_t seed, int64_t prefill_tokens = 512);

}  // namespace kiln::examples
