#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pointwise;

constexpr double kInf = std::numeric_limits<double>::infinity();

// softmax([1, 2, 3])
const std::vector<double> kSoft123 = {0.0900305732, 0.2447284711, 0.6652409558};

auto Near(const std::vector<double>& want, double tol = 1e-7) { return Pointwise(DoubleNear(tol), want); }

TEST(SoftmaxTest, LastAxis) {
  TestTensor x = MakeTensor(DType::kF32, {2, 3}, {1, 2, 3, 0, 0, 0});
  TestTensor y = EvalOp("softmax", {&x});
  EXPECT_EQ(y.view.dtype, DType::kF32);
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 3}));
  EXPECT_THAT(Values(y), Near({kSoft123[0], kSoft123[1], kSoft123[2], 1.0 / 3, 1.0 / 3, 1.0 / 3}));
}

TEST(SoftmaxTest, ScaleMultipliesLogits) {
  TestTensor x = MakeTensor(DType::kF32, {3}, {0.5, 1, 1.5});
  EXPECT_THAT(Values(EvalOp("softmax", {&x}, {{"scale", 2.0}})), Near(kSoft123));
  TestTensor x2 = MakeTensor(DType::kF32, {3}, {-1, -2, -3});
  EXPECT_THAT(Values(EvalOp("softmax", {&x2}, {{"scale", -1.0}})), Near(kSoft123));
}

TEST(SoftmaxTest, LargeLogitsDoNotOverflow) {
  TestTensor x = MakeTensor(DType::kF32, {2}, {1000, 1000});
  EXPECT_THAT(Values(EvalOp("softmax", {&x})), ElementsAre(0.5, 0.5));
}

TEST(SoftmaxTest, MaskBroadcasts) {
  TestTensor x = MakeTensor(DType::kF32, {2, 3}, {1, 2, 3, 1, 2, 3});
  // A per-row constant [2,1] changes nothing (softmax is shift invariant).
  TestTensor row_mask = MakeTensor(DType::kF32, {2, 1}, {100, -100});
  EXPECT_THAT(Values(EvalOp("softmax", {&x, &row_mask})),
              Near({kSoft123[0], kSoft123[1], kSoft123[2], kSoft123[0], kSoft123[1], kSoft123[2]}));
  // A column mask [3] with -inf drops the last key in every row: softmax([1,2]).
  TestTensor col_mask = MakeTensor(DType::kF16, {3}, {0, 0, -kInf});
  const double e = 1 / (1 + std::exp(1.0));
  EXPECT_THAT(Values(EvalOp("softmax", {&x, &col_mask})), Near({e, 1 - e, 0, e, 1 - e, 0}));
  // mask [1,3] added before the max: logits [1+2, 2, 3-1] = [3, 2, 2].
  TestTensor add_mask = MakeTensor(DType::kF32, {1, 3}, {2, 0, -1});
  const double d = std::exp(3.0) + 2 * std::exp(2.0);
  EXPECT_THAT(Values(EvalOp("softmax", {&x, &add_mask}, {{"scale", 1.0}})),
              Near({std::exp(3.0) / d, std::exp(2.0) / d, std::exp(2.0) / d, std::exp(3.0) / d,
                    std::exp(2.0) / d, std::exp(2.0) / d}));
  // The mask is not scaled: scale 2 on x, mask [0,0,-inf].
  TestTensor half = MakeTensor(DType::kF32, {2, 3}, {0.5, 1, 1.5, 0.5, 1, 1.5});
  EXPECT_THAT(Values(EvalOp("softmax", {&half, &col_mask}, {{"scale", 2.0}})), Near({e, 1 - e, 0, e, 1 - e, 0}));
}

