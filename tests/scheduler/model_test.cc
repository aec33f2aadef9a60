// A model of several graphs over one set of weights and states: prefill then
// decode on shared states gives what one longer prefill gives, moves no state
// through the host, and holds each weight once per device.
#include "scheduler/model.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "examples/example_graphs.h"
#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "ops/registry.h"
#include "tests/scheduler/partial_backend.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kHidden = 1024;
constexpr int64_t kCells = 4096;

std::shared_ptr<Backend> Cpu() {
  auto cpu = CreateBackend("cpu");
  return cpu.ok() ? std::shared_ptr<Backend>(*std::move(cpu)) : nullptr;
}

// A device-like backend (no host memory, asynchronous, 256-byte alignment)
// that runs every op.
std::shared_ptr<test::PartialBackend> Device() {
  std::set<std::string> ops;
  for (const OpSchema* op : AllOps()) ops.insert(op->name);
  test::PartialBackend::Options options;
  options.alignment = 256;
  return test::PartialBackend::Create(ops, "device", options);
}

Graph Example(const std::string& name, int64_t tokens) {
  ExampleOptions options;
  options.seed = 5;
  options.prefill_tokens = tokens;
  auto g = MakeExample(name, options);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *std::move(g) : Graph{};
}

const float* F32(const HostTensor& t) { return reinterpret_cast<const float*>(t.data.data()); }

// NMSE of what the layers added to the residual stream x.
double DeltaNmse(const float* a, const float* r, const float* x, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double da = double{a[i]} - x[i], dr = double{r[i]} - x[i];
    num += (da - dr) * (da - dr);
    den += dr * dr;
  }
  return den > 0 ? num / den : num;
}

int64_t ConstantBytes(const Graph& g) {
  int64_t n = 0;
  for (const TensorInfo& t : g.tensors) n += t.constant && !t.is_view() ? static_cast<int64_t>(t.constant->size) : 0;
  return n;
}

// Prefill P tokens, then decode `steps` tokens one at a time on the same
// states; compare with one prefill of P + steps tokens.
void ExpectPrefillThenDecodeMatchesLongPrefill(const std::string& family, std::shared_ptr<Backend> backend,
                                               test::PartialBackend* counted) {
  constexpr int64_t P = 5, steps = 3;
  HostTensor x = HostTensor::Zeros(DType::kF32, {1, P + steps, kHidden});
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < (P + steps) * kHidden; ++i) reinterpret_cast<float*>(x.data.data())[i] = u(rng);

  // The reference: one prefill of every token.
  Model whole({backend});
  auto long_prefill = whole.Add("prefill", Example(family + "-prefill", P + steps));
  ASSERT_TRUE(long_prefill.ok()) << long_prefill.status();
  ASSERT_TRUE((*long_prefill)->SetInput("x", x).ok());
  ASSERT_TRUE((*long_prefill)->Run().ok());
  auto y_ref = (*long_prefill)->GetOutput("y");
  ASSERT_TRUE(y_ref.ok()) << y_ref.status();

  Model model({backend});
  const Graph prefill_graph = Example(family + "-prefill", P);
  const int64_t prefill_constants = ConstantBytes(prefill_graph);
  auto prefill = model.Add("prefill", prefill_graph);
  ASSERT_TRUE(prefill.ok()) << prefill.status();
  const WeightStats after_prefill = model.resources().weight_stats();
  auto decode = model.Add("decode", Example(family + "-decode", 1));
  ASSERT_TRUE(decode.ok()) << decode.status();
  const WeightStats after_decode = model.resources().weight_stats();
  // Every decode weight was already held: nothing new on the device.
  EXPECT_EQ(after_decode.bytes_held, after_prefill.bytes_held);
  EXPECT_EQ(after_decode.allocations, after_prefill.allocations);
  EXPECT_EQ(after_decode.bytes_held, prefill_constants);

  HostTensor x_prefill = HostTensor::Zeros(DType::kF32, {1, P, kHidden});
  std::memcpy(x_prefill.data.data(), x.data.data(), x_prefill.data.size());
  ASSERT_TRUE((*prefill)->SetInput("x", x_prefill).ok());
  ASSERT_TRUE((*prefill)->Run().ok());
  if (counted) counted->ResetCounts();

  HostTensor mask = HostTensor::Zeros(DType::kF32, {1, 1, 1, kCells});
  float* m = reinterpret_cast<float*>(mask.data.data());
  for (int64_t j = 0; j < kCells; ++j) m[j] = j < P ? 0.0f : -std::numeric_limits<float>::infinity();
  int64_t input_bytes = 0, output_bytes = 0;
  for (int32_t t = P; t < P + steps; ++t) {
    m[t] = 0.0f;
    const float* x_t = F32(x) + t * kHidden;
    ASSERT_TRUE((*decode)->SetInputBytes("x", x_t, kHidden * sizeof(float)).ok());
    ASSERT_TRUE((*decode)->SetInputBytes("pos", &t, sizeof(t)).ok());
    ASSERT_TRUE((*decode)->SetInput("mask", mask).ok());
    input_bytes += kHidden * 4 + 4 + kCells * 4;
    absl::Status run = (*decode)->Run();
    ASSERT_TRUE(run.ok()) << run;
    auto y = (*decode)->GetOutput("y");
    ASSERT_TRUE(y.ok()) << y.status();
    output_bytes += kHidden * 4;
    EXPECT_LT(DeltaNmse(F32(*y), F32(*y_ref) + t * kHidden, x_t, kHidden), 1e-5) << family << " token " << t;
  }
  if (counted) {
    // Only the per-token inputs went in and only y came out: no state bytes.
    EXPECT_EQ(counted->counts().upload_bytes, input_bytes);
    EXPECT_EQ(counted->counts().download_bytes, output_bytes);
  }
  // Reading a state is an explicit call, and shows what decode wrote.
  auto k_cache = model.resources().ReadState(family == "hybrid-block" ? "blk.1.k_cache" : "blk.0.k_cache");
  ASSERT_TRUE(k_cache.ok()) << k_cache.status();
  const auto* cells = reinterpret_cast<const uint16_t*>(k_cache->data.data());
  const int64_t row = k_cache->dims[2];
  bool written = false;
  for (int64_t i = (P + steps - 1) * row; i < (P + steps) * row; ++i) written |= cells[i] != 0;
  EXPECT_TRUE(written) << "decode's last token is not in the cache";
  for (int64_t i = (P + steps) * row; i < kCells * row; ++i) ASSERT_EQ(cells[i], 0) << "cell " << i / row;
}

