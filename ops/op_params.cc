#include "ops/op_params.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/op_schema.h"
#include "ops/registry.h"

namespace kiln {
namespace {

const TensorLayout& Absent() {
  static const TensorLayout kAbsent;
  return kAbsent;
}

// Fills strides/offset in elements from the byte ones (q8_0: values of the
// block stream); -1 and element_aligned = false where that is not exact.
void FillElementStrides(TensorLayout& l) {
  const bool q8 = l.dtype == DType::kQ8_0;
  const int64_t unit = q8 ? kQ8BlockBytes : ElementSize(l.dtype);
  const int64_t per_unit = q8 ? kQ8BlockSize : 1;
  auto to_elements = [&](int64_t bytes) -> int64_t {
    if (unit <= 0 || bytes % unit != 0) {
      l.element_aligned = false;
      return -1;
    }
    return bytes / unit * per_unit;
  };
  for (int i = 0; i < l.rank; ++i) {
    l.strides[i] = (q8 && i == l.rank - 1) ? 1 : to_elements(l.byte_strides[i]);
  }
  l.offset = to_elements(l.byte_offset);
  if (!l.element_aligned) {
    for (int i = 0; i < l.rank; ++i) l.strides[i] = -1;
    l.offset = -1;
  }
}

std::string DescribeLayout(const TensorLayout& l) {
  std::vector<int64_t> dims(l.dims.begin(), l.dims.begin() + l.rank);
  return absl::StrCat(DTypeName(l.dtype), " ", ShapeString(dims));
}

}  // namespace

int64_t TensorLayout::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= dims[i];
  return n;
}

bool TensorLayout::contiguous() const {
  if (!element_aligned) return false;
  int64_t want = 1;
  for (int i = rank - 1; i >= 0; --i) {
    if (dims[i] != 1 && strides[i] != want) return false;
    want *= dims[i];
  }
  return true;
}

int64_t TensorLayout::ElementOffset(const int64_t* idx) const {
  int64_t x = offset;
  for (int i = 0; i < rank; ++i) x += idx[i] * strides[i];
  return x;
}

TensorLayout LayoutOf(const TensorInfo& t, int tensor_id) {
  TensorLayout l;
  l.present = true;
  l.dtype = t.dtype;
  l.rank = std::min<int>(t.rank(), kMaxRank);
  for (int i = 0; i < l.rank; ++i) {
    l.dims[i] = t.dims[i];
    l.byte_strides[i] = i < static_cast<int>(t.strides.size()) ? t.strides[i] : 0;
  }
  l.byte_offset = t.is_view() ? t.offset : 0;
  l.storage = t.is_view() ? t.view_of : tensor_id;
  FillElementStrides(l);
  return l;
}

TensorLayout LayoutOf(const TensorView& v) {
  TensorLayout l;
  // Absent: no data. A tensor of zero elements may have no data either, but
  // it has dims (one of them 0).
  if (!v.present() && (v.rank == 0 || v.numel() != 0)) return l;
  l.present = true;
  l.dtype = v.dtype;
  l.rank = v.rank;
  l.dims = v.dims;
  l.byte_strides = v.strides;
  FillElementStrides(l);
  return l;
}

TensorLayout LayoutOf(DType dtype, absl::Span<const int64_t> dims) {
  TensorLayout l;
  l.present = true;
  l.dtype = dtype;
  l.rank = std::min<int>(static_cast<int>(dims.size()), kMaxRank);
  // Contiguous: q8_0 rows are whole blocks (dims validated elsewhere).
  int64_t elems = 1;
  for (int i = l.rank - 1; i >= 0; --i) {
    l.dims[i] = dims[i];
    l.strides[i] = elems;
    if (dtype == DType::kQ8_0) {
      l.byte_strides[i] = i == l.rank - 1 ? 0 : elems / kQ8BlockSize * kQ8BlockBytes;
    } else {
      l.byte_strides[i] = elems * ElementSize(dtype);
    }
    elems *= dims[i];
  }
  return l;
}

ParamContext::ParamContext(const Graph& graph, const Node& node) : node_(&node), graph_(&graph) {
  const int nt = static_cast<int>(graph.tensors.size());
  if (node.inputs.size() > kMaxInputs || node.outputs.size() > kMaxOutputs) {
    status_ = absl::InvalidArgumentError(
        absl::StrCat(NodeLabel(node), ": too many operands for a parameter resolver"));
    return;
  }
  num_inputs_ = static_cast<int>(node.inputs.size());
  num_outputs_ = static_cast<int>(node.outputs.size());
  for (int i = 0; i < num_inputs_; ++i) {
    const int id = node.inputs[i];
    if (id < 0) continue;
    if (id >= nt) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat(NodeLabel(node), ": input ", i, " names tensor ", id, " of ", nt));
      return;
    }
    inputs_[i] = LayoutOf(graph.tensors[id], id);
  }
  for (int i = 0; i < num_outputs_; ++i) {
    const int id = node.outputs[i];
    if (id < 0 || id >= nt) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat(NodeLabel(node), ": output ", i, " names tensor ", id, " of ", nt));
      return;
    }
    outputs_[i] = LayoutOf(graph.tensors[id], id);
  }
}

