// absl::Status -> Python exceptions: a failed kiln call raises kiln.Error
// (or its subclass for the status code, kiln/_errors.py) with the status
// message, so no absl type reaches Python.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kiln::python {

// Raises the Python exception for `status`, which must not be OK.
[[noreturn]] void Raise(const absl::Status& status);

inline void Check(const absl::Status& status) {
  if (!status.ok()) Raise(status);
}

template <typename T>
T Value(absl::StatusOr<T> value) {
  if (!value.ok()) Raise(value.status());
  return *std::move(value);
}

}  // namespace kiln::python
