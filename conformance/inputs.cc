#include "conformance/inputs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

namespace kiln::conformance {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double U(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}
bool Coin(std::mt19937_64& rng, double p) { return U(rng, 0, 1) < p; }

// A finite mask value: half exactly 0, half in [-2, 0).
double FiniteMaskValue(std::mt19937_64& rng) { return Coin(rng, 0.5) ? 0.0 : U(rng, -2, 0); }

// One rows x cols slice of a mask, row-major, as MaskKind describes.
void FillMaskSlice(MaskKind kind, int64_t param, int64_t rows, int64_t cols, std::mt19937_64& rng,
                   double* m) {
  auto at = [&](int64_t i, int64_t j) -> double& { return m[i * cols + j]; };
  // Query row i sits at position pos(i) of the keys (queries are the last rows).
  auto pos = [&](int64_t i) { return i + cols - rows; };
  switch (kind) {
    case MaskKind::kFinite:
    case MaskKind::kScattered:
      for (int64_t i = 0; i < rows * cols; ++i) {
        m[i] = kind == MaskKind::kScattered && Coin(rng, 0.15) ? kNegInf : FiniteMaskValue(rng);
      }
      return;
    case MaskKind::kTiles: {
      const int64_t kb = param > 0 ? param : 64, rb = 16;
      for (int64_t j0 = 0; j0 < cols; j0 += kb) {
        const double r = U(rng, 0, 1);
        for (int64_t i0 = 0; i0 < rows; i0 += rb) {
          // A whole key block for every row, a block of 16 rows, or finite
          // values with a few scattered -inf.
          const bool tile = r < 0.35 || (r < 0.6 && Coin(rng, 0.5));
          for (int64_t i = i0; i < std::min(rows, i0 + rb); ++i) {
            for (int64_t j = j0; j < std::min(cols, j0 + kb); ++j) {
              at(i, j) = tile || Coin(rng, 0.05) ? kNegInf : FiniteMaskValue(rng);
            }
          }
        }
      }
      return;
    }
    case MaskKind::kRows:
      for (int64_t i = 0; i < rows; ++i) {
        const bool dead = Coin(rng, 0.25);
        for (int64_t j = 0; j < cols; ++j) at(i, j) = dead ? kNegInf : FiniteMaskValue(rng);
      }
      return;
    case MaskKind::kWindow: {
      const int64_t w = param > 0 ? param : 64;
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) at(i, j) = j <= pos(i) && j > pos(i) - w ? 0.0 : kNegInf;
      }
      return;
    }
    case MaskKind::kMultiSeq: {
      // Cells: n segments of random lengths; rows: n contiguous groups. Row r
      // of a group of n_s rows is the r-th of the segment's last n_s tokens.
      const int64_t n = std::max<int64_t>(1, std::min({param > 0 ? param : 2, cols, rows}));
      std::vector<int64_t> cuts = {0, cols};
      std::vector<int64_t> all(cols - 1);
      std::iota(all.begin(), all.end(), 1);
      std::shuffle(all.begin(), all.end(), rng);
      cuts.insert(cuts.end(), all.begin(), all.begin() + (n - 1));
      std::sort(cuts.begin(), cuts.end());
      std::fill(m, m + rows * cols, kNegInf);
      for (int64_t s = 0; s < n; ++s) {
        const int64_t r0 = rows * s / n, r1 = rows * (s + 1) / n, ns = r1 - r0;
        const int64_t c0 = cuts[s], len = cuts[s + 1] - cuts[s];
        for (int64_t r = 0; r < ns; ++r) {
          const int64_t visible = std::min(len, len - ns + r + 1);
          for (int64_t j = 0; j < visible; ++j) at(r0 + r, c0 + j) = 0.0;
        }
      }
      return;
    }
    case MaskKind::kUnwritten:
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) at(i, j) = j < param ? FiniteMaskValue(rng) : kNegInf;
      }
      return;
  }
}

