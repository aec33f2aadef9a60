#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Pointwise;

TEST(MatmulTest, TwoByThreeTimesThreeByTwo) {
  TestTensor a = MakeTensor(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  TestTensor b = MakeTensor(DType::kF32, {3, 2}, {7, 8, 9, 10, 11, 12});
  TestTensor y = EvalOp("matmul", {&a, &b});
  EXPECT_EQ(y.view.dtype, DType::kF32);
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 2}));
  EXPECT_THAT(Values(y), ElementsAre(58, 64, 139, 154));
}

TEST(MatmulTest, BatchDimsBroadcast) {
  // a [2,1,2,2]: identity and 2*identity; b [3,2,2]: three matrices.
  // out[i,j] = (i+1) * b[j], shape [2,3,2,2].
  TestTensor a = MakeTensor(DType::kF32, {2, 1, 2, 2}, {1, 0, 0, 1, 2, 0, 0, 2});
  const std::vector<double> bv = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  TestTensor b = MakeTensor(DType::kF32, {3, 2, 2}, bv);
  TestTensor y = EvalOp("matmul", {&a, &b});
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 3, 2, 2}));
  std::vector<double> want = bv;
  for (double v : bv) want.push_back(2 * v);
  EXPECT_THAT(Values(y), ElementsAreArray(want));
}

TEST(MatmulTest, RanksMayDiffer) {
  // a [2,2,3] x b [3,1]: b is shared by both batches.
  TestTensor a = MakeTensor(DType::kF32, {2, 2, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1});
  TestTensor b = MakeTensor(DType::kF32, {3, 1}, {5, 6, 7});
  TestTensor y = EvalOp("matmul", {&a, &b});
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_THAT(Values(y), ElementsAre(5, 6, 7, 18));
  // And the other way round: a [1,3] x b [2,3,1].
  TestTensor a2 = MakeTensor(DType::kF32, {1, 3}, {1, 1, 1});
  TestTensor b2 = MakeTensor(DType::kF32, {2, 3, 1}, {1, 2, 3, 4, 5, 6});
  TestTensor y2 = EvalOp("matmul", {&a2, &b2});
  EXPECT_EQ(Dims(y2.view), (std::vector<int64_t>{2, 1, 1}));
  EXPECT_THAT(Values(y2), ElementsAre(6, 15));
}

TEST(MatmulTest, HalfInputsGiveF32) {
  for (DType t : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(t));
    TestTensor a = MakeTensor(t, {1, 3}, {0.1, 0.2, 0.3});
    TestTensor b = MakeTensor(DType::kF32, {3, 1}, {1, 1, 1});
    TestTensor y = EvalOp("matmul", {&a, &b});  // mixed dtypes are allowed
    EXPECT_EQ(y.view.dtype, DType::kF32);
    const std::vector<double> av = Values(a);
    EXPECT_EQ(Values(y)[0], static_cast<float>(av[0] + av[1] + av[2]));
    EXPECT_NE(Values(y)[0], static_cast<float>(0.6));  // the inputs were rounded to t
  }
  TestTensor a = MakeTensor(DType::kF16, {2, 2}, {1, 2, 3, 4});
  TestTensor b = MakeTensor(DType::kF16, {2, 2}, {1, 0, 0, 1});
  EXPECT_THAT(Values(EvalOp("matmul", {&a, &b})), ElementsAre(1, 2, 3, 4));
}

TEST(MatmulTest, StridedInputs) {
  TestTensor a = MakePaddedTensor(DType::kF32, {2, 2, 3}, {1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0});
  TestTensor b = MakePaddedTensor(DType::kBF16, {3, 2}, {7, 8, 9, 10, 11, 12});
  TestTensor y = EvalOp("matmul", {&a, &b});
  EXPECT_THAT(Values(y), ElementsAre(58, 64, 139, 154, 7, 8, 9, 10));
}

