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

auto Near(const std::vector<double>& want, double tol = 1e-6) { return Pointwise(DoubleNear(tol), want); }

TEST(RmsNormTest, ValuesWeightAndBias) {
  // mean(x^2) = 30/4 = 7.5.
  TestTensor x = MakeTensor(DType::kF32, {2, 4}, {1, 2, 3, 4, -2, 2, -2, 2});
  const double r = 1 / std::sqrt(7.5);
  TestTensor y = EvalOp("rms_norm", {&x}, {{"eps", 0.0}});
  EXPECT_EQ(y.view.dtype, DType::kF32);
  EXPECT_THAT(Values(y), Near({r, 2 * r, 3 * r, 4 * r, -1, 1, -1, 1}));
  TestTensor w = MakeTensor(DType::kF32, {4}, {1, 2, 1, 2});
  TestTensor b = MakeTensor(DType::kF32, {4}, {0, 0, 1, 1});
  EXPECT_THAT(Values(EvalOp("rms_norm", {&x, &w, &b}, {{"eps", 0.0}})),
              Near({r, 4 * r, 3 * r + 1, 8 * r + 1, -1, 2, 0, 3}));
  // Bias without weight.
  EXPECT_THAT(Values(EvalOp("rms_norm", {&x, nullptr, &b}, {{"eps", 0.0}})),
              Near({r, 2 * r, 3 * r + 1, 4 * r + 1, -1, 1, 0, 2}));
}

TEST(RmsNormTest, DefaultEpsIsOneMillionth) {
  // x = 1e-3: x / sqrt(1e-6 + 1e-6) = 1/sqrt(2).
  TestTensor x = MakeTensor(DType::kF32, {1}, {1e-3});
  EXPECT_THAT(Values(EvalOp("rms_norm", {&x})), Near({1 / std::sqrt(2.0)}));
  EXPECT_THAT(Values(EvalOp("rms_norm", {&x}, {{"eps", 3e-6}})), Near({0.5}));
  TestTensor zeros = MakeTensor(DType::kF32, {3}, {0, 0, 0});
  EXPECT_THAT(Values(EvalOp("rms_norm", {&zeros})), ElementsAre(0, 0, 0));
}

TEST(LayerNormTest, Values) {
  // mean 2, population variance 2/3.
  TestTensor x = MakeTensor(DType::kF32, {1, 3}, {1, 2, 3});
  const double s = 1 / std::sqrt(2.0 / 3);
  EXPECT_THAT(Values(EvalOp("layer_norm", {&x}, {{"eps", 0.0}})), Near({-s, 0, s}));
  TestTensor w = MakeTensor(DType::kF32, {3}, {2, 2, -1});
  TestTensor b = MakeTensor(DType::kF32, {3}, {1, 1, 1});
  EXPECT_THAT(Values(EvalOp("layer_norm", {&x, &w, &b}, {{"eps", 0.0}})), Near({1 - 2 * s, 1, 1 - s}));
  // Default eps 1e-5: x = +-0.01 has var 1e-4.
  TestTensor small = MakeTensor(DType::kF32, {2}, {-0.01, 0.01});
  const double t = 0.01 / std::sqrt(1e-4 + 1e-5);
  EXPECT_THAT(Values(EvalOp("layer_norm", {&small})), Near({-t, t}));
}

TEST(L2NormTest, Values) {
  TestTensor x = MakeTensor(DType::kF32, {2, 2}, {3, 4, 0, -2});
  EXPECT_THAT(Values(EvalOp("l2_norm", {&x}, {{"eps", 0.0}})), Near({0.6, 0.8, 0, -1}));
  // Default eps 1e-6 is added to the sum (not the mean) of squares.
  TestTensor small = MakeTensor(DType::kF32, {2}, {1e-3, 0});
  EXPECT_THAT(Values(EvalOp("l2_norm", {&small})), Near({1 / std::sqrt(2.0), 0}));
}

