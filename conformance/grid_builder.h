// The small helper the grids are written with: a sub-grid is a list of
// parameter axes and a function making a Case from one point of their
// cartesian product. The full grid is the product (pruned by cost); the quick
// grid is a cheap subset that still takes every value of every axis at least
// once, or every pair of values (a weighted greedy set cover), plus a few
// random points for mixing.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "conformance/case.h"

namespace kiln::conformance {

enum class GridSize { kQuick, kFull };

struct Axis {
  std::string name;
  std::vector<int64_t> values;  // enums and dtypes as their integer values
};

// One point of a sub-grid: axis name -> value.
using Point = std::map<std::string, int64_t, std::less<>>;

struct SubGrid {
  std::string name;  // becomes Case::group
  std::vector<Axis> axes;
  // The case at a point, or nullopt where the combination makes no sense
  // (e.g. q8_0 with a head dim that is not a multiple of 32).
  std::function<std::optional<Case>(const Point&)> make;
  double max_cost = 2.5e9;  // the full grid drops cases costing more (CaseCost)
  // The quick grid covers every value of every axis (1), or every pair of
  // values of every two axes (2: for axes whose interactions matter).
  int strength = 1;
  int quick_extra = 3;      // random extra points in the quick grid...
  double quick_extra_cost = 2e7;  // ...each costing at most this
  // Only in the full grid: cases too slow for CI on a CPU Vulkan device
  // (lavapipe), each with a smaller stand-in in the quick grid.
  bool full_only = false;
};

// The cases of a sub-grid, deduplicated, with group and seed set.
std::vector<Case> Expand(const SubGrid& grid, GridSize size);

// Axis values for dtypes, and back.
inline std::vector<int64_t> DTypes(std::initializer_list<DType> ts) {
  std::vector<int64_t> v;
  for (DType t : ts) v.push_back(static_cast<int64_t>(t));
  return v;
}
inline DType AsDType(int64_t v) { return static_cast<DType>(v); }
// 0, 1, ..., n-1: an axis indexing a list of variants.
std::vector<int64_t> Indices(size_t n);

// Memory layouts of an input (an axis value): see InputSpec.
enum Layout : int64_t {
  kContiguous = 0,
  kPadded = 1,          // a strided window of a larger base
  kPermuted = 2,        // outer dims stored in another order (rank >= 3)
  kPaddedPermuted = 3,  // both
};
// `in` with `layout`; nullopt if the rank does not allow it (rank < 3 permuted).
std::optional<InputSpec> WithLayout(InputSpec in, int64_t layout);

// Estimated reference work of a case (about one unit per element load).
double CaseCost(const Case& c);

}  // namespace kiln::conformance
