#include "ops/elementwise.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Pointwise;
using ::testing::DoubleNear;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(ElementwiseTest, BinarySameShape) {
  TestTensor a = MakeTensor(DType::kF32, {2, 2}, {1, 2, 3, 4});
  TestTensor b = MakeTensor(DType::kF32, {2, 2}, {10, 20, 30, 40});
  EXPECT_THAT(Values(EvalOp("add", {&a, &b})), ElementsAre(11, 22, 33, 44));
  EXPECT_THAT(Values(EvalOp("sub", {&a, &b})), ElementsAre(-9, -18, -27, -36));
  EXPECT_THAT(Values(EvalOp("mul", {&a, &b})), ElementsAre(10, 40, 90, 160));
  EXPECT_THAT(Values(EvalOp("div", {&b, &a})), ElementsAre(10, 10, 10, 10));
}

TEST(ElementwiseTest, DivisionByZeroFollowsIeee) {
  TestTensor a = MakeTensor(DType::kF32, {3}, {1, -1, 0});
  TestTensor z = MakeTensor(DType::kF32, {1}, {0});
  std::vector<double> v = Values(EvalOp("div", {&a, &z}));
  EXPECT_EQ(v[0], kInf);
  EXPECT_EQ(v[1], -kInf);
  EXPECT_TRUE(std::isnan(v[2]));
}

TEST(ElementwiseTest, BroadcastRowAgainstMatrix) {
  TestTensor a = MakeTensor(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  TestTensor b = MakeTensor(DType::kF32, {3}, {10, 20, 30});
  TestTensor y = EvalOp("add", {&a, &b});
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 3}));
  EXPECT_THAT(Values(y), ElementsAre(11, 22, 33, 14, 25, 36));
  // Operand order matters for sub; the row is on the left here.
  EXPECT_THAT(Values(EvalOp("sub", {&b, &a})), ElementsAre(9, 18, 27, 6, 15, 24));
}

TEST(ElementwiseTest, BroadcastBothSidesAndRanks) {
  // [2,1,3] * [4,1] -> [2,4,3]
  TestTensor a = MakeTensor(DType::kF32, {2, 1, 3}, {1, 2, 3, 4, 5, 6});
  TestTensor b = MakeTensor(DType::kF32, {4, 1}, {1, 10, 100, 1000});
  TestTensor y = EvalOp("mul", {&a, &b});
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 4, 3}));
  EXPECT_THAT(Values(y), ElementsAreArray({1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 100.0, 200.0, 300.0,
                                           1000.0, 2000.0, 3000.0, 4.0, 5.0, 6.0, 40.0, 50.0, 60.0,
                                           400.0, 500.0, 600.0, 4000.0, 5000.0, 6000.0}));
  // A column [2,1] against a row [1,3], rank 4 against rank 1.
  TestTensor col = MakeTensor(DType::kF32, {2, 1}, {1, 2});
  TestTensor row = MakeTensor(DType::kF32, {1, 3}, {10, 20, 30});
  EXPECT_THAT(Values(EvalOp("sub", {&col, &row})), ElementsAre(-9, -19, -29, -8, -18, -28));
  TestTensor r4 = MakeTensor(DType::kF32, {1, 2, 1, 2}, {1, 2, 3, 4});
  TestTensor r1 = MakeTensor(DType::kF32, {2}, {100, 200});
  TestTensor y4 = EvalOp("add", {&r4, &r1});
  EXPECT_EQ(Dims(y4.view), (std::vector<int64_t>{1, 2, 1, 2}));
  EXPECT_THAT(Values(y4), ElementsAre(101, 202, 103, 204));
}

TEST(ElementwiseTest, BroadcastWithEmptyDim) {
  TestTensor a = MakeTensor(DType::kF32, {0, 3}, {});
  TestTensor b = MakeTensor(DType::kF32, {1, 3}, {1, 2, 3});
  TestTensor y = EvalOp("add", {&a, &b});
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{0, 3}));
}

