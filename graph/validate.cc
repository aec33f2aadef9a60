#include "graph/validate.h"
#include "graph/message_text.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "ops/registry.h"

namespace kiln {
namespace {

absl::Status Bad(const TensorInfo& t, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat("tensor ", QuoteName(t.name), ": ", msg));
}

bool MulOk(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }

}  // namespace

absl::Status ValidateTensor(const Graph& graph, int id) {
  const TensorInfo& t = graph.tensors[id];
  if (t.name.empty()) return absl::InvalidArgumentError(absl::StrCat("tensor #", id, " has no name"));
  if (t.rank() < 1 || t.rank() > kMaxRank) {
    return Bad(t, absl::StrCat("rank ", t.rank(), " is outside 1..", kMaxRank));
  }
  int64_t numel = 1;
  for (int64_t d : t.dims) {
    if (d < 0 || d > kMaxDim) return Bad(t, absl::StrCat("dim ", d, " in ", ShapeString(t.dims), " is out of range"));
    if (!MulOk(numel, d, &numel) || numel > kMaxTensorBytes) {
      return Bad(t, absl::StrCat("shape ", ShapeString(t.dims), " has too many elements"));
    }
  }
  if (t.dtype == DType::kQ8_0 && t.dims.back() % kQ8BlockSize != 0) {
    return Bad(t, absl::StrCat("q8_0 needs the innermost dim to be a multiple of 32, got ",
                               t.dims.back()));
  }
  if (ContiguousBytes(t.dtype, t.dims) > kMaxTensorBytes || numel * 4 > kMaxTensorBytes) {
    return Bad(t, "is too large");
  }
  if (static_cast<int>(t.strides.size()) != t.rank()) {
    return Bad(t, absl::StrCat("has ", t.strides.size(), " strides for rank ", t.rank()));
  }
  if (t.strides.back() != ElementSize(t.dtype)) {
    return Bad(t, absl::StrCat("innermost stride must be ", ElementSize(t.dtype),
                               " bytes (contiguous), got ", t.strides.back()));
  }
  if (!t.is_view()) {
    if (t.offset != 0 || t.strides != ContiguousStrides(t.dtype, t.dims)) {
      return Bad(t, "only views may have an offset or non-contiguous strides");
    }
  } else {
    if (t.view_of >= static_cast<int>(graph.tensors.size()) || t.view_of == id) {
      return Bad(t, absl::StrCat("is a view of tensor #", t.view_of, ", which does not exist"));
    }
    const TensorInfo& base = graph.tensors[t.view_of];
    if (base.is_view()) return Bad(t, absl::StrCat("is a view of view ", QuoteName(base.name)));
    // The base's size is used below: it must be sane itself (no recursion:
    // a base is never a view).
    if (auto st = ValidateTensor(graph, t.view_of); !st.ok()) return st;
    if (t.constant) return Bad(t, "a view cannot carry constant data");
    for (int64_t s : t.strides) {
      if (s < 0 || s > kMaxTensorBytes) return Bad(t, absl::StrCat("stride ", s, " is out of range"));
    }
    if (t.offset < 0 || t.offset > kMaxTensorBytes) {
      return Bad(t, absl::StrCat("view offset ", t.offset, " is out of range"));
    }
    // Each term is below 2^40 * 2^46 only in theory; check every product.
    int64_t extent = 0;
    for (int i = 0; i + 1 < t.rank(); ++i) {
      int64_t span;
      if (t.dims[i] == 0) { extent = -1; break; }
      if (!MulOk(t.dims[i] - 1, t.strides[i], &span) || span > kMaxTensorBytes ||
          (extent += span) > kMaxTensorBytes) {
        return Bad(t, "view strides reach beyond any possible base");
      }
    }
    if (extent >= 0 && t.dims.back() > 0) {
      extent += RowBytes(t.dtype, t.dims.back());
      const int64_t base_bytes = ContiguousBytes(base.dtype, base.dims);
      if (t.offset + extent > base_bytes) {
        return Bad(t, absl::StrCat("view reads bytes [", t.offset, ", ", t.offset + extent,
                                   ") of base ", QuoteName(base.name), ", which has ", base_bytes));
      }
    }
  }
  if (t.constant) {
    const int64_t want = ContiguousBytes(t.dtype, t.dims);
    if (t.constant->size != static_cast<size_t>(want)) {
      return Bad(t, absl::StrCat("constant has ", t.constant->size, " bytes, expected ", want));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TensorType>> InferNode(const Graph& graph, Node& node) {
  if (node.name.empty()) return absl::InvalidArgumentError(absl::StrCat("a ", node.op, " node has no name"));
  const OpSchema* schema = FindOp(node.op);
  if (!schema) {
    return absl::InvalidArgumentError(absl::StrCat("node ", QuoteName(node.name), ": unknown op ", QuoteName(node.op)));
  }
  const int n_in = static_cast<int>(node.inputs.size());
  const int n_spec = static_cast<int>(schema->inputs.size());
  int n_required = 0;
  for (const InputSpec& s : schema->inputs) n_required += s.optional ? 0 : 1;
  if (n_in < n_required || (!schema->variadic && n_in > n_spec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        NodeLabel(node), ": has ", n_in, " inputs, expected ",
        schema->variadic ? absl::StrCat("at least ", n_required)
                         : (n_required == n_spec ? absl::StrCat(n_spec)
                                                 : absl::StrCat(n_required, " to ", n_spec))));
  }
  if (node.outputs.size() != schema->outputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": has ", node.outputs.size(),
                                                   " outputs, expected ", schema->outputs.size()));
  }
  std::vector<const TensorType*> in(n_in, nullptr);
  std::vector<TensorType> types(n_in);
  std::vector<std::string> roles(n_in), names(n_in);
  for (int i = 0; i < n_in; ++i) {
    const InputSpec& spec = schema->inputs[std::min(i, n_spec - 1)];
    roles[i] = spec.name;
    const int id = node.inputs[i];
    if (id == -1 && spec.optional) continue;
    if (id < 0 || id >= static_cast<int>(graph.tensors.size())) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": input '", spec.name,
                                                     "' refers to tensor #", id, ", which does not exist"));
    }
    const TensorInfo& t = graph.tensors[id];
    types[i] = {t.dtype, t.dims};
    in[i] = &types[i];
    names[i] = t.name;
  }
  if (auto st = NormalizeAttrs(*schema, node); !st.ok()) return st;
  InferContext ctx(node, std::move(in), std::move(roles), std::move(names));
  if (auto st = schema->infer(ctx); !st.ok()) return st;
  if (ctx.outputs.size() != schema->outputs.size()) {
    return absl::InternalError(absl::StrCat(NodeLabel(node), ": inference gave ", ctx.outputs.size(), " outputs"));
  }
  return std::move(ctx.outputs);
}

