#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/conv1d_causal.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Pointwise;

struct ConvResult {
  std::vector<double> out, new_state;
  std::vector<int64_t> out_dims, state_dims;
  DType out_dtype = DType::kF32, state_dtype = DType::kF32;
};

ConvResult Conv(const TestTensor& x, const TestTensor& w, const TestTensor* state, Attrs attrs = {}) {
  auto r = RunReference("conv1d_causal", {&x, &w, state}, std::move(attrs));
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  return {Values(r->at(0)), Values(r->at(1)), Dims(r->at(0).view), Dims(r->at(1).view),
          r->at(0).view.dtype, r->at(1).view.dtype};
}

// Runs the reference with new_state written into the state's own buffer.
ConvResult ConvInPlace(const TestTensor& x, const TestTensor& w, TestTensor& state, Attrs attrs = {}) {
  const OpSchema* schema = FindOp("conv1d_causal");
  Node node{.name = "test_node", .op = "conv1d_causal", .attrs = std::move(attrs)};
  EXPECT_TRUE(NormalizeAttrs(*schema, node).ok());
  TestTensor out = ZeroTensor(x.view.dtype, Dims(x.view));
  const std::vector<TensorView> in = {x.view, w.view, state.view};
  const std::vector<TensorView> outs = {out.view, state.view};
  EXPECT_TRUE(schema->reference(node, in, outs).ok());
  return {Values(out), Values(state), Dims(out.view), Dims(state.view), out.view.dtype, state.view.dtype};
}

TEST(Conv1dCausal, WithoutStatePadsWithZeros) {
  // xpad = 0 0 1 2 3 4; out[t] = 1 xpad[t] + 10 xpad[t+1] + 100 xpad[t+2].
  const TestTensor x = MakeTensor(DType::kF32, {1, 4, 1}, {1, 2, 3, 4});
  const TestTensor w = MakeTensor(DType::kF32, {1, 3}, {1, 10, 100});
  const ConvResult r = Conv(x, w, nullptr);
  EXPECT_THAT(r.out_dims, ElementsAre(1, 4, 1));
  EXPECT_THAT(r.out, ElementsAre(100, 210, 321, 432));
  EXPECT_THAT(r.state_dims, ElementsAre(1, 2, 1));
  EXPECT_THAT(r.new_state, ElementsAre(3, 4));
}

TEST(Conv1dCausal, WithStateContinuesTheSequence) {
  // xpad = 5 6 1 2 3 4.
  const TestTensor x = MakeTensor(DType::kF32, {1, 4, 1}, {1, 2, 3, 4});
  const TestTensor w = MakeTensor(DType::kF32, {1, 3}, {1, 10, 100});
  const TestTensor state = MakeTensor(DType::kF32, {1, 2, 1}, {5, 6});
  const ConvResult r = Conv(x, w, &state);
  EXPECT_THAT(r.out, ElementsAre(165, 216, 321, 432));
  EXPECT_THAT(r.new_state, ElementsAre(3, 4));
}

TEST(Conv1dCausal, FewerTokensThanTheStateKeepsOldRows) {
  // K 4, T 1: xpad = 7 8 9 1; new_state = 8 9 1.
  const TestTensor x = MakeTensor(DType::kF32, {1, 1, 1}, {1});
  const TestTensor w = MakeTensor(DType::kF32, {1, 4}, {1, 2, 3, 4});
  const TestTensor state = MakeTensor(DType::kF32, {1, 3, 1}, {7, 8, 9});
  const ConvResult r = Conv(x, w, &state);
  EXPECT_THAT(r.out, ElementsAre(7 + 16 + 27 + 4));
  EXPECT_THAT(r.new_state, ElementsAre(8, 9, 1));
  // T 2 < K-1 = 3: xpad = 7 8 9 1 2.
  const TestTensor x2 = MakeTensor(DType::kF32, {1, 2, 1}, {1, 2});
  const ConvResult r2 = Conv(x2, w, &state);
  EXPECT_THAT(r2.out, ElementsAre(54, 8 + 18 + 3 + 8));
  EXPECT_THAT(r2.new_state, ElementsAre(9, 1, 2));
}