TEST(ElementwiseTest, HalfInputsRoundToTheirDtype) {
  for (DType t : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(t));
    TestTensor a = MakeTensor(t, {3}, {1.0, 0.1, 300.0});
    TestTensor b = MakeTensor(t, {1}, {0.001});
    TestTensor y = EvalOp("add", {&a, &b});
    EXPECT_EQ(y.view.dtype, t);
    std::vector<double> v = Values(y);
    const std::vector<double> in = Values(a);
    const double bb = Values(b)[0];
    for (int i = 0; i < 3; ++i) EXPECT_EQ(v[i], RoundTo(t, in[i] + bb)) << i;
  }
  // Concretely: bf16 has 8 significant bits, so 1 + 0.001 rounds back to 1.
  TestTensor a = MakeTensor(DType::kBF16, {1}, {1.0});
  TestTensor b = MakeTensor(DType::kBF16, {1}, {0.001});
  EXPECT_THAT(Values(EvalOp("add", {&a, &b})), ElementsAre(1.0));
  // f16 overflows to inf above 65504.
  TestTensor h = MakeTensor(DType::kF16, {1}, {60000});
  EXPECT_THAT(Values(EvalOp("add", {&h, &h})), ElementsAre(kInf));
}

TEST(ElementwiseTest, StridedInputs) {
  TestTensor a = MakePaddedTensor(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  TestTensor b = MakePaddedTensor(DType::kF16, {2, 1}, {10, 20});
  TestTensor b32 = MakePaddedTensor(DType::kF32, {2, 1}, {10, 20});
  ASSERT_NE(a.view.strides[0], 3 * 4);  // really strided
  EXPECT_THAT(Values(EvalOp("mul", {&a, &b32})), ElementsAre(10, 20, 30, 80, 100, 120));
  EXPECT_THAT(Values(EvalOp("neg", {&b})), ElementsAre(-10, -20));
  EXPECT_THAT(Values(EvalOp("scale", {&a}, {{"a", 2.0}, {"b", 1.0}})), ElementsAre(3, 5, 7, 9, 11, 13));
  TestTensor c = EvalOp("cast", {&b}, {{"dtype", std::string("f32")}});
  EXPECT_THAT(Values(c), ElementsAre(10, 20));
}

TEST(ElementwiseTest, IntegerArithmeticWraps) {
  constexpr double kMin = std::numeric_limits<int32_t>::min();
  constexpr double kMax = std::numeric_limits<int32_t>::max();
  TestTensor a = MakeTensor(DType::kI32, {4}, {7, -3, kMax, kMin});
  TestTensor b = MakeTensor(DType::kI32, {4}, {2, 5, 1, 1});
  EXPECT_THAT(Values(EvalOp("add", {&a, &b})), ElementsAre(9, 2, kMin, kMin + 1));
  EXPECT_THAT(Values(EvalOp("sub", {&a, &b})), ElementsAre(5, -8, kMax - 1, kMax));
  TestTensor two = MakeTensor(DType::kI32, {1}, {2});
  EXPECT_THAT(Values(EvalOp("mul", {&a, &two})), ElementsAre(14, -6, -2, 0));
  EXPECT_THAT(Values(EvalOp("neg", {&a})), ElementsAre(-7, 3, -kMax, kMin));
  EXPECT_THAT(Values(EvalOp("abs", {&a})), ElementsAre(7, 3, kMax, kMin));
  EXPECT_EQ(EvalOp("abs", {&a}).view.dtype, DType::kI32);
}

TEST(ElementwiseTest, UnaryValues) {
  TestTensor x = MakeTensor(DType::kF32, {5}, {-2, -0.5, 0, 1, 2});
  auto run = [&](absl::string_view op, Attrs attrs = {}) { return Values(EvalOp(op, {&x}, std::move(attrs))); };
  auto near = [](std::vector<double> want) { return Pointwise(DoubleNear(1e-6), want); };
  EXPECT_THAT(run("neg"), ElementsAre(2, 0.5, 0, -1, -2));
  EXPECT_THAT(run("abs"), ElementsAre(2, 0.5, 0, 1, 2));
  EXPECT_THAT(run("relu"), ElementsAre(0, 0, 0, 1, 2));
  EXPECT_THAT(run("exp"), near({0.1353352832, 0.6065306597, 1, 2.7182818285, 7.3890560989}));
  EXPECT_THAT(run("tanh"), near({-0.9640275801, -0.4621171573, 0, 0.7615941560, 0.9640275801}));
  EXPECT_THAT(run("sigmoid"), near({0.1192029220, 0.3775406688, 0.5, 0.7310585786, 0.8807970780}));
  EXPECT_THAT(run("silu"), near({-0.2384058440, -0.1887703344, 0, 0.7310585786, 1.7615941560}));
  EXPECT_THAT(run("gelu"), near({-0.0454023059, -0.1542859902, 0, 0.8411919906, 1.9545976941}));
  EXPECT_THAT(run("gelu", {{"approximate", std::string("tanh")}}),
              near({-0.0454023059, -0.1542859902, 0, 0.8411919906, 1.9545976941}));
  EXPECT_THAT(run("gelu", {{"approximate", std::string("none")}}),
              near({-0.0455002639, -0.1542687694, 0, 0.8413447461, 1.9544997361}));
  EXPECT_THAT(run("softplus"), near({0.1269280110, 0.4740769842, 0.6931471806, 1.3132616875, 2.1269280110}));
  EXPECT_THAT(run("scale"), ElementsAre(-2, -0.5, 0, 1, 2));  // defaults a=1, b=0
  EXPECT_THAT(run("scale", {{"a", -3.0}, {"b", 0.5}}), ElementsAre(6.5, 2, 0.5, -2.5, -5.5));
  EXPECT_THAT(run("scale", {{"a", int64_t{2}}}), ElementsAre(-4, -1, 0, 2, 4));  // int attr coerces

  TestTensor p = MakeTensor(DType::kF32, {4}, {0, 0.25, 1, 4});
  EXPECT_THAT(Values(EvalOp("sqrt", {&p})), ElementsAre(0, 0.5, 1, 2));
  EXPECT_THAT(Values(EvalOp("rsqrt", {&p})), ElementsAre(kInf, 2, 1, 0.5));
  EXPECT_THAT(Values(EvalOp("log", {&p})), near({-kInf, -1.3862943611, 0, 1.3862943611}));
}

TEST(ElementwiseTest, UnaryEdgeValues) {
  TestTensor x = MakeTensor(DType::kF32, {4}, {-1000, 1000, -1, kNaN});
  std::vector<double> sp = Values(EvalOp("softplus", {&x}));
  EXPECT_EQ(sp[0], 0);  // exp(-1000) underflows; no overflow anywhere
  EXPECT_EQ(sp[1], 1000);
  std::vector<double> sg = Values(EvalOp("sigmoid", {&x}));
  EXPECT_EQ(sg[0], 0);
  EXPECT_EQ(sg[1], 1);
  std::vector<double> l = Values(EvalOp("log", {&x}));
  EXPECT_TRUE(std::isnan(l[2]));
  EXPECT_TRUE(std::isnan(Values(EvalOp("relu", {&x}))[3]));  // NaN propagates
  EXPECT_EQ(Values(EvalOp("silu", {&x}))[0], 0);
}

TEST(ElementwiseTest, UnaryHalfInputs) {
  for (DType t : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(t));
    TestTensor x = MakeTensor(t, {3}, {-1.3, 0.7, 2.9});
    const std::vector<double> in = Values(x);
    TestTensor y = EvalOp("silu", {&x});
    EXPECT_EQ(y.view.dtype, t);
    std::vector<double> v = Values(y);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(v[i], RoundTo(t, in[i] / (1 + std::exp(-in[i])))) << i;
  }
}

