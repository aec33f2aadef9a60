#include "proto/wire_scan.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "proto/kiln.pb.h"

namespace kiln {
namespace {

using google::protobuf::io::CodedInputStream;
using Wire = google::protobuf::internal::WireFormatLite;

namespace pb = ::kiln::v1;

// Fields of proto/kiln.proto that hold repeated or nested data.
enum : int {
  kGraphTensors = pb::Graph::kTensorsFieldNumber,
  kGraphNodes = pb::Graph::kNodesFieldNumber,
  kGraphInputs = pb::Graph::kInputsFieldNumber,
  kGraphOutputs = pb::Graph::kOutputsFieldNumber,
  kGraphStates = pb::Graph::kStatesFieldNumber,
  kGraphMetadata = pb::Graph::kMetadataFieldNumber,
  kTensorDims = pb::Tensor::kDimsFieldNumber,
  kTensorView = pb::Tensor::kViewFieldNumber,
  kTensorExternal = pb::Tensor::kExternalFieldNumber,
  kViewStrides = pb::View::kStridesFieldNumber,
  kNodeInputs = pb::Node::kInputsFieldNumber,
  kNodeOutputs = pb::Node::kOutputsFieldNumber,
  kNodeAttrs = pb::Node::kAttrsFieldNumber,
  kAttrEntryValue = 2,  // map entries are messages { key = 1; value = 2; }
  kAttrValueInts = pb::AttrValue::kIntsFieldNumber,
  kIntListValues = pb::IntList::kValuesFieldNumber,
};

absl::Status Malformed() {
  return absl::InvalidArgumentError(
      "the file is not a valid kiln graph: protobuf parsing failed (truncated or corrupt)");
}

absl::Status OverLimit(absl::string_view who, int64_t count, absl::string_view what, int64_t limit) {
  return absl::InvalidArgumentError(
      absl::StrCat(who, " has ", count, " ", what, ", more than the limit of ", limit));
}

class Scanner {
 public:
  Scanner(absl::string_view bytes, const LoadOptions& options)
      : in_(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size())),
        size_(static_cast<int>(bytes.size())),
        opt_(options) {}

  absl::Status ScanGraph();

 private:
  struct Field {
    int number;
    Wire::WireType type;
  };
  // Reads the next tag (counting the field); false at the end of the
  // current message or on an error, left in *st.
  bool Next(Field* f, absl::Status* st);
  absl::Status Count(int64_t n);
  // Reads every field of the current message, handing each to on_field.
  template <typename OnField>
  absl::Status ForEachField(OnField on_field);
  absl::Status Skip(const Field& f);
  // Counts the values of one occurrence of a repeated scalar field, packed
  // (a length-delimited run of varints) or not, and skips them.
  absl::Status CountScalars(const Field& f, int64_t* count);
  // Enters a length-delimited field as a sub-message and runs body() in it.
  // A field of another wire type is an unknown field to protobuf: skipped.
  template <typename Body>
  absl::Status Nested(const Field& f, Body body);
  absl::Status SkipAll();  // a message we need not look into; fields count

  absl::Status ScanTensor();
  absl::Status ScanNode(int64_t index);
  absl::Status ScanAttrEntry(int64_t node);
  absl::Status ScanAttrValue(int64_t* ints);

  CodedInputStream in_;
  int size_;
  const LoadOptions& opt_;
  int64_t elements_ = 0;
};

bool Scanner::Next(Field* f, absl::Status* st) {
  const uint32_t tag = in_.ReadTag();
  if (tag == 0) {  // the end of the message, or bad data before it
    if (in_.BytesUntilLimit() != 0) *st = Malformed();
    return false;
  }
  f->number = static_cast<int>(Wire::GetTagFieldNumber(tag));
  f->type = Wire::GetTagWireType(tag);
  // kiln never writes groups; refusing them keeps nesting bounded.
  if (f->number == 0 || f->type == Wire::WIRETYPE_START_GROUP || f->type == Wire::WIRETYPE_END_GROUP ||
      static_cast<int>(f->type) > 5) {
    *st = Malformed();
    return false;
  }
  *st = Count(1);
  return st->ok();
}

absl::Status Scanner::Count(int64_t n) {
  elements_ += n;
  if (elements_ <= opt_.max_elements) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the graph file has more than ", opt_.max_elements, " fields and values, the limit"));
}

template <typename OnField>
absl::Status Scanner::ForEachField(OnField on_field) {
  Field f;
  absl::Status st;
  while (Next(&f, &st)) {
    if (absl::Status s = on_field(f); !s.ok()) return s;
  }
  return st;
}

absl::Status Scanner::Skip(const Field& f) {
  bool ok = false;
  switch (f.type) {
    case Wire::WIRETYPE_VARINT: { uint64_t v; ok = in_.ReadVarint64(&v); break; }
    case Wire::WIRETYPE_FIXED64: { uint64_t v; ok = in_.ReadLittleEndian64(&v); break; }
    case Wire::WIRETYPE_FIXED32: { uint32_t v; ok = in_.ReadLittleEndian32(&v); break; }
    case Wire::WIRETYPE_LENGTH_DELIMITED: {
      // Strings, and unknown fields, are kept as raw bytes: no amplification.
      uint32_t len;
      ok = in_.ReadVarint32(&len) && len <= static_cast<uint32_t>(in_.BytesUntilLimit()) &&
           in_.Skip(static_cast<int>(len));
      break;
    }
    default: break;
  }
  return ok ? absl::OkStatus() : Malformed();
}

absl::Status Scanner::CountScalars(const Field& f, int64_t* count) {
  if (f.type != Wire::WIRETYPE_LENGTH_DELIMITED) {
    ++*count;
    return Skip(f);
  }
  uint32_t len;
  if (!in_.ReadVarint32(&len) || len > static_cast<uint32_t>(in_.BytesUntilLimit())) return Malformed();
  int64_t values = 0;
  const void* data;
  int size;
  // The input is one flat buffer: the rest of it is directly readable.
  if (len > 0 && in_.GetDirectBufferPointer(&data, &size)) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    for (uint32_t i = 0; i < len && i < static_cast<uint32_t>(size); ++i) values += p[i] < 0x80;
  }
  if (!in_.Skip(static_cast<int>(len))) return Malformed();
  *count += values;
  return Count(values);
}

