// Loading and saving graph files (proto/kiln.proto), with external weights.
//
// Graph files come from strangers. Loading checks sizes against the caps in
// LoadOptions, every index, offset, length, shape and stride, keeps external
// data paths inside the graph's folder, sorts nodes into topological order
// when needed and finally runs ValidateGraph. Any problem is an error status
// naming the tensor or node; nothing a file says may crash the process or
// read out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "graph/graph.h"

namespace kiln {

inline constexpr uint32_t kGraphFormatVersion = 1;

// Caps on what a graph file may ask for. Counts are checked on the raw bytes
// before protobuf builds anything (proto/wire_scan.h), so that memory stays
// proportional to the file: roughly max_file_bytes + 100 * max_elements.
struct LoadOptions {
  // The graph file itself (external weights files are mapped, not capped).
  // Protobuf cannot parse more than 2 GiB - 1 bytes, so larger values clamp.
  int64_t max_file_bytes = std::numeric_limits<int32_t>::max();
  int64_t max_elements = 1 << 24;      // fields and repeated values, all levels
  int64_t max_tensors = 1 << 20;
  int64_t max_nodes = 1 << 20;
  int64_t max_graph_io = 1 << 16;      // graph inputs, outputs, states each
  int64_t max_node_inputs = 4096;      // concat is variadic
  int64_t max_node_outputs = 16;
  int64_t max_attrs = 64;              // per node
  int64_t max_attr_ints = 4096;        // length of an int-list attribute
  int64_t max_metadata = 4096;         // metadata entries
  int64_t max_name_bytes = 1024;       // names, ops, attribute keys, paths
  int64_t max_string_bytes = 1 << 20;  // attribute and metadata values
  int64_t max_external_files = 256;    // distinct external files mapped
};

// A byte range already in a file on disk (a checkpoint's .safetensors, a
// weights file an importer wrote).
struct FileRange {
  std::string path;
  uint64_t offset = 0;
};

struct SaveOptions {
  // When true, constants of at least `external_min_bytes` go into one file
  // next to the graph, "<path>.weights", at 64-byte aligned offsets; the rest
  // stay inline. When false, every constant is inline (the file must then
  // stay under protobuf's 2 GiB limit). A weights file is written (and an
  // old one replaced) only when some constant goes into it.
  bool external_weights = false;
  int64_t external_min_bytes = 4096;
  // Constants, by their data pointer, whose bytes already lie in a file:
  // saved as a reference to that range (not copied) when the file is inside
  // the graph's folder and the offset is a multiple of
  // ExternalMapAlignment(dtype) (what LoadGraph maps in place); an error otherwise, so a caller never
  // silently gets a copy it meant to avoid.
  std::map<const std::byte*, FileRange> in_place;
  // Files in the graph's folder whose bytes constants may already be mapped
  // from (a weights file another entry of the model wrote, a checkpoint's
  // .safetensors): a constant whose ConstantData origin is
  // "file:<identity>:<offset>:<length>" with the identity of one of them (as
  // LoadGraph and MappedFile make it) is written as a reference to that
  // file, not copied. A file outside the graph's folder is an error.
  std::vector<std::string> reference_files;
};

// Writers put external data at multiples of kExternalAlignment (cache
// lines). LoadGraph maps a tensor's external data in place (no copy) when
// its offset is a multiple of ExternalMapAlignment(dtype), the element's own
// alignment (4 for f32/i32; 2 for f16, bf16 and q8_0, whose blocks begin with
// an f16 scale), so that checkpoints (safetensors: 8-byte aligned data, GGUF:
// 32) are used where they lie; other offsets are copied. Backends that read
// host memory in place check their own alignment (BackendLimits::
// host_import_alignment) and upload the rest.
inline constexpr int64_t kExternalAlignment = 64;
inline int64_t ExternalMapAlignment(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kI32 ? 4 : 2;
}

// Reads and checks a graph file. External data is memory-mapped read-only;
// the mapping lives as long as any constant that points into it.
absl::StatusOr<Graph> LoadGraph(const std::string& path, const LoadOptions& options = {});

// The same from serialized bytes; external paths resolve inside `folder`.
absl::StatusOr<Graph> ParseGraph(absl::string_view bytes, const std::string& folder,
                                 const LoadOptions& options = {});

// Validates `graph` and writes it atomically (temp file in the same folder,
// fsync, rename); the weights file, if any, is written the same way first.
absl::Status SaveGraph(const Graph& graph, const std::string& path, const SaveOptions& options = {});

// The path of the external weights file SaveGraph writes for `graph_path`.
std::string WeightsPathFor(const std::string& graph_path);

}  // namespace kiln
