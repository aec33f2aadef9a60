// GraphBuilder: the C++ way to make graphs. Each node is validated as it is
// added (attributes, dtypes, shapes), so an error names the node at fault.
// The first error sticks: later calls do nothing and Build() returns it.
#pragma once

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/graph.h"

namespace kiln {

// A handle to a tensor of the graph being built; id -1 means "none" (an
// absent optional input).
struct Tensor {
  int id = -1;
  bool valid() const { return id >= 0; }
};

class GraphBuilder {
 public:
  explicit GraphBuilder(std::string graph_name);

  Tensor Input(std::string name, DType dtype, std::vector<int64_t> dims);
  Tensor Constant(std::string name, DType dtype, std::vector<int64_t> dims,
                  std::shared_ptr<const ConstantData> data);
  // A strided window of `base` (byte strides, innermost contiguous).
  Tensor View(Tensor base, std::vector<int64_t> dims, std::vector<int64_t> strides,
              int64_t offset, std::string name = "");

  // Adds a node; returns its outputs. An empty name becomes "<op>_<n>".
  std::vector<Tensor> Op(absl::string_view op, std::vector<Tensor> inputs, Attrs attrs = {},
                         std::string name = "");
  // For single-output ops.
  Tensor Op1(absl::string_view op, std::vector<Tensor> inputs, Attrs attrs = {},
             std::string name = "") {
    auto out = Op(op, std::move(inputs), std::move(attrs), std::move(name));
    return out.empty() ? Tensor{} : out[0];
  }

  void Output(Tensor t);
  // Declares `next` (a graph output) the next value of graph input `input`.
  void State(Tensor input, Tensor next);
  void SetMetadata(std::string key, std::string value);
  // Renames a tensor (before Build), e.g. to give outputs stable names.
  void Rename(Tensor t, std::string name);

  const TensorInfo& info(Tensor t) const { return graph_.tensors[t.id]; }
  const absl::Status& status() const { return status_; }
  const Graph& graph() const { return graph_; }

  // Validates the whole graph and hands it over.
  absl::StatusOr<Graph> Build();

 private:
  Tensor AddTensor(TensorInfo t);
  std::string UniqueName(std::string base);
  bool Check(Tensor t, absl::string_view what);

  Graph graph_;
  absl::Status status_;
  int auto_names_ = 0;
  // Names taken, so that adding a node stays O(1) in the graph's size (a
  // scan per node made building a 300k-node graph take minutes).
  absl::flat_hash_map<std::string, int> tensor_ids_;
  absl::flat_hash_set<std::string> node_names_;
};

}  // namespace kiln
