// The backend interface: what the scheduler knows of a device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/graph.h"

namespace kiln {

// Whether a backend runs a node; `reason` says why not.
struct Support {
  bool ok = true;
  std::string reason;
  static Support Yes() { return {}; }
  static Support No(std::string why) { return {false, std::move(why)}; }
};

struct DeviceInfo {
  std::string backend;  // "cpu", "vulkan", "opencl"
  std::string kind;     // "cpu", "discrete-gpu", "integrated-gpu", ...
  std::string name;
  std::string driver;
  uint64_t memory_bytes = 0;
  int subgroup_size = 0;
  int compute_units = 0;
  std::vector<std::string> features;
};

class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual size_t size() const = 0;
  // The host address of host-resident memory (CPU), else nullptr.
  virtual std::byte* host_data() const { return nullptr; }
};

struct PipelineStats {
  int64_t created = 0;     // compiled in this process (real compiles only)
  int64_t cache_hits = 0;  // found in memory
  int64_t disk_hits = 0;   // loaded from the on-disk cache
  double compile_ms = 0;   // total time spent compiling
  double disk_ms = 0;      // total time spent loading from disk
};

// A maximal run of nodes (indices into graph->nodes, in order) on one backend.
struct Split {
  const Graph* graph = nullptr;
  std::vector<int> nodes;
};

// Where a tensor's bytes are: a buffer of this backend and an offset. A view
// is bound to its base's buffer at base offset + view offset; its dims and
// strides come from the graph.
struct Binding {
  Buffer* buffer = nullptr;
  size_t offset = 0;
};
struct Bindings {
  std::vector<Binding> tensors;  // indexed by tensor id; unused ids stay empty
};

struct NodeTiming {
  int node = -1;
  double start_us = 0;     // from the start of Execute
  double duration_us = 0;
};

// A split made ready to run: pipelines resolved, tensor addresses fixed.
// Running it again does no lookups.
class PreparedSplit {
 public:
  virtual ~PreparedSplit() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual absl::string_view name() const = 0;
  virtual const DeviceInfo& device() const = 0;
  // Cheap and exact: yes means Execute works for this node.
  virtual Support supports(const Graph& graph, const Node& node) const = 0;

  virtual absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t bytes) = 0;
  // Wraps caller-owned host memory that outlives the buffer (weights mapped
  // from a file) without copying; Unimplemented where the device cannot.
  virtual absl::StatusOr<std::unique_ptr<Buffer>> WrapHost(const void* data, size_t bytes) {
    return absl::UnimplementedError("this backend cannot use host memory directly");
  }
  virtual absl::Status Upload(Buffer& dst, size_t offset, const void* src, size_t n) = 0;
  virtual absl::Status Download(const Buffer& src, size_t offset, void* dst, size_t n) = 0;
  virtual absl::Status Copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset,
                            size_t n) = 0;

  // Resolves (compiling on first use) the pipelines the split needs.
  virtual absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& split,
                                                                 const Bindings& bindings) = 0;
  // Runs a prepared split; may return before the device is done (see Wait).
  // With `timings`, appends one entry per node.
  virtual absl::Status Execute(PreparedSplit& split, std::vector<NodeTiming>* timings) = 0;
  virtual absl::Status Wait() = 0;

  virtual PipelineStats pipeline_stats() const = 0;
};

}  // namespace kiln
