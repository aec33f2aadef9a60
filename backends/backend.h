// The backend interface: what the scheduler knows of a device.
//
// Contract, for every backend (CPU, Vulkan, OpenCL, test backends):
//
// Ordering. A backend has one logical in-order queue. Upload, Fill, Copy and
// Execute are submitted to it in call order, and each takes effect after all
// work submitted before it on this backend: a later call sees the bytes an
// earlier one wrote. A backend may run them asynchronously; Execute returns
// a SyncPoint that is reached when its work is done, Flush() one that covers
// everything submitted so far, and Wait(point) blocks until then. Points
// only grow; waiting for a point waits for every earlier one.
//
// Hazards are by bytes, not by tensors. The executor's arena reuses the same
// bytes for tensors whose lifetimes do not overlap, and a node's output may
// alias one of its inputs (in-place ops, states). A backend that reorders or
// overlaps work (several queues, concurrent dispatches inside a split) must
// order any two operations whose byte ranges in the same buffer overlap and
// where one writes (a barrier between consecutive dispatches is the simple
// way). Tensor ids say nothing about aliasing.
//
// Host memory. Upload is done with `src` when it returns (it may have copied
// it to staging). Download returns with the bytes in `dst`; the caller has
// waited (Wait) for the submissions that write the range, and the backend
// reads the range as those left it.
//
// Offsets. Buffer offsets given to Upload/Download/Copy/Fill and bindings are
// byte offsets. Arena blocks and copies the executor makes start at multiples
// of limits().buffer_alignment. A *view* is bound at its base's offset plus
// the view's byte offset, which is only a multiple of the element size (a
// KV-cache view of one head, a slice): GPU kernels therefore take a buffer
// plus an element offset (and element strides), never a descriptor or
// sub-buffer offset, which devices require to be 16-256 byte aligned.
//
// Errors. Every call returns absl::Status with a message that names what was
// being done. Out of memory (host or device) is ResourceExhausted, naming the
// bytes asked and, through the allocation's label, the tensor. A lost device
// is DeviceLostError(): the backend returns it from that call and from every
// later one, and never crashes. A kernel that finds a bad value at run time
// (a gather id, a write_rows row out of range) does not write out of bounds;
// the run fails with an error naming the node, returned by Execute or, for
// asynchronous backends, by the Wait that covers it (see device_error.h).
//
// Threads. supports(), device(), limits(), Allocate, WrapHost, Prepare and
// pipeline_stats are safe to call from several threads at once (Prepare
// compiles pipelines once per key even then). Upload, Download, Copy, Fill,
// Execute, Flush and Wait may also be called from several threads (each
// thread with its own prepared splits and buffers, e.g. one Executable per
// thread over a shared backend); the backend serializes them into its queue.
// A PreparedSplit is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
  std::string id;       // stable identity for on-disk caches (vendor:device:driver...)
  uint64_t memory_bytes = 0;
  int subgroup_size = 0;
  int compute_units = 0;
  std::vector<std::string> features;
};

// What a backend's memory can do; the executor plans with these instead of
// fixed numbers.
struct BackendLimits {
  // Offsets of arena blocks, weights packed into one buffer and copies:
  // multiples of this (Vulkan minStorageBufferOffsetAlignment, OpenCL
  // CL_DEVICE_MEM_BASE_ADDR_ALIGN / 8, 64 on the CPU for SIMD).
  size_t buffer_alignment = 64;
  // The largest single Allocate.
  uint64_t max_allocation = std::numeric_limits<uint64_t>::max();
  // The largest byte range one kernel argument can address (a tensor's
  // extent): maxStorageBufferRange, CL_DEVICE_MAX_MEM_ALLOC_SIZE.
  uint64_t max_binding = std::numeric_limits<uint64_t>::max();
  // WrapHost needs the address (and size) to be multiples of this;
  // 0: the backend cannot use host memory in place.
  size_t host_import_alignment = 0;
};

// What a buffer is for, so a device backend can pick its memory: device-local
// for weights, arenas and states; host-visible for per-run inputs, so
// that setting one is a memcpy and not a staged transfer; host-cached for
// outputs read back after runs.
enum class BufferUsage : uint8_t {
  kWeights,  // written once, read by kernels
  kArena,    // written and read by kernels
  kInput,    // written by the host before runs, read by kernels
  kOutput,   // written by kernels, read by the host after runs
  kState,    // read and written by kernels across runs; read by the host rarely
  kStaging,  // host <-> device copies
};
absl::string_view BufferUsageName(BufferUsage usage);

class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual size_t size() const = 0;
  // The host address of the buffer when the host can read and write it
  // directly (CPU memory, host-visible device memory), else nullptr. Writing
  // through it is not ordered with submitted work: wait first.
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

