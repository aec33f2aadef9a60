// `kiln import`'s work: a checkpoint -> a model on disk, the prefill entry
// OUT.kgraph and the decode entry OUT.decode.kgraph (linked by the prefill
// entry's metadata "model.entry.decode", models/model_config.h), each with
// its states (KV caches, conv and recurrent states).
//
// Weights are referenced in place where the layout allows: a checkpoint file
// inside the output folder, at an offset LoadGraph maps (ExternalMapAlignment).
// The rest (other folders, unaligned tensors, dtype conversions) is written
// once to OUT.kgraph.weights, which both entries refer to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "graph/dtype.h"
#include "models/model_config.h"

namespace kiln::import {

struct ImportOptions {
  int64_t context = 4096;  // KV cache cells
  int64_t tokens = 512;    // the prefill entry's T
  // Float weights converted to this dtype (f32, f16 or bf16); nullopt keeps
  // each weight's own. q8_0 weights stay q8_0.
  std::optional<DType> dtype;
  DType cache_dtype = DType::kF16;
};

struct ImportResult {
  models::ModelConfig config;
  std::string source;  // Checkpoint::Describe()
  std::string prefill_path, decode_path;
  int64_t weights = 0;           // distinct weights
  int64_t bytes_in_place = 0;    // referenced where they lie in the checkpoint
  int64_t bytes_written = 0;     // written to the weights file
  int64_t unaligned_in_folder = 0;  // of those, checkpoint tensors in OUT's folder at unaligned offsets
  std::string weights_path;      // empty when nothing was written
};

// "OUT.decode.kgraph" for "OUT.kgraph" (or "OUT" + ".decode.kgraph").
std::string DecodePathFor(const std::string& prefill_path);

absl::StatusOr<ImportResult> ImportModel(const std::string& checkpoint, const std::string& output,
                                         const ImportOptions& options);

}  // namespace kiln::import
