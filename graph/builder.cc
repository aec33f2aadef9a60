#include "graph/builder.h"
#include "graph/message_text.h"

#include "absl/strings/str_cat.h"
#include "graph/validate.h"
#include "ops/registry.h"

namespace kiln {

GraphBuilder::GraphBuilder(std::string graph_name) { graph_.name = std::move(graph_name); }

std::string GraphBuilder::UniqueName(std::string base) {
  if (!tensor_ids_.contains(base)) return base;
  for (int i = 1;; ++i) {
    std::string n = absl::StrCat(base, "_", i);
    if (!tensor_ids_.contains(n)) return n;
  }
}

Tensor GraphBuilder::AddTensor(TensorInfo t) {
  if (t.strides.empty()) t.strides = ContiguousStrides(t.dtype, t.dims);
  graph_.tensors.push_back(std::move(t));
  const int id = static_cast<int>(graph_.tensors.size()) - 1;
  if (auto st = ValidateTensor(graph_, id); !st.ok()) {
    graph_.tensors.pop_back();
    status_ = st;
    return {};
  }
  tensor_ids_.emplace(graph_.tensors[id].name, id);
  return {id};
}

bool GraphBuilder::Check(Tensor t, absl::string_view what) {
  if (!status_.ok()) return false;
  if (t.id < 0 || t.id >= static_cast<int>(graph_.tensors.size())) {
    status_ = absl::InvalidArgumentError(absl::StrCat(what, ": not a tensor of this graph"));
    return false;
  }
  return true;
}

Tensor GraphBuilder::Input(std::string name, DType dtype, std::vector<int64_t> dims) {
  if (!status_.ok()) return {};
  TensorInfo t;
  t.name = UniqueName(std::move(name));
  t.dtype = dtype;
  t.dims = std::move(dims);
  Tensor h = AddTensor(std::move(t));
  if (h.valid()) graph_.inputs.push_back(h.id);
  return h;
}

Tensor GraphBuilder::Constant(std::string name, DType dtype, std::vector<int64_t> dims,
                              std::shared_ptr<const ConstantData> data) {
  if (!status_.ok()) return {};
  TensorInfo t;
  t.name = UniqueName(std::move(name));
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.constant = std::move(data);
  if (!t.constant) {
    status_ = absl::InvalidArgumentError(absl::StrCat("constant ", QuoteName(t.name), " has no data"));
    return {};
  }
  return AddTensor(std::move(t));
}

Tensor GraphBuilder::View(Tensor base, std::vector<int64_t> dims, std::vector<int64_t> strides,
                          int64_t offset, std::string name) {
  if (!Check(base, "View")) return {};
  const TensorInfo& b = graph_.tensors[base.id];
  TensorInfo t;
  t.name = UniqueName(name.empty() ? absl::StrCat(b.name, ".view") : std::move(name));
  t.dtype = b.dtype;
  t.dims = std::move(dims);
  t.strides = std::move(strides);
  // A view of a view is a view of the same storage.
  t.view_of = b.is_view() ? b.view_of : base.id;
  t.offset = offset + (b.is_view() ? b.offset : 0);
  if (t.strides.size() != t.dims.size()) {
    status_ = absl::InvalidArgumentError(absl::StrCat("view ", QuoteName(t.name), ": ", t.strides.size(),
                                                      " strides for ", t.dims.size(), " dims"));
    return {};
  }
  return AddTensor(std::move(t));
}

std::vector<Tensor> GraphBuilder::Op(absl::string_view op, std::vector<Tensor> inputs, Attrs attrs,
                                     std::string name) {
  if (!status_.ok()) return {};
  Node node;
  node.op = std::string(op);
  node.name = name.empty() ? absl::StrCat(op, "_", auto_names_++) : std::move(name);
  if (node_names_.contains(node.name)) {
    status_ = absl::InvalidArgumentError(absl::StrCat("node name ", QuoteName(node.name), " is used twice"));
    return {};
  }
  node.attrs = std::move(attrs);
  for (Tensor t : inputs) {
    if (t.id >= static_cast<int>(graph_.tensors.size())) {
      status_ = absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": an input is not a tensor of this graph"));
      return {};
    }
    node.inputs.push_back(t.id);
  }
  const OpSchema* schema = FindOp(op);
  if (schema) node.outputs.assign(schema->outputs.size(), -1);
  auto types = InferNode(graph_, node);
  if (!types.ok()) {
    status_ = types.status();
    return {};
  }
  std::vector<Tensor> out;
  const int ni = static_cast<int>(graph_.nodes.size());
  for (size_t o = 0; o < types->size(); ++o) {
    TensorInfo t;
    t.name = UniqueName(types->size() == 1 ? node.name : absl::StrCat(node.name, ".", schema->outputs[o]));
    t.dtype = (*types)[o].dtype;
    t.dims = (*types)[o].dims;
    t.producer = ni;
    Tensor h = AddTensor(std::move(t));
    if (!h.valid()) return {};
    node.outputs[o] = h.id;
    out.push_back(h);
  }
  node_names_.insert(node.name);
  graph_.nodes.push_back(std::move(node));
  return out;
}

void GraphBuilder::Output(Tensor t) {
  if (Check(t, "Output")) graph_.outputs.push_back(t.id);
}

void GraphBuilder::State(Tensor input, Tensor next) {
  if (Check(input, "State") && Check(next, "State")) graph_.states.push_back({input.id, next.id});
}

void GraphBuilder::SetMetadata(std::string key, std::string value) {
  graph_.metadata[std::move(key)] = std::move(value);
}

void GraphBuilder::Rename(Tensor t, std::string name) {
  if (!Check(t, "Rename")) return;
  if (auto it = tensor_ids_.find(name); it != tensor_ids_.end() && it->second != t.id) {
    status_ = absl::InvalidArgumentError(absl::StrCat("tensor name ", QuoteName(name), " is used twice"));
    return;
  }
  tensor_ids_.erase(graph_.tensors[t.id].name);
  tensor_ids_[name] = t.id;
  graph_.tensors[t.id].name = std::move(name);
}

absl::StatusOr<Graph> GraphBuilder::Build() {
  if (!status_.ok()) return status_;
  if (auto st = ValidateGraph(graph_); !st.ok()) return st;
  return std::move(graph_);
}

}  // namespace kiln
