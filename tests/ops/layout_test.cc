#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/layout.h"
#include "tests/ops/op_test_util.h"

namespace kiln {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::vector<double> Iota(int n, double start = 0) {
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = start + i;
  return v;
}

// Runs a single-output op and returns its output (dims and values checked by
// the caller); fails the test on an error.
TestTensor RunOp(absl::string_view op, std::vector<const TestTensor*> in, Attrs attrs = {}) {
  auto out = RunReference(op, std::move(in), std::move(attrs));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return ZeroTensor(DType::kF32, {1});
  return out->at(0);
}

// The error message of a run that must fail.
std::string Error(absl::string_view op, std::vector<const TestTensor*> in, Attrs attrs = {}) {
  auto out = RunReference(op, std::move(in), std::move(attrs));
  EXPECT_FALSE(out.ok()) << op << " unexpectedly succeeded";
  return out.ok() ? std::string() : std::string(out.status().message());
}

// ---- gather ----

TEST(Gather, PicksRowsForIdsOfAnyRank) {
  const TestTensor table = MakeTensor(DType::kF32, {3, 2}, {10, 11, 20, 21, 30, 31});
  const TestTensor ids = MakeTensor(DType::kI32, {2, 2}, {2, 0, 1, 2});
  const TestTensor out = RunOp("gather", {&table, &ids});
  EXPECT_EQ(out.view.dtype, DType::kF32);
  EXPECT_THAT(Dims(out.view), ElementsAre(2, 2, 2));
  EXPECT_THAT(Values(out), ElementsAre(30, 31, 10, 11, 20, 21, 30, 31));

  const TestTensor ids3 = MakeTensor(DType::kI32, {1, 2, 1}, {1, 1});
  const TestTensor out3 = RunOp("gather", {&table, &ids3});
  EXPECT_THAT(Dims(out3.view), ElementsAre(1, 2, 1, 2));
  EXPECT_THAT(Values(out3), ElementsAre(20, 21, 20, 21));
}

TEST(Gather, KeepsTheTableDtype) {
  for (DType t : {DType::kF16, DType::kBF16, DType::kI32}) {
    const TestTensor table = MakeTensor(t, {2, 3}, {1, 2, 3, -4, -5, 6});
    const TestTensor ids = MakeTensor(DType::kI32, {1}, {1});
    const TestTensor out = RunOp("gather", {&table, &ids});
    EXPECT_EQ(out.view.dtype, t);
    EXPECT_THAT(Values(out), ElementsAre(-4, -5, 6));
  }
}

TEST(Gather, DequantizesQ8Rows) {
  // Each row's largest magnitude is 127, so the block scale is exactly 1 and
  // the integers survive quantization.
  std::vector<double> values(64);
  for (int i = 0; i < 32; ++i) values[i] = i - 16;
  for (int i = 0; i < 32; ++i) values[32 + i] = 2 * i - 30;
  values[0] = 127;
  values[63] = -127;
  const TestTensor table = MakeTensor(DType::kQ8_0, {2, 32}, values);
  const TestTensor ids = MakeTensor(DType::kI32, {3}, {1, 0, 1});
  const TestTensor out = RunOp("gather", {&table, &ids});
  EXPECT_EQ(out.view.dtype, DType::kF32);
  EXPECT_THAT(Dims(out.view), ElementsAre(3, 32));
  std::vector<double> want(values.begin() + 32, values.end());
  want.insert(want.end(), values.begin(), values.begin() + 32);
  want.insert(want.end(), values.begin() + 32, values.end());
  EXPECT_THAT(Values(out), ElementsAreArray(want));
}

TEST(Gather, ReadsStridedViews) {
  const TestTensor table = MakePaddedTensor(DType::kF32, {3, 2}, {10, 11, 20, 21, 30, 31});
  const TestTensor ids = MakePaddedTensor(DType::kI32, {2, 1}, {2, 1});
  EXPECT_THAT(Values(RunOp("gather", {&table, &ids})), ElementsAre(30, 31, 20, 21));
  const TestTensor q = MakePaddedTensor(DType::kQ8_0, {2, 32}, Iota(64, -63));
  const TestTensor one = MakeTensor(DType::kI32, {1}, {1});
  const TestTensor want = MakeTensor(DType::kQ8_0, {2, 32}, Iota(64, -63));
  EXPECT_THAT(Values(RunOp("gather", {&q, &one})), ElementsAreArray(Values(RunOp("gather", {&want, &one}))));
}

TEST(Gather, OutOfRangeIdIsARuntimeErrorNamingTheNode) {
  const TestTensor table = MakeTensor(DType::kF32, {3, 2}, Iota(6));
  for (double bad : {3.0, -1.0}) {
    const TestTensor ids = MakeTensor(DType::kI32, {2}, {0, bad});
    auto out = RunReference("gather", {&table, &ids});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_THAT(out.status().message(), HasSubstr("node 'test_node' (gather)"));
    EXPECT_THAT(out.status().message(), HasSubstr("'ids'"));
    EXPECT_THAT(out.status().message(), HasSubstr("[0, 3)"));
  }
}

TEST(Gather, InferenceErrors) {
  const TestTensor table = MakeTensor(DType::kF32, {3, 2}, Iota(6));
  const TestTensor ids4 = MakeTensor(DType::kI32, {1, 1, 1, 1}, {0});
  EXPECT_THAT(Error("gather", {&table, &ids4}),
              HasSubstr("node 'test_node' (gather): input 'ids' (tensor 't1' i32 [1,1,1,1])"));
  const TestTensor idsf = MakeTensor(DType::kF32, {1}, {0});
  EXPECT_THAT(Error("gather", {&table, &idsf}), HasSubstr("must be i32"));
  const TestTensor table3 = MakeTensor(DType::kF32, {1, 3, 2}, Iota(6));
  const TestTensor ids = MakeTensor(DType::kI32, {1}, {0});
  EXPECT_THAT(Error("gather", {&table3, &ids}), HasSubstr("input 'table' (tensor 't0' f32 [1,3,2])"));
}

// ---- concat ----

TEST(Concat, JoinsAlongAnAxis) {
  const TestTensor a = MakeTensor(DType::kF32, {2, 2}, {1, 2, 3, 4});
  const TestTensor b = MakeTensor(DType::kF32, {1, 2}, {5, 6});
  const TestTensor out0 = RunOp("concat", {&a, &b}, {{"axis", int64_t{0}}});
  EXPECT_THAT(Dims(out0.view), ElementsAre(3, 2));
  EXPECT_THAT(Values(out0), ElementsAre(1, 2, 3, 4, 5, 6));

  const TestTensor c = MakeTensor(DType::kF32, {2, 1}, {7, 8});
  const TestTensor out1 = RunOp("concat", {&a, &c, &a}, {{"axis", int64_t{-1}}});
  EXPECT_THAT(Dims(out1.view), ElementsAre(2, 5));
  EXPECT_THAT(Values(out1), ElementsAre(1, 2, 7, 1, 2, 3, 4, 8, 3, 4));

  EXPECT_THAT(Values(RunOp("concat", {&b})), ElementsAre(5, 6));  // axis defaults to 0
}

TEST(Concat, ReadsStridedViewsAndKeepsDtype) {
  const TestTensor a = MakePaddedTensor(DType::kI32, {2, 1, 2}, {1, 2, 3, 4});
  const TestTensor b = MakePaddedTensor(DType::kI32, {2, 2, 2}, {5, 6, 7, 8, 9, 10, 11, 12});
  const TestTensor out = RunOp("concat", {&a, &b}, {{"axis", int64_t{1}}});
  EXPECT_EQ(out.view.dtype, DType::kI32);
  EXPECT_THAT(Dims(out.view), ElementsAre(2, 3, 2));
  EXPECT_THAT(Values(out), ElementsAre(1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12));
}

TEST(Concat, InferenceErrors) {
  const TestTensor a = MakeTensor(DType::kF32, {2, 2}, Iota(4));
  const TestTensor b = MakeTensor(DType::kF32, {2, 3}, Iota(6));
  EXPECT_THAT(Error("concat", {&a, &b}, {{"axis", int64_t{0}}}),
              HasSubstr("node 'test_node' (concat): input 'inputs' (tensor 't1' f32 [2,3]): input #1 must match input #0 't0' [2,2] in every dim but axis 0"));
  const TestTensor h = MakeTensor(DType::kF16, {2, 2}, Iota(4));
  EXPECT_THAT(Error("concat", {&a, &h}), HasSubstr("input #1 must have the dtype of input #0 't0' (f32)"));
  const TestTensor r3 = MakeTensor(DType::kF32, {1, 2, 2}, Iota(4));
  EXPECT_THAT(Error("concat", {&a, &r3}), HasSubstr("tensor 't1' f32 [1,2,2]"));
  EXPECT_THAT(Error("concat", {&a, &a}, {{"axis", int64_t{2}}}), HasSubstr("attribute 'axis' = 2"));
  const TestTensor q = MakeTensor(DType::kQ8_0, {1, 32}, Iota(32));
  EXPECT_THAT(Error("concat", {&q, &q}), HasSubstr("only gather"));
}

// ---- slice ----

TEST(Slice, TakesARangeWithStep) {
  const TestTensor x = MakeTensor(DType::kF32, {2, 5}, Iota(10));
  auto slice = [&](const TestTensor& in, Attrs attrs) { return RunOp("slice", {&in}, std::move(attrs)); };
  const TestTensor a = slice(x, {{"axis", int64_t{1}}, {"start", int64_t{1}}, {"end", int64_t{4}}});
  EXPECT_THAT(Dims(a.view), ElementsAre(2, 3));
  EXPECT_THAT(Values(a), ElementsAre(1, 2, 3, 6, 7, 8));
  const TestTensor b = slice(x, {{"axis", int64_t{-1}}, {"step", int64_t{2}}});
  EXPECT_THAT(Values(b), ElementsAre(0, 2, 4, 5, 7, 9));
  // Negative start/end count from the end.
  const TestTensor c = slice(x, {{"axis", int64_t{-1}}, {"start", int64_t{-3}}, {"end", int64_t{-1}}});
  EXPECT_THAT(Values(c), ElementsAre(2, 3, 7, 8));
  const TestTensor d = slice(x, {{"axis", int64_t{0}}, {"start", int64_t{1}}});
  EXPECT_THAT(Dims(d.view), ElementsAre(1, 5));
  EXPECT_THAT(Values(d), ElementsAre(5, 6, 7, 8, 9));
  // Python clamping: beyond the ends clamps; an empty range has length 0.
  const TestTensor e = slice(x, {{"axis", int64_t{1}}, {"start", int64_t{-100}}, {"end", int64_t{100}},
                                 {"step", int64_t{3}}});
  EXPECT_THAT(Values(e), ElementsAre(0, 3, 5, 8));
  const TestTensor f = slice(x, {{"axis", int64_t{1}}, {"start", int64_t{4}}, {"end", int64_t{2}}});
  EXPECT_THAT(Dims(f.view), ElementsAre(2, 0));
}

TEST(Slice, ResolveSliceMatchesPython) {
  EXPECT_EQ(ResolveSlice(5, 1, 4, 2).start, 1);
  EXPECT_EQ(ResolveSlice(5, 1, 4, 2).length, 2);  // [1, 3]
  EXPECT_EQ(ResolveSlice(5, 1, 5, 2).length, 2);  // [1, 3]
  EXPECT_EQ(ResolveSlice(5, 0, 5, 2).length, 3);  // [0, 2, 4]
  EXPECT_EQ(ResolveSlice(5, -2, std::numeric_limits<int64_t>::max(), 1).start, 3);
  EXPECT_EQ(ResolveSlice(5, 0, 5, std::numeric_limits<int64_t>::max()).length, 1);
  EXPECT_EQ(ResolveSlice(0, 0, 5, 1).length, 0);
}

TEST(Slice, ReadsStridedViews) {
  const TestTensor x = MakePaddedTensor(DType::kBF16, {3, 2, 2}, Iota(12));
  const TestTensor out = RunOp("slice", {&x}, {{"axis", int64_t{0}}, {"start", int64_t{1}}});
  EXPECT_EQ(out.view.dtype, DType::kBF16);
  EXPECT_THAT(Values(out), ElementsAreArray(Iota(8, 4)));
}

TEST(Slice, InferenceErrors) {
  const TestTensor x = MakeTensor(DType::kF32, {2, 5}, Iota(10));
  EXPECT_THAT(Error("slice", {&x}, {{"axis", int64_t{-3}}}),
              HasSubstr("node 'test_node' (slice): input 'x' (tensor 't0' f32 [2,5]): attribute 'axis' = -3"));
  EXPECT_THAT(Error("slice", {&x}, {{"step", int64_t{0}}}), HasSubstr("'step'"));
}

// ---- reshape ----

TEST(Reshape, KeepsRowMajorOrderAndInfersMinusOne) {
  const TestTensor x = MakeTensor(DType::kF32, {2, 3, 2}, Iota(12));
  const TestTensor a = RunOp("reshape", {&x}, {{"shape", std::vector<int64_t>{4, -1}}});
  EXPECT_THAT(Dims(a.view), ElementsAre(4, 3));
  EXPECT_THAT(Values(a), ElementsAreArray(Iota(12)));
  const TestTensor b = RunOp("reshape", {&x}, {{"shape", std::vector<int64_t>{1, 2, 6, 1}}});
  EXPECT_THAT(Dims(b.view), ElementsAre(1, 2, 6, 1));
  EXPECT_THAT(Values(b), ElementsAreArray(Iota(12)));
}

TEST(Reshape, ReadsAStridedViewInLogicalOrder) {
  const TestTensor x = MakePaddedTensor(DType::kF16, {2, 3, 2}, Iota(12));
  const TestTensor out = RunOp("reshape", {&x}, {{"shape", std::vector<int64_t>{12}}});
  EXPECT_EQ(out.view.dtype, DType::kF16);
  EXPECT_THAT(Values(out), ElementsAreArray(Iota(12)));
}

TEST(Reshape, InferenceErrors) {
  const TestTensor x = MakeTensor(DType::kF32, {2, 3}, Iota(6));
  EXPECT_THAT(Error("reshape", {&x}, {{"shape", std::vector<int64_t>{4, 2}}}),
              HasSubstr("node 'test_node' (reshape): input 'x' (tensor 't0' f32 [2,3]): attribute 'shape' = [4,2] "
                        "has 8 elements, the input 6"));
  EXPECT_THAT(Error("reshape", {&x}, {{"shape", std::vector<int64_t>{-1, -1}}}), HasSubstr("one -1"));
  EXPECT_THAT(Error("reshape", {&x}, {{"shape", std::vector<int64_t>{4, -1}}}), HasSubstr("cannot be inferred"));
  EXPECT_THAT(Error("reshape", {&x}, {{"shape", std::vector<int64_t>{1, 1, 1, 2, 3}}}), HasSubstr("1 to 4"));
  EXPECT_THAT(Error("reshape", {&x}), HasSubstr("missing required attribute 'shape'"));
}

// ---- permute, transpose, contiguous ----

TEST(Permute, MovesAxes) {
  // x[i][j][k] = 100 i + 10 j + k, dims [2, 3, 4]; out = x.permute(2, 0, 1).
  std::vector<double> xs;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) xs.push_back(100 * i + 10 * j + k);
  std::vector<double> want;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) want.push_back(100 * i + 10 * j + k);
  for (const TestTensor& x : {MakeTensor(DType::kF32, {2, 3, 4}, xs), MakePaddedTensor(DType::kF32, {2, 3, 4}, xs)}) {
    const TestTensor out = RunOp("permute", {&x}, {{"perm", std::vector<int64_t>{2, 0, 1}}});
    EXPECT_THAT(Dims(out.view), ElementsAre(4, 2, 3));
    EXPECT_THAT(Values(out), ElementsAreArray(want));
    const TestTensor neg = RunOp("permute", {&x}, {{"perm", std::vector<int64_t>{-1, 0, -2}}});
    EXPECT_THAT(Values(neg), ElementsAreArray(want));
  }
}

