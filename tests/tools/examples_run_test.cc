// Runs the example graphs end to end on every backend in this build (the CPU
// and each device backend that can be created here; one that cannot is
// skipped with its reason), and checks that decoding token by token (KV
// cache, conv and recurrent states carried in place between runs, masked
// attention over the whole cache) gives what prefill computes for the same
// tokens in one pass. A device backend runs with the CPU after it, which
// takes the nodes the device declines.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "examples/example_graphs.h"
#include "graph/dtype.h"
#include "gtest/gtest.h"
#include "scheduler/executor.h"

namespace kiln {
namespace {

constexpr int64_t kHidden = 1024;
constexpr int64_t kMaxSeq = 4096;
// Prefill forms made with 96 tokens (two chunks of a chunked GDN, the second
// partial): the decode steps compare only the first tokens, and 512 took
// 386 s on lavapipe (bench/RESULTS.md).
constexpr int64_t kPrefillTokens = 96;

// The backends an Executable for `backend` gets: it alone for the CPU, else
// it then the CPU.
std::vector<std::shared_ptr<Backend>> BackendsFor(const std::string& backend) {
  std::vector<std::shared_ptr<Backend>> out;
  auto b = CreateBackend(backend);
  EXPECT_TRUE(b.ok()) << b.status();
  if (!b.ok()) return out;
  out.push_back(std::shared_ptr<Backend>(*std::move(b)));
  if (backend != "cpu") {
    auto cpu = CreateBackend("cpu");
    EXPECT_TRUE(cpu.ok()) << cpu.status();
    if (cpu.ok()) out.push_back(std::shared_ptr<Backend>(*std::move(cpu)));
  }
  return out;
}

std::unique_ptr<Executable> Make(const std::string& name, const std::string& backend) {
  auto graph = MakeExample(name, ExampleOptions{.seed = 3, .prefill_tokens = kPrefillTokens});
  EXPECT_TRUE(graph.ok()) << graph.status();
  if (!graph.ok()) return nullptr;
  std::vector<std::shared_ptr<Backend>> backends = BackendsFor(backend);
  if (backends.empty()) return nullptr;
  auto exe = Executable::Create(*std::move(graph), std::move(backends));
  EXPECT_TRUE(exe.ok()) << exe.status();
  return exe.ok() ? *std::move(exe) : nullptr;
}

const float* F32(const HostTensor& t) { return reinterpret_cast<const float*>(t.data.data()); }

// Normalized mean squared error of a - x against r - x: what the layers
// added to the residual stream x, so that x itself does not hide errors.
double DeltaNmse(const float* a, const float* r, const float* x, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double da = double{a[i]} - x[i], dr = double{r[i]} - x[i];
    num += (da - dr) * (da - dr);
    den += dr * dr;
  }
  return den > 0 ? num / den : num;
}

// Prefills kPrefillTokens random tokens from zero states, then decodes the
// first `steps` of them one at a time from zero states: each decode output
// must match the prefill output's row (attention is causal), and the KV cache
// `kv_layer`.k_cache the rows prefill wrote. On the CPU decode and prefill
// agree to f32 rounding; device backends may use other tilings and f16
// accumulation between the two, so they get OPS.md's low-precision bound.
void ExpectDecodeMatchesPrefill(const std::string& backend, const std::string& family,
                                const std::string& kv_layer, int steps) {
  const bool cpu = backend == "cpu";
  const double y_tolerance = cpu ? 1e-6 : 5e-4, cache_tolerance = cpu ? 1e-5 : 5e-4;
  std::unique_ptr<Executable> prefill = Make(family + "-prefill", backend);
  std::unique_ptr<Executable> decode = Make(family + "-decode", backend);
  ASSERT_TRUE(prefill && decode);

  HostTensor x = HostTensor::Zeros(DType::kF32, {1, kPrefillTokens, kHidden});
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < kPrefillTokens * kHidden; ++i) {
    reinterpret_cast<float*>(x.data.data())[i] = u(rng);
  }
  ASSERT_TRUE(prefill->SetInput("x", x).ok());
  ASSERT_TRUE(prefill->Run().ok());
  auto y_prefill = prefill->GetOutput("y");
  ASSERT_TRUE(y_prefill.ok()) << y_prefill.status();

  HostTensor mask = HostTensor::Zeros(DType::kF32, {1, 1, 1, kMaxSeq});
  float* m = reinterpret_cast<float*>(mask.data.data());
  for (int64_t j = 0; j < kMaxSeq; ++j) m[j] = -std::numeric_limits<float>::infinity();
  for (int32_t t = 0; t < steps; ++t) {
    m[t] = 0.0f;  // cells 0..t are written
    const float* x_t = F32(x) + t * kHidden;
    ASSERT_TRUE(decode->SetInputBytes("x", x_t, kHidden * sizeof(float)).ok());
    ASSERT_TRUE(decode->SetInputBytes("pos", &t, sizeof(t)).ok());
    ASSERT_TRUE(decode->SetInput("mask", mask).ok());
    absl::Status run = decode->Run();
    ASSERT_TRUE(run.ok()) << run;
    auto y = decode->GetOutput("y");
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_LT(DeltaNmse(F32(*y), F32(*y_prefill) + t * kHidden, x_t, kHidden), y_tolerance)
        << backend << " " << family << " token " << t;
  }

  auto cache_prefill = prefill->GetOutput(kv_layer + ".k_cache.next");
  auto cache_decode = decode->GetOutput(kv_layer + ".k_cache");  // the state's value now
  ASSERT_TRUE(cache_prefill.ok()) << cache_prefill.status();
  ASSERT_TRUE(cache_decode.ok()) << cache_decode.status();
  ASSERT_EQ(cache_decode->dtype, DType::kF16);
  const auto* a = reinterpret_cast<const uint16_t*>(cache_decode->data.data());
  const auto* r = reinterpret_cast<const uint16_t*>(cache_prefill->data.data());
  const int64_t row = cache_decode->dims[2];
  double num = 0, den = 0;
  for (int64_t i = 0; i < steps * row; ++i) {
    const double d = double{F16ToF32(a[i])} - F16ToF32(r[i]);
    num += d * d;
    den += double{F16ToF32(r[i])} * F16ToF32(r[i]);
  }
  EXPECT_GT(den, 0);
  EXPECT_LT(num / den, cache_tolerance) << backend << " " << kv_layer << ".k_cache rows 0.." << steps - 1;
  for (int64_t i = steps * row; i < kMaxSeq * row; ++i) {
    ASSERT_EQ(a[i], 0) << "decode wrote k_cache cell " << i / row << " beyond its positions";
  }
}

// One instance per backend compiled in; a backend that cannot be created here
// (no driver, no device) is skipped with the reason.
class ExamplesRun : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto b = CreateBackend(GetParam());
    if (!b.ok()) GTEST_SKIP() << "backend " << GetParam() << " is not available here: " << b.status().message();
  }
};

TEST_P(ExamplesRun, AttentionBlockDecodeMatchesPrefill) {
  ExpectDecodeMatchesPrefill(GetParam(), "attention-block", "blk.0", 8);
}

TEST_P(ExamplesRun, HybridBlockDecodeMatchesPrefill) {
  ExpectDecodeMatchesPrefill(GetParam(), "hybrid-block", "blk.1", 8);
}

INSTANTIATE_TEST_SUITE_P(Backends, ExamplesRun, ::testing::ValuesIn(BackendNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiln
