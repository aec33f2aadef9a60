#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "graph/builder.h"
#include "ops/write_rows.h"
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

TestTensor WriteRows(const TestTensor& dst, const TestTensor& src, const TestTensor& rows) {
  auto r = RunReference("write_rows", {&dst, &src, &rows});
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return ZeroTensor(DType::kF32, {1});
  EXPECT_EQ(r->at(0).view.dtype, dst.view.dtype);
  EXPECT_EQ(Dims(r->at(0).view), Dims(dst.view));
  return r->at(0);
}

// Runs the reference with out written into dst's own buffer.
absl::Status WriteRowsInPlace(TestTensor& dst, const TestTensor& src, const TestTensor& rows) {
  const OpSchema* schema = FindOp("write_rows");
  Node node{.name = "test_node", .op = "write_rows"};
  const std::vector<TensorView> in = {dst.view, src.view, rows.view};
  const std::vector<TensorView> out = {dst.view};
  return schema->reference(node, in, out);
}

TEST(WriteRows, ReplacesTheListedRows) {
  const TestTensor dst = MakeTensor(DType::kF32, {4, 2}, Iota(8));
  const TestTensor src = MakeTensor(DType::kF32, {2, 2}, {-1, -2, -3, -4});
  const TestTensor rows = MakeTensor(DType::kI32, {2}, {3, 1});
  EXPECT_THAT(Values(WriteRows(dst, src, rows)), ElementsAre(0, 1, -3, -4, 4, 5, -1, -2));
}

TEST(WriteRows, EveryLeadingIndexGetsItsOwnSourceRows) {
  // dst [2, 3, 2], src [2, 1, 2], rows {2}.
  const TestTensor dst = MakeTensor(DType::kF32, {2, 3, 2}, Iota(12));
  const TestTensor src = MakeTensor(DType::kF32, {2, 1, 2}, {-1, -2, -3, -4});
  const TestTensor rows = MakeTensor(DType::kI32, {1}, {2});
  EXPECT_THAT(Values(WriteRows(dst, src, rows)), ElementsAre(0, 1, 2, 3, -1, -2, 6, 7, 8, 9, -3, -4));
}

TEST(WriteRows, RepeatedRowsLastWins) {
  const TestTensor dst = MakeTensor(DType::kF32, {2, 1}, {0, 0});
  const TestTensor src = MakeTensor(DType::kF32, {3, 1}, {1, 2, 3});
  const TestTensor rows = MakeTensor(DType::kI32, {3}, {1, 1, 1});
  EXPECT_THAT(Values(WriteRows(dst, src, rows)), ElementsAre(0, 3));
}

TEST(WriteRows, NoRowsCopiesDst) {
  const TestTensor dst = MakeTensor(DType::kF32, {2, 2}, Iota(4));
  const TestTensor src = ZeroTensor(DType::kF32, {0, 2});
  const TestTensor rows = ZeroTensor(DType::kI32, {0});
  EXPECT_THAT(Values(WriteRows(dst, src, rows)), ElementsAreArray(Iota(4)));
}

TEST(WriteRows, RoundsFloatSourcesToTheDstDtype) {
  const TestTensor dst = MakeTensor(DType::kF16, {2, 2}, {1, 2, 3, 4});
  const TestTensor src = MakeTensor(DType::kF32, {1, 2}, {0.1, 1e-9});
  const TestTensor rows = MakeTensor(DType::kI32, {1}, {0});
  EXPECT_THAT(Values(WriteRows(dst, src, rows)),
              ElementsAre(RoundTo(DType::kF16, 0.1), RoundTo(DType::kF16, 1e-9), 3, 4));
}

TEST(WriteRows, CopiesQ8RowsAsBlocks) {
  const TestTensor dst = MakeTensor(DType::kQ8_0, {3, 32}, std::vector<double>(96, 0));
  const TestTensor src = MakeTensor(DType::kQ8_0, {1, 32}, Iota(32, -16));
  const TestTensor rows = MakeTensor(DType::kI32, {1}, {1});
  const std::vector<double> got = Values(WriteRows(dst, src, rows));
  const std::vector<double> quantized = Values(src);
  EXPECT_THAT(std::vector<double>(got.begin() + 32, got.begin() + 64), ElementsAreArray(quantized));
  EXPECT_THAT(std::vector<double>(got.begin(), got.begin() + 32), ElementsAreArray(std::vector<double>(32, 0)));
}

TEST(WriteRows, ReadsStridedViews) {
  const TestTensor dst = MakePaddedTensor(DType::kI32, {2, 3, 2}, Iota(12));
  const TestTensor src = MakePaddedTensor(DType::kI32, {2, 2, 2}, Iota(8, 100));
  const TestTensor rows = MakePaddedTensor(DType::kI32, {2}, {0, 2});
  EXPECT_THAT(Values(WriteRows(dst, src, rows)),
              ElementsAre(100, 101, 2, 3, 102, 103, 104, 105, 8, 9, 106, 107));
}

