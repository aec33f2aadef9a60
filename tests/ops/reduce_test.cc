#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();

Attrs Axis(int64_t axis, bool keepdims = false) { return {{"axis", axis}, {"keepdims", keepdims}}; }

TEST(ReduceTest, MatrixBothAxes) {
  TestTensor x = MakeTensor(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 9});
  TestTensor s = EvalOp("sum", {&x});  // default axis -1
  EXPECT_EQ(Dims(s.view), (std::vector<int64_t>{2}));
  EXPECT_THAT(Values(s), ElementsAre(6, 18));
  EXPECT_THAT(Values(EvalOp("sum", {&x}, Axis(0))), ElementsAre(5, 7, 12));
  EXPECT_THAT(Values(EvalOp("mean", {&x}, Axis(1))), ElementsAre(2, 6));
  EXPECT_THAT(Values(EvalOp("mean", {&x}, Axis(-2))), ElementsAre(2.5, 3.5, 6));
  EXPECT_THAT(Values(EvalOp("max", {&x})), ElementsAre(3, 9));
  EXPECT_THAT(Values(EvalOp("max", {&x}, Axis(0))), ElementsAre(4, 5, 9));
}

TEST(ReduceTest, KeepDims) {
  TestTensor x = MakeTensor(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 9});
  TestTensor a = EvalOp("sum", {&x}, Axis(-1, true));
  EXPECT_EQ(Dims(a.view), (std::vector<int64_t>{2, 1}));
  EXPECT_THAT(Values(a), ElementsAre(6, 18));
  TestTensor b = EvalOp("max", {&x}, Axis(0, true));
  EXPECT_EQ(Dims(b.view), (std::vector<int64_t>{1, 3}));
  EXPECT_THAT(Values(b), ElementsAre(4, 5, 9));
}

TEST(ReduceTest, RankOneKeepsRankOne) {
  TestTensor x = MakeTensor(DType::kF32, {4}, {1, -2, 3, 10});
  for (bool keep : {false, true}) {
    TestTensor y = EvalOp("sum", {&x}, Axis(0, keep));
    EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{1}));
    EXPECT_THAT(Values(y), ElementsAre(12));
  }
  EXPECT_THAT(Values(EvalOp("mean", {&x})), ElementsAre(3));
}

TEST(ReduceTest, MiddleAxisOfRankFour) {
  // x[a,b,c,d] = 1000a + 100b + 10c + d; sum over c (axis 2, size 3).
  std::vector<double> v;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 3; ++c)
        for (int d = 0; d < 2; ++d) v.push_back(1000 * a + 100 * b + 10 * c + d);
  TestTensor x = MakeTensor(DType::kF32, {2, 2, 3, 2}, v);
  TestTensor y = EvalOp("sum", {&x}, Axis(2));
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 2, 2}));
  // 3*(1000a + 100b + d) + (0+10+20)
  EXPECT_THAT(Values(y), ElementsAre(30, 33, 330, 333, 3030, 3033, 3330, 3333));
  TestTensor m = EvalOp("max", {&x}, Axis(-3, true));
  EXPECT_EQ(Dims(m.view), (std::vector<int64_t>{2, 1, 3, 2}));
  EXPECT_THAT(Values(m), ElementsAre(100, 101, 110, 111, 120, 121, 1100, 1101, 1110, 1111, 1120, 1121));
}

TEST(ReduceTest, HalfInputsKeepTheirDtype) {
  for (DType t : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(t));
    TestTensor x = MakeTensor(t, {3}, {0.1, 0.2, 1000.3});
    const std::vector<double> xv = Values(x);
    TestTensor s = EvalOp("sum", {&x});
    EXPECT_EQ(s.view.dtype, t);
    EXPECT_THAT(Values(s), ElementsAre(RoundTo(t, xv[0] + xv[1] + xv[2])));
    EXPECT_THAT(Values(EvalOp("mean", {&x})), ElementsAre(RoundTo(t, (xv[0] + xv[1] + xv[2]) / 3)));
    EXPECT_THAT(Values(EvalOp("max", {&x})), ElementsAre(xv[2]));
  }
}

TEST(ReduceTest, StridedInput) {
  TestTensor x = MakePaddedTensor(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 9});
  EXPECT_THAT(Values(EvalOp("sum", {&x}, Axis(0))), ElementsAre(5, 7, 12));
  EXPECT_THAT(Values(EvalOp("max", {&x})), ElementsAre(3, 9));
}

TEST(ReduceTest, EdgeValues) {
  TestTensor x = MakeTensor(DType::kF32, {3, 2}, {-kInf, -kInf, std::nan(""), 1, kInf, 1});
  std::vector<double> m = Values(EvalOp("max", {&x}));
  EXPECT_EQ(m[0], -kInf);
  EXPECT_TRUE(std::isnan(m[1]));  // NaN propagates
  EXPECT_EQ(m[2], kInf);
  // An empty axis: sum 0, mean NaN (0/0), max -inf.
  TestTensor empty = MakeTensor(DType::kF32, {2, 0}, {});
  EXPECT_THAT(Values(EvalOp("sum", {&empty})), ElementsAre(0, 0));
  EXPECT_TRUE(std::isnan(Values(EvalOp("mean", {&empty}))[0]));
  EXPECT_THAT(Values(EvalOp("max", {&empty})), ElementsAre(-kInf, -kInf));
  // Reducing the non-empty axis leaves an empty output.
  EXPECT_EQ(Dims(EvalOp("sum", {&empty}, Axis(0)).view), (std::vector<int64_t>{0}));
}

std::string BuildError(absl::string_view op, DType dtype, std::vector<int64_t> dims, Attrs attrs) {
  GraphBuilder b("g");
  Tensor x = b.Input("in_tensor", dtype, dims);
  b.Op1(op, {x}, std::move(attrs), "bad_node");
  EXPECT_FALSE(b.status().ok());
  return std::string(b.status().message());
}

TEST(ReduceTest, InferErrors) {
  std::string e = BuildError("sum", DType::kF32, {2, 3}, Axis(2));
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("in_tensor"));
  EXPECT_THAT(e, HasSubstr("axis 2 is out of range for rank 2"));
  e = BuildError("mean", DType::kF32, {2, 3}, Axis(-3));
  EXPECT_THAT(e, HasSubstr("axis -3"));
  e = BuildError("max", DType::kF32, {2, 3}, Axis(7));
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("'axis'"));
  e = BuildError("sum", DType::kI32, {2, 3}, {});
  EXPECT_THAT(e, HasSubstr("in_tensor"));
  EXPECT_THAT(e, HasSubstr("i32 is not supported"));
  e = BuildError("sum", DType::kF32, {2, 3}, {{"keepdims", std::string("yes")}});
  EXPECT_THAT(e, HasSubstr("'keepdims' must be bool"));
}

TEST(ReduceTest, InferOutputs) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kBF16, {2, 3, 4, 5});
  Tensor y = b.Op1("mean", {x}, {{"axis", int64_t{1}}});
  Tensor z = b.Op1("max", {x}, {{"axis", int64_t{-1}}, {"keepdims", true}});
  ASSERT_TRUE(b.status().ok()) << b.status();
  EXPECT_EQ(b.info(y).dims, (std::vector<int64_t>{2, 4, 5}));
  EXPECT_EQ(b.info(y).dtype, DType::kBF16);
  EXPECT_EQ(b.info(z).dims, (std::vector<int64_t>{2, 3, 4, 1}));
}

}  // namespace
}  // namespace kiln