TEST(ModelTest, HybridPrefillThenDecodeMatchesOneLongPrefillOnCpu) {
  ExpectPrefillThenDecodeMatchesLongPrefill("hybrid-block", Cpu(), nullptr);
}

TEST(ModelTest, HybridPrefillThenDecodeMatchesOneLongPrefillOnADeviceBackend) {
  auto device = Device();
  ASSERT_TRUE(device);
  ExpectPrefillThenDecodeMatchesLongPrefill("hybrid-block", device, device.get());
}

TEST(ModelTest, AttentionPrefillThenDecodeMatchesOneLongPrefillOnADeviceBackend) {
  auto device = Device();
  ASSERT_TRUE(device);
  ExpectPrefillThenDecodeMatchesLongPrefill("attention-block", device, device.get());
}

// Two graphs with a state of one name but another shape cannot share it.
TEST(ModelTest, MismatchedStatesAreAnErrorNamingBothGraphs) {
  auto make = [](const std::string& name, int64_t n) {
    GraphBuilder b(name);
    Tensor s = b.Input("s", DType::kF32, {n});
    Tensor x = b.Input("x", DType::kF32, {n});
    Tensor next = b.Op1("add", {s, x}, {}, "s.next");
    b.Output(next);
    b.State(s, next);
    auto g = b.Build();
    EXPECT_TRUE(g.ok()) << g.status();
    return *std::move(g);
  };
  Model model({Cpu()});
  ASSERT_TRUE(model.Add("a", make("first", 4)).ok());
  auto second = model.Add("b", make("second", 8));
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("'second'"));
  EXPECT_THAT(second.status().message(), HasSubstr("'first'"));
  EXPECT_FALSE(model.Add("a", make("third", 4)).ok());  // entry names are unique
}

// States start at zero (Fill, not a host vector), are shared by every entry,
// and can be read, written and zeroed explicitly.
TEST(ModelTest, StatesAreSharedByNameAndReadExplicitly) {
  auto make = [](const std::string& name) {
    GraphBuilder b(name);
    Tensor s = b.Input("s", DType::kF32, {4});
    Tensor x = b.Input("x", DType::kF32, {4});
    Tensor next = b.Op1("add", {s, x}, {}, "s.next");
    b.Output(next);
    b.State(s, next);
    auto g = b.Build();
    EXPECT_TRUE(g.ok()) << g.status();
    return *std::move(g);
  };
  auto device = Device();
  Model model({device});
  auto a = model.Add("a", make("a"));
  auto b = model.Add("b", make("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GE(device->counts().fills, 1);
  const float one[4] = {1, 1, 1, 1}, two[4] = {2, 2, 2, 2};
  ASSERT_TRUE((*a)->SetInputBytes("x", one, sizeof one).ok());
  ASSERT_TRUE((*b)->SetInputBytes("x", two, sizeof two).ok());
  ASSERT_TRUE((*a)->Run().ok());
  ASSERT_TRUE((*b)->Run().ok());
  ASSERT_TRUE((*a)->Run().ok());
  auto s = model.resources().ReadState("s");
  ASSERT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(F32(*s)[i], 4.0f);
  ASSERT_TRUE(model.resources().ZeroStates().ok());
  s = model.resources().ReadState("s");
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(F32(*s)[i], 0.0f);
  EXPECT_EQ(model.resources().ReadState("nope").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kiln
