// A contiguous tensor in host memory: what callers bind as inputs and read
// back as outputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/dtype.h"
#include "graph/tensor_view.h"

namespace kiln {

struct HostTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;
  std::vector<std::byte> data;  // ContiguousBytes(dtype, dims) bytes, C order

  // Zero-filled storage for the given type and shape.
  static HostTensor Zeros(DType dtype, std::vector<int64_t> dims);

  // A view of `data` (rank must be 1..4 to be used with kernels).
  TensorView view();
  TensorView view() const;  // the pointer is mutable only by TensorView's type
};

// Copies a strided tensor into `dst` in C order (innermost rows whole).
void CopyToContiguous(const TensorView& src, std::byte* dst);

// The same values in another dtype (float dtypes convert with rounding,
// i32 <-> float through LoadElement/StoreElement); q8_0 only as a source.
absl::StatusOr<HostTensor> ConvertDType(const HostTensor& t, DType to);

}  // namespace kiln