TEST(WriteRows, InPlaceMatchesSeparateBuffers) {
  EXPECT_THAT(FindOp("write_rows")->inplace, ElementsAre(std::pair{kWriteRowsDst, 0}));
  const TestTensor src = MakeTensor(DType::kF32, {2, 2, 3}, Iota(12, 100));
  const TestTensor rows = MakeTensor(DType::kI32, {2}, {3, 0});
  const TestTensor separate = WriteRows(MakeTensor(DType::kF32, {2, 4, 3}, Iota(24)), src, rows);
  TestTensor dst = MakeTensor(DType::kF32, {2, 4, 3}, Iota(24));
  ASSERT_TRUE(WriteRowsInPlace(dst, src, rows).ok());
  EXPECT_THAT(Values(dst), ElementsAreArray(Values(separate)));
}

TEST(WriteRows, OutOfRangeRowIsARuntimeErrorAndWritesNothing) {
  const TestTensor src = MakeTensor(DType::kF32, {2, 2}, {-1, -2, -3, -4});
  for (double bad : {4.0, -1.0}) {
    const TestTensor rows = MakeTensor(DType::kI32, {2}, {0, bad});
    TestTensor dst = MakeTensor(DType::kF32, {4, 2}, Iota(8));
    auto r = RunReference("write_rows", {&dst, &src, &rows});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_THAT(r.status().message(), HasSubstr("node 'test_node' (write_rows): input 'rows'"));
    EXPECT_THAT(r.status().message(), HasSubstr("[0, 4)"));
    const absl::Status st = WriteRowsInPlace(dst, src, rows);
    EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange);
    EXPECT_THAT(Values(dst), ElementsAreArray(Iota(8)));  // row 0 was not written either
  }
}

TEST(WriteRows, InferenceErrorsNameNodeAndTensor) {
  auto err = [](const TestTensor& d, const TestTensor& s, const TestTensor& r) {
    auto out = RunReference("write_rows", {&d, &s, &r});
    EXPECT_FALSE(out.ok());
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  const TestTensor dst = MakeTensor(DType::kF32, {2, 4, 2}, Iota(16));
  const TestTensor rows = MakeTensor(DType::kI32, {1}, {0});
  const TestTensor wide = MakeTensor(DType::kF32, {2, 1, 3}, Iota(6));
  EXPECT_THAT(err(dst, wide, rows),
              HasSubstr("node 'test_node' (write_rows): input 'src' (tensor 't1' f32 [2,1,3]): must be "
                        "[..., n, C] = [2,1,2]"));
  const TestTensor lead = MakeTensor(DType::kF32, {1, 1, 2}, Iota(2));
  EXPECT_THAT(err(dst, lead, rows), HasSubstr("= [2,1,2]"));
  const TestTensor two = MakeTensor(DType::kF32, {2, 2, 2}, Iota(8));
  EXPECT_THAT(err(dst, two, rows), HasSubstr("= [2,1,2]"));  // n from rows is 1
  const TestTensor src = MakeTensor(DType::kF32, {2, 1, 2}, Iota(4));
  const TestTensor rows_f = MakeTensor(DType::kF32, {1}, {0});
  EXPECT_THAT(err(dst, src, rows_f), HasSubstr("input 'rows' (tensor 't2' f32 [1]): must be i32 [n]"));
  const TestTensor rows_2d = MakeTensor(DType::kI32, {1, 1}, {0});
  EXPECT_THAT(err(dst, src, rows_2d), HasSubstr("must be i32 [n]"));
  const TestTensor flat = MakeTensor(DType::kF32, {4}, Iota(4));
  EXPECT_THAT(err(flat, src, rows), HasSubstr("input 'dst' (tensor 't0' f32 [4]): must be [..., R, C]"));
  const TestTensor q = MakeTensor(DType::kQ8_0, {2, 32}, std::vector<double>(64, 0));
  const TestTensor fsrc = MakeTensor(DType::kF32, {1, 32}, std::vector<double>(32, 0));
  EXPECT_THAT(err(q, fsrc, rows), HasSubstr("must have dst's dtype (q8_0)"));
  const TestTensor isrc = MakeTensor(DType::kI32, {2, 1, 2}, Iota(4));
  EXPECT_THAT(err(dst, isrc, rows), HasSubstr("must have dst's dtype (f32)"));
}

TEST(WriteRows, AppendsToAKvCacheStateInAGraph) {
  // The cache is [B, S, H*D] so that rows are tokens; attention reads a
  // [B, S, H, D] view of the updated cache.
  GraphBuilder b("kv_append");
  const Tensor cache = b.Input("cache", DType::kF16, {1, 8, 4 * 16});
  const Tensor k = b.Input("k", DType::kF32, {1, 2, 4 * 16});
  const Tensor pos = b.Input("pos", DType::kI32, {2});
  const Tensor next = b.Op1("write_rows", {cache, k, pos}, {}, "append");
  b.View(next, {1, 8, 4, 16}, {8 * 64 * 2, 64 * 2, 16 * 2, 2}, 0, "cache_heads");
  b.Output(next);
  b.State(cache, next);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->tensor(next.id).dtype, DType::kF16);

  GraphBuilder bad("bad");
  const Tensor c2 = bad.Input("cache", DType::kF16, {1, 8, 64});
  const Tensor k2 = bad.Input("k", DType::kF16, {1, 2, 32});
  const Tensor p2 = bad.Input("pos", DType::kI32, {2});
  bad.Op1("write_rows", {c2, k2, p2}, {}, "append");
  EXPECT_THAT(bad.status().message(),
              HasSubstr("node 'append' (write_rows): input 'src' (tensor 'k' f16 [1,2,32])"));
}

}  // namespace
}  // namespace kiln
