// NumPy arrays <-> kiln tensors. Each kiln dtype has one NumPy form:
//   f32 float32, f16 float16, i32 int32, with the tensor's shape;
//   bf16 uint16 (the raw bits; NumPy has no bfloat16), with the tensor's shape;
//   q8_0 uint8 (the packed blocks): the tensor's shape with the innermost
//   dim d replaced by d / 32 * 34.
// Inputs are checked against that form (dtype and shape, exactly: kiln does
// not convert silently) and read in place when C-contiguous; outputs become
// arrays over the bytes kiln returned, without a copy.
#pragma once

#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "kiln/kiln.h"

namespace kiln::python {

namespace py = pybind11;

// The NumPy dtype and shape of a tensor of `dtype` and `dims`.
py::dtype NumpyDType(api::DType dtype);
std::vector<py::ssize_t> NumpyShape(api::DType dtype, const std::vector<int64_t>& dims);

// An array that owns `value`'s bytes (moved, not copied).
py::array ToNumpy(api::HostArray value);

// `value` as a C-contiguous array of `desc`'s NumPy form: the array itself
// when it is one already, a contiguous copy when only its strides differ, a
// new array for a list or scalar. A NumPy array of another dtype or shape
// raises kiln.InvalidArgumentError naming `what` (e.g. "input 'x' of entry
// 'prefill'"), what it is and what was given.
py::array CheckedArray(const api::TensorDesc& desc, py::handle value, const std::string& what);

// `value` as the destination of a tensor `desc`'s bytes: a writeable,
// C-contiguous NumPy array of its NumPy form (else kiln.InvalidArgumentError
// naming `what`).
py::array CheckedOut(const api::TensorDesc& desc, py::handle value, const std::string& what);

}  // namespace kiln::python
