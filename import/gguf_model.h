// A GGUF file's model: its metadata (llama.cpp's "<arch>.*" keys) as a
// ModelConfig, and llama.cpp's tensor names mapped onto the Hugging Face
// names ExpectedWeights uses.
//
// Architectures: "llama" and "qwen3". llama.cpp's converter permutes the q
// and k rows of llama models so that its rope can rotate pairs (2i, 2i+1)
// rather than halves; rotating the permuted rows in pairs gives the same q.k
// products, so the weights are used as stored (mapped, not copied) and the
// config says rope_interleaved. Qwen3 files keep Hugging Face's layout.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "import/gguf.h"
#include "models/model_config.h"

namespace kiln::import {

absl::StatusOr<models::ModelConfig> ModelConfigFromGguf(const GgufFile& file);

// The llama.cpp name of a Hugging Face weight name ("model.layers.3.
// self_attn.q_proj.weight" -> "blk.3.attn_q.weight"); nullopt for a name
// llama.cpp has no counterpart for.
std::optional<std::string> GgufNameFor(absl::string_view hf_name);

}  // namespace kiln::import
