#include "graph/graph.h"

namespace kiln {

int Graph::FindTensor(absl::string_view name) const {
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace kiln