TEST(Permute, InferenceErrors) {
  const TestTensor x = MakeTensor(DType::kF32, {2, 3}, Iota(6));
  EXPECT_THAT(Error("permute", {&x}, {{"perm", std::vector<int64_t>{0, 0}}}),
              HasSubstr("node 'test_node' (permute): input 'x' (tensor 't0' f32 [2,3]): attribute 'perm' = [0,0]"));
  EXPECT_THAT(Error("permute", {&x}, {{"perm", std::vector<int64_t>{0}}}), HasSubstr("permutation"));
  EXPECT_THAT(Error("permute", {&x}, {{"perm", std::vector<int64_t>{0, 2}}}), HasSubstr("permutation"));
}

TEST(Transpose, SwapsTheLastTwoAxesByDefault) {
  const TestTensor x = MakeTensor(DType::kF32, {1, 2, 3}, Iota(6));
  const TestTensor out = RunOp("transpose", {&x});
  EXPECT_THAT(Dims(out.view), ElementsAre(1, 3, 2));
  EXPECT_THAT(Values(out), ElementsAre(0, 3, 1, 4, 2, 5));
  const TestTensor y = MakePaddedTensor(DType::kI32, {2, 1, 3}, Iota(6));
  const TestTensor out2 = RunOp("transpose", {&y}, {{"dim0", int64_t{0}}, {"dim1", int64_t{-1}}});
  EXPECT_THAT(Dims(out2.view), ElementsAre(3, 1, 2));
  EXPECT_THAT(Values(out2), ElementsAre(0, 3, 1, 4, 2, 5));
}