std::vector<double> DrawValues(const TensorView& t, const Dist& d, std::mt19937_64& rng) {
  const int64_t n = t.numel();
  const int64_t last = t.rank > 0 ? std::max<int64_t>(1, t.dim(-1)) : 1;
  std::vector<double> v(n);
  switch (d.kind) {
    case Dist::kNormal:
    case Dist::kSpecials: {
      std::normal_distribution<double> normal(0, d.a);
      const double div = d.unit_rows ? std::sqrt(static_cast<double>(last)) : 1.0;
      for (double& x : v) {
        x = normal(rng) / div;
        if (d.kind != Dist::kSpecials) continue;
        const double r = U(rng, 0, 1);
        if (r < 0.03) x = std::nan("");
        else if (r < 0.08) x = (Coin(rng, 0.5) ? 1 : -1) * U(rng, 20, 100);
      }
      break;
    }
    case Dist::kUniform:
      for (double& x : v) x = U(rng, d.a, d.b);
      break;
    case Dist::kInts:
    case Dist::kOneBad: {
      std::uniform_int_distribution<int64_t> ints(static_cast<int64_t>(d.a), static_cast<int64_t>(d.b));
      for (double& x : v) x = static_cast<double>(ints(rng));
      if (d.kind == Dist::kOneBad && n > 0) {
        v[std::uniform_int_distribution<int64_t>(0, n - 1)(rng)] = d.b + 1;
      }
      break;
    }
    case Dist::kDistinct: {
      std::vector<double> all;
      for (int64_t i = static_cast<int64_t>(d.a); i <= static_cast<int64_t>(d.b); ++i) all.push_back(i);
      std::shuffle(all.begin(), all.end(), rng);
      for (int64_t i = 0; i < n; ++i) v[i] = all.empty() ? d.a : all[i % all.size()];
      break;
    }
    case Dist::kGate:
      for (double& x : v) x = -std::exp(U(rng, std::log(1e-3), std::log(20.0)));
      break;
    case Dist::kBeta:
      for (double& x : v) x = U(rng, 0.02, 0.98);
      break;
    case Dist::kMask: {
      const int64_t cols = t.rank >= 1 ? t.dim(-1) : 1;
      const int64_t rows = t.rank >= 2 ? t.dim(-2) : 1;
      const int64_t slice = rows * cols;
      for (int64_t s = 0; slice > 0 && s < n / slice; ++s) {
        FillMaskSlice(d.mask, d.param, rows, cols, rng, v.data() + s * slice);
      }
      break;
    }
  }
  if (d.nan_from >= 0 && t.rank >= 2) {
    // Row-major: the index along dim 1 of element e.
    int64_t inner = 1;
    for (int i = 2; i < t.rank; ++i) inner *= t.dims[i];
    for (int64_t e = 0; e < n; ++e) {
      if ((e / inner) % t.dims[1] >= d.nan_from) v[e] = std::nan("");
    }
  }
  return v;
}

// q8_0 rows: per block of 32, scale = max|x| / 127 (f16), values rounded. A
// block holding a NaN gets a NaN scale.
void StoreQ8(const TensorView& t, const std::vector<double>& v) {
  const int64_t cols = t.dim(-1);
  std::array<int64_t, kMaxRank> outer = t.dims;
  outer[t.rank - 1] = 1;
  int64_t row = 0;
  ForEachIndex(t.rank, outer, [&](const int64_t* idx) {
    std::byte* r = t.row(idx);
    for (int64_t b = 0; b < cols / kQ8BlockSize; ++b) {
      const double* x = &v[row * cols + b * kQ8BlockSize];
      double amax = 0;
      bool nan = false;
      for (int i = 0; i < kQ8BlockSize; ++i) {
        amax = std::max(amax, std::fabs(x[i]));
        nan |= std::isnan(x[i]);
      }
      const float d = nan ? NAN : static_cast<float>(amax / 127);
      const uint16_t dh = F32ToF16(d);
      std::byte* blk = r + b * kQ8BlockBytes;
      std::memcpy(blk, &dh, 2);
      for (int i = 0; i < kQ8BlockSize; ++i) {
        const long q = nan || d == 0 ? 0 : std::lround(x[i] / d);
        blk[2 + i] = static_cast<std::byte>(static_cast<int8_t>(std::clamp<long>(q, -127, 127)));
      }
    }
    ++row;
  });
}

}  // namespace

void FillInput(const TensorView& t, const Dist& dist, std::mt19937_64& rng) {
  const std::vector<double> v = DrawValues(t, dist, rng);
  if (t.dtype == DType::kQ8_0) {
    StoreQ8(t, v);
    return;
  }
  size_t i = 0;
  ForEachIndex(t.rank, t.dims, [&](const int64_t* idx) { StoreElement(t, idx, v[i++]); });
}

}  // namespace kiln::conformance
