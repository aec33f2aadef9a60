#include "ops/op_families.h"

namespace kiln {

void RegisterWriteRowsOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