TEST(Transpose, InferenceErrors) {
  const TestTensor x = MakeTensor(DType::kF32, {4}, Iota(4));
  EXPECT_THAT(Error("transpose", {&x}),
              HasSubstr("node 'test_node' (transpose): input 'x' (tensor 't0' f32 [4]): attribute 'dim0' = -2"));
}

TEST(Contiguous, CopiesAViewsValues) {
  const TestTensor x = MakePaddedTensor(DType::kF32, {2, 2, 3}, Iota(12, 1));
  const TestTensor out = RunOp("contiguous", {&x});
  EXPECT_THAT(Dims(out.view), ElementsAre(2, 2, 3));
  EXPECT_THAT(Values(out), ElementsAreArray(Iota(12, 1)));
  EXPECT_EQ(out.view.strides[0], 2 * 3 * 4);
}

TEST(Contiguous, RejectsQ8) {
  const TestTensor q = MakeTensor(DType::kQ8_0, {1, 32}, Iota(32));
  EXPECT_THAT(Error("contiguous", {&q}),
              HasSubstr("node 'test_node' (contiguous): input 'x' (tensor 't0' q8_0 [1,32])"));
}

TEST(Layout, PermuteAndTransposeAxesForBackends) {
  Node p{.name = "p", .op = "permute", .attrs = {{"perm", std::vector<int64_t>{2, -3, 1}}}};
  const auto pa = OutputToInputAxes(p, 3);
  EXPECT_THAT(std::vector<int>(pa.begin(), pa.begin() + 3), ElementsAre(2, 0, 1));
  Node t{.name = "t", .op = "transpose", .attrs = {{"dim0", int64_t{-2}}, {"dim1", int64_t{-1}}}};
  const auto ta = OutputToInputAxes(t, 4);
  EXPECT_THAT(std::vector<int>(ta.begin(), ta.end()), ElementsAre(0, 1, 3, 2));
}

}  // namespace
}  // namespace kiln
