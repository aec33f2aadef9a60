#include "ops/op_families.h"

namespace kiln {

void RegisterNormOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
