#include "errors.h"

#include <string>

#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace kiln::python {

void Raise(const absl::Status& status) {
  // The classes live in Python (kiln/_errors.py) so that they can also derive
  // from ValueError, LookupError, ... as Python code expects.
  const std::string code = absl::StatusCodeToString(status.code());
  py::object cls = py::module_::import("kiln._errors").attr("error_class")(code);
  py::object error = cls(std::string(status.message()), code);
  PyErr_SetObject(cls.ptr(), error.ptr());
  throw py::error_already_set();
}

}  // namespace kiln::python