// Where a tensor's bytes are: a buffer of this backend and a byte offset. A
// view is bound to its base's buffer at base offset + view offset (only
// element-aligned); its dims and strides come from the graph.
struct Binding {
  Buffer* buffer = nullptr;
  size_t offset = 0;
};
struct Bindings {
  std::vector<Binding> tensors;  // indexed by tensor id; unused ids stay empty
};

struct NodeTiming {
  int node = -1;
  double start_us = 0;  // on the device's clock, from the start of the split
  double duration_us = 0;
};

struct PrepareOptions {
  // Runs may ask for node timings (ExecuteOptions::timings): record what
  // that needs (timestamp queries, events). Without it, timings are never
  // asked for.
  bool timings = true;
};

struct ExecuteOptions {
  bool timings = false;  // record node timings; read them with ReadTimings
};

// A split made ready to run: pipelines resolved, tensor addresses fixed.
// Running it again does no lookups.
class PreparedSplit {
 public:
  virtual ~PreparedSplit() = default;
};

// Counts submissions on a backend's queue: reached when their work is done.
using SyncPoint = uint64_t;

// The status for a lost device: Unavailable, marked so that IsDeviceLost
// tells it apart from other errors.
absl::Status DeviceLostError(absl::string_view backend, absl::string_view what);
bool IsDeviceLost(const absl::Status& status);
// "context: message", with the status's code and payloads kept (so that a
// lost device is still IsDeviceLost after callers add where it happened).
absl::Status Annotate(const absl::Status& status, absl::string_view context);

class Backend {
 public:
  virtual ~Backend() = default;

  virtual absl::string_view name() const = 0;
  virtual const DeviceInfo& device() const = 0;
  virtual BackendLimits limits() const = 0;
  // Cheap and exact: yes means Execute works for this node.
  virtual Support supports(const Graph& graph, const Node& node) const = 0;

  // `label` names what the buffer holds (a tensor, "arena", "weights") for
  // error messages. Contents start undefined: Fill what must be zero.
  virtual absl::StatusOr<std::unique_ptr<Buffer>> Allocate(size_t bytes, BufferUsage usage,
                                                           absl::string_view label) = 0;
  // Wraps caller-owned host memory that outlives the buffer (weights mapped
  // from a file) without copying, when limits().host_import_alignment
  // allows; Unimplemented where the device cannot.
  virtual absl::StatusOr<std::unique_ptr<Buffer>> WrapHost(const void* data, size_t bytes) {
    return absl::UnimplementedError("this backend cannot use host memory directly");
  }
  virtual absl::Status Upload(Buffer& dst, size_t offset, const void* src, size_t n) = 0;
  virtual absl::Status Download(const Buffer& src, size_t offset, void* dst, size_t n) = 0;
  virtual absl::Status Copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset,
                            size_t n) = 0;
  // Sets n bytes at `offset` to `value` (zeroing states, guard regions) on
  // the device, without a host vector. Any offset and size.
  virtual absl::Status Fill(Buffer& dst, size_t offset, size_t n, uint8_t value) = 0;

  // Resolves (compiling on first use, distinct pipelines in parallel) the
  // pipelines the split needs and fixes its addresses.
  virtual absl::StatusOr<std::unique_ptr<PreparedSplit>> Prepare(const Split& split,
                                                                 const Bindings& bindings,
                                                                 const PrepareOptions& options) = 0;
  // Submits a prepared split; may return before the device is done.
  virtual absl::StatusOr<SyncPoint> Execute(PreparedSplit& split, const ExecuteOptions& options) = 0;
  // The timings of the split's last timed Execute, once the point it
  // returned has been waited for: one entry per node, appended to `out`.
  virtual absl::Status ReadTimings(PreparedSplit& split, std::vector<NodeTiming>* out) = 0;
  // Submits what was recorded (uploads, copies, fills) and returns a point
  // covering everything submitted so far.
  virtual absl::StatusOr<SyncPoint> Flush() = 0;
  // Blocks until `point` is reached. Returns the first error the device
  // raised for work up to it (device_error.h), or DeviceLostError.
  virtual absl::Status Wait(SyncPoint point) = 0;

  virtual PipelineStats pipeline_stats() const = 0;
};

// "[offset, offset + n) lies inside a buffer of `size` bytes", overflow-safe;
// `what` names the access in the error.
absl::Status CheckRange(absl::string_view what, size_t size, size_t offset, size_t n);

// Where tensor `id` of `node` is bound: its own binding, or, for a view
// without one, its base's binding plus the view offset. Checked to exist, to
// be bound, to span its extent inside the buffer and to start at a whole
// element (any byte for q8_0). An absent optional input (id < 0) gives an
// empty Binding. Backends then check the buffer is theirs.
absl::StatusOr<Binding> ResolveBinding(const Graph& graph, const Node& node, const Bindings& bindings, int id);

// Execute, Wait and (with `timings`) ReadTimings: a split run to completion.
absl::Status RunPrepared(Backend& backend, PreparedSplit& split, std::vector<NodeTiming>* timings = nullptr);

}  // namespace kiln
