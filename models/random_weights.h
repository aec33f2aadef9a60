// Seeded random weights in a config's shapes (ExpectedWeights): for tests,
// `kiln make-example` models and `kiln bench model`.
//
// Projections and embeddings (rank-2 weights) take the chosen dtype (f16,
// bf16 or f32), everything else f32, as real checkpoints store them. Values
// keep a random model's activations in range: projections uniform with std
// 1/sqrt(fan_in), norm weights near 1 (near 0 where the model applies 1 + w),
// A_log and dt_bias in the ranges the reference code initializes.
//
// Each weight is cut into chunks of kRandomChunk values, each drawn from its
// own generator (splitmix64 seeded by the seed, the weight's name and the
// chunk index), so generation runs on many threads and a weight's values do
// not depend on how it is produced (in memory or streamed to a file).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/model_config.h"

namespace kiln::models {

inline constexpr int64_t kRandomChunk = int64_t{1} << 16;

struct RandomWeightOptions {
  uint64_t seed = 0;
  DType projection_dtype = DType::kF16;  // f16, bf16 or f32
  int threads = 0;                       // 0 = hardware concurrency
};

// The dtype a random weight of `spec` gets.
DType RandomWeightDType(const WeightSpec& spec, const RandomWeightOptions& options);

// Fills `out` (bytes of `spec` in `dtype`) with the values of elements
// [begin, end) of the weight (begin a multiple of kRandomChunk).
void FillRandomWeight(const ModelConfig& config, const WeightSpec& spec, DType dtype, uint64_t seed,
                      int64_t begin, int64_t end, void* out);

// Weights made in memory on first Get (each weight's ConstantData has the
// origin "random:<seed>:<dtype>:<name>", so ModelResources tells them apart
// and shares them without hashing their bytes).
class RandomWeightSource : public WeightSource {
 public:
  RandomWeightSource(ModelConfig config, RandomWeightOptions options);
  absl::StatusOr<Weight> Get(absl::string_view name) override;

 private:
  ModelConfig config_;
  RandomWeightOptions options_;
  absl::flat_hash_map<std::string, WeightSpec> specs_;
};

// Writes every (non-optional) weight of `config` into one file at `path`,
// 64-byte aligned, generating on several threads while writing (the file
// is written atomically). Returns the weights' places in it.
struct WeightPlace {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;
  uint64_t offset = 0, bytes = 0;
};
absl::StatusOr<std::vector<WeightPlace>> WriteRandomWeightsFile(const ModelConfig& config,
                                                                const RandomWeightOptions& options,
                                                                const std::string& path);

}  // namespace kiln::models
