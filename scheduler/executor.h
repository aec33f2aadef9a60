// Executable: a graph made ready to run on backends, then run many times.
//
// Create() does all the work once: validates the graph, places every node
// (see placement.h), plans memory and transfers (memory_plan.h), allocates
// one arena per backend and the input/state buffers, binds the constants on
// every backend that reads them (zero-copy where the backend can use host
// memory, else uploaded once) and prepares the splits (resolving every
// pipeline). Run() then only executes the prepared splits and the planned
// transfers between them: no placement, allocation or lookup.
//
// Every backend sees only its own buffers: a split reads a tensor held by
// another backend through a copy in its own arena, made before the split
// runs, once per (tensor, split). Copies between two backends go through
// the source's Download straight into the destination's host memory, or
// the destination's Upload from the source's host memory, or a staging
// buffer when neither is host memory.
//
// Synchronisation follows backends/backend.h: each backend is an in-order
// queue. Run() submits every split (Execute returns a SyncPoint per split)
// and waits only where the host must: a copy out of a backend waits for the
// split that produced what it reads (not for the whole backend), and the
// end of the run waits for every backend. Errors a device raises while
// running (a bad gather id, a write_rows row out of range) come back from
// that wait, naming the node.
//
// Weights and states are bound through a ModelResources (resources.h):
// shared with the other graphs of a model when ExecutableOptions.resources
// is given, private otherwise. States start as zeros; SetInput on a state
// overwrites it. A state's next value is written straight into the state's
// buffer when the plan computes it in place (see memory_plan.h); otherwise
// Run copies it there, on its device, after the last node.
//
// Timings: with profiling on, Run asks every split for node timings on the
// device's clock and reads them after the wait. Profiling may be switched on
// and off between runs (ExecutableOptions.allow_timings = false saves what
// recording them costs on GPUs, and then profiling reports nothing).
//
// Threads: an Executable is used by one thread at a time. Several
// Executables (each on its own thread) may share backends and a
// ModelResources; two that share a state must not run at the same time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/backend.h"
#include "graph/graph.h"
#include "scheduler/execution_plan.h"
#include "scheduler/host_tensor.h"
#include "scheduler/memory_plan.h"
#include "scheduler/placement.h"
#include "scheduler/profile.h"
#include "scheduler/resources.h"

namespace kiln {

struct ExecutableOptions {
  bool profile = false;        // time every node on every Run
  bool trace = false;          // record every Run for trace() (see set_tracing)
  bool wrap_constants = true;  // bind constants zero-copy where the backend allows
  bool allow_timings = true;   // prepare splits so that runs can be timed
  PlacementOptions placement;  // strict mode, island merging
  MemoryPlanOptions memory;
  // Weights and states shared with other graphs of a model; null: private.
  std::shared_ptr<ModelResources> resources;
};

// Copies between backends done by runs.
struct TransferStats {
  int64_t count = 0;
  int64_t bytes = 0;
};

class Executable {
 public:
  // `backends` in priority order (see placement.h). A node no backend runs
  // is an error naming it; so is, in strict mode, a node the first backend
  // does not run.
  static absl::StatusOr<std::unique_ptr<Executable>> Create(
      Graph graph, std::vector<std::shared_ptr<Backend>> backends,
      const ExecutableOptions& options = {});

  Executable(const Executable&) = delete;
  Executable& operator=(const Executable&) = delete;
  ~Executable();

  const Graph& graph() const { return graph_; }
  const Placement& placement() const { return plan_.placement; }
  const MemoryPlan& memory_plan() const { return plan_.memory; }
  const std::vector<std::shared_ptr<Backend>>& backends() const { return backends_; }

  // Binds a graph input (or resets a state) by name. The value must have the
  // input's dtype and dims; a view may be strided.
  absl::Status SetInput(absl::string_view name, const TensorView& value);
  absl::Status SetInput(absl::string_view name, const HostTensor& value);
  // Raw C-order bytes: exactly the input's ContiguousBytes.
  absl::Status SetInputBytes(absl::string_view name, const void* data, size_t bytes);

  // Runs every split in order, with its incoming transfers, and waits for
  // the backends. Every non-state input must have been set. Run() is
  // Submit() then Wait().
  absl::Status Run();
  // Submits the run and returns without waiting for the devices at the end;
  // Wait() (before any other call on this Executable) finishes it and
  // returns its errors.
  absl::Status Submit();
  absl::Status Wait();

  // The weights and states this graph uses (shared or its own).
  ModelResources& resources() const { return *resources_; }

  // A contiguous host copy of a graph output after a Run, or of a state's
  // current value (by the state input's name) at any time.
  absl::StatusOr<HostTensor> GetOutput(absl::string_view name) const;

  // Zero-copy access, for backends whose buffers the host can address
  // (Buffer::host_data: CPU memory, host-visible device memory); nullptr
  // where it cannot. InputHostData: the own buffer of graph input `name` (not
  // a state), ContiguousBytes long, contents undefined until written; it
  // marks the input set, and the caller writes it only while no run is in
  // flight. OutputHostData: the bytes of output `name` after a run when they
  // are a node's output in the arena and contiguous (nullptr for a state or
  // an input read back), valid until the next Submit.
  absl::StatusOr<std::byte*> InputHostData(absl::string_view name);
  absl::StatusOr<const std::byte*> OutputHostData(absl::string_view name) const;

