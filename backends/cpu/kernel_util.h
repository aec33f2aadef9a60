// Small helpers shared by the CPU kernels: errors that name the node, row
// addressing of strided views, dtype conversion of rows, thread counts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "graph/node.h"
#include "graph/tensor_view.h"
#include "ops/op_schema.h"

namespace kiln::cpu {

// "node 'x' (op): msg" for data-dependent failures at run time (ids out of range).
inline absl::Status NodeError(const Node& node, absl::string_view msg) {
  return absl::OutOfRangeError(absl::StrCat(NodeLabel(node), ": ", msg));
}

// Rows of a view: every dim but the innermost.
inline int64_t NumRows(const TensorView& t) {
  int64_t n = 1;
  for (int i = 0; i + 1 < t.rank; ++i) n *= t.dims[i];
  return n;
}

// Address of row `r` (row-major over the outer dims) of a possibly strided view.
inline std::byte* RowAt(const TensorView& t, int64_t r) {
  std::byte* p = t.data;
  for (int i = t.rank - 2; i >= 0; --i) {
    p += (r % t.dims[i]) * t.strides[i];
    r /= t.dims[i];
  }
  return p;
}

// Byte strides of `in` indexed by the dims of `out` (NumPy broadcasting:
// right-aligned, size-1 and missing dims get stride 0).
inline std::array<int64_t, kMaxRank> BroadcastStrides(const TensorView& in, const TensorView& out) {
  std::array<int64_t, kMaxRank> s{};
  const int lead = out.rank - in.rank;
  for (int i = 0; i < in.rank; ++i) s[lead + i] = in.dims[i] == 1 ? 0 : in.strides[i];
  return s;
}

// Address of row `r` of `out`'s dims in a tensor with (broadcast) byte strides.
inline std::byte* RowAt(std::byte* data, const TensorView& out,
                        const std::array<int64_t, kMaxRank>& strides, int64_t r) {
  for (int i = out.rank - 2; i >= 0; --i) {
    data += (r % out.dims[i]) * strides[i];
    r /= out.dims[i];
  }
  return data;
}

// Dense row-major layout (q8_0: packed rows of blocks).
bool IsDense(const TensorView& t);

// Splits flat element index `i` into a full index of `dims` (rank entries).
inline void Unflatten(int rank, const int64_t* dims, int64_t i, int64_t* idx) {
  for (int d = rank - 1; d >= 0; --d) {
    idx[d] = i % dims[d];
    i /= dims[d];
  }
}

// Converts `n` consecutive innermost elements starting at element `first` of a
// row to f32 (f32, f16, bf16, i32, q8_0; q8_0 needs `first` % 32 == 0).
void LoadRow(DType t, const std::byte* row, int64_t first, int64_t n, float* out);
inline void LoadRow(DType t, const std::byte* row, int64_t n, float* out) {
  LoadRow(t, row, 0, n, out);
}
// Stores `n` f32 values into a row of dtype `t` with the rounding of
// StoreElement (f16/bf16 round to nearest even, i32 to nearest). Not q8_0.
void StoreRow(DType t, const float* in, int64_t n, std::byte* row);

// OpenMP threads worth using for `work` element-operations: small ops run on
// the calling thread (a parallel region costs microseconds).
inline int ThreadsFor(int64_t work, int threads) {
  constexpr int64_t kPerThread = 16384;
  if (threads <= 1 || work < 2 * kPerThread) return 1;
  const int64_t useful = work / kPerThread;
  return static_cast<int>(useful < threads ? useful : threads);
}

// Single-lane f32 SIMD width of the best target this CPU runs (for DeviceInfo).
int SimdF32Lanes();

}  // namespace kiln::cpu
