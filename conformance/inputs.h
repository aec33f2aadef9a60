// Seeded input values for conformance cases: distributions that stress ops
// (attention masks with whole -inf tiles and rows, sliding windows, several
// sequences sharing a KV cache; GDN gates and betas; ids in range; NaN and
// large values for elementwise ops).
#pragma once

#include <random>

#include "conformance/case.h"
#include "graph/tensor_view.h"

namespace kiln::conformance {

// Writes every element of `t` (a view into host memory, any dtype; q8_0 is
// quantized per block of 32 with scale max|x|/127) with values drawn from
// `dist`. Bytes outside the view are left alone.
void FillInput(const TensorView& t, const Dist& dist, std::mt19937_64& rng);

}  // namespace kiln::conformance