TEST(ElementwiseTest, ScalarFunctionsMatchTheReference) {
  // The helpers a backend reuses compute the same values as the reference.
  Node n;
  n.op = "gelu";
  n.attrs["approximate"] = std::string("none");
  EXPECT_NEAR(ApplyUnary("gelu", 1.0, n), 0.8413447460685429, 1e-15);
  EXPECT_EQ(UnaryFnOf(n)->op, UnaryOp::kGeluErf);
  Node s;
  s.op = "scale";
  s.attrs["a"] = 2.0;
  s.attrs["b"] = -1.0;
  EXPECT_EQ(ApplyUnary(*UnaryFnOf(s), 3.0), 5.0);
  EXPECT_TRUE(std::isnan(ApplyUnary("matmul", 1.0, s)));
  EXPECT_FALSE(UnaryFnOf(Node{.op = "add"}).has_value());
  EXPECT_EQ(BinaryOpOf("div"), BinaryOp::kDiv);
  EXPECT_FALSE(BinaryOpOf("neg").has_value());
  EXPECT_EQ(ApplyBinaryI32(BinaryOp::kMul, 65536, 65536), 0);
}

TEST(ElementwiseTest, CastToI32TruncatesAndSaturates) {
  TestTensor x = MakeTensor(DType::kF32, {7}, {2.7, -2.7, 0.5, -0.5, kNaN, 1e10, -1e10});
  TestTensor y = EvalOp("cast", {&x}, {{"dtype", std::string("i32")}});
  EXPECT_EQ(y.view.dtype, DType::kI32);
  EXPECT_THAT(Values(y), ElementsAre(2, -2, 0, 0, 0, 2147483647.0, -2147483648.0));
  EXPECT_EQ(CastValue(-kInf, DType::kI32), -2147483648.0);
}

