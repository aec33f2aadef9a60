#include "ops/op_families.h"

namespace kiln {

void RegisterLayoutOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
