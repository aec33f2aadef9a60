#include "ops/op_families.h"

namespace kiln {

void RegisterFlashAttnOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
