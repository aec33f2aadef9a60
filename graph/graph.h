// The IR: tensors, nodes in topological order, named inputs/outputs, states.
#pragma once

#include <map>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "graph/node.h"
#include "graph/tensor.h"

namespace kiln {

// An output that is the next value of an input (KV cache, recurrent state):
// bound to one buffer, it is updated in place between runs.
struct StatePair {
  int input = -1;
  int output = -1;
};

struct Graph {
  std::string name;
  std::vector<TensorInfo> tensors;
  std::vector<Node> nodes;  // topological order
  std::vector<int> inputs;  // tensor ids the caller binds
  std::vector<int> outputs; // tensor ids the caller reads
  std::vector<StatePair> states;
  std::map<std::string, std::string> metadata;

  int FindTensor(absl::string_view name) const;  // -1 when absent
  const TensorInfo& tensor(int id) const { return tensors[id]; }
  // The tensor whose memory `id` lives in (itself unless a view).
  int StorageOf(int id) const {
    return tensors[id].view_of >= 0 ? tensors[id].view_of : id;
  }
};

}  // namespace kiln
