// Saving graph files: validate, convert to the proto, write the weights file
// and the graph file atomically.
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <utility>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "graph/validate.h"
#include "base/atomic_file.h"
#include "proto/graph_io.h"
#include "proto/kiln.pb.h"
#include "proto/mapped_file.h"

namespace kiln {
namespace {

namespace pb = ::kiln::v1;

pb::DType ToProto(DType t) {
  switch (t) {
    case DType::kF32: return pb::F32;
    case DType::kF16: return pb::F16;
    case DType::kBF16: return pb::BF16;
    case DType::kI32: return pb::I32;
    case DType::kQ8_0: return pb::Q8_0;
  }
  return pb::DTYPE_UNSPECIFIED;
}

void ToProto(const AttrValue& v, pb::AttrValue& out) {
  struct {
    pb::AttrValue& out;
    void operator()(bool b) { out.set_b(b); }
    void operator()(int64_t i) { out.set_i(i); }
    void operator()(double f) { out.set_f(f); }
    void operator()(const std::string& s) { out.set_s(s); }
    void operator()(const std::vector<int64_t>& l) {
      out.mutable_ints()->mutable_values()->Add(l.begin(), l.end());
    }
  } visitor{out};
  std::visit(visitor, v);
}

// Appends constants to the external weights file (created on first use) at
// 64-byte aligned offsets; a constant shared by several tensors is written once.
class WeightsWriter {
 public:
  explicit WeightsWriter(std::string path) : path_(std::move(path)) {}

  absl::StatusOr<uint64_t> Append(const ConstantData& c) {
    if (auto it = written_.find({c.data, c.size}); it != written_.end()) return it->second;
    if (!file_) {
      auto file = AtomicFile::Create(path_);
      if (!file.ok()) return file.status();
      file_ = std::move(*file);
    }
    const uint64_t pad = (kExternalAlignment - file_->size() % kExternalAlignment) % kExternalAlignment;
    if (auto st = file_->WriteZeros(pad); !st.ok()) return st;
    const uint64_t offset = file_->size();
    if (auto st = file_->Write(c.data, c.size); !st.ok()) return st;
    written_.emplace(std::make_pair(c.data, c.size), offset);
    return offset;
  }

  AtomicFile* file() { return file_.get(); }  // nullptr when nothing was written

 private:
  std::string path_;
  std::unique_ptr<AtomicFile> file_;
  std::map<std::pair<const std::byte*, size_t>, uint64_t> written_;
};

// The path of `range`'s file relative to the graph's folder, checked the
// way LoadGraph will resolve it: inside the folder once symlinks are
// resolved, long enough for the bytes, at an aligned offset.
absl::StatusOr<std::string> InPlacePath(const std::string& graph_path, const TensorInfo& t,
                                        const FileRange& range) {
  namespace fs = std::filesystem;
  auto fail = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("constant ", Describe(t), " cannot refer to \"", range.path,
                                                   "\" at offset ", range.offset, ": ", why));
  };
  const uint64_t align = static_cast<uint64_t>(ExternalMapAlignment(t.dtype));
  if (range.offset % align != 0) {
    return fail(absl::StrCat("the offset is not a multiple of ", align, " (", DTypeName(t.dtype), ")"));
  }
  std::error_code ec;
  const fs::path folder = fs::weakly_canonical(fs::absolute(fs::path(graph_path)).parent_path(), ec);
  if (ec) return fail(ec.message());
  const fs::path file = fs::canonical(range.path, ec);
  if (ec) return fail(ec.message());
  const fs::path relative = file.lexically_relative(folder);
  if (relative.empty() || *relative.begin() == "..") return fail("the file is not inside the graph's folder");
  const uintmax_t size = fs::file_size(file, ec);
  if (ec) return fail(ec.message());
  if (range.offset > size || t.constant->size > size - range.offset) {
    return fail(absl::StrCat("the file has only ", size, " bytes"));
  }
  return relative.string();
}

// identity ("device:inode:mtime") -> the name of a reference file in the
// graph's folder.
using ReferenceFiles = std::map<std::string, std::string, std::less<>>;

absl::StatusOr<ReferenceFiles> OpenReferenceFiles(const SaveOptions& options, const std::string& graph_path) {
  ReferenceFiles out;
  const auto folder = std::filesystem::absolute(graph_path).parent_path().lexically_normal();
  for (const std::string& f : options.reference_files) {
    const auto p = std::filesystem::absolute(f).lexically_normal();
    if (p.parent_path() != folder) {
      return absl::InvalidArgumentError(absl::StrCat("reference file \"", f, "\" is not in the folder of \"",
                                                     graph_path, "\""));
    }
    auto mapped = MappedFile::Open(p.string(), /*no_follow=*/true);
    if (!mapped.ok()) return absl::Status(mapped.status().code(), absl::StrCat(f, ": ", mapped.status().message()));
    out.emplace((*mapped)->identity(), p.filename().string());
  }
  return out;
}

// The file, offset and length a "file:<identity>:<offset>:<length>" origin
// names, when the identity is one of `refs`.
bool ReferenceOf(const ConstantData& c, const ReferenceFiles& refs, std::string* path, uint64_t* offset) {
  if (refs.empty() || c.origin.rfind("file:", 0) != 0) return false;
  const size_t len_at = c.origin.rfind(':');
  if (len_at == std::string::npos || len_at < 5) return false;
  const size_t off_at = c.origin.rfind(':', len_at - 1);
  if (off_at == std::string::npos || off_at < 5) return false;
  auto it = refs.find(absl::string_view(c.origin).substr(5, off_at - 5));
  if (it == refs.end()) return false;
  uint64_t length = 0;
  if (!absl::SimpleAtoi(absl::string_view(c.origin).substr(off_at + 1, len_at - off_at - 1), offset) ||
      !absl::SimpleAtoi(absl::string_view(c.origin).substr(len_at + 1), &length) || length != c.size) {
    return false;
  }
  *path = it->second;
  return true;
}

