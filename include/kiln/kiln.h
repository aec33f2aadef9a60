// kiln's public C++ API: the only header an application includes.
//
//   #include <kiln/kiln.h>
//   namespace k = kiln::api;
//
//   auto cpu = k::Backend::Open("cpu");                        // StatusOr<Backend>
//   auto model = k::Model::Load("out/hybrid-block-prefill.kgraph");
//   model->Prepare({*cpu});                                    // placement, memory, pipelines
//   k::Entry& prefill = **model->entry("prefill");
//   prefill.SetInput("x", k::DType::kF32, {1, 512, 1024}, x.data(), x.size() * 4);
//   prefill.Run();                                             // states update in place
//   auto y = prefill.GetOutput("y");                           // StatusOr<HostArray>
//
// Everything lives in namespace kiln::api (kiln's internals use namespace
// kiln, whose names, Model and GraphBuilder among them, this header does not
// expose). Only the standard library and Abseil's Status, StatusOr and Span
// appear here; the objects hold kiln's internals behind private pointers.
//
// Errors: every fallible call returns absl::Status or absl::StatusOr, with a
// message naming the entry, tensor, node or file at fault and what was
// expected. No exception leaves a call of this API: running out of host
// memory is ResourceExhausted, any other exception inside kiln is Internal.
//
// Threads (tests/api/threads_test.cc checks these):
// - free functions (BackendNames, ListDevices, ...) and Backend handles: any
//   thread, at the same time. Several models may share backends and run at
//   the same time on different threads; a backend serializes its queue.
// - Model: loading, AddEntry and Prepare from one thread at a time, not
//   while other calls on the same model run. Once prepared, its read-only
//   queries (entries(), entry(), states(), plan(), stats) may be called from
//   any thread at once, and so may the calls below.
// - Entry: every call is serialized by the entry's own lock, so calls from
//   several threads never corrupt it; but a sequence (SetInput, Run,
//   GetOutput) is only meaningful from one thread at a time: give each thread
//   its own entry (or model), or hold your own lock around the sequence.
// - Runs of one model exclude each other: the entries of a model share its
//   states, so a Run (or a Submit until its Wait) of one entry waits for the
//   run of any other entry of the same model to finish, and state access
//   (ReadState, WriteState, ZeroStates, SetInput or GetOutput of a state, and
//   GetOutput of anything) waits for runs too. Different models run
//   concurrently.
// - A Submit holds its model until its Wait (which any thread may call):
//   meanwhile calls that would wait for it fail with FailedPrecondition on
//   the thread that submitted (rather than deadlock), and wait on others.
//
// Lifetimes: a Backend is a shared handle (copies refer to the same
// backend); a prepared Model keeps its backends alive. An Entry belongs to
// its Model: the reference stays valid while the Model lives, moves included.
// Destroying a Model waits for a run that was submitted and not waited for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kiln::api {

struct Access;  // api/'s way into the classes below (not for applications)

// The version of kiln this library is ("0.1.0").
const char* Version();

// ---------------------------------------------------------------------------
// Element types and host arrays.

// Element types of tensors. The numbering is stable (the C API uses it).
enum class DType : uint8_t {
  kF32 = 0,
  kF16 = 1,   // IEEE binary16
  kBF16 = 2,  // bfloat16
  kI32 = 3,
  // Blocks of 32 values along the innermost dim, 34 bytes each: an f16
  // scale, then 32 int8 values. The innermost dim is a multiple of 32.
  kQ8_0 = 4,
};

// "f32", "f16", "bf16", "i32", "q8_0".
std::string_view DTypeName(DType dtype);
// The dtype of that name; InvalidArgument naming the known ones otherwise.
absl::StatusOr<DType> ParseDType(std::string_view name);
// Bytes of a contiguous (C order) tensor of that dtype and shape: the bytes
// every SetInput, ReadOutput and WriteState below expects. InvalidArgument
// when the shape is not rank 1..4 with dims >= 0, when a q8_0 innermost dim
// is not a multiple of 32, or when the size overflows.
absl::StatusOr<size_t> ContiguousBytes(DType dtype, absl::Span<const int64_t> dims);