TEST(ElementwiseTest, CastBetweenFloatTypes) {
  TestTensor x = MakeTensor(DType::kF32, {4}, {0.1, 1e5, -3.5, 1e-8});
  TestTensor h = EvalOp("cast", {&x}, {{"dtype", std::string("f16")}});
  EXPECT_EQ(h.view.dtype, DType::kF16);
  EXPECT_THAT(Values(h), ElementsAre(RoundTo(DType::kF16, 0.1), kInf, -3.5, RoundTo(DType::kF16, 1e-8)));
  TestTensor bf = EvalOp("cast", {&h}, {{"dtype", std::string("bf16")}});
  EXPECT_EQ(bf.view.dtype, DType::kBF16);
  EXPECT_THAT(Values(bf), ElementsAre(RoundTo(DType::kBF16, RoundTo(DType::kF16, 0.1)), kInf, -3.5,
                                      RoundTo(DType::kBF16, RoundTo(DType::kF16, 1e-8))));
  TestTensor same = EvalOp("cast", {&x}, {{"dtype", std::string("f32")}});
  EXPECT_EQ(Values(same), Values(x));
  TestTensor i = MakeTensor(DType::kI32, {3}, {-7, 0, 16777217});
  EXPECT_THAT(Values(EvalOp("cast", {&i}, {{"dtype", std::string("f32")}})), ElementsAre(-7, 0, 16777216));
}

TEST(ElementwiseTest, CastDequantizesQ8) {
  std::vector<double> v(64);
  for (int i = 0; i < 64; ++i) v[i] = (i - 20) * 0.125;
  TestTensor q = MakePaddedTensor(DType::kQ8_0, {2, 32}, v);
  const std::vector<double> deq = Values(q);
  EXPECT_THAT(deq, Pointwise(DoubleNear(0.022), v));  // at most scale/2 = 5.375/127/2
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    TestTensor y = EvalOp("cast", {&q}, {{"dtype", std::string(DTypeName(t))}});
    std::vector<double> got = Values(y);
    for (int i = 0; i < 64; ++i) ASSERT_EQ(got[i], RoundTo(t, deq[i])) << DTypeName(t) << " " << i;
  }
}

// Inference errors name the node and the tensors at fault.
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

TEST(ElementwiseTest, InferOutputs) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kBF16, {3, 1, 5});
  Tensor y = b.Input("y", DType::kBF16, {4, 1});
  Tensor s = b.Op1("add", {x, y});
  ASSERT_TRUE(b.status().ok()) << b.status();
  EXPECT_EQ(b.info(s).dims, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(b.info(s).dtype, DType::kBF16);
  Tensor c = b.Op1("cast", {s}, {{"dtype", std::string("i32")}});
  ASSERT_TRUE(b.status().ok()) << b.status();
  EXPECT_EQ(b.info(c).dtype, DType::kI32);
}

TEST(ElementwiseTest, InferErrors) {
  std::string e = BuildError("add", {{DType::kF32, {2, 3}}, {DType::kF16, {2, 3}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("same dtype"));

  e = BuildError("mul", {{DType::kF32, {2, 3}}, {DType::kF32, {2, 4}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("broadcast"));

  e = BuildError("div", {{DType::kI32, {2}}, {DType::kI32, {2}}});
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("i32 is not supported"));

  e = BuildError("exp", {{DType::kI32, {2}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("f32, f16, bf16"));

  e = BuildError("sqrt", {{DType::kQ8_0, {32}}});
  EXPECT_THAT(e, HasSubstr("q8_0 is not supported"));

  e = BuildError("cast", {{DType::kQ8_0, {32}}}, {{"dtype", std::string("i32")}});
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("q8_0 casts only"));

  e = BuildError("cast", {{DType::kF32, {2}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("missing required attribute 'dtype'"));

  e = BuildError("cast", {{DType::kF32, {2}}}, {{"dtype", std::string("q8_0")}});
  EXPECT_THAT(e, HasSubstr("is not one of"));

  e = BuildError("gelu", {{DType::kF32, {2}}}, {{"approximate", std::string("erf")}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("approximate"));

  e = BuildError("scale", {{DType::kF32, {2}}}, {{"a", kInf}});
  EXPECT_THAT(e, HasSubstr("out of range"));
  e = BuildError("scale", {{DType::kF32, {2}}}, {{"b", kNaN}});
  EXPECT_THAT(e, HasSubstr("out of range"));
  e = BuildError("relu", {{DType::kF32, {2}}}, {{"alpha", 0.1}});
  EXPECT_THAT(e, HasSubstr("unknown attribute 'alpha'"));
}

}  // namespace
}  // namespace kiln
