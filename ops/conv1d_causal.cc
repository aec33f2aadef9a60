#include "ops/op_families.h"

namespace kiln {

void RegisterConvOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
