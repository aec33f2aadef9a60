// Executable: a graph made ready to run on backends, then run many times.
//
// Create() does all the work once: validates the graph, places every node,
// plans memory, allocates the arenas and the input/state buffers, binds the
// constants (zero-copy where the backend can use host memory, else uploaded)
// and prepares the splits (resolving every pipeline). Run() then only
// executes the prepared splits: no allocation, placement or lookup.
//
// States (Graph.states) are bound once to buffers that persist between runs
// and start as zeros; SetInput on a state resets it. A state's next value is
// written straight into the state's buffer when the plan computes it in place
// (see memory_plan.h); otherwise Run copies it there after the last node.
//
// Not thread-safe: one caller at a time per Executable.
#pragma once

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
#include "scheduler/host_tensor.h"
#include "scheduler/memory_plan.h"
#include "scheduler/placement.h"
#include "scheduler/profile.h"

namespace kiln {

struct ExecutableOptions {
  bool profile = false;        // time every node on every Run
  bool wrap_constants = true;  // bind constants zero-copy where the backend allows
  MemoryPlanOptions memory;
};

class Executable {
 public:
  // `backends` in priority order; each node runs on the first that supports
  // it. For now all nodes must land on one backend (no cross-backend
  // transfers yet); a node no backend runs is an error naming it.
  static absl::StatusOr<std::unique_ptr<Executable>> Create(
      Graph graph, std::vector<std::shared_ptr<Backend>> backends,
      const ExecutableOptions& options = {});

  Executable(const Executable&) = delete;
  Executable& operator=(const Executable&) = delete;
  ~Executable();

  const Graph& graph() const { return graph_; }
  const Placement& placement() const { return placement_; }
  const MemoryPlan& memory_plan() const { return plan_; }
  const std::vector<std::shared_ptr<Backend>>& backends() const { return backends_; }

  // Binds a graph input (or resets a state) by name. The value must have the
  // input's dtype and dims; a view may be strided.
  absl::Status SetInput(absl::string_view name, const TensorView& value);
  absl::Status SetInput(absl::string_view name, const HostTensor& value);
  // Raw C-order bytes: exactly the input's ContiguousBytes.
  absl::Status SetInputBytes(absl::string_view name, const void* data, size_t bytes);

  // Runs every split in order and waits for it. Every non-state input must
  // have been set.
  absl::Status Run();

  // A contiguous host copy of a graph output after a Run, or of a state's
  // current value (by the state input's name) at any time.
  absl::StatusOr<HostTensor> GetOutput(absl::string_view name) const;

  // Per-node timings summed over profiled runs (one entry per node).
  void set_profiling(bool on) { profiling_ = on; }
  bool profiling() const { return profiling_; }
  const std::vector<NodeProfile>& node_profile() const { return node_profile_; }
  std::vector<OpProfile> op_profile() const { return AggregateByOp(node_profile_); }
  void ResetProfile();
  int64_t runs() const { return runs_; }

 private:
  struct InputSlot {
    int tensor = -1;
    bool is_state = false;
    bool set = false;
    std::unique_ptr<Buffer> buffer;
  };
  struct StateCopy {  // the next value computed elsewhere, copied back after a run
    Buffer* src = nullptr;
    size_t src_offset = 0;
    Buffer* dst = nullptr;
    size_t bytes = 0;
  };
  struct PreparedRun {
    Backend* backend = nullptr;
    std::unique_ptr<PreparedSplit> split;
  };

  Executable() = default;
  absl::Status Init(const ExecutableOptions& options);
  absl::Status Upload(InputSlot& slot, const void* data, size_t bytes);
  InputSlot* FindInput(absl::string_view name);

  Graph graph_;
  std::vector<std::shared_ptr<Backend>> backends_;
  Backend* backend_ = nullptr;  // the one backend every node runs on (for now)
  Placement placement_;
  MemoryPlan plan_;
  std::vector<std::unique_ptr<Buffer>> arenas_;     // per backend (null if unused)
  std::vector<std::unique_ptr<Buffer>> constants_;  // one per constant tensor
  std::vector<InputSlot> inputs_;
  absl::flat_hash_map<std::string, int> input_index_;   // name -> inputs_ index
  absl::flat_hash_map<std::string, int> readable_;      // name -> tensor id (GetOutput)
  Bindings bindings_;
  std::vector<Split> splits_;
  std::vector<PreparedRun> prepared_;
  std::vector<StateCopy> state_copies_;

  bool profiling_ = false;
  std::vector<NodeTiming> timings_;  // reused by every profiled run
  std::vector<NodeProfile> node_profile_;
  int64_t runs_ = 0;
  bool has_run_ = false;
};

}  // namespace kiln
