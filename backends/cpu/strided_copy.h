// Copies elements between two strided layouts of the same dims: the engine
// behind the layout ops (contiguous, permute, slice, concat, reshape) and
// write_rows' copy of dst.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "graph/tensor.h"

namespace kiln::cpu {

// One side of a copy: a base address and a byte stride per dim.
struct StridedSide {
  std::byte* data = nullptr;
  std::array<int64_t, kMaxRank> strides{};
};

// dst[i] = src[i] for every index i of `dims` (rank 1..4), elements of
// `elem_size` bytes. Rows whose innermost strides equal elem_size are copied
// whole. `threads`: OpenMP threads to use at most.
void CopyStrided(int rank, const std::array<int64_t, kMaxRank>& dims, int elem_size,
                 const StridedSide& src, const StridedSide& dst, int threads);

}  // namespace kiln::cpu
