// The op registry: every op kiln knows, by name.
#pragma once

#include "absl/strings/string_view.h"
#include <vector>

#include "ops/op_schema.h"

namespace kiln {

const OpSchema* FindOp(absl::string_view name);      // nullptr when unknown
const std::vector<const OpSchema*>& AllOps();       // sorted by name

}  // namespace kiln