TEST(LinearTest, WeightTransposedPlusBias) {
  TestTensor x = MakeTensor(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  TestTensor w = MakeTensor(DType::kF32, {2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});  // [N=2, K=3]
  TestTensor bias = MakeTensor(DType::kF32, {2}, {10, 20});
  TestTensor y = EvalOp("linear", {&x, &w, &bias});
  EXPECT_EQ(y.view.dtype, DType::kF32);
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 2}));
  EXPECT_THAT(Values(y), ElementsAre(8, 23, 8, 27.5));
  EXPECT_THAT(Values(EvalOp("linear", {&x, &w})), ElementsAre(-2, 3, -2, 7.5));
  EXPECT_THAT(Values(EvalOp("linear", {&x, &w, nullptr})), ElementsAre(-2, 3, -2, 7.5));
}

TEST(LinearTest, KeepsLeadingDims) {
  TestTensor x = MakeTensor(DType::kF32, {2, 1, 1, 2}, {1, 2, 3, 4});
  TestTensor w = MakeTensor(DType::kF32, {3, 2}, {1, 0, 0, 1, 1, 1});
  TestTensor y = EvalOp("linear", {&x, &w});
  EXPECT_EQ(Dims(y.view), (std::vector<int64_t>{2, 1, 1, 3}));
  EXPECT_THAT(Values(y), ElementsAre(1, 2, 3, 3, 4, 7));
  TestTensor x1 = MakeTensor(DType::kF32, {2}, {1, 2});  // rank 1
  TestTensor y1 = EvalOp("linear", {&x1, &w});
  EXPECT_EQ(Dims(y1.view), (std::vector<int64_t>{3}));
  EXPECT_THAT(Values(y1), ElementsAre(1, 2, 3));
}

TEST(LinearTest, HalfAndQuantizedWeights) {
  // Integer weights in [-127, 127] with a block max of 127 quantize exactly
  // (scale 1), so the q8_0 result is exact too.
  std::vector<double> wv(2 * 32);
  for (int i = 0; i < 32; ++i) {
    wv[i] = i == 0 ? 127 : i - 16;  // row 0
    wv[32 + i] = i == 5 ? -127 : 2; // row 1
  }
  TestTensor x = MakeTensor(DType::kF32, {1, 32}, std::vector<double>(32, 1.0));
  double row0 = 127;
  for (int i = 1; i < 32; ++i) row0 += i - 16;
  const double row1 = -127 + 2 * 31;
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    SCOPED_TRACE(DTypeName(t));
    TestTensor w = MakeTensor(t, {2, 32}, wv);
    EXPECT_THAT(Values(w), ElementsAreArray(wv));
    TestTensor y = EvalOp("linear", {&x, &w});
    EXPECT_EQ(y.view.dtype, DType::kF32);
    EXPECT_THAT(Values(y), ElementsAre(row0, row1));
  }
  // Inexact weights: the result is x . dequantized(W).
  std::vector<double> frac(32), xv(32);
  for (int i = 0; i < 32; ++i) {
    frac[i] = 0.37 * (i - 11);
    xv[i] = 0.5 + 0.01 * i;
  }
  TestTensor wq = MakeTensor(DType::kQ8_0, {1, 32}, frac);
  TestTensor xh = MakeTensor(DType::kBF16, {32}, xv);
  const std::vector<double> wd = Values(wq), xd = Values(xh);
  double want = 0;
  for (int i = 0; i < 32; ++i) want += wd[i] * xd[i];
  EXPECT_THAT(Values(EvalOp("linear", {&xh, &wq})), Pointwise(DoubleNear(1e-5), {want}));
}

TEST(LinearTest, StridedInputs) {
  TestTensor x = MakePaddedTensor(DType::kF16, {2, 3}, {1, 2, 3, 4, 5, 6});
  TestTensor w = MakePaddedTensor(DType::kF32, {2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});
  TestTensor bias = MakePaddedTensor(DType::kF32, {2}, {10, 20});
  EXPECT_THAT(Values(EvalOp("linear", {&x, &w, &bias})), ElementsAre(8, 23, 8, 27.5));
  std::vector<double> wv(64, 0.0);
  wv[3] = 127;
  wv[32 + 31] = -127;
  TestTensor wq = MakePaddedTensor(DType::kQ8_0, {2, 32}, wv);
  std::vector<double> xv(32);
  for (int i = 0; i < 32; ++i) xv[i] = i;
  TestTensor xs = MakePaddedTensor(DType::kF32, {1, 32}, xv);
  EXPECT_THAT(Values(EvalOp("linear", {&xs, &wq})), ElementsAre(3 * 127, -31 * 127));
}