TEST(NormTest, HalfInputsKeepTheirDtype) {
  for (DType t : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(t));
    TestTensor x = MakeTensor(t, {1, 3}, {0.3, -1.7, 2.9});
    TestTensor w = MakeTensor(DType::kBF16, {3}, {0.5, 1.5, 1.1});
    const std::vector<double> xv = Values(x), wv = Values(w);
    double ss = 0;
    for (double v : xv) ss += v * v;
    TestTensor y = EvalOp("rms_norm", {&x, &w});
    EXPECT_EQ(y.view.dtype, t);
    std::vector<double> got = Values(y);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], RoundTo(t, xv[i] / std::sqrt(ss / 3 + 1e-6) * wv[i])) << i;
    TestTensor l2 = EvalOp("l2_norm", {&x});
    EXPECT_EQ(l2.view.dtype, t);
    got = Values(l2);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], RoundTo(t, xv[i] / std::sqrt(ss + 1e-6))) << i;
  }
}

TEST(NormTest, StridedInputs) {
  TestTensor x = MakePaddedTensor(DType::kF32, {2, 1, 3}, {1, 2, 3, 3, 4, 5});
  TestTensor w = MakePaddedTensor(DType::kF16, {3}, {2, 2, -1});
  TestTensor b = MakePaddedTensor(DType::kF32, {3}, {1, 1, 1});
  const double s = 1 / std::sqrt(2.0 / 3);
  EXPECT_THAT(Values(EvalOp("layer_norm", {&x, &w, &b}, {{"eps", 0.0}})),
              Near({1 - 2 * s, 1, 1 - s, 1 - 2 * s, 1, 1 - s}));
}

std::string BuildError(absl::string_view op, std::vector<std::pair<DType, std::vector<int64_t>>> inputs,
                       Attrs attrs = {}) {
  GraphBuilder b("g");
  std::vector<Tensor> ts;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ts.push_back(b.Input(absl::StrCat("in", i, "_tensor"), inputs[i].first, inputs[i].second));
  }
  b.Op1(op, ts, std::move(attrs), "bad_node");
  EXPECT_FALSE(b.status().ok());
  return std::string(b.status().message());
}

TEST(NormTest, InferErrors) {
  std::string e = BuildError("rms_norm", {{DType::kF32, {2, 4}}, {DType::kF32, {5}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("expected shape [4]"));
  e = BuildError("layer_norm", {{DType::kF32, {2, 4}}, {DType::kF32, {4}}, {DType::kF32, {1, 4}}});
  EXPECT_THAT(e, HasSubstr("in2_tensor"));
  e = BuildError("layer_norm", {{DType::kF32, {2, 4}}, {DType::kI32, {4}}});
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("i32 is not supported"));
  e = BuildError("rms_norm", {{DType::kQ8_0, {2, 32}}});
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("q8_0 is not supported"));
  e = BuildError("l2_norm", {{DType::kF32, {2, 4}}, {DType::kF32, {4}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("expected 1"));
  e = BuildError("rms_norm", {{DType::kF32, {2, 4}}}, {{"eps", -1e-6}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("'eps'"));
  e = BuildError("layer_norm", {{DType::kF32, {2, 4}}}, {{"eps", std::numeric_limits<double>::infinity()}});
  EXPECT_THAT(e, HasSubstr("out of range"));
}

TEST(NormTest, DefaultsAreFilled) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF16, {3, 8});
  Tensor w = b.Input("w", DType::kF32, {8});
  b.Op1("rms_norm", {x, w}, {}, "rms");
  b.Op1("layer_norm", {x}, {}, "ln");
  Tensor y = b.Op1("l2_norm", {x}, {}, "l2");
  ASSERT_TRUE(b.status().ok()) << b.status();
  EXPECT_EQ(b.info(y).dtype, DType::kF16);
  EXPECT_EQ(b.graph().nodes[0].GetFloat("eps"), 1e-6);
  EXPECT_EQ(b.graph().nodes[1].GetFloat("eps"), 1e-5);
  EXPECT_EQ(b.graph().nodes[2].GetFloat("eps"), 1e-6);
}

}  // namespace
}  // namespace kiln
