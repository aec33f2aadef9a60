#include "backends/cpu/kernel_util.h"

namespace kiln::cpu {

bool IsDense(const TensorView& t) {
  int64_t want = ElementSize(t.dtype);
  if (t.rank == 0) return true;
  if (t.strides[t.rank - 1] != want) return false;
  want = RowBytes(t.dtype, t.dims[t.rank - 1]);
  for (int i = t.rank - 2; i >= 0; --i) {
    if (t.dims[i] != 1 && t.strides[i] != want) return false;
    want *= t.dims[i];
  }
  return true;
}

}  // namespace kiln::cpu
