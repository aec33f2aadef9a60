#include "examples/random_weights.h"

#include <cmath>

#include "graph/dtype.h"

namespace kiln::examples {

Tensor RandomWeights::Linear(const std::string& name, int64_t out, int64_t in) {
  // Uniform on [-a, a) has std a/sqrt(3); aim for std 1/sqrt(fan_in).
  const double a = std::sqrt(3.0 / static_cast<double>(in));
  std::vector<uint16_t> w(static_cast<size_t>(out * in));
  for (uint16_t& v : w) v = F32ToF16(Symmetric(a));
  return b_.Constant(name, DType::kF16, {out, in},
                     ConstantData::Copy(w.data(), w.size() * sizeof(uint16_t)));
}

Tensor RandomWeights::Norm(const std::string& name, int64_t n) {
  return F32(name, {n}, [](double u) { return static_cast<float>(1.0 + 0.2 * (u - 0.5)); });
}

Tensor RandomWeights::F32(const std::string& name, std::vector<int64_t> dims,
                          const std::function<float(double)>& gen) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = gen(Uniform());
  return b_.Constant(name, DType::kF32, std::move(dims),
                     ConstantData::Copy(w.data(), w.size() * sizeof(float)));
}

}  // namespace kiln::examples