ParamContext::ParamContext(const Node& node, absl::Span<const TensorView> inputs,
                           absl::Span<const TensorView> outputs)
    : node_(&node) {
  if (inputs.size() > kMaxInputs || outputs.size() > kMaxOutputs) {
    status_ = absl::InvalidArgumentError(
        absl::StrCat(NodeLabel(node), ": too many operands for a parameter resolver"));
    return;
  }
  num_inputs_ = static_cast<int>(inputs.size());
  num_outputs_ = static_cast<int>(outputs.size());
  for (int i = 0; i < num_inputs_; ++i) inputs_[i] = LayoutOf(inputs[i]);
  for (int i = 0; i < num_outputs_; ++i) outputs_[i] = LayoutOf(outputs[i]);
}

ParamContext::ParamContext(const InferContext& ctx) : node_(&ctx.node()), infer_(&ctx) {
  if (ctx.num_inputs() > kMaxInputs) {
    status_ = ctx.Error("too many operands for a parameter resolver");
    return;
  }
  num_inputs_ = ctx.num_inputs();
  for (int i = 0; i < num_inputs_; ++i) {
    if (const TensorType* t = ctx.input(i)) inputs_[i] = LayoutOf(t->dtype, t->dims);
  }
}

const TensorLayout& ParamContext::input(int i) const {
  return i >= 0 && i < num_inputs_ ? inputs_[i] : Absent();
}

const TensorLayout& ParamContext::output(int i) const {
  return i >= 0 && i < num_outputs_ ? outputs_[i] : Absent();
}

absl::Status ParamContext::Error(absl::string_view msg) const {
  if (infer_) return infer_->Error(msg);
  return absl::InvalidArgumentError(absl::StrCat(NodeLabel(*node_), ": ", msg));
}

absl::Status ParamContext::InputError(int i, absl::string_view msg) const {
  if (infer_) return infer_->InputError(i, msg);
  std::string what = absl::StrCat("input ", i);
  const OpSchema* schema = FindOp(node_->op);
  if (schema && !schema->inputs.empty()) {
    const size_t spec = std::min<size_t>(i, schema->inputs.size() - 1);
    what = absl::StrCat("input '", schema->inputs[spec].name, "'");
  }
  const TensorLayout& l = input(i);
  if (l.present) {
    if (graph_) {
      absl::StrAppend(&what, " (tensor '", graph_->tensors[node_->inputs[i]].name, "' ",
                      DescribeLayout(l), ")");
    } else {
      absl::StrAppend(&what, " (", DescribeLayout(l), ")");
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(NodeLabel(*node_), ": ", what, ": ", msg));
}

absl::Status ParamContext::OutputError(int i, absl::string_view msg) const {
  std::string what = absl::StrCat("output ", i);
  const OpSchema* schema = FindOp(node_->op);
  if (schema && i < static_cast<int>(schema->outputs.size())) {
    what = absl::StrCat("output '", schema->outputs[i], "'");
  }
  const TensorLayout& l = output(i);
  if (l.present) {
    if (graph_) {
      absl::StrAppend(&what, " (tensor '", graph_->tensors[node_->outputs[i]].name, "' ",
                      DescribeLayout(l), ")");
    } else {
      absl::StrAppend(&what, " (", DescribeLayout(l), ")");
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(NodeLabel(*node_), ": ", what, ": ", msg));
}

absl::Status ParamContext::CheckWithSchema() const {
  if (!status_.ok()) return status_;
  if (graph_ == nullptr) return absl::OkStatus();
  const OpSchema* schema = FindOp(node_->op);
  if (schema == nullptr) return Error("unknown op");
  if (schema->infer == nullptr) return absl::OkStatus();
  std::vector<TensorType> types(num_inputs_);
  std::vector<const TensorType*> ptrs(num_inputs_, nullptr);
  std::vector<std::string> roles, names;
  for (int i = 0; i < num_inputs_; ++i) {
    const size_t spec = schema->inputs.empty() ? 0 : std::min<size_t>(i, schema->inputs.size() - 1);
    roles.push_back(schema->inputs.empty() ? "" : schema->inputs[spec].name);
    names.push_back(inputs_[i].present ? graph_->tensors[node_->inputs[i]].name : "");
    if (!inputs_[i].present) continue;
    types[i].dtype = inputs_[i].dtype;
    types[i].dims.assign(inputs_[i].dims.begin(), inputs_[i].dims.begin() + inputs_[i].rank);
    ptrs[i] = &types[i];
  }
  InferContext ctx(*node_, ptrs, roles, names);
  if (absl::Status st = schema->infer(ctx); !st.ok()) return st;
  if (static_cast<int>(ctx.outputs.size()) != num_outputs_) {
    return Error(absl::StrCat("has ", num_outputs_, " outputs; the op writes ", ctx.outputs.size()));
  }
  for (int i = 0; i < num_outputs_; ++i) {
    if (absl::Status st = CheckOutput(*this, i, ctx.outputs[i].dtype, ctx.outputs[i].dims); !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOutput(const ParamContext& ctx, int i, DType dtype,
                         absl::Span<const int64_t> dims) {
  if (!ctx.has_outputs()) return absl::OkStatus();
  const TensorLayout& o = ctx.output(i);
  bool same = o.present && o.dtype == dtype && o.rank == static_cast<int>(dims.size());
  for (int d = 0; same && d < o.rank; ++d) same = o.dims[d] == dims[d];
  if (!same) {
    return ctx.OutputError(i, absl::StrCat("must be ", DTypeName(dtype), " ",
                                           ShapeString(std::vector<int64_t>(dims.begin(), dims.end()))));
  }
  return absl::OkStatus();
}

}  // namespace kiln
