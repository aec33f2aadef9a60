// The seeded input distributions do what the grids rely on: masks with whole
// -inf tiles and rows, windows, block-diagonal sequences; gates, betas, ids.
#include "conformance/inputs.h"

#include <cmath>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace kiln::conformance {
namespace {

struct Host {
  std::vector<float> data;
  TensorView view;
};

Host Make(std::vector<int64_t> dims, const Dist& d, uint64_t seed = 1, DType dtype = DType::kF32) {
  Host h;
  TensorInfo info;
  info.dtype = dtype;
  info.dims = dims;
  info.strides = ContiguousStrides(dtype, dims);
  h.data.assign(ContiguousBytes(dtype, dims) / 4 + 1, 0.0f);
  h.view = TensorView::Of(info, reinterpret_cast<std::byte*>(h.data.data()));
  std::mt19937_64 rng(seed);
  FillInput(h.view, d, rng);
  return h;
}

double At(const Host& h, std::vector<int64_t> idx) { return LoadElement(h.view, idx.data()); }

TEST(InputsTest, SameSeedSameValues) {
  const Host a = Make({4, 33}, Normal(), 5), b = Make({4, 33}, Normal(), 5), c = Make({4, 33}, Normal(), 6);
  EXPECT_EQ(a.data, b.data);
  EXPECT_NE(a.data, c.data);
}

TEST(InputsTest, TilesMaskHasWholeMaskedKeyBlocks) {
  const int64_t rows = 32, cols = 512, kb = 64;
  const Host m = Make({1, 2, rows, cols}, Mask(MaskKind::kTiles, kb), 3);
  int whole = 0, open = 0;
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t j0 = 0; j0 < cols; j0 += kb) {
      bool all = true, any_finite = false;
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = j0; j < j0 + kb; ++j) {
          const bool inf = std::isinf(At(m, {0, h, i, j}));
          all &= inf;
          any_finite |= !inf;
        }
      }
      whole += all;
      open += any_finite;
    }
  }
  EXPECT_GT(whole, 0);
  EXPECT_GT(open, 0);
}

TEST(InputsTest, RowsMaskHasWholeMaskedRows) {
  const Host m = Make({64, 100}, Mask(MaskKind::kRows), 2);
  int dead = 0;
  for (int64_t i = 0; i < 64; ++i) {
    bool all = true;
    for (int64_t j = 0; j < 100; ++j) all &= std::isinf(At(m, {i, j}));
    dead += all;
  }
  EXPECT_GT(dead, 0);
  EXPECT_LT(dead, 64);
}

TEST(InputsTest, WindowMask) {
  const int64_t rows = 5, cols = 40, w = 7;
  const Host m = Make({rows, cols}, Mask(MaskKind::kWindow, w));
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t pos = i + cols - rows;
    for (int64_t j = 0; j < cols; ++j) {
      EXPECT_EQ(At(m, {i, j}) == 0, j <= pos && j > pos - w) << i << "," << j;
    }
  }
}

TEST(InputsTest, MultiSeqMaskIsBlockDiagonal) {
  const int64_t rows = 4, cols = 400;
  const Host m = Make({rows, cols}, Mask(MaskKind::kMultiSeq, 4), 9);
  // Each row sees one contiguous run of keys; runs of different rows do not overlap.
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t i = 0; i < rows; ++i) {
    int64_t first = -1, last = -1;
    for (int64_t j = 0; j < cols; ++j) {
      if (At(m, {i, j}) == 0) {
        if (first < 0) first = j;
        EXPECT_TRUE(last < 0 || last == j - 1) << "row " << i << " is not one run";
        last = j;
      }
    }
    ASSERT_GE(first, 0) << "row " << i << " sees nothing";
    runs.push_back({first, last});
  }
  for (int64_t i = 1; i < rows; ++i) EXPECT_GT(runs[i].first, runs[i - 1].second);
}

TEST(InputsTest, UnwrittenCellsAreMaskedAndNaN) {
  const Host m = Make({3, 50}, Mask(MaskKind::kUnwritten, 20));
  for (int64_t j = 0; j < 50; ++j) EXPECT_EQ(std::isinf(At(m, {1, j})), j >= 20);
  Dist d = Normal();
  d.nan_from = 20;
  for (DType t : {DType::kF16, DType::kQ8_0}) {
    const Host kv = Make({1, 50, 2, 32}, d, 1, t);
    EXPECT_FALSE(std::isnan(At(kv, {0, 19, 1, 31})));
    EXPECT_TRUE(std::isnan(At(kv, {0, 20, 0, 0})));
    EXPECT_TRUE(std::isnan(At(kv, {0, 49, 1, 31})));
  }
}

TEST(InputsTest, GateBetaAndIds) {
  const Host g = Make({1000}, Gate()), b = Make({1000}, Beta());
  double gmin = 0, gmax = -100;
  for (int64_t i = 0; i < 1000; ++i) {
    const double gv = At(g, {i}), bv = At(b, {i});
    gmin = std::min(gmin, gv);
    gmax = std::max(gmax, gv);
    EXPECT_GT(bv, 0);
    EXPECT_LT(bv, 1);
  }
  EXPECT_GT(gmin, -20);
  EXPECT_LT(gmin, -10);  // the whole range is used
  EXPECT_LT(gmax, 0);
  EXPECT_GT(gmax, -0.01);

  const Host d = Make({50}, DistinctInts(0, 49), 1, DType::kI32);
  std::set<double> seen;
  for (int64_t i = 0; i < 50; ++i) seen.insert(At(d, {i}));
  EXPECT_EQ(seen.size(), 50u);
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 49);

  const Host bad = Make({30}, OneBadInt(0, 9), 1, DType::kI32);
  int out = 0;
  for (int64_t i = 0; i < 30; ++i) out += At(bad, {i}) > 9 || At(bad, {i}) < 0;
  EXPECT_EQ(out, 1);
}

TEST(InputsTest, SpecialsHaveNaNAndLargeValues) {
  const Host s = Make({2000}, Specials());
  int nan = 0, large = 0;
  for (int64_t i = 0; i < 2000; ++i) {
    nan += std::isnan(At(s, {i}));
    large += std::fabs(At(s, {i})) >= 20;
  }
  EXPECT_GT(nan, 20);
  EXPECT_GT(large, 40);
}

}  // namespace
}  // namespace kiln::conformance
