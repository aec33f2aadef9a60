#include "scheduler/host_tensor.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "graph/tensor.h"

namespace kiln {

HostTensor HostTensor::Zeros(DType dtype, std::vector<int64_t> dims) {
  HostTensor t;
  t.dtype = dtype;
  t.data.assign(static_cast<size_t>(ContiguousBytes(dtype, dims)), std::byte{0});
  t.dims = std::move(dims);
  return t;
}

TensorView HostTensor::view() {
  TensorView v;
  v.data = data.data();
  v.dtype = dtype;
  v.rank = static_cast<int>(dims.size());
  const std::vector<int64_t> strides = ContiguousStrides(dtype, dims);
  for (int i = 0; i < v.rank && i < kMaxRank; ++i) {
    v.dims[i] = dims[i];
    v.strides[i] = strides[i];
  }
  return v;
}

TensorView HostTensor::view() const { return const_cast<HostTensor*>(this)->view(); }

void CopyToContiguous(const TensorView& src, std::byte* dst) {
  if (src.rank == 0) return;
  const int64_t row_bytes = RowBytes(src.dtype, src.dim(-1));
  std::array<int64_t, kMaxRank> outer = src.dims;
  outer[src.rank - 1] = 1;  // iterate rows; copy each whole
  ForEachIndex(src.rank, outer, [&](const int64_t* idx) {
    std::memcpy(dst, src.row(idx), static_cast<size_t>(row_bytes));
    dst += row_bytes;
  });
}

absl::StatusOr<HostTensor> ConvertDType(const HostTensor& t, DType to) {
  if (t.dtype == to) return t;
  if (to == DType::kQ8_0) return absl::InvalidArgumentError("cannot convert to q8_0");
  if (t.dims.empty() || t.dims.size() > kMaxRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot convert a rank-", t.dims.size(), " tensor"));
  }
  HostTensor out = HostTensor::Zeros(to, t.dims);
  const TensorView src = t.view();
  const TensorView dst = out.view();
  ForEachIndex(src.rank, src.dims,
               [&](const int64_t* idx) { StoreElement(dst, idx, LoadElement(src, idx)); });
  return out;
}

}  // namespace kiln
