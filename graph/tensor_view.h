// What kernels see of a tensor: a pointer, a dtype, dims and byte strides.
// Used by the reference implementations and the CPU backend alike.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "graph/dtype.h"
#include "graph/tensor.h"

namespace kiln {

struct TensorView {
  std::byte* data = nullptr;  // null for an absent optional input
  DType dtype = DType::kF32;
  int rank = 0;
  std::array<int64_t, kMaxRank> dims{};
  std::array<int64_t, kMaxRank> strides{};  // bytes

  static TensorView Of(const TensorInfo& info, std::byte* base);

  bool present() const { return data != nullptr; }
  int64_t dim(int i) const { return dims[i < 0 ? rank + i : i]; }
  int64_t stride(int i) const { return strides[i < 0 ? rank + i : i]; }
  int64_t numel() const;
  // Address of the row (all indices but the innermost); idx has rank-1 entries.
  std::byte* row(const int64_t* outer_idx) const;
};

// Element access for any dtype (q8_0 decodes its block), by full index.
double LoadElement(const TensorView& t, const int64_t* idx);
// Stores with rounding to t.dtype (i32 rounds to nearest); not for q8_0.
void StoreElement(const TensorView& t, const int64_t* idx, double v);

// Calls f(idx) for every index of `dims` in row-major order.
template <typename F>
void ForEachIndex(int rank, const std::array<int64_t, kMaxRank>& dims, F&& f) {
  std::array<int64_t, kMaxRank> idx{};
  for (int i = 0; i < rank; ++i) if (dims[i] == 0) return;
  while (true) {
    f(idx.data());
    int d = rank - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace kiln