template <typename Body>
absl::Status Scanner::Nested(const Field& f, Body body) {
  if (f.type != Wire::WIRETYPE_LENGTH_DELIMITED) return Skip(f);
  uint32_t len;
  if (!in_.ReadVarint32(&len) || len > static_cast<uint32_t>(in_.BytesUntilLimit())) return Malformed();
  const CodedInputStream::Limit limit = in_.PushLimit(static_cast<int>(len));
  absl::Status st = body();
  in_.PopLimit(limit);
  return st;
}

absl::Status Scanner::SkipAll() {
  return ForEachField([&](const Field& f) { return Skip(f); });
}

absl::Status Scanner::ScanTensor() {
  int64_t dims = 0;  // ranks are checked after parsing, with the tensor's name
  return ForEachField([&](const Field& f) {
    switch (f.number) {
      case kTensorDims: return CountScalars(f, &dims);
      case kTensorView:
        return Nested(f, [&] {
          int64_t strides = 0;
          return ForEachField([&](const Field& g) {
            return g.number == kViewStrides ? CountScalars(g, &strides) : Skip(g);
          });
        });
      case kTensorExternal: return Nested(f, [&] { return SkipAll(); });
      default: return Skip(f);
    }
  });
}

absl::Status Scanner::ScanAttrValue(int64_t* ints) {
  // Occurrences of `ints` merge (their values concatenate): counts add up.
  return ForEachField([&](const Field& f) {
    if (f.number != kAttrValueInts) return Skip(f);
    return Nested(f, [&] {
      return ForEachField([&](const Field& g) {
        return g.number == kIntListValues ? CountScalars(g, ints) : Skip(g);
      });
    });
  });
}

absl::Status Scanner::ScanAttrEntry(int64_t node) {
  int64_t ints = 0;
  absl::Status st = ForEachField([&](const Field& f) {
    return f.number == kAttrEntryValue ? Nested(f, [&] { return ScanAttrValue(&ints); }) : Skip(f);
  });
  if (!st.ok()) return st;
  if (ints > opt_.max_attr_ints) {
    return OverLimit(absl::StrCat("an attribute of node #", node), ints, "values", opt_.max_attr_ints);
  }
  return absl::OkStatus();
}

absl::Status Scanner::ScanNode(int64_t index) {
  int64_t inputs = 0, outputs = 0, attrs = 0;
  absl::Status st = ForEachField([&](const Field& f) {
    switch (f.number) {
      case kNodeInputs: return CountScalars(f, &inputs);
      case kNodeOutputs: return CountScalars(f, &outputs);
      case kNodeAttrs: ++attrs; return Nested(f, [&] { return ScanAttrEntry(index); });
      default: return Skip(f);
    }
  });
  if (!st.ok()) return st;
  const std::string who = absl::StrCat("node #", index);
  if (inputs > opt_.max_node_inputs) return OverLimit(who, inputs, "inputs", opt_.max_node_inputs);
  if (outputs > opt_.max_node_outputs) return OverLimit(who, outputs, "outputs", opt_.max_node_outputs);
  if (attrs > opt_.max_attrs) return OverLimit(who, attrs, "attributes", opt_.max_attrs);
  return absl::OkStatus();
}

absl::Status Scanner::ScanGraph() {
  // A limit at the very end makes BytesUntilLimit() meaningful at top level.
  in_.PushLimit(size_);
  int64_t tensors = 0, nodes = 0, inputs = 0, outputs = 0, states = 0, metadata = 0;
  absl::Status st = ForEachField([&](const Field& f) -> absl::Status {
    switch (f.number) {
      case kGraphTensors: ++tensors; return Nested(f, [&] { return ScanTensor(); });
      case kGraphNodes: return Nested(f, [&] { return ScanNode(nodes++); });
      case kGraphInputs: return CountScalars(f, &inputs);
      case kGraphOutputs: return CountScalars(f, &outputs);
      case kGraphStates: ++states; return Nested(f, [&] { return SkipAll(); });
      case kGraphMetadata: ++metadata; return Nested(f, [&] { return SkipAll(); });
      default: return Skip(f);
    }
  });
  if (!st.ok()) return st;
  const absl::string_view who = "the graph";
  if (tensors > opt_.max_tensors) return OverLimit(who, tensors, "tensors", opt_.max_tensors);
  if (nodes > opt_.max_nodes) return OverLimit(who, nodes, "nodes", opt_.max_nodes);
  if (inputs > opt_.max_graph_io) return OverLimit(who, inputs, "inputs", opt_.max_graph_io);
  if (outputs > opt_.max_graph_io) return OverLimit(who, outputs, "outputs", opt_.max_graph_io);
  if (states > opt_.max_graph_io) return OverLimit(who, states, "states", opt_.max_graph_io);
  if (metadata > opt_.max_metadata) return OverLimit(who, metadata, "metadata entries", opt_.max_metadata);
  return absl::OkStatus();
}

}  // namespace

absl::Status ScanGraphWire(absl::string_view bytes, const LoadOptions& options) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return Malformed();
  Scanner scanner(bytes, options);
  return scanner.ScanGraph();
}

}  // namespace kiln