TEST(Conv1dCausal, ChannelsAndBatchRowsAreIndependent) {
  // B 2, T 2, C 2, K 2. Channel 0 weights (1, 2), channel 1 (3, -1).
  const TestTensor x = MakeTensor(DType::kF32, {2, 2, 2}, {1, 10, 2, 20, 3, 30, 4, 40});
  const TestTensor w = MakeTensor(DType::kF32, {2, 2}, {1, 2, 3, -1});
  const TestTensor state = MakeTensor(DType::kF32, {2, 1, 2}, {5, 50, 6, 60});
  const ConvResult r = Conv(x, w, &state);
  // b0 c0: xpad 5 1 2 -> 5+2, 1+4; b0 c1: 50 10 20 -> 150-10, 30-20
  // b1 c0: 6 3 4 -> 6+6, 3+8;    b1 c1: 60 30 40 -> 180-30, 90-40
  EXPECT_THAT(r.out, ElementsAre(7, 140, 5, 10, 12, 150, 11, 50));
  EXPECT_THAT(r.new_state, ElementsAre(2, 20, 4, 40));
}

TEST(Conv1dCausal, SiluAppliesToTheOutputOnly) {
  const TestTensor x = MakeTensor(DType::kF32, {1, 2, 1}, {1, -2});
  const TestTensor w = MakeTensor(DType::kF32, {1, 2}, {0.5, 1});
  const ConvResult r = Conv(x, w, nullptr, {{"silu", true}});
  auto silu = [](double v) { return v / (1 + std::exp(-v)); };
  EXPECT_THAT(r.out, Pointwise(DoubleNear(1e-6), std::vector<double>{silu(1), silu(0.5 - 2)}));
  EXPECT_THAT(r.new_state, ElementsAre(-2));
}

TEST(Conv1dCausal, KernelOfOneHasAnEmptyState) {
  const TestTensor x = MakeTensor(DType::kF32, {1, 2, 2}, {1, 2, 3, 4});
  const TestTensor w = MakeTensor(DType::kF32, {2, 1}, {2, -1});
  const TestTensor state = ZeroTensor(DType::kF32, {1, 0, 2});
  const ConvResult r = Conv(x, w, &state);
  EXPECT_THAT(r.out, ElementsAre(2, -2, 6, -4));
  EXPECT_THAT(r.state_dims, ElementsAre(1, 0, 2));
}

TEST(Conv1dCausal, DtypesOfOutputs) {
  const TestTensor x = MakeTensor(DType::kBF16, {1, 2, 1}, {1, 2});
  const TestTensor w = MakeTensor(DType::kF32, {1, 2}, {1, 1});
  EXPECT_EQ(Conv(x, w, nullptr).state_dtype, DType::kBF16);
  const TestTensor state = MakeTensor(DType::kF32, {1, 1, 1}, {0.5});
  const ConvResult r = Conv(x, w, &state);
  EXPECT_EQ(r.out_dtype, DType::kBF16);
  EXPECT_EQ(r.state_dtype, DType::kF32);
  EXPECT_THAT(r.out, ElementsAre(1.5, 3));
}

