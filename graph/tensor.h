// Tensors of the IR: type, shape (outermost first), byte strides, views and
// constant data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/dtype.h"

namespace kiln {

inline constexpr int kMaxRank = 4;

// Bytes a constant's data lives in: owned memory or a mapped file region.
struct ConstantData {
  const std::byte* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> keepalive;  // owns `data` (vector, mmap, ...)
  // Where the bytes come from, for sharing weights between graphs:
  // "file:<identity>:<offset>:<length>" for a mapped external weights file;
  // empty for inline data (shared by content instead).
  std::string origin;

  static std::shared_ptr<const ConstantData> Copy(const void* src, size_t n);
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;     // outermost first, rank 1..4
  std::vector<int64_t> strides;  // bytes, one per dim; innermost is always
                                 // the element size (0 for q8_0: packed blocks)
  int view_of = -1;              // base tensor when this is a view
  int64_t offset = 0;            // byte offset into the base (views only)
  int producer = -1;             // node index that writes it, -1 if none
  std::shared_ptr<const ConstantData> constant;  // weights

  int rank() const { return static_cast<int>(dims.size()); }
  bool is_view() const { return view_of >= 0; }
  bool is_constant() const { return constant != nullptr; }
  int64_t numel() const;
  bool IsContiguous() const;
};

// Contiguous byte strides for `dims` (innermost element size; q8_0 rows are
// whole blocks).
std::vector<int64_t> ContiguousStrides(DType t, const std::vector<int64_t>& dims);
// Bytes of a contiguous tensor.
int64_t ContiguousBytes(DType t, const std::vector<int64_t>& dims);
// Byte span a (possibly strided) tensor touches from its first byte:
// max over elements of offset, plus one row's bytes. 0 if any dim is 0.
int64_t ExtentBytes(DType t, const std::vector<int64_t>& dims,
                    const std::vector<int64_t>& strides);
std::string ShapeString(const std::vector<int64_t>& dims);  // "[2,3,4]"
std::string Describe(const TensorInfo& t);  // "'name' f16 [2,3,4]"

}  // namespace kiln
