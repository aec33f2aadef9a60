// NumPy broadcasting: shapes right-aligned, each dim pair equal or one is 1.
// Shared by elementwise binary ops, matmul batch dims and softmax masks.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace kiln {

// The broadcast shape of `a` and `b`, or nullopt if they do not broadcast.
std::optional<std::vector<int64_t>> BroadcastDims(const std::vector<int64_t>& a,
                                                  const std::vector<int64_t>& b);

// True if `src` broadcasts to exactly `dst` (src rank <= dst rank).
bool BroadcastsTo(const std::vector<int64_t>& src, const std::vector<int64_t>& dst);

// The index into a tensor of `src_rank` dims `src_dims` that the output index
// `out_idx` (of `out_rank` dims, right-aligned with src) reads.
inline void BroadcastIndex(int src_rank, const int64_t* src_dims, int out_rank,
                           const int64_t* out_idx, int64_t* src_idx) {
  const int lead = out_rank - src_rank;
  for (int i = 0; i < src_rank; ++i) src_idx[i] = src_dims[i] == 1 ? 0 : out_idx[lead + i];
}

}  // namespace kiln
