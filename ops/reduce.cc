#include "ops/op_families.h"

namespace kiln {

void RegisterReduceOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
