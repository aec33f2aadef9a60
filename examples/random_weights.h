// Seeded random weights for the example graphs, stored the way real
// checkpoints store them: projection matrices f16, norms and small per-head
// parameters f32.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "graph/builder.h"

namespace kiln::examples {

class RandomWeights {
 public:
  RandomWeights(GraphBuilder& b, uint64_t seed) : b_(b), rng_(seed) {}

  // A linear layer's weight [out, in], f16, uniform with std 1/sqrt(in).
  Tensor Linear(const std::string& name, int64_t out, int64_t in);
  // A norm weight [n], f32, around 1.
  Tensor Norm(const std::string& name, int64_t n);
  // An f32 tensor whose elements are gen(u) for u uniform in [0, 1).
  Tensor F32(const std::string& name, std::vector<int64_t> dims,
             const std::function<float(double)>& gen);

  // Uniform in [0, 1), the same on every platform (std distributions are not).
  double Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
  // Uniform in [-a, a).
  float Symmetric(double a) { return static_cast<float>((2.0 * Uniform() - 1.0) * a); }

 private:
  GraphBuilder& b_;
  std::mt19937_64 rng_;
};

}  // namespace kiln::examples
