// A checkpoint opened for import: the model's config and its weights, under
// the Hugging Face names ExpectedWeights (models/model_config.h) uses.
//
// Sources: a Hugging Face folder (config.json + model.safetensors or the
// shards of model.safetensors.index.json), a .safetensors file with a
// config.json beside it, or a .gguf file. Weights come back pointing into
// the mapped files (no copy); locations() says where each one's bytes lie,
// so that a saved graph can refer to them in place.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "import/gguf.h"
#include "import/safetensors.h"
#include "models/model_config.h"
#include "proto/graph_io.h"

namespace kiln::import {

class Checkpoint : public models::WeightSource {
 public:
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& path);

  const models::ModelConfig& config() const { return config_; }
  std::string Describe() const;  // "safetensors, 1 file, 12 tensors", "GGUF v3, 21 tensors"

  // The weight of that Hugging Face name; NotFound when the checkpoint has
  // none. The same name gives the same bytes (one ConstantData) every time.
  absl::StatusOr<models::Weight> Get(absl::string_view name) override;

  // Where each weight handed out so far lies, by its data pointer: the file
  // and the absolute byte offset of its bytes.
  const std::map<const std::byte*, FileRange>& locations() const { return locations_; }

  // The checkpoint's tensors no Get asked for, less those kiln knows to leave
  // out (a vision tower, multi-token-prediction heads, rotary tables): a
  // non-empty list means the model has parts kiln's graph would drop.
  std::vector<std::string> Unused() const;

 private:
  Checkpoint() = default;
  absl::StatusOr<models::Weight> Read(absl::string_view name, std::string* stored_name);

  models::ModelConfig config_;
  std::unique_ptr<SafetensorsCheckpoint> safetensors_;
  std::unique_ptr<GgufFile> gguf_;
  std::map<std::string, models::Weight, std::less<>> cache_;
  std::map<std::string, bool, std::less<>> used_;  // stored names handed out
  std::map<const std::byte*, FileRange> locations_;
};

}  // namespace kiln::import
