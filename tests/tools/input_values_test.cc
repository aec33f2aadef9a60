#include "tools/input_values.h"

#include <cmath>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::tools {
namespace {

TensorInfo Info(DType dtype, std::vector<int64_t> dims) {
  TensorInfo t;
  t.name = std::string("input");  // (not = "..": a GCC 12 -Wrestrict false positive)
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.strides = ContiguousStrides(dtype, t.dims);
  return t;
}

std::vector<double> Values(const HostTensor& h) {
  std::vector<double> v;
  const TensorView view = h.view();
  ForEachIndex(view.rank, view.dims, [&](const int64_t* idx) { v.push_back(LoadElement(view, idx)); });
  return v;
}

TEST(InputValuesTest, ReadsRangesFromMetadata) {
  Graph g;
  g.metadata["input_range.ids"] = "3, 5";
  g.metadata["input_range.bad"] = "5,3";
  g.metadata["input_range.junk"] = "one,two";
  auto r = InputRangeFor(g, "ids");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->lo, 3);
  EXPECT_EQ((*r)->hi, 5);
  r = InputRangeFor(g, "other");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_FALSE(InputRangeFor(g, "bad").ok());
  EXPECT_FALSE(InputRangeFor(g, "junk").ok());
}

TEST(InputValuesTest, IntegersStayInTheirRange) {
  const HostTensor h = RandomInput(Info(DType::kI32, {1000}), InputRange{3, 5}, 1);
  std::set<double> seen;
  for (double v : Values(h)) seen.insert(v);
  EXPECT_EQ(seen, (std::set<double>{3, 4, 5}));
  // Without a range: [0, 15].
  for (double v : Values(RandomInput(Info(DType::kI32, {1000}), std::nullopt, 1))) {
    EXPECT_TRUE(v >= 0 && v <= 15) << v;
  }
}

TEST(InputValuesTest, FloatsFollowTheRangeOrAHalfNormal) {
  for (double v : Values(RandomInput(Info(DType::kF16, {500}), InputRange{-1, 0}, 2))) {
    EXPECT_TRUE(v >= -1 && v <= 0) << v;
  }
  for (double v : Values(RandomInput(Info(DType::kF32, {8}), InputRange{0, 0}, 2))) EXPECT_EQ(v, 0);
  const std::vector<double> v = Values(RandomInput(Info(DType::kBF16, {20000}), std::nullopt, 3));
  double sum = 0, sq = 0;
  for (double x : v) sum += x, sq += x * x;
  const double mean = sum / v.size(), sd = std::sqrt(sq / v.size() - mean * mean);
  EXPECT_NEAR(mean, 0, 0.02);
  EXPECT_NEAR(sd, 0.5, 0.02);
}

TEST(InputValuesTest, SeedsAreDeterministic) {
  const TensorInfo t = Info(DType::kF32, {64});
  EXPECT_EQ(RandomInput(t, std::nullopt, 7).data, RandomInput(t, std::nullopt, 7).data);
  EXPECT_NE(RandomInput(t, std::nullopt, 7).data, RandomInput(t, std::nullopt, 8).data);
}

TEST(InputValuesTest, QuantizedInputsDecodeNearTheirRange) {
  const HostTensor h = RandomInput(Info(DType::kQ8_0, {2, 64}), InputRange{-2, 2}, 4);
  EXPECT_EQ(h.data.size(), 4u * kQ8BlockBytes);
  for (double v : Values(h)) EXPECT_TRUE(std::fabs(v) <= 2.01) << v;
}

}  // namespace
}  // namespace kiln::tools
