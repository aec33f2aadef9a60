// A whole model with seeded random weights, as `kiln make-example NAME`
// writes it: the prefill entry FILE, the decode entry next to it
// (DecodePathFor(FILE)), linked by the prefill's metadata
// "model.entry.decode", and one weights file (FILE.weights) that both
// reference, so ModelResources holds each weight once.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "models/model_config.h"
#include "models/random_weights.h"

namespace kiln::models {

struct ExampleModelOptions {
  RandomWeightOptions weights;
  int64_t prefill_tokens = 512;
  int64_t context = 4096;
  DType cache_dtype = DType::kF16;
};

// "dir/name.kgraph" -> "dir/name.decode.kgraph" (".decode.kgraph" appended
// when the name does not end in ".kgraph").
std::string DecodePathFor(const std::string& prefill_path);

// The two entries over `weights`: prefill of `prefill_tokens` (logits of the
// last token only: what generation reads) and decode of one token.
struct ModelEntries {
  Graph prefill, decode;
};
absl::StatusOr<ModelEntries> BuildModelEntries(const ModelConfig& config, WeightSource& weights,
                                               const ExampleModelOptions& options,
                                               const std::string& decode_file_name = "");

struct ExampleModelFiles {
  std::string prefill, decode, weights;
  int64_t weight_bytes = 0;
  double weights_seconds = 0;  // generating and writing the weights file
};
absl::StatusOr<ExampleModelFiles> WriteExampleModel(const ModelConfig& config, const ExampleModelOptions& options,
                                                    const std::string& path);

}  // namespace kiln::models
