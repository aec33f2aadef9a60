#include "ops/registry.h"

#include <algorithm>

#include "ops/op_families.h"

namespace kiln {
namespace {

struct Registry {
  std::vector<OpSchema> ops;
  std::vector<const OpSchema*> sorted;

  Registry() {
    RegisterElementwiseOps(ops);
    RegisterMatmulOps(ops);
    RegisterSoftmaxOps(ops);
    RegisterNormOps(ops);
    RegisterRopeOps(ops);
    RegisterLayoutOps(ops);
    RegisterReduceOps(ops);
    RegisterConvOps(ops);
    RegisterWriteRowsOps(ops);
    RegisterFlashAttnOps(ops);
    RegisterGatedDeltaNetOps(ops);
    for (const OpSchema& s : ops) sorted.push_back(&s);
    std::sort(sorted.begin(), sorted.end(),
              [](const OpSchema* a, const OpSchema* b) { return a->name < b->name; });
  }
};

const Registry& Get() {
  static const Registry* r = new Registry();
  return *r;
}

}  // namespace

const OpSchema* FindOp(absl::string_view name) {
  const auto& s = Get().sorted;
  auto it = std::lower_bound(s.begin(), s.end(), name,
                             [](const OpSchema* a, absl::string_view n) { return a->name < n; });
  return it != s.end() && (*it)->name == name ? *it : nullptr;
}

const std::vector<const OpSchema*>& AllOps() { return Get().sorted; }

}  // namespace kiln
