#include "ops/op_families.h"

namespace kiln {

void RegisterMatmulOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
