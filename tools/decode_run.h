// `kiln run PREFILL --decode DECODE --steps N`: a prompt, then token after
// token, over one set of weights and states (scheduler/model.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "graph/graph.h"
#include "scheduler/executor.h"

namespace kiln::tools {

struct DecodeRunSettings {
  int64_t steps = 16;   // decode steps after the prefill
  int64_t rounds = 3;   // prefill + steps, from zero states, this many times
  uint64_t seed = 0;
  bool strict = false;
};

struct DecodeRunReport {
  int64_t prefill_tokens = 0;
  std::vector<double> prefill_ms;  // per round
  std::vector<double> step_ms;     // every decode step of every round
  int64_t state_bytes = 0;         // bytes of state the two graphs share
  int64_t weight_bytes_held = 0;   // distinct weight bytes on the devices
  int64_t weight_bytes_shared = 0; // bytes the decode graph found already held
  std::vector<std::string> random_inputs;  // inputs filled at random (per graph)
};

// Runs `rounds` times: zero every state, run `prefill` once (its inputs
// random, within their input_range metadata), then `steps` decode runs at
// positions tokens, tokens+1, ... (the decode graph's metadata
// "decode.position" names its i32 position input and "decode.mask" its
// additive mask over the cache, set to 0 up to the position and -inf
// beyond; other inputs are random). The prefill graph's metadata "tokens"
// says how many tokens it takes.
absl::StatusOr<DecodeRunReport> RunPrefillThenDecode(Graph prefill, Graph decode,
                                                     std::vector<std::shared_ptr<Backend>> backends,
                                                     const DecodeRunSettings& settings);

// Prints phase times and tokens/s.
void PrintDecodeReport(const DecodeRunReport& report);

}  // namespace kiln::tools