// A tensor's name, element type and shape (dims outermost first).
struct TensorDesc {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;
  size_t bytes = 0;  // its contiguous size, ContiguousBytes(dtype, dims)
};

// A contiguous tensor in host memory, C order, owning its bytes: what
// GetOutput and ReadState return, and what SetInput accepts. Copyable and
// movable; not thread-safe (like a std::vector).
class HostArray {
 public:
  HostArray() = default;  // empty: f32, no dims, no bytes

  // Zero-filled storage; InvalidArgument for a bad shape (see
  // ContiguousBytes), ResourceExhausted when host memory runs out.
  static absl::StatusOr<HostArray> Zeros(DType dtype, std::vector<int64_t> dims);
  // A copy of `bytes` bytes at `data`, which must be exactly
  // ContiguousBytes(dtype, dims) (else InvalidArgument saying both sizes).
  static absl::StatusOr<HostArray> Copy(DType dtype, std::vector<int64_t> dims, const void* data,
                                        size_t bytes);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  int64_t numel() const;
  size_t size_bytes() const { return bytes_.size(); }
  std::byte* data() { return bytes_.data(); }
  const std::byte* data() const { return bytes_.data(); }

 private:
  friend struct Access;
  DType dtype_ = DType::kF32;
  std::vector<int64_t> dims_;
  std::vector<std::byte> bytes_;
};

// ---------------------------------------------------------------------------
// Backends.

// A device a backend can use, as the backend reports it.
struct DeviceInfo {
  std::string backend;      // "cpu", "vulkan", "opencl"
  std::string kind;         // "cpu", "discrete-gpu", "integrated-gpu", ...
  std::string name;
  std::string driver;
  std::string id;           // stable identity (the on-disk cache keys on it)
  uint64_t memory_bytes = 0;
  int compute_units = 0;
  int subgroup_size = 0;
  std::vector<std::string> features;
};

// Counters of a backend's compute pipelines (compiled kernels).
struct PipelineStats {
  int64_t created = 0;           // compiled in this process
  int64_t reused = 0;            // found already compiled in memory
  int64_t loaded_from_disk = 0;  // loaded from the on-disk pipeline cache
  double compile_ms = 0;         // time spent compiling
  double disk_ms = 0;            // time spent loading from disk
};

struct BackendOptions {
  int threads = 0;  // CPU threads; 0 = all cores
  // Which device: an index into ListDevices(name) or a case-insensitive
  // substring of its name; "" = $KILN_<NAME>_DEVICE, else the backend's
  // preferred device (a discrete GPU first).
  std::string device;
  // Folder of the on-disk pipeline cache; "" = DefaultCacheDir(), "off" =
  // no disk cache.
  std::string cache_dir;
  // Backend-specific switches, e.g. {"specialize", "off"} (Vulkan); an
  // unknown key is InvalidArgument naming the keys the backend knows.
  std::map<std::string, std::string> flags;
};

// The backends compiled into this library, in default priority order (GPU
// backends first, "cpu" last). Whether one can run here is up to Open.
std::vector<std::string> BackendNames();
// The devices backend `name` can use here, without opening it (no queues, no
// pipelines). NotFound for a name not compiled in; Unavailable (with the
// reason) when its driver or device is missing.
absl::StatusOr<std::vector<DeviceInfo>> ListDevices(std::string_view name);
// The folder GPU backends keep compiled pipelines in: $KILN_CACHE_DIR, else
// $XDG_CACHE_HOME/kiln, else ~/.cache/kiln; "" when turned off.
std::string DefaultCacheDir();

