#include "ops/compare.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ops/registry.h"

namespace kiln {

double Tolerance(absl::string_view op, DType input_dtype) {
  const OpSchema* schema = FindOp(op);
  return (schema ? schema->tolerance : OpTolerance{}).For(input_dtype);
}

Comparison Compare(const TensorView& actual, const TensorView& reference, double tolerance) {
  Comparison c;
  c.tolerance = tolerance;
  if (actual.rank != reference.rank) {
    c.error = absl::StrCat("rank ", actual.rank, " vs reference rank ", reference.rank);
    return c;
  }
  for (int i = 0; i < actual.rank; ++i) {
    if (actual.dims[i] != reference.dims[i]) {
      c.error = "dims differ from the reference";
      return c;
    }
  }
  double num = 0, den = 0;
  ForEachIndex(actual.rank, actual.dims, [&](const int64_t* idx) {
    if (!c.error.empty()) return;
    const double a = LoadElement(actual, idx), r = LoadElement(reference, idx);
    const bool a_bad = !std::isfinite(a), r_bad = !std::isfinite(r);
    if (a_bad || r_bad) {
      const bool same = (std::isnan(a) && std::isnan(r)) || (std::isinf(a) && a == r);
      if (!same) {
        c.error = absl::StrCat(std::isnan(a) ? "NaN" : (a_bad ? "inf" : absl::StrCat(a)), " at [",
                               absl::StrJoin(idx, idx + actual.rank, ","), "] where the reference is ", r);
      }
      return;
    }
    num += (a - r) * (a - r);
    den += r * r;
  });
  if (!c.error.empty()) return c;
  c.nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0);
  c.ok = c.nmse <= tolerance;
  if (!c.ok) c.error = absl::StrCat("NMSE ", c.nmse, " exceeds ", tolerance);
  return c;
}

}  // namespace kiln
