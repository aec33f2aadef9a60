#include "ops/op_families.h"

namespace kiln {

void RegisterSoftmaxOps(std::vector<OpSchema>& ops) {}

}  // namespace kiln
