#include "backends/cpu/strided_copy.h"

#include <cstring>

#include "backends/cpu/kernel_util.h"
#include "backends/cpu/parallel.h"

namespace kiln::cpu {
namespace {

template <int kSize>
void CopyRowElements(const std::byte* src, int64_t src_stride, std::byte* dst, int64_t dst_stride,
                     int64_t n) {
  for (int64_t j = 0; j < n; ++j) std::memcpy(dst + j * dst_stride, src + j * src_stride, kSize);
}

}  // namespace

void CopyStrided(int rank, const std::array<int64_t, kMaxRank>& dims, int elem_size,
                 const StridedSide& src, const StridedSide& dst, int threads) {
  for (int d = 0; d < rank; ++d) if (dims[d] == 0) return;
  int64_t rows = 1;
  for (int d = 0; d + 1 < rank; ++d) rows *= dims[d];
  const int64_t cols = dims[rank - 1];
  const int64_t ss = src.strides[rank - 1], ds = dst.strides[rank - 1];
  const bool whole_rows = ss == elem_size && ds == elem_size;
  ParallelFor(rows, ThreadsFor(rows * cols, threads), [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r = r_begin; r < r_end; ++r) {
      const std::byte* s = src.data;
      std::byte* d = dst.data;
      for (int64_t i = rank - 2, rem = r; i >= 0; --i) {
        const int64_t k = rem % dims[i];
        rem /= dims[i];
        s += k * src.strides[i];
        d += k * dst.strides[i];
      }
      if (whole_rows) {
        std::memcpy(d, s, cols * elem_size);
      } else if (elem_size == 4) {
        CopyRowElements<4>(s, ss, d, ds, cols);
      } else if (elem_size == 2) {
        CopyRowElements<2>(s, ss, d, ds, cols);
      } else {
        for (int64_t j = 0; j < cols; ++j) std::memcpy(d + j * ds, s + j * ss, elem_size);
      }
    }
  });
}

}  // namespace kiln::cpu
