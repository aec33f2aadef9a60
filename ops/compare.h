// Comparison of a backend's output with the reference, as OPS.md defines it:
// NMSE = sum (a-r)^2 / sum r^2, inf/NaN positions must agree, and a NaN where
// the reference has none fails whatever the NMSE.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "graph/tensor_view.h"

namespace kiln {

struct Comparison {
  bool ok = false;
  double nmse = 0;
  double tolerance = 0;
  std::string error;  // why not ok: "NaN at [0,3,1,7] where the reference is 0.25", ...
};

// The op schema's tolerance (OpSchema::tolerance, from OPS.md) for `op` when
// its inputs are `dtype` (f32 vs f16/bf16/q8_0); the default for an unknown op.
double Tolerance(absl::string_view op, DType input_dtype);

// Compares two tensors of the same dims (any dtypes, any strides).
Comparison Compare(const TensorView& actual, const TensorView& reference, double tolerance);

}  // namespace kiln
