// Small graphs for the public API's tests, built with the public builder.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kiln/kiln.h"

namespace kiln::api::test {

// y = x + c, f32 [n], with c[i] = i.
inline GraphBuilder AddConstant(int64_t n, const std::string& name = "add_constant") {
  GraphBuilder b(name);
  Tensor x = b.Input("x", DType::kF32, {n});
  std::vector<float> c(n);
  for (int64_t i = 0; i < n; ++i) c[i] = static_cast<float>(i);
  Tensor k = b.Constant("c", DType::kF32, {n}, c.data(), c.size() * sizeof(float));
  Tensor y = b.Op1("add", {x, k});
  b.Rename(y, "y");
  b.Output(y);
  return b;
}

// A state s f32 [n] whose next value is a * s + b; output "out" = that value.
inline GraphBuilder Counter(int64_t n, double a, double bias, const std::string& name = "counter") {
  GraphBuilder b(name);
  Tensor s = b.Input("s", DType::kF32, {n});
  Tensor next = b.Op1("scale", {s}, {{"a", a}, {"b", bias}});
  b.Rename(next, "s.next");
  b.Output(next);
  b.State(s, next);
  return b;
}

inline Backend Cpu() {
  auto cpu = Backend::Open("cpu");
  EXPECT_TRUE(cpu.ok()) << cpu.status();
  return *std::move(cpu);
}

inline std::vector<float> Floats(const HostArray& a) {
  std::vector<float> v(a.size_bytes() / sizeof(float));
  std::memcpy(v.data(), a.data(), v.size() * sizeof(float));
  return v;
}

}  // namespace kiln::api::test
