#include "graph/tensor_view.h"

#include <cmath>
#include <cstring>

namespace kiln {

TensorView TensorView::Of(const TensorInfo& info, std::byte* base) {
  TensorView v;
  v.data = base;
  v.dtype = info.dtype;
  v.rank = info.rank();
  for (int i = 0; i < v.rank; ++i) {
    v.dims[i] = info.dims[i];
    v.strides[i] = info.strides[i];
  }
  return v;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= dims[i];
  return n;
}

std::byte* TensorView::row(const int64_t* outer_idx) const {
  std::byte* p = data;
  for (int i = 0; i + 1 < rank; ++i) p += outer_idx[i] * strides[i];
  return p;
}

double LoadElement(const TensorView& t, const int64_t* idx) {
  const std::byte* r = t.row(idx);
  const int64_t j = idx[t.rank - 1];
  switch (t.dtype) {
    case DType::kF32: { float f; std::memcpy(&f, r + 4 * j, 4); return f; }
    case DType::kF16: { uint16_t h; std::memcpy(&h, r + 2 * j, 2); return F16ToF32(h); }
    case DType::kBF16: { uint16_t h; std::memcpy(&h, r + 2 * j, 2); return BF16ToF32(h); }
    case DType::kI32: { int32_t i; std::memcpy(&i, r + 4 * j, 4); return i; }
    case DType::kQ8_0: {
      const std::byte* blk = r + (j / kQ8BlockSize) * kQ8BlockBytes;
      uint16_t h; std::memcpy(&h, blk, 2);
      const auto q = static_cast<int8_t>(blk[2 + j % kQ8BlockSize]);
      return static_cast<double>(F16ToF32(h)) * q;
    }
  }
  return 0;
}

void StoreElement(const TensorView& t, const int64_t* idx, double v) {
  std::byte* r = t.row(idx);
  const int64_t j = idx[t.rank - 1];
  switch (t.dtype) {
    case DType::kF32: { float f = static_cast<float>(v); std::memcpy(r + 4 * j, &f, 4); return; }
    case DType::kF16: { uint16_t h = F32ToF16(static_cast<float>(v)); std::memcpy(r + 2 * j, &h, 2); return; }
    case DType::kBF16: { uint16_t h = F32ToBF16(static_cast<float>(v)); std::memcpy(r + 2 * j, &h, 2); return; }
    case DType::kI32: { int32_t i = static_cast<int32_t>(std::nearbyint(v)); std::memcpy(r + 4 * j, &i, 4); return; }
    case DType::kQ8_0: return;  // quantized tensors are inputs only
  }
}

}  // namespace kiln
