#include "arrays.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "errors.h"

namespace kiln::python {

py::dtype NumpyDType(api::DType dtype) {
  switch (dtype) {
    case api::DType::kF32:
      return py::dtype("float32");
    case api::DType::kF16:
      return py::dtype("float16");
    case api::DType::kBF16:
      return py::dtype("uint16");
    case api::DType::kI32:
      return py::dtype("int32");
    case api::DType::kQ8_0:
      return py::dtype("uint8");
  }
  Raise(absl::InternalError(absl::StrCat("unknown dtype ", static_cast<int>(dtype))));
}

std::vector<py::ssize_t> NumpyShape(api::DType dtype, const std::vector<int64_t>& dims) {
  std::vector<py::ssize_t> shape(dims.begin(), dims.end());
  if (dtype == api::DType::kQ8_0 && !shape.empty()) shape.back() = shape.back() / 32 * 34;
  return shape;
}

py::array ToNumpy(api::HostArray value) {
  auto owner = std::make_unique<api::HostArray>(std::move(value));
  api::HostArray* held = owner.get();
  py::capsule base(owner.release(), [](void* p) { delete static_cast<api::HostArray*>(p); });
  return py::array(NumpyDType(held->dtype()), NumpyShape(held->dtype(), held->dims()), held->data(), base);
}

namespace {

std::string DTypeText(const py::dtype& d) { return py::cast<std::string>(d.attr("name")); }

std::string ShapeText(const std::vector<py::ssize_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

std::string ArrayText(const py::array& a) {
  std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
  return absl::StrCat(DTypeText(a.dtype()), " ", ShapeText(shape));
}

}  // namespace

py::array CheckedArray(const api::TensorDesc& desc, py::handle value, const std::string& what) {
  const py::dtype want_dtype = NumpyDType(desc.dtype);
  const std::vector<py::ssize_t> want_shape = NumpyShape(desc.dtype, desc.dims);
  std::string want = absl::StrCat(std::string(api::DTypeName(desc.dtype)), " [", absl::StrJoin(desc.dims, ","), "]");
  if (desc.dtype == api::DType::kBF16 || desc.dtype == api::DType::kQ8_0) {
    absl::StrAppend(&want, " (as numpy ", DTypeText(want_dtype), " ", ShapeText(want_shape), ")");
  }
  py::array array;
  if (py::isinstance<py::array>(value)) {
    array = py::reinterpret_borrow<py::array>(value);
    if (!array.dtype().equal(want_dtype)) {
      Raise(absl::InvalidArgumentError(absl::StrCat(what, " is ", want, "; got a numpy ", ArrayText(array),
                                                    " array (convert it with .astype(numpy.",
                                                    DTypeText(want_dtype), "))")));
    }
  } else {
    // A list or a scalar: converted when no kind changes (float64 values
    // become float32, not int32).
    py::module_ np = py::module_::import("numpy");
    array = np.attr("asarray")(value);
    if (!np.attr("can_cast")(array.dtype(), want_dtype, "same_kind").cast<bool>()) {
      Raise(absl::InvalidArgumentError(absl::StrCat(what, " is ", want, "; got ", ArrayText(array), " values")));
    }
    array = array.attr("astype")(want_dtype);
  }
  std::vector<py::ssize_t> shape(array.shape(), array.shape() + array.ndim());
  if (shape != want_shape) {
    Raise(absl::InvalidArgumentError(absl::StrCat(what, " is ", want, "; got shape ", ShapeText(shape))));
  }
  return py::array::ensure(array, py::array::c_style);
}

py::array CheckedOut(const api::TensorDesc& desc, py::handle value, const std::string& what) {
  if (!py::isinstance<py::array>(value)) {
    Raise(absl::InvalidArgumentError(absl::StrCat(what, ": out= must be a numpy array")));
  }
  auto array = py::reinterpret_borrow<py::array>(value);
  const bool c_contiguous = (array.flags() & py::array::c_style) != 0;
  if (!array.writeable() || !c_contiguous) {
    Raise(absl::InvalidArgumentError(absl::StrCat(what, ": out= must be a writeable C-contiguous array")));
  }
  // The same dtype and shape checks as for inputs; `array` is returned as it is.
  return CheckedArray(desc, array, what);
}

}  // namespace kiln::python
