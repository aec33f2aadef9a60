#include "ops/op_families.h"

namespace kiln {

void RegisterGatedDeltaNetOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
