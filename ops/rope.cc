#include "ops/op_families.h"

namespace kiln {

void RegisterRopeOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
