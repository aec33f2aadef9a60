#include "ops/op_families.h"

namespace kiln {

void RegisterElementwiseOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
