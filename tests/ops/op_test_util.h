// Helpers for op tests: tensors over std::vector buffers, and running an op's
// inference + reference implementation without building a graph.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "graph/tensor_view.h"
#include "gtest/gtest.h"
#include "ops/registry.h"

namespace kiln {

// Bytes plus a view of them. Copies share the bytes.
struct TestTensor {
  std::shared_ptr<std::vector<std::byte>> bytes;
  TensorView view;
};

// `x` rounded to what `dtype` can hold (i32 rounds to nearest).
inline double RoundTo(DType dtype, double x) {
  switch (dtype) {
    case DType::kF32: return static_cast<float>(x);
    case DType::kF16: return F16ToF32(F32ToF16(static_cast<float>(x)));
    case DType::kBF16: return BF16ToF32(F32ToBF16(static_cast<float>(x)));
    case DType::kI32: return std::nearbyint(x);
    case DType::kQ8_0: return x;  // depends on the block; see MakeTensor
  }
  return x;
}

namespace op_test_internal {

// Stores row-major `values` into `t` (q8_0: quantized per block of 32, scale
// = max|x| / 127 as in ggml).
inline void Fill(const TensorView& t, const std::vector<double>& values) {
  if (static_cast<int64_t>(values.size()) != t.numel()) {
    ADD_FAILURE() << "tensor has " << t.numel() << " elements but " << values.size() << " values were given";
    return;
  }
  if (t.dtype != DType::kQ8_0) {
    size_t i = 0;
    ForEachIndex(t.rank, t.dims, [&](const int64_t* idx) { StoreElement(t, idx, values[i++]); });
    return;
  }
  const int64_t cols = t.dim(-1);
  std::array<int64_t, kMaxRank> outer = t.dims;
  outer[t.rank - 1] = 1;
  size_t row = 0;
  ForEachIndex(t.rank, outer, [&](const int64_t* idx) {
    std::byte* r = t.row(idx);
    for (int64_t b = 0; b < cols / kQ8BlockSize; ++b) {
      const double* x = &values[row * cols + b * kQ8BlockSize];
      double amax = 0;
      for (int i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float d = static_cast<float>(amax / 127);
      const uint16_t dh = F32ToF16(d);
      std::byte* blk = r + b * kQ8BlockBytes;
      std::memcpy(blk, &dh, 2);
      for (int i = 0; i < kQ8BlockSize; ++i) {
        const auto q = static_cast<int8_t>(d == 0 ? 0 : std::lround(x[i] / d));
        blk[2 + i] = static_cast<std::byte>(q);
      }
    }
    ++row;
  });
}

inline TestTensor Allocate(DType dtype, const std::vector<int64_t>& dims,
                           const std::vector<int64_t>& alloc_dims) {
  TestTensor t;
  t.bytes = std::make_shared<std::vector<std::byte>>(ContiguousBytes(dtype, alloc_dims));
  TensorInfo info;
  info.dtype = dtype;
  info.dims = dims;
  info.strides = ContiguousStrides(dtype, alloc_dims);
  t.view = TensorView::Of(info, t.bytes->data());
  return t;
}

}  // namespace op_test_internal

// A contiguous tensor holding row-major `values` (rounded to `dtype`).
inline TestTensor MakeTensor(DType dtype, std::vector<int64_t> dims, const std::vector<double>& values) {
  TestTensor t = op_test_internal::Allocate(dtype, dims, dims);
  op_test_internal::Fill(t.view, values);
  return t;
}

// Like MakeTensor, but a strided view into a larger buffer: every outer dim
// is one longer than `dims` and each row has one extra element (a q8_0 block
// for q8_0). The padding holds NaN (i32: -1), so reading it shows.
inline TestTensor MakePaddedTensor(DType dtype, std::vector<int64_t> dims,
                                   const std::vector<double>& values) {
  std::vector<int64_t> alloc = dims;
  for (int64_t& d : alloc) d += 1;
  if (dtype == DType::kQ8_0) alloc.back() = dims.back() + kQ8BlockSize;
  TestTensor t = op_test_internal::Allocate(dtype, dims, alloc);
  std::memset(t.bytes->data(), 0xff, t.bytes->size());  // NaN in f32/f16/bf16
  op_test_internal::Fill(t.view, values);
  return t;
}

// A contiguous tensor of zeros (e.g. an output).
inline TestTensor ZeroTensor(DType dtype, std::vector<int64_t> dims) {
  return op_test_internal::Allocate(dtype, dims, dims);
}

// All elements, row-major, as doubles (q8_0 dequantized).
inline std::vector<double> Values(const TensorView& t) {
  std::vector<double> v;
  ForEachIndex(t.rank, t.dims, [&](const int64_t* idx) { v.push_back(LoadElement(t, idx)); });
  return v;
}
inline std::vector<double> Values(const TestTensor& t) { return Values(t.view); }

inline std::vector<int64_t> Dims(const TensorView& t) {
  return std::vector<int64_t>(t.dims.begin(), t.dims.begin() + t.rank);
}

// Runs `op` on `inputs` (nullptr = absent optional input) the way a backend
// would see it: attributes normalized, outputs inferred, allocated
// (contiguous) and written by the reference. The node is named "test_node";
// input i's tensor is named "t<i>".
inline absl::StatusOr<std::vector<TestTensor>> RunReference(absl::string_view op,
                                                            std::vector<const TestTensor*> inputs,
                                                            Attrs attrs = {}) {
  const OpSchema* schema = FindOp(op);
  if (!schema) return absl::NotFoundError(absl::StrCat("unknown op '", op, "'"));
  Node node;
  node.name = "test_node";
  node.op = std::string(op);
  node.attrs = std::move(attrs);
  if (auto st = NormalizeAttrs(*schema, node); !st.ok()) return st;
  std::vector<TensorType> types(inputs.size());
  std::vector<const TensorType*> type_ptrs(inputs.size(), nullptr);
  std::vector<std::string> roles, names;
  std::vector<TensorView> in_views;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const size_t spec = std::min(i, schema->inputs.size() - 1);
    roles.push_back(schema->inputs[spec].name);
    names.push_back(absl::StrCat("t", i));
    node.inputs.push_back(inputs[i] ? static_cast<int>(i) : -1);
    in_views.push_back(inputs[i] ? inputs[i]->view : TensorView{});
    if (inputs[i]) {
      types[i] = {inputs[i]->view.dtype, Dims(inputs[i]->view)};
      type_ptrs[i] = &types[i];
    }
  }
  InferContext ctx(node, type_ptrs, roles, names);
  if (auto st = schema->infer(ctx); !st.ok()) return st;
  std::vector<TestTensor> outs;
  std::vector<TensorView> out_views;
  for (const TensorType& t : ctx.outputs) {
    outs.push_back(ZeroTensor(t.dtype, t.dims));
    out_views.push_back(outs.back().view);
  }
  if (auto st = schema->reference(node, in_views, out_views); !st.ok()) return st;
  return outs;
}

// RunReference for a single-output op that must succeed: returns the output
// (on error, fails the test and returns a [1] f32 tensor).
inline TestTensor EvalOp(absl::string_view op, std::vector<const TestTensor*> inputs, Attrs attrs = {}) {
  auto out = RunReference(op, std::move(inputs), std::move(attrs));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? (*out)[0] : ZeroTensor(DType::kF32, {1});
}

}  // namespace kiln