// An open backend: a device with its queue and pipeline cache. A shared
// handle: copies refer to the same backend, which lives while any handle or
// prepared Model uses it. Thread-safe: several models on several threads
// may use one backend at once.
class Backend {
 public:
  // Opens backend `name` ("cpu", "vulkan", "opencl"). NotFound for a name
  // not compiled in (the message lists those that are); Unavailable when its
  // driver or device is missing; InvalidArgument for bad options (an unknown
  // flag, a device that matches none: the message lists the devices).
  static absl::StatusOr<Backend> Open(std::string_view name, const BackendOptions& options = {});

  const std::string& name() const;
  DeviceInfo device() const;
  // Since the backend was opened, over every model that used it.
  PipelineStats pipeline_stats() const;

  struct Impl;  // kiln's backend (api/ only)

 private:
  friend struct Access;
  explicit Backend(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Building graphs in code.

// A tensor of the graph being built; an invalid one (id -1) stands for an
// absent optional input of Op.
struct Tensor {
  int id = -1;
  bool valid() const { return id >= 0; }
};

// Typed attribute values of a node (see docs/OPS.md for each op's).
using AttrValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>>;
using Attrs = std::map<std::string, AttrValue, std::less<>>;

// Builds one graph, validating each node as it is added (attributes, dtypes,
// shapes), so an error names the node. The first error sticks: later calls
// do nothing (returning invalid tensors) and status() and Model::FromBuilder
// return it. Move-only; one thread at a time.
class GraphBuilder {
 public:
  explicit GraphBuilder(std::string graph_name);
  GraphBuilder(GraphBuilder&&) noexcept;
  GraphBuilder& operator=(GraphBuilder&&) noexcept;
  ~GraphBuilder();

  // A graph input the caller binds before each run (rank 1..4).
  Tensor Input(std::string name, DType dtype, std::vector<int64_t> dims);
  // A constant (weights) copied from `bytes` bytes at `data`, which must be
  // ContiguousBytes(dtype, dims).
  Tensor Constant(std::string name, DType dtype, std::vector<int64_t> dims, const void* data,
                  size_t bytes);
  // A constant over caller memory, not copied: `owner` keeps `data` alive
  // (and unchanged) as long as kiln needs it (the built graph and every
  // model made from it). Backends that can read host memory in place (the
  // CPU) then use it without any copy.
  Tensor ConstantView(std::string name, DType dtype, std::vector<int64_t> dims,
                      std::shared_ptr<const void> owner, const void* data, size_t bytes);
  // A strided window of `base`: byte strides, innermost contiguous, byte offset.
  Tensor View(Tensor base, std::vector<int64_t> dims, std::vector<int64_t> strides, int64_t offset,
              std::string name = "");
  // Adds a node of op `op` (docs/OPS.md) and returns its outputs (none on
  // error). An empty name becomes "<op>_<n>".
  std::vector<Tensor> Op(std::string_view op, std::vector<Tensor> inputs, Attrs attrs = {},
                         std::string name = "");
  // The same for single-output ops (an invalid tensor on error).
  Tensor Op1(std::string_view op, std::vector<Tensor> inputs, Attrs attrs = {},
             std::string name = "");

  // Marks `t` a graph output (read with Entry::GetOutput by its name).
  void Output(Tensor t);
  // Declares graph output `next` the next value of graph input `input`: a
  // state, kept on its device between runs and shared by name with the
  // model's other entries.
  void State(Tensor input, Tensor next);
  void SetMetadata(std::string key, std::string value);
  // Renames a tensor, e.g. to give an output a stable name.
  void Rename(Tensor t, std::string name);

  // What `t` is (name, dtype, dims); an empty desc for an invalid tensor.
  TensorDesc Describe(Tensor t) const;
  // The first error so far, or OK.
  absl::Status status() const;

  struct Impl;  // graph/builder.h's GraphBuilder (api/ only)

 private:
  friend struct Access;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Models and their entries.

// The entry name a model file's own graph gets (models/model_config.h).
inline constexpr std::string_view kFirstEntry = "prefill";

struct PrepareOptions {
  // Every node must run on the first backend of the list: otherwise Prepare
  // fails, listing each node that would leave it and why.
  bool strict = false;
  // Prepare so that runs can be timed (SetProfiling, SetTracing). False
  // saves what recording timings costs on GPUs.
  bool allow_profiling = true;
  // Start with profiling on (needs allow_profiling).
  bool profile = false;
  // Move lone nodes to their neighbours' backend when that saves transfers.
  bool merge_islands = true;
  // "backend:op" pairs (e.g. "vulkan:flash_attn"): that backend does not run
  // that op even where it could. An unknown backend or op fails Prepare.
  std::vector<std::string> disabled_ops;
  // Use constants in host memory in place where the backend can (the CPU),
  // instead of copying them.
  bool wrap_constants = true;
};

// Where each node of an entry runs and why, the splits, the copies between
// backends per run and the memory per backend: decided by Prepare, before
// anything runs.
struct Plan {
  struct Node {
    std::string name;
    std::string op;
    std::string backend;
    std::string reason;  // why it runs there (names the backends it skipped)
    int split = -1;
  };
  struct Split {
    std::string backend;
    std::vector<int> nodes;  // indices into `nodes`, in run order
  };
  struct Transfer {
    std::string tensor;
    std::string from, to;  // backend names
    int split = -1;        // the split that reads the copy
    int64_t bytes = 0;
  };
  struct Memory {
    std::string backend;
    int64_t arena_bytes = 0;        // peak of the intermediate tensors' arena
    int64_t arena_naive_bytes = 0;  // the same without reuse
    int64_t input_bytes = 0;
    int64_t state_bytes = 0;
    int64_t constant_bytes = 0;     // weights its nodes read
  };
  std::string entry;
  std::vector<std::string> backends;  // the priority list given to Prepare
  std::vector<Node> nodes;
  std::vector<Split> splits;
  std::vector<Transfer> transfers;
  std::vector<Memory> memory;  // one per backend of the list
  int64_t transfer_bytes_per_run = 0;

  // A human-readable table (what `kiln plan` prints).
  std::string ToText() const;
  // The same as one JSON object (keys as the fields above).
  std::string ToJson() const;
};

// Time per node and per op, summed over the profiled runs (device clock).
struct Profile {
  struct Node {
    std::string name, op, backend;
    int64_t count = 0;  // profiled executions
    double total_us = 0;
    double last_us = 0;
  };
  struct Op {
    std::string op, backend;
    int64_t count = 0;
    double total_us = 0;
  };
  int64_t runs = 0;          // every completed run, profiled or not
  std::vector<Node> nodes;   // graph order; nodes never timed have count 0
  std::vector<Op> ops;       // the most expensive first
  std::string ToText() const;
  std::string ToJson() const;
};

// What Prepare cost, per backend of the list.
struct PrepareStats {
  double prepare_ms = 0;  // wall time of Prepare (every entry)
  struct PerBackend {
    std::string backend;
    // The backend's pipeline counters over the span of Prepare (other models
    // preparing on the same backend at the same time are counted too).
    PipelineStats pipelines;
  };
  std::vector<PerBackend> backends;
  // Weights: bytes held on the devices (once per backend, shared by the
  // entries), used in place from host memory, and copied to devices.
  int64_t weight_bytes_held = 0;
  int64_t weight_bytes_wrapped = 0;
  int64_t weight_bytes_uploaded = 0;
};

class Model;

// One graph of a model ("prefill", "decode", ...), prepared on the model's
// backends. Owned by its Model. Calls are serialized by the entry's lock;
// runs of one model exclude each other (see the top of this file).
class Entry {
 public:
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;
  ~Entry();

  const std::string& name() const;
  // The graph's inputs the caller binds (states not included), its outputs,
  // its states (by the state input's name) and its metadata. Available
  // before Prepare.
  const std::vector<TensorDesc>& inputs() const;
  const std::vector<TensorDesc>& outputs() const;
  const std::vector<TensorDesc>& states() const;
  const std::map<std::string, std::string>& metadata() const;

  // Binds input `name` from host memory for the following runs. `dtype` and
  // `dims` must be the input's and `bytes` = ContiguousBytes(dtype, dims)
  // (else InvalidArgument naming the input, what it is and what was given;
  // NotFound, listing the inputs, for an unknown name). The bytes are copied
  // once, into the input's buffer on its backend (host-visible memory on GPU
  // backends, so a memcpy), before SetInput returns: the caller may reuse
  // its memory at once. InputBuffer below avoids that copy where it can. Naming a state sets that state's value.
  // FailedPrecondition before Prepare, or while a run this thread submitted
  // is not waited for (other threads wait for it).
  absl::Status SetInput(std::string_view name, DType dtype, absl::Span<const int64_t> dims,
                        const void* data, size_t bytes);
  absl::Status SetInput(std::string_view name, const HostArray& value);
  // Binds input `name` from a .npy file (C order, the input's shape).
  // float32/float16/float64 values convert to any float dtype (and are
  // quantized to q8_0), int64 to i32 when every value fits; a q8_0 input also
  // takes its packed blocks as uint8. The header is checked before any data
  // is read; errors name the file and the input.
  absl::Status SetInputFromNpy(std::string_view name, const std::string& path);

  // Zero-copy input: kiln's own buffer for input `name` (not a state), of
  // the input's contiguous size, in memory the backend reads directly (CPU
  // memory; host-visible memory on GPU backends). Write the input's bytes
  // there instead of calling SetInput, which copies them once; the input
  // then counts as set, and the bytes are its value for the following runs
  // until rewritten (undefined before the first write). Write only while no
  // run of this entry is in flight. Unimplemented when the backend's input
  // memory is not host-addressable (use SetInput). The span stays valid as
  // long as the model.
  absl::StatusOr<absl::Span<std::byte>> InputBuffer(std::string_view name);

  // Runs the entry once and waits for it: every non-state input must have
  // been set (else FailedPrecondition naming it); states update in place.
  // Device errors (a bad gather id, a write_rows row out of range) name the
  // node. Waits for a run of another entry of the same model to finish first.
  absl::Status Run();
  // Starts a run and returns without waiting for the devices; Wait()
  // finishes it and returns its errors. Between the two, the submitting
  // thread may call only Wait and the read-only queries on this entry and
  // its model (the rest is FailedPrecondition); other threads' calls that
  // need the model's run lock (see the top of this file) wait. Wait may be
  // called from another thread than Submit.
  absl::Status Submit();
  absl::Status Wait();
  // Completed runs.
  int64_t runs() const;

  // Output `name` of the last run (or a state's current value, by its name)
  // as a new host array: the device's bytes are moved into it, no extra
  // copy. FailedPrecondition before the first run, or while a run this
  // thread submitted is not waited for; NotFound, listing the outputs, for
  // an unknown name.
  absl::StatusOr<HostArray> GetOutput(std::string_view name) const;
  // The same into caller memory of exactly the output's contiguous size
  // (else InvalidArgument with both sizes). The bytes come from the device
  // into a temporary host array, then into `dst` (two copies).
  absl::Status ReadOutput(std::string_view name, void* dst, size_t bytes) const;

  // Zero-copy output: the bytes of output `name` of the last run where the
  // backend keeps them contiguous in host-addressable memory (CPU memory),
  // valid until the next Run or Submit of this entry. Unimplemented
  // otherwise (device memory, a strided view, a state, an input read back):
  // use GetOutput or ReadOutput.
  absl::StatusOr<absl::Span<const std::byte>> OutputBuffer(std::string_view name) const;

  // Placement, splits, transfers and memory (FailedPrecondition before Prepare).
  absl::StatusOr<Plan> plan() const;

  // Times every node of the following runs (FailedPrecondition when
  // Prepare's allow_profiling was false).
  absl::Status SetProfiling(bool on);
  absl::StatusOr<Profile> profile() const;
  void ResetProfile();
  // Records the following runs (splits, nodes, transfers) for TraceJson.
  absl::Status SetTracing(bool on);
  // A Chrome trace (open in Perfetto): Prepare's pipeline compiles, then the
  // runs recorded while tracing.
  absl::StatusOr<std::string> TraceJson() const;

  struct Impl;  // api/ only

 private:
  friend struct Access;
  explicit Entry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A model: one or more named entries (graphs) over one set of weights and
// states. Every entry reads the same device copy of each weight and the same
// state buffers (KV caches, recurrent states), so a prefill entry and a
// decode entry hand states over on the device, never through the host.
// Move-only. See the top of this file for threads.
class Model {
 public:
  Model();  // no entries yet: AddEntry, then Prepare
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // Loads a model file: the file is entry "prefill" (kFirstEntry), and each
  // of its metadata keys "model.entry.<name>" = a graph file's name adds
  // entry <name> from that file, which must lie in the same folder (no
  // absolute path, no "..", no symlink out of it: InvalidArgument naming
  // the key). Constants in external weights files are memory-mapped; entries
  // over the same weights file share its weights. Errors name the file and
  // the tensor or node at fault (graph files are checked as hostile input).
  static absl::StatusOr<Model> Load(const std::string& path);
  // One entry (named `entry`) from a serialized graph; external weight
  // paths resolve inside `folder` ("" = the current directory).
  static absl::StatusOr<Model> FromBytes(std::string_view bytes, std::string folder = "",
                                         std::string entry = std::string(kFirstEntry));
  // One entry from a builder (its first error, if any, is returned).
  static absl::StatusOr<Model> FromBuilder(GraphBuilder builder,
                                           std::string entry = std::string(kFirstEntry));

  // Adds entry `entry` (a new name, else AlreadyExists) from a graph file
  // (its "model.entry.*" metadata is not followed), serialized bytes, or a
  // builder. After Prepare, the entry is prepared at once on the same
  // backends.
  absl::Status AddEntryFile(std::string entry, const std::string& path);
  absl::Status AddEntryBytes(std::string entry, std::string_view bytes, std::string folder = "");
  absl::Status AddEntry(std::string entry, GraphBuilder builder);

  // Places every entry's nodes on `backends` (priority order: each node
  // goes to the first that runs it), plans memory, binds weights and states
  // and compiles every pipeline: Run does none of that. A node no backend
  // runs is InvalidArgument naming it and each backend's reason (in strict
  // mode, a node the first backend does not run). Once per model
  // (FailedPrecondition the second time); on failure the model stays
  // unprepared and may be prepared again.
  absl::Status Prepare(std::vector<Backend> backends, const PrepareOptions& options = {});
  bool prepared() const;

  // Entry names, in the order they were added.
  std::vector<std::string> entries() const;
  // The entry of that name (NotFound listing the names); `name` empty: the
  // first entry (a file's own graph).
  absl::StatusOr<Entry*> entry(std::string_view name = "") const;

  // Every state of every entry, by name (an entry's state of the same name
  // is the same buffer once prepared).
  std::vector<TensorDesc> states() const;
  // Host access to state values (FailedPrecondition before Prepare; NotFound
  // listing the states for an unknown name). Waits for a running entry of
  // this model to finish. States start as zeros.
  absl::StatusOr<HostArray> ReadState(std::string_view name) const;
  // Into caller memory of exactly the state's contiguous size.
  absl::Status ReadState(std::string_view name, void* dst, size_t bytes) const;
  // `bytes` must be the state's contiguous size.
  absl::Status WriteState(std::string_view name, const void* data, size_t bytes);
  absl::Status ZeroState(std::string_view name);
  absl::Status ZeroStates();

  // The backends given to Prepare, and what Prepare cost.
  std::vector<Backend> backends() const;
  absl::StatusOr<PrepareStats> prepare_stats() const;

  struct Impl;  // api/ only

 private:
  friend struct Access;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::api
