// Loading graph files: parse, check every field a stranger could get wrong,
// map external weights, sort nodes, then ValidateGraph.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "graph/message_text.h"
#include "graph/validate.h"
#include "ops/op_schema.h"
#include "proto/graph_io.h"
#include "proto/kiln.pb.h"
#include "proto/mapped_file.h"
#include "proto/safe_path.h"
#include "proto/topo_sort.h"
#include "proto/wire_scan.h"

namespace kiln {
namespace {

namespace pb = ::kiln::v1;

absl::Status Invalid(absl::string_view a, absl::string_view b = "", absl::string_view c = "",
                     absl::string_view d = "") {
  return absl::InvalidArgumentError(absl::StrCat(a, b, c, d));
}

absl::Status CheckLength(absl::string_view what, const std::string& s, int64_t limit) {
  if (static_cast<int64_t>(s.size()) <= limit) return absl::OkStatus();
  return Invalid(absl::StrCat(what, " has ", s.size(), " bytes, more than the limit of ", limit));
}

absl::StatusOr<DType> ToDType(pb::DType t) {
  switch (t) {
    case pb::F32: return DType::kF32;
    case pb::F16: return DType::kF16;
    case pb::BF16: return DType::kBF16;
    case pb::I32: return DType::kI32;
    case pb::Q8_0: return DType::kQ8_0;
    case pb::DTYPE_UNSPECIFIED: return Invalid("has no dtype");
    default: break;  // an open proto3 enum may hold any int
  }
  return Invalid(absl::StrCat("has an unknown dtype value ", static_cast<int>(t),
                              " (expected f32, f16, bf16, i32 or q8_0)"));
}

// Contiguous byte size of `dims`, with every step overflow-checked (the
// graph/ helpers assume validated dims; these are not validated yet).
absl::StatusOr<int64_t> SafeContiguousBytes(DType dtype, const std::vector<int64_t>& dims) {
  if (dims.empty() || static_cast<int>(dims.size()) > kMaxRank) {
    return Invalid(absl::StrCat("has rank ", dims.size(), ", expected 1..", kMaxRank));
  }
  for (int64_t d : dims) {
    if (d < 0 || d > kMaxDim) {
      return Invalid(absl::StrCat("has dim ", d, " in ", ShapeString(dims), ", expected 0..", kMaxDim));
    }
  }
  const int64_t inner = dims.back();
  if (dtype == DType::kQ8_0 && inner % kQ8BlockSize != 0) {
    return Invalid(absl::StrCat("is q8_0 with innermost dim ", inner, ", expected a multiple of ",
                                kQ8BlockSize));
  }
  int64_t bytes = RowBytes(dtype, inner);  // inner <= 2^40: cannot overflow
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    if (__builtin_mul_overflow(bytes, dims[i], &bytes) || bytes > kMaxTensorBytes) {
      return Invalid(absl::StrCat("shape ", ShapeString(dims), " is too large"));
    }
  }
  if (bytes > kMaxTensorBytes) return Invalid(absl::StrCat("shape ", ShapeString(dims), " is too large"));
  return bytes;
}

class Loader {
 public:
  Loader(std::string folder, const LoadOptions& options)
      : folder_(std::move(folder)), opt_(options) {}

  absl::StatusOr<Graph> Load(pb::Graph& proto);

 private:
  absl::Status CheckHeader(const pb::Graph& proto);
  absl::Status ConvertTensor(int id, const pb::Graph& proto, pb::Tensor& in, TensorInfo& out);
  absl::Status ConvertData(pb::Tensor& in, int64_t bytes, TensorInfo& out);
  absl::Status ConvertNode(int index, int num_tensors, const pb::Node& in, Node& out);
  absl::StatusOr<std::shared_ptr<const MappedFile>> External(const std::string& path);