struct In {
  DType dtype;
  std::vector<int64_t> dims;
};

std::string BuildError(absl::string_view op, std::vector<In> inputs) {
  GraphBuilder b("g");
  std::vector<Tensor> ts;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ts.push_back(b.Input(absl::StrCat("in", i, "_tensor"), inputs[i].dtype, inputs[i].dims));
  }
  b.Op1(op, ts, {}, "bad_node");
  EXPECT_FALSE(b.status().ok());
  return std::string(b.status().message());
}

TEST(MatmulTest, InferErrors) {
  std::string e = BuildError("matmul", {{DType::kF32, {2, 3}}, {DType::kF32, {4, 2}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("K = 4"));
  EXPECT_THAT(e, HasSubstr("K = 3"));
  e = BuildError("matmul", {{DType::kF32, {2, 2, 3}}, {DType::kF32, {3, 3, 2}}});
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("batch dims do not broadcast"));
  e = BuildError("matmul", {{DType::kF32, {3}}, {DType::kF32, {3, 2}}});
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("rank 1"));
  e = BuildError("matmul", {{DType::kF32, {2, 3}}, {DType::kI32, {3, 2}}});
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("i32 is not supported"));
  e = BuildError("matmul", {{DType::kF32, {2, 32}}, {DType::kQ8_0, {32, 32}}});
  EXPECT_THAT(e, HasSubstr("q8_0 is not supported"));
}

TEST(LinearTest, InferErrors) {
  std::string e = BuildError("linear", {{DType::kF32, {2, 3}}, {DType::kF32, {4, 5}}});
  EXPECT_THAT(e, HasSubstr("bad_node"));
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  EXPECT_THAT(e, HasSubstr("K = 5"));
  e = BuildError("linear", {{DType::kF32, {2, 3}}, {DType::kF32, {1, 4, 3}}});
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("rank 2"));
  e = BuildError("linear", {{DType::kF32, {2, 3}}, {DType::kF32, {4, 3}}, {DType::kF32, {3}}});
  EXPECT_THAT(e, HasSubstr("in2_tensor"));
  EXPECT_THAT(e, HasSubstr("[4]"));
  e = BuildError("linear", {{DType::kF32, {2, 3}}, {DType::kF32, {4, 3}}, {DType::kF16, {4}}});
  EXPECT_THAT(e, HasSubstr("in2_tensor"));
  EXPECT_THAT(e, HasSubstr("f32"));
  e = BuildError("linear", {{DType::kI32, {2, 3}}, {DType::kF32, {4, 3}}});
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  e = BuildError("linear", {{DType::kQ8_0, {2, 32}}, {DType::kF32, {4, 32}}});
  EXPECT_THAT(e, HasSubstr("in0_tensor"));
  e = BuildError("linear", {{DType::kF32, {2, 3}}, {DType::kI32, {4, 3}}});
  EXPECT_THAT(e, HasSubstr("in1_tensor"));
  EXPECT_THAT(e, HasSubstr("q8_0"));
}

TEST(MatmulTest, InferOutputs) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kBF16, {5, 1, 3, 8});
  Tensor w = b.Input("w", DType::kF16, {4, 8, 2});
  Tensor y = b.Op1("matmul", {x, w});
  Tensor wq = b.Input("wq", DType::kQ8_0, {6, 64});
  Tensor xq = b.Input("xq", DType::kF16, {2, 7, 64});
  Tensor z = b.Op1("linear", {xq, wq});
  ASSERT_TRUE(b.status().ok()) << b.status();
  EXPECT_EQ(b.info(y).dims, (std::vector<int64_t>{5, 4, 3, 2}));
  EXPECT_EQ(b.info(y).dtype, DType::kF32);
  EXPECT_EQ(b.info(z).dims, (std::vector<int64_t>{2, 7, 6}));
  EXPECT_EQ(b.info(z).dtype, DType::kF32);
}

}  // namespace
}  // namespace kiln