TEST(SoftmaxTest, FullyMaskedRowGivesZeros) {
  TestTensor x = MakeTensor(DType::kF32, {2, 2}, {1, 2, 3, 4});
  TestTensor mask = MakeTensor(DType::kF32, {2, 2}, {0, 0, -kInf, -kInf});
  const double e = 1 / (1 + std::exp(1.0));
  EXPECT_THAT(Values(EvalOp("softmax", {&x, &mask})), Near({e, 1 - e, 0, 0}));
  TestTensor neg = MakeTensor(DType::kF16, {1, 3}, {-kInf, -kInf, -kInf});
  EXPECT_THAT(Values(EvalOp("softmax", {&neg})), ElementsAre(0, 0, 0));
}

TEST(SoftmaxTest, NaNLogitMakesTheRowNaN) {
  TestTensor x = MakeTensor(DType::kF32, {2, 2}, {std::nan(""), -kInf, 1, 1});
  std::vector<double> v = Values(EvalOp("softmax", {&x}));
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_TRUE(std::isnan(v[1]));
  EXPECT_THAT(std::vector<double>(v.begin() + 2, v.end()), ElementsAre(0.5, 0.5));
}

TEST(SoftmaxTest, HalfInputsKeepTheirDtype) {
  for (DType t : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(t));
    TestTensor x = MakeTensor(t, {3}, {1.1, 2.2, 3.3});
    TestTensor mask = MakeTensor(DType::kF16, {3}, {0.3, 0, 0});
    TestTensor y = EvalOp("softmax", {&x, &mask});
    EXPECT_EQ(y.view.dtype, t);
    const std::vector<double> xv = Values(x), mv = Values(mask);
    double den = 0;
    for (int i = 0; i < 3; ++i) den += std::exp(xv[i] + mv[i]);
    std::vector<double> got = Values(y);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], RoundTo(t, std::exp(xv[i] + mv[i]) / den)) << i;
  }
}

TEST(SoftmaxTest, StridedInputs) {
  TestTensor x = MakePaddedTensor(DType::kF32, {2, 3}, {1, 2, 3, 3, 2, 1});
  TestTensor mask = MakePaddedTensor(DType::kF32, {2, 3}, {0, 0, 0, 0, 0, -kInf});
  const double e = 1 / (1 + std::exp(1.0));
  EXPECT_THAT(Values(EvalOp("softmax", {&x, &mask})),
              Near({kSoft123[0], kSoft123[1], kSoft123[2], 1 - e, e, 0}));
}

std::string BuildError(std::vector<std::pair<DType, std::vector<int64_t>>> inputs, Attrs attrs = {}) {
  GraphBuilder b("g");
  std::vector<Tensor> ts;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ts.push_back(b.Input(absl::StrCat("in", i, "_tensor"), inputs[i].first, inputs[i].second));
  }
  b.Op1("softmax", ts, std::move(attrs), "bad_node");
  EXPECT_FALSE(b.status().ok());
  return std::string(b.status().message());
}

TEST(SoftmaxTest, InferErrors) {
  std::string e = BuildError({{DType::kF32, {2, 2}}, {DType::kF32, {3}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("does not broadcast"));
  e = BuildError({{DType::kF32, {2, 2}}, {DType::kF32, {1, 2, 2}}});  // would grow x
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  e = BuildError({{DType::kF32, {2, 2}}, {DType::kBF16, {2, 2}}});
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("bf16 is not supported"));
  e = BuildError({{DType::kI32, {2, 2}}});
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("i32 is not supported"));
  e = BuildError({{DType::kF32, {2, 2}}}, {{"scale", kInf}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("scale"));
}

TEST(SoftmaxTest, InferOutputs) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kBF16, {2, 4, 3, 5});
  Tensor m = b.Input("m", DType::kF16, {4, 1, 5});
  Tensor y = b.Op1("softmax", {x, m});
  ASSERT_TRUE(b.status().ok()) << b.status();
  EXPECT_EQ(b.info(y).dims, (std::vector<int64_t>{2, 4, 3, 5}));
  EXPECT_EQ(b.info(y).dtype, DType::kBF16);
}

}  // namespace
}  // namespace kiln
