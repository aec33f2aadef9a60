// Example model graphs with seeded random weights in real shapes: what
// `kiln make-example` writes, and what the demo, tests and benchmarks run.
//
//   attention-block-{decode,prefill}  one Qwen3-0.6B-shaped decoder layer
//   hybrid-block-{decode,prefill}     a Qwen3.5-style pair: a gated delta net
//                                     layer, then an attention layer
//
// Decode forms take one token (T=1) and keep the KV cache, the conv state and
// the recurrent state as graph states, updated in place; prefill forms take
// 512 tokens. The inputs, outputs and states of each are listed in the graph's
// metadata ("description") and in README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/graph.h"

namespace kiln {

// The names MakeExample accepts, in a stable order.
std::vector<std::string> ExampleNames();

// Builds the named example; the same seed gives the same weights. NotFound
// for an unknown name.
absl::StatusOr<Graph> MakeExample(absl::string_view name, uint64_t seed);

struct ExampleOptions {
  uint64_t seed = 0;
  int64_t prefill_tokens = 512;  // tokens of a prefill form (1..4096)
};
absl::StatusOr<Graph> MakeExample(absl::string_view name, const ExampleOptions& options);

}  // namespace kiln