absl::Status ToProto(const Graph& graph, const SaveOptions& options, const std::string& path,
                     const ReferenceFiles& refs,
                     WeightsWriter& weights, const std::string& weights_name, pb::Graph& proto) {
  proto.set_format_version(kGraphFormatVersion);
  proto.set_name(graph.name);
  for (const auto& [key, value] : graph.metadata) (*proto.mutable_metadata())[key] = value;
  for (const TensorInfo& t : graph.tensors) {
    pb::Tensor& pt = *proto.add_tensors();
    pt.set_name(t.name);
    pt.set_dtype(ToProto(t.dtype));
    pt.mutable_dims()->Add(t.dims.begin(), t.dims.end());
    if (t.is_view()) {
      pb::View& v = *pt.mutable_view();
      v.set_base(t.view_of);
      v.set_offset(t.offset);
      v.mutable_strides()->Add(t.strides.begin(), t.strides.end());
    }
    if (!t.constant) continue;
    const ConstantData& c = *t.constant;
    uint64_t ref_offset = 0;
    if (auto it = options.in_place.find(c.data); it != options.in_place.end() && c.size > 0) {
      auto relative = InPlacePath(path, t, it->second);
      if (!relative.ok()) return relative.status();
      pb::ExternalData& ext = *pt.mutable_external();
      ext.set_path(*relative);
      ext.set_offset(it->second.offset);
      ext.set_length(c.size);
    } else if (std::string ref_path; ReferenceOf(c, refs, &ref_path, &ref_offset)) {
      pb::ExternalData& ext = *pt.mutable_external();
      ext.set_path(ref_path);
      ext.set_offset(ref_offset);
      ext.set_length(c.size);
    } else if (options.external_weights && static_cast<int64_t>(c.size) >= options.external_min_bytes) {
      auto offset = weights.Append(c);
      if (!offset.ok()) return offset.status();
      pb::ExternalData& ext = *pt.mutable_external();
      ext.set_path(weights_name);
      ext.set_offset(*offset);
      ext.set_length(c.size);
    } else {
      pt.set_inline_data(reinterpret_cast<const char*>(c.data), c.size);
    }
  }
  for (const Node& n : graph.nodes) {
    pb::Node& pn = *proto.add_nodes();
    pn.set_name(n.name);
    pn.set_op(n.op);
    pn.mutable_inputs()->Add(n.inputs.begin(), n.inputs.end());
    pn.mutable_outputs()->Add(n.outputs.begin(), n.outputs.end());
    for (const auto& [key, value] : n.attrs) ToProto(value, (*pn.mutable_attrs())[key]);
  }
  proto.mutable_inputs()->Add(graph.inputs.begin(), graph.inputs.end());
  proto.mutable_outputs()->Add(graph.outputs.begin(), graph.outputs.end());
  for (const StatePair& s : graph.states) {
    pb::StatePair& ps = *proto.add_states();
    ps.set_input(s.input);
    ps.set_output(s.output);
  }
  return absl::OkStatus();
}

// Map fields serialize in a fixed order, so equal graphs give equal files.
absl::StatusOr<std::string> Serialize(const pb::Graph& proto) {
  const size_t size = proto.ByteSizeLong();
  if (size > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the graph file would have ", size, " bytes, more than protobuf's 2 GiB limit; "
        "save with SaveOptions.external_weights"));
  }
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!proto.SerializeToCodedStream(&coded)) return absl::InternalError("protobuf serialization failed");
  }
  return bytes;
}

}  // namespace

std::string WeightsPathFor(const std::string& graph_path) { return graph_path + ".weights"; }

absl::Status SaveGraph(const Graph& graph, const std::string& path, const SaveOptions& options) {
  Graph checked = graph;  // ValidateGraph fills attribute defaults and producers
  if (auto st = ValidateGraph(checked); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("cannot save an invalid graph: ", st.message()));
  }
  const std::string weights_path = WeightsPathFor(path);
  WeightsWriter weights(weights_path);
  pb::Graph proto;
  const std::string weights_name = std::filesystem::path(weights_path).filename().string();
  auto refs = OpenReferenceFiles(options, path);
  if (!refs.ok()) return refs.status();
  if (auto st = ToProto(checked, options, path, *refs, weights, weights_name, proto); !st.ok()) return st;
  auto bytes = Serialize(proto);
  if (!bytes.ok()) return bytes.status();
  auto file = AtomicFile::Create(path);
  if (!file.ok()) return file.status();
  if (auto st = (*file)->Write(bytes->data(), bytes->size()); !st.ok()) return st;
  // Both files are complete on disk before either replaces its target, so
  // only a crash between the two renames can pair new weights with an old
  // graph (the loader then reports sizes or offsets that do not fit).
  AtomicFile* weights_file = weights.file();
  if (weights_file) {
    if (auto st = weights_file->Sync(); !st.ok()) return st;
  }
  if (auto st = (*file)->Sync(); !st.ok()) return st;
  if (weights_file) {
    if (auto st = weights_file->Commit(); !st.ok()) return st;
  }
  return (*file)->Commit();
}

}  // namespace kiln
