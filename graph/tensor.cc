#include "graph/tensor.h"
#include "graph/message_text.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kiln {

std::shared_ptr<const ConstantData> ConstantData::Copy(const void* src, size_t n) {
  auto bytes = std::make_shared<std::vector<std::byte>>(n);
  if (n) std::memcpy(bytes->data(), src, n);
  auto c = std::make_shared<ConstantData>();
  c->data = bytes->data();
  c->size = n;
  c->keepalive = bytes;
  return c;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

bool TensorInfo::IsContiguous() const {
  return offset == 0 && strides == ContiguousStrides(dtype, dims);
}

std::vector<int64_t> ContiguousStrides(DType t, const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size());
  if (dims.empty()) return s;
  s.back() = ElementSize(t);
  int64_t acc = RowBytes(t, dims.back());
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

int64_t ContiguousBytes(DType t, const std::vector<int64_t>& dims) {
  if (dims.empty()) return 0;
  int64_t n = RowBytes(t, dims.back());
  for (size_t i = 0; i + 1 < dims.size(); ++i) n *= dims[i];
  return n;
}

int64_t ExtentBytes(DType t, const std::vector<int64_t>& dims,
                    const std::vector<int64_t>& strides) {
  if (dims.empty()) return 0;
  int64_t last = 0;
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    if (dims[i] == 0) return 0;
    last += (dims[i] - 1) * strides[i];
  }
  if (dims.back() == 0) return 0;
  return last + RowBytes(t, dims.back());
}

std::string ShapeString(const std::vector<int64_t>& dims) {
  return ShortList(dims);  // dims may come from a file not yet validated
}

std::string Describe(const TensorInfo& t) {
  return absl::StrCat(QuoteName(t.name), " ", DTypeName(t.dtype), " ", ShapeString(t.dims));
}

}  // namespace kiln
