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
#include "scheduler/host_tensor.h"

namespace kiln::tools {

struct DecodeRunSettings {
  int64_t steps = 16;   // decode steps after the prefill
  int64_t rounds = 3;   // prefill + steps, from zero states, this many times
  uint64_t seed = 0;
  bool strict = false;
  std::vector<std::string> disabled_ops;  // PlacementOptions::disabled_ops
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
// positions tokens, tokens+1, ... (a prefill graph that names a position
// input and a mask in its metadata, as model entries do, gets positions
// 0..T-1 and a causal mask; the decode graph's metadata
// "decode.position" names its i32 position input and "decode.mask" its
// additive mask over the cache, set to 0 up to the position and -inf
// beyond; other inputs are random). The prefill graph's metadata "tokens"
// says how many tokens it takes.
absl::StatusOr<DecodeRunReport> RunPrefillThenDecode(Graph prefill, Graph decode,
                                                     std::vector<std::shared_ptr<Backend>> backends,
                                                     const DecodeRunSettings& settings);

// The prefill graph's metadata key naming its decode entry (a graph file in
// the same folder): "model.entry.decode" (models/model_config.h).
inline constexpr const char* kDecodeEntryKey = "model.entry.decode";

// The decode entry's path for a prefill graph loaded from `prefill_path`;
// "" when its metadata names none; an error when the name is not a plain
// file name (it comes from a file).
absl::StatusOr<std::string> DecodeEntryPath(const Graph& prefill, const std::string& prefill_path);

// An additive mask f32/f16 [1, 1, tokens, cells] for tokens at positions
// start.. of one sequence: row t sees cells 0..start+t, -inf beyond.
HostTensor StepMask(DType dtype, int64_t tokens, int64_t cells, int64_t start);

// When `e`'s graph names a position input ("decode.position", i32 [T]) and a
// mask ("decode.mask"), sets positions start..start+T-1 and StepMask.
absl::Status SetPrefillSteps(Executable& e, int64_t start);

// Prints phase times and tokens/s.
void PrintDecodeReport(const DecodeRunReport& report);

}  // namespace kiln::tools
