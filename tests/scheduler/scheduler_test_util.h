// Helpers shared by the scheduler tests: a one-thread CPU backend and seeded
// random f32 tensors.
#pragma once

#include <memory>
#include <random>
#include <vector>

#include "backends/registry.h"
#include "gtest/gtest.h"
#include "scheduler/host_tensor.h"

namespace kiln::test {

// One thread, so results do not depend on the machine; nullptr (and a test
// failure) if the backend cannot be made.
inline std::shared_ptr<Backend> Cpu() {
  BackendOptions options;
  options.threads = 1;
  auto b = CreateBackend("cpu", options);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::shared_ptr<Backend>(std::move(*b)) : nullptr;
}

// Standard normal values, reproducible from `seed`.
inline HostTensor RandomF32(std::vector<int64_t> dims, uint32_t seed) {
  HostTensor t = HostTensor::Zeros(DType::kF32, std::move(dims));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  float* p = reinterpret_cast<float*>(t.data.data());
  for (size_t i = 0; i < t.data.size() / 4; ++i) p[i] = normal(rng);
  return t;
}

}  // namespace kiln::test