TEST(Conv1dCausal, StridedViewsGiveTheSameAsContiguous) {
  std::vector<double> xs, ws, ss;
  for (int i = 0; i < 2 * 5 * 3; ++i) xs.push_back(std::sin(0.3 * i));
  for (int i = 0; i < 3 * 4; ++i) ws.push_back(std::cos(0.5 * i));
  for (int i = 0; i < 2 * 3 * 3; ++i) ss.push_back(0.1 * i - 0.4);
  const TestTensor s = MakeTensor(DType::kF32, {2, 3, 3}, ss);
  const ConvResult want = Conv(MakeTensor(DType::kF32, {2, 5, 3}, xs), MakeTensor(DType::kF32, {3, 4}, ws), &s);
  const TestTensor px = MakePaddedTensor(DType::kF32, {2, 5, 3}, xs);
  const TestTensor pw = MakePaddedTensor(DType::kF32, {3, 4}, ws);
  const TestTensor ps = MakePaddedTensor(DType::kF32, {2, 3, 3}, ss);
  const ConvResult got = Conv(px, pw, &ps);
  EXPECT_THAT(got.out, ElementsAreArray(want.out));
  EXPECT_THAT(got.new_state, ElementsAreArray(want.new_state));
}

TEST(Conv1dCausal, NewStateAliasingStateMatchesSeparateBuffers) {
  EXPECT_THAT(FindOp("conv1d_causal")->inplace, ElementsAre(std::pair{kConvState, kConvNewState}));
  const TestTensor w = MakeTensor(DType::kF32, {2, 4}, {1, 2, 3, 4, -1, 0.5, 2, 1});
  for (int64_t T : {1, 2, 3, 6}) {  // below, at and above K-1 = 3
    std::vector<double> xs, ss;
    for (int i = 0; i < 2 * T * 2; ++i) xs.push_back(i + 1);
    for (int i = 0; i < 2 * 3 * 2; ++i) ss.push_back(-10 - i);
    const TestTensor x = MakeTensor(DType::kF32, {2, T, 2}, xs);
    const TestTensor separate_state = MakeTensor(DType::kF32, {2, 3, 2}, ss);
    const ConvResult want = Conv(x, w, &separate_state, {{"silu", true}});
    TestTensor state = MakeTensor(DType::kF32, {2, 3, 2}, ss);
    const ConvResult got = ConvInPlace(x, w, state, {{"silu", true}});
    EXPECT_THAT(got.out, ElementsAreArray(want.out)) << "T = " << T;
    EXPECT_THAT(got.new_state, ElementsAreArray(want.new_state)) << "T = " << T;
  }
}

TEST(Conv1dCausal, InferenceErrorsNameNodeAndTensor) {
  auto err = [](const TestTensor& x, const TestTensor& w, const TestTensor* s) {
    auto r = RunReference("conv1d_causal", {&x, &w, s});
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : std::string(r.status().message());
  };
  const TestTensor x = MakeTensor(DType::kF32, {1, 4, 2}, std::vector<double>(8, 1));
  const TestTensor w = MakeTensor(DType::kF32, {2, 3}, std::vector<double>(6, 1));
  const TestTensor w3 = MakeTensor(DType::kF32, {3, 3}, std::vector<double>(9, 1));
  EXPECT_THAT(err(x, w3, nullptr),
              HasSubstr("node 'test_node' (conv1d_causal): input 'weight' (tensor 't1' f32 [3,3]): must be [C, K] "
                        "with C = 2"));
  const TestTensor bad_state = MakeTensor(DType::kF32, {1, 3, 2}, std::vector<double>(6, 1));
  EXPECT_THAT(err(x, w, &bad_state), HasSubstr("input 'state' (tensor 't2' f32 [1,3,2]): must be [B, K-1, C] = [1,2,2]"));
  const TestTensor x2 = MakeTensor(DType::kF32, {4, 2}, std::vector<double>(8, 1));
  EXPECT_THAT(err(x2, w, nullptr), HasSubstr("input 'x' (tensor 't0' f32 [4,2]): must be [B, T, C]"));
  const TestTensor xi = MakeTensor(DType::kI32, {1, 4, 2}, std::vector<double>(8, 1));
  EXPECT_THAT(err(xi, w, nullptr), HasSubstr("f32, f16 or bf16"));
  const TestTensor w0 = ZeroTensor(DType::kF32, {2, 0});
  EXPECT_THAT(err(x, w0, nullptr), HasSubstr("K >= 1"));
}

}  // namespace
}  // namespace kiln