absl::Status ValidateGraph(Graph& graph) {
  const int n = static_cast<int>(graph.tensors.size());
  absl::flat_hash_set<absl::string_view> names;
  for (int id = 0; id < n; ++id) {
    if (auto st = ValidateTensor(graph, id); !st.ok()) return st;
    if (!names.insert(graph.tensors[id].name).second) {
      return absl::InvalidArgumentError(absl::StrCat("tensor name ", QuoteName(graph.tensors[id].name), " is used twice"));
    }
    graph.tensors[id].producer = -1;
  }
  std::vector<bool> defined(n, false), is_input(n, false);
  for (int id = 0; id < n; ++id) defined[id] = graph.tensors[id].is_constant();
  for (int id : graph.inputs) {
    if (id < 0 || id >= n) return absl::InvalidArgumentError(absl::StrCat("graph input #", id, " does not exist"));
    const TensorInfo& t = graph.tensors[id];
    if (is_input[id]) return Bad(t, "is listed twice as a graph input");
    if (t.is_constant() || t.is_view()) return Bad(t, "a graph input cannot be a constant or a view");
    is_input[id] = defined[id] = true;
  }
  auto is_defined = [&](int id) { return defined[graph.StorageOf(id)]; };
  std::vector<int> writer(n, -1);  // some node that writes each tensor, for messages
  for (int ni = 0; ni < static_cast<int>(graph.nodes.size()); ++ni) {
    for (int id : graph.nodes[ni].outputs) {
      if (id >= 0 && id < n) writer[id] = ni;
    }
  }
  absl::flat_hash_set<absl::string_view> node_names;
  for (int ni = 0; ni < static_cast<int>(graph.nodes.size()); ++ni) {
    Node& node = graph.nodes[ni];
    if (!node_names.insert(node.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("node name ", QuoteName(node.name), " is used twice"));
    }
    auto inferred = InferNode(graph, node);
    if (!inferred.ok()) return inferred.status();
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int id = node.inputs[i];
      if (id >= 0 && !is_defined(id)) {
        const int w = writer[graph.StorageOf(id)];
        return absl::InvalidArgumentError(absl::StrCat(
            NodeLabel(node), ": input tensor ", QuoteName(graph.tensors[id].name), " is not defined before use (",
            w >= 0 ? absl::StrCat("written by node ", QuoteName(graph.nodes[w].name), ": a cycle or nodes out of order")
                   : "dangling: no node writes it and it is not a graph input or a constant",
            ")"));
      }
    }
    for (size_t o = 0; o < node.outputs.size(); ++o) {
      const int id = node.outputs[o];
      if (id < 0 || id >= n) {
        return absl::InvalidArgumentError(absl::StrCat(NodeLabel(node), ": output #", o, " refers to tensor #", id,
                                                       ", which does not exist"));
      }
      TensorInfo& t = graph.tensors[id];
      if (t.is_constant() || t.is_view() || is_input[id] || t.producer >= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            NodeLabel(node), ": output tensor '", t.name,
            "' is already a constant, a view, a graph input or another node's output"));
      }
      const TensorType& want = (*inferred)[o];
      if (t.dtype != want.dtype || t.dims != want.dims) {
        return absl::InvalidArgumentError(absl::StrCat(
            NodeLabel(node), ": output tensor ", Describe(t), " does not match the inferred ",
            DTypeName(want.dtype), " ", ShapeString(want.dims)));
      }
      t.producer = ni;
      defined[id] = true;
    }
  }
  for (int id = 0; id < n; ++id) {
    if (!is_defined(id)) {
      return Bad(graph.tensors[id], "is dangling: not a graph input, a constant, a view of one, or a node output");
    }
  }
  if (graph.outputs.empty()) return absl::InvalidArgumentError("the graph has no outputs");
  absl::flat_hash_set<int> outs;
  for (int id : graph.outputs) {
    if (id < 0 || id >= n) return absl::InvalidArgumentError(absl::StrCat("graph output #", id, " does not exist"));
    if (!outs.insert(id).second) return Bad(graph.tensors[id], "is listed twice as a graph output");
  }
  absl::flat_hash_set<int> state_ins, state_outs;
  for (const StatePair& s : graph.states) {
    if (s.input < 0 || s.input >= n || !is_input[s.input]) {
      return absl::InvalidArgumentError(absl::StrCat("state input #", s.input, " is not a graph input"));
    }
    if (s.output < 0 || s.output >= n || !outs.contains(s.output)) {
      return absl::InvalidArgumentError(absl::StrCat("state output #", s.output, " is not a graph output"));
    }
    const TensorInfo& a = graph.tensors[s.input];
    const TensorInfo& b = graph.tensors[s.output];
    if (a.dtype != b.dtype || a.dims != b.dims) {
      return Bad(b, absl::StrCat("is declared the next value of state ", Describe(a), " but is ",
                                 DTypeName(b.dtype), " ", ShapeString(b.dims)));
    }
    if (b.is_view() || b.producer < 0) return Bad(b, "a state's next value must be a node output");
    if (!state_ins.insert(s.input).second || !state_outs.insert(s.output).second) {
      return Bad(a, "appears in two state pairs");
    }
  }
  return absl::OkStatus();
}

}  // namespace kiln