  std::string folder_;
  const LoadOptions& opt_;
  std::map<std::string, std::shared_ptr<const MappedFile>> files_;  // by path as written
};

absl::Status Loader::CheckHeader(const pb::Graph& proto) {
  if (proto.format_version() == 0) {
    return Invalid("the file has no format_version: not a kiln graph, or a truncated one");
  }
  if (proto.format_version() > kGraphFormatVersion) {
    return Invalid(absl::StrCat("format_version ", proto.format_version(),
                                " is newer than this kiln reads (", kGraphFormatVersion,
                                "); upgrade kiln to load this graph"));
  }
  // Counts were checked by ScanGraphWire before parsing; lengths are here.
  if (auto st = CheckLength("the graph name", proto.name(), opt_.max_name_bytes); !st.ok()) return st;
  for (const auto& [key, value] : proto.metadata()) {
    if (auto st = CheckLength("a metadata key", key, opt_.max_string_bytes); !st.ok()) return st;
    if (auto st = CheckLength(absl::StrCat("metadata ", QuoteName(key)), value, opt_.max_string_bytes);
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const MappedFile>> Loader::External(const std::string& path) {
  if (auto it = files_.find(path); it != files_.end()) return it->second;
  if (static_cast<int64_t>(files_.size()) >= opt_.max_external_files) {
    return Invalid(absl::StrCat("the graph refers to more than ", opt_.max_external_files,
                                " external files"));
  }
  auto resolved = ResolveInsideFolder(folder_, path);
  if (!resolved.ok()) return resolved.status();
  // The canonical path has no symlinks; O_NOFOLLOW keeps it that way.
  auto file = MappedFile::Open(*resolved, /*no_follow=*/true);
  if (!file.ok()) return file.status();
  files_.emplace(path, *file);
  return *file;
}

absl::Status Loader::ConvertData(pb::Tensor& in, int64_t bytes, TensorInfo& out) {
  const std::string expected = absl::StrCat(bytes, " (", DTypeName(out.dtype), " ",
                                            ShapeString(out.dims), ")");
  if (in.data_case() == pb::Tensor::kInlineData) {
    if (static_cast<int64_t>(in.inline_data().size()) != bytes) {
      return Invalid(absl::StrCat("has ", in.inline_data().size(), " bytes of inline data, expected ",
                                  expected));
    }
    // Take the parsed bytes over rather than copying them.
    auto owned = std::make_shared<std::string>(std::move(*in.mutable_inline_data()));
    auto c = std::make_shared<ConstantData>();
    c->data = reinterpret_cast<const std::byte*>(owned->data());
    c->size = owned->size();
    c->keepalive = std::move(owned);
    out.constant = std::move(c);
    return absl::OkStatus();
  }
  const pb::ExternalData& ext = in.external();
  if (auto st = CheckLength("its external path", ext.path(), opt_.max_name_bytes); !st.ok()) return st;
  if (ext.length() != static_cast<uint64_t>(bytes)) {
    return Invalid(absl::StrCat("has ", ext.length(), " bytes of external data, expected ", expected));
  }
  auto file = External(ext.path());
  if (!file.ok()) return file.status();
  uint64_t end;
  if (__builtin_add_overflow(ext.offset(), ext.length(), &end) || end > (*file)->size()) {
    return Invalid(absl::StrCat("has external data at offset ", ext.offset(), " length ", ext.length(),
                                ", beyond the end of \"", ext.path(), "\" (", (*file)->size(), " bytes)"));
  }
  const std::byte* data = bytes > 0 ? (*file)->data() + ext.offset() : nullptr;
  if (ext.offset() % static_cast<uint64_t>(ExternalMapAlignment(out.dtype)) != 0) {
    // Not even element-aligned: a copy is the safe path.
    out.constant = ConstantData::Copy(data, static_cast<size_t>(bytes));
    return absl::OkStatus();
  }
  auto c = std::make_shared<ConstantData>();
  c->data = data;
  c->size = static_cast<size_t>(bytes);
  c->origin = absl::StrCat("file:", (*file)->identity(), ":", ext.offset(), ":", ext.length());
  c->keepalive = *file;
  out.constant = std::move(c);
  return absl::OkStatus();
}

absl::Status Loader::ConvertTensor(int id, const pb::Graph& proto, pb::Tensor& in, TensorInfo& out) {
  if (auto st = CheckLength(absl::StrCat("the name of tensor #", id), in.name(), opt_.max_name_bytes);
      !st.ok()) {
    return st;
  }
  out.name = in.name();
  // Checks below report against this label; ValidateGraph adds the rest.
  const std::string label = out.name.empty() ? absl::StrCat("tensor #", id, ": ")
                                             : absl::StrCat("tensor ", QuoteName(out.name), ": ");
  auto fail = [&](const absl::Status& st) {
    return absl::Status(st.code(), absl::StrCat(label, st.message()));
  };
  auto dtype = ToDType(in.dtype());
  if (!dtype.ok()) return fail(dtype.status());
  out.dtype = *dtype;
  if (in.dims_size() > kMaxRank) {
    return fail(Invalid(absl::StrCat("has rank ", in.dims_size(), ", expected 1..", kMaxRank)));
  }
  out.dims.assign(in.dims().begin(), in.dims().end());
  auto bytes = SafeContiguousBytes(out.dtype, out.dims);
  if (!bytes.ok()) return fail(bytes.status());

  if (in.has_view()) {
    const pb::View& v = in.view();
    if (in.data_case() != pb::Tensor::DATA_NOT_SET) return fail(Invalid("is a view and cannot carry data"));
    if (v.base() == id) return fail(Invalid("is a view of itself"));
    if (v.base() < 0 || v.base() >= proto.tensors_size()) {
      return fail(Invalid(absl::StrCat("is a view of tensor #", v.base(), ", which does not exist")));
    }
    if (proto.tensors(v.base()).has_view()) {
      return fail(Invalid(absl::StrCat("is a view of tensor #", v.base(), ", itself a view")));
    }
    if (v.strides_size() != in.dims_size()) {
      return fail(Invalid(absl::StrCat("is a view with ", v.strides_size(), " strides for rank ",
                                       in.dims_size())));
    }
    // Stride, offset and extent ranges are checked by ValidateTensor, with
    // overflow-safe arithmetic, once every tensor's dims are known good.
    out.view_of = v.base();
    out.offset = v.offset();
    out.strides.assign(v.strides().begin(), v.strides().end());
    return absl::OkStatus();
  }
  out.strides = ContiguousStrides(out.dtype, out.dims);
  if (in.data_case() == pb::Tensor::DATA_NOT_SET) return absl::OkStatus();
  if (auto st = ConvertData(in, *bytes, out); !st.ok()) return fail(st);
  return absl::OkStatus();
}

absl::Status Loader::ConvertNode(int index, int num_tensors, const pb::Node& in, Node& out) {
  for (auto st : {CheckLength(absl::StrCat("the name of node #", index), in.name(), opt_.max_name_bytes),
                  CheckLength(absl::StrCat("the op of node #", index), in.op(), opt_.max_name_bytes)}) {
    if (!st.ok()) return st;
  }
  out.name = in.name();
  out.op = in.op();
  const std::string label = NodeLabel(out);
  for (int i = 0; i < in.inputs_size(); ++i) {
    const int id = in.inputs(i);
    if (id < -1 || id >= num_tensors) {
      return Invalid(label, absl::StrCat(": input #", i, " refers to tensor #", id,
                                         ", which does not exist (-1 marks an absent input)"));
    }
  }
  for (int i = 0; i < in.outputs_size(); ++i) {
    const int id = in.outputs(i);
    if (id < 0 || id >= num_tensors) {
      return Invalid(label, absl::StrCat(": output #", i, " refers to tensor #", id, ", which does not exist"));
    }
  }
  out.inputs.assign(in.inputs().begin(), in.inputs().end());
  out.outputs.assign(in.outputs().begin(), in.outputs().end());
  for (const auto& [key, value] : in.attrs()) {
    if (auto st = CheckLength(absl::StrCat(label, ": an attribute name"), key, opt_.max_name_bytes); !st.ok()) {
      return st;
    }
    const std::string what = absl::StrCat(label, ": attribute ", QuoteName(key));
    switch (value.value_case()) {
      case pb::AttrValue::kB: out.attrs.emplace(key, value.b()); break;
      case pb::AttrValue::kI: out.attrs.emplace(key, value.i()); break;
      case pb::AttrValue::kF: out.attrs.emplace(key, value.f()); break;
      case pb::AttrValue::kS:
        if (auto st = CheckLength(what, value.s(), opt_.max_string_bytes); !st.ok()) return st;
        out.attrs.emplace(key, value.s());
        break;
      case pb::AttrValue::kInts:
        out.attrs.emplace(key, std::vector<int64_t>(value.ints().values().begin(), value.ints().values().end()));
        break;
      default:
        return Invalid(what, " has no value");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Graph> Loader::Load(pb::Graph& proto) {
  if (auto st = CheckHeader(proto); !st.ok()) return st;
  Graph graph;
  graph.name = proto.name();
  graph.metadata.insert(proto.metadata().begin(), proto.metadata().end());

  const int num_tensors = proto.tensors_size();
  graph.tensors.resize(num_tensors);
  for (int id = 0; id < num_tensors; ++id) {
    if (auto st = ConvertTensor(id, proto, *proto.mutable_tensors(id), graph.tensors[id]); !st.ok()) {
      return st;
    }
  }
  graph.nodes.resize(proto.nodes_size());
  for (int i = 0; i < proto.nodes_size(); ++i) {
    if (auto st = ConvertNode(i, num_tensors, proto.nodes(i), graph.nodes[i]); !st.ok()) return st;
  }
  // Graph inputs, outputs and states are range-checked by ValidateGraph.
  graph.inputs.assign(proto.inputs().begin(), proto.inputs().end());
  graph.outputs.assign(proto.outputs().begin(), proto.outputs().end());
  for (const pb::StatePair& s : proto.states()) graph.states.push_back({s.input(), s.output()});

  if (auto st = SortNodesTopologically(graph); !st.ok()) return st;
  if (auto st = ValidateGraph(graph); !st.ok()) return st;
  return graph;
}

absl::Status WithPrefix(const absl::Status& st, absl::string_view prefix) {
  return absl::Status(st.code(), absl::StrCat(prefix, st.message()));
}

}  // namespace

absl::StatusOr<Graph> ParseGraph(absl::string_view bytes, const std::string& folder,
                                 const LoadOptions& options) {
  const int64_t cap = std::min<int64_t>(options.max_file_bytes, std::numeric_limits<int32_t>::max());
  if (static_cast<int64_t>(bytes.size()) > cap) {
    return Invalid(absl::StrCat("the graph file has ", bytes.size(), " bytes, more than the limit of ", cap));
  }
  if (auto st = ScanGraphWire(bytes, options); !st.ok()) return st;
  pb::Graph proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Invalid("the file is not a valid kiln graph: protobuf parsing failed (truncated or corrupt)");
  }
  Loader loader(folder, options);
  return loader.Load(proto);
}

absl::StatusOr<Graph> LoadGraph(const std::string& path, const LoadOptions& options) {
  const int64_t cap = std::min<int64_t>(options.max_file_bytes, std::numeric_limits<int32_t>::max());
  auto bytes = ReadCappedFile(path, cap);
  if (!bytes.ok()) return bytes.status();
  std::string folder = std::filesystem::path(path).parent_path().string();
  auto graph = ParseGraph(*bytes, folder.empty() ? "." : folder, options);
  if (!graph.ok()) return WithPrefix(graph.status(), absl::StrCat(path, ": "));
  return graph;
}

}  // namespace kiln