  // Per-node timings summed over profiled runs (one entry per node).
  void set_profiling(bool on) { profiling_ = on; }
  bool profiling() const { return profiling_; }
  const std::vector<NodeProfile>& node_profile() const { return node_profile_; }
  std::vector<OpProfile> op_profile() const { return AggregateByOp(node_profile_); }
  void ResetProfile();
  int64_t runs() const { return runs_; }

  // Transfers between backends over all runs (state copies not included).
  const TransferStats& transfer_stats() const { return transfer_stats_; }

  // A timeline: the pipeline compiles of Create (one event per split
  // prepared), then, for every run while tracing, each split, node and
  // transfer. Times are from the start of Create.
  void set_tracing(bool on) { tracing_ = on; }
  bool tracing() const { return tracing_; }
  Trace trace() const;
  void ResetTrace() { run_events_.clear(); }

 private:
  struct InputSlot {
    int tensor = -1;
    bool is_state = false;
    bool set = false;
    Backend* backend = nullptr;
    int backend_index = -1;
    Buffer* buffer = nullptr;            // owned below, or the shared state's
    std::unique_ptr<Buffer> own_buffer;  // inputs that are not states
  };
  // A copy between two buffers, possibly of two backends.
  struct CopyOp {
    int tensor = -1;
    int transfer = -1;  // index into memory_plan().transfers; -1: a state copy
    int from = -1, to = -1;  // backend indices
    const Buffer* src = nullptr;
    size_t src_offset = 0;
    Buffer* dst = nullptr;
    size_t dst_offset = 0;
    size_t bytes = 0;
    int producer_split = -1;  // the split that writes the source; -1: an input or state
  };
  struct PreparedRun {
    int backend = -1;
    std::unique_ptr<PreparedSplit> split;
    std::vector<CopyOp> transfers_in;
    SyncPoint done = 0;     // of the last Execute
    double submit_us = 0;   // when the last run submitted it
    bool timed = false;     // whether the last run asked for timings
  };
  // What happened when, for trace(): kinds below, index by kind.
  struct RunEvent {
    enum Kind : uint8_t { kSplit, kNode, kTransfer, kStateCopy };
    Kind kind;
    int index;  // split, node, transfer or state (graph.states) index
    double start_us, duration_us;
  };
  struct PrepareEvent {
    int split = -1;
    double start_us = 0, duration_us = 0;
    PipelineStats before, after;
  };

  Executable() = default;
  absl::Status Init(const ExecutableOptions& options);
  absl::Status BindConstants(bool wrap);
  absl::Status PrepareSplits(const PrepareOptions& options);
  absl::Status PrepareOne(size_t si, const PrepareOptions& options, Bindings& local);
  absl::Status Upload(InputSlot& slot, const void* data, size_t bytes);
  absl::Status DoCopy(const CopyOp& op);
  absl::Status WaitFor(int backend, SyncPoint point);
  absl::Status WaitAll();
  InputSlot* FindInput(absl::string_view name);
  int ProducerSplit(int tensor) const;  // -1: not written by a node
  double NowUs() const;

  Graph graph_;
  std::vector<std::shared_ptr<Backend>> backends_;
  ExecutionPlan plan_;
  std::shared_ptr<ModelResources> resources_;
  std::vector<std::unique_ptr<Buffer>> arenas_;  // per backend (null if unused)
  // Per backend, per tensor id: that backend's copy of a constant.
  std::vector<absl::flat_hash_map<int, Binding>> constant_on_;
  std::vector<InputSlot> inputs_;
  absl::flat_hash_map<std::string, int> input_index_;  // name -> inputs_ index
  absl::flat_hash_map<std::string, int> readable_;     // name -> tensor id (GetOutput)
  std::vector<Binding> home_;  // per tensor id: its bytes on the backend holding it
  std::vector<PreparedRun> prepared_;
  std::vector<CopyOp> state_copies_;
  std::vector<int> node_split_;  // per node: its split
  // Per backend: the last point submitted, the last waited for, and the
  // point covering this run's input uploads.
  std::vector<SyncPoint> submitted_, reached_, inputs_ready_;
  bool in_flight_ = false;  // Submit() done, Wait() not yet
  std::vector<std::byte> staging_;  // for copies between two non-host memories

  bool profiling_ = false;
  bool allow_timings_ = true;
  bool tracing_ = false;
  std::chrono::steady_clock::time_point origin_;
  std::vector<NodeTiming> timings_;  // reused by every timed split
  std::vector<NodeProfile> node_profile_;
  std::vector<PrepareEvent> prepare_events_;
  std::vector<RunEvent> run_events_;
  TransferStats transfer_stats_;
  int64_t runs_ = 0;
  bool has_run_ = false;
};

}  // namespace kiln
