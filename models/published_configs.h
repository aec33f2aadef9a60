// The published configurations of the models `kiln make-example` and
// `kiln bench model` build with random weights (from their config.json on
// the Hugging Face hub): qwen3.5-0.8b (Qwen/Qwen3.5-0.8B's text model,
// hybrid), qwen3-4b (Qwen/Qwen3-4B) and llama-3-8b (meta-llama/Meta-Llama-3-8B).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/model_config.h"

namespace kiln::models {

std::vector<std::string> PublishedModelNames();

// NotFound for another name.
absl::StatusOr<ModelConfig> PublishedModelConfig(absl::string_view name);

// The first `layers` layers of `config` (its layer pattern kept), for small
// variants; `layers` must be in 1..num_layers.
absl::StatusOr<ModelConfig> WithLayers(ModelConfig config, int64_t layers);

}  // namespace kiln::models
