// A Hugging Face config.json -> models::ModelConfig, for the architectures
// kiln builds (models/model_config.h): LlamaForCausalLM, Qwen3ForCausalLM,
// Qwen3NextForCausalLM (its dense-MLP layers only) and Qwen3.5's text models
// (Qwen3_5ForCausalLM, or the text_config of Qwen3_5ForConditionalGeneration).
//
// Both spellings of the rotary settings are read: transformers 5's
// rope_parameters {rope_type, rope_theta, partial_rotary_factor, ...} and the
// older top-level rope_theta / partial_rotary_factor / rope_scaling that
// published checkpoints carry. Anything kiln cannot run exactly (an unknown
// architecture, mixture-of-experts layers, sliding windows, biases the
// builders have no place for, another activation or rope type) is an error
// naming the field, never a silently different model.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "models/model_config.h"
#include "nlohmann/json.hpp"

namespace kiln::import {

absl::StatusOr<models::ModelConfig> ParseHfConfig(const nlohmann::json& config);

// Reads and parses `path` (a config.json of at most 16 MiB).
absl::StatusOr<models::ModelConfig> ReadHfConfig(const std::string& path);

}  // namespace kiln::import
