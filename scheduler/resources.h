// ModelResources: the weights and states that the graphs of one model share.
//
// A model is several graphs over one set of weights and states: a prefill
// graph and a decode graph, say. Every Executable binds its constants and
// states through a ModelResources (its own when none is given), so that
//
// - a weight is held once per backend, however many graphs read it. Two
//   constants are the same weight when they come from the same range of the
//   same external weights file (same device and inode, offset and length:
//   no bytes are read to tell), or, for inline data and unrelated files,
//   when their bytes are equal (a hash, confirmed byte for byte). Weights new
//   to a backend are packed into few large allocations (each at most the
//   backend's max_allocation and kWeightChunkBytes), uploaded, and waited for
//   once; where the backend can use host memory in place they are wrapped,
//   not copied.
// - a state is bound by name to one buffer on one backend, shared by every
//   graph of the model that declares a state of that name (same dtype and
//   dims, or an error naming both graphs). It starts as zeros (Fill), stays
//   on its device between runs and graphs, and reaches the host only through
//   ReadState.
//
// Thread-safe: graphs of one model may be prepared from several threads.
// Running them is up to the Executables (one thread at a time each; two
// Executables that share a state must not run at the same time).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backends/backend.h"
#include "graph/graph.h"
#include "scheduler/host_tensor.h"

namespace kiln {

// Weights are packed into allocations of at most this many bytes.
inline constexpr uint64_t kWeightChunkBytes = uint64_t{1} << 30;

struct WeightStats {
  int64_t bytes_held = 0;      // device (or wrapped host) bytes of distinct weights
  int64_t bytes_shared = 0;    // bytes a graph asked for that were already held
  int64_t bytes_uploaded = 0;  // bytes copied to the device
  int64_t bytes_wrapped = 0;   // bytes used in place (host memory)
  int64_t allocations = 0;     // weight buffers allocated
  int64_t uploads = 0;         // Upload calls for weights
};

class ModelResources {
 public:
  ModelResources() = default;
  ModelResources(const ModelResources&) = delete;
  ModelResources& operator=(const ModelResources&) = delete;
  ~ModelResources();

  // Binds the constants `ids` of `graph` on `backend`: out[i] is where
  // ids[i]'s bytes are (a constant that is a view is bound at its base plus
  // the view offset). With `wrap`, host memory is used in place where the
  // backend can.
  absl::Status BindWeights(const std::shared_ptr<Backend>& backend, const Graph& graph,
                           const std::vector<int>& ids, bool wrap, std::vector<Binding>* out);

  // The state named `name` on `backend`, created (zeroed) on first use.
  // `graph_name` is for messages.
  struct State {
    std::string name;
    DType dtype = DType::kF32;
    std::vector<int64_t> dims;
    std::shared_ptr<Backend> backend;
    std::unique_ptr<Buffer> buffer;
    std::string first_graph;  // the graph that created it
  };
  absl::StatusOr<State*> BindState(const std::shared_ptr<Backend>& backend, const TensorInfo& tensor,
                                   absl::string_view graph_name);

  // Explicit host access to states (by name).
  std::vector<std::string> StateNames() const;
  absl::StatusOr<HostTensor> ReadState(absl::string_view name) const;
  absl::Status WriteState(absl::string_view name, const void* data, size_t bytes);
  absl::Status ZeroState(absl::string_view name);
  absl::Status ZeroStates();  // every state

  WeightStats weight_stats() const;

 private:
  struct Weight {
    Backend* backend = nullptr;
    Buffer* buffer = nullptr;
    size_t offset = 0;
    size_t size = 0;
    std::shared_ptr<const ConstantData> data;  // to confirm content matches
  };
  State* FindStateLocked(absl::string_view name) const;
  absl::Status ZeroLocked(State& s);

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Backend>> backends_;  // kept alive while buffers are
  std::vector<std::unique_ptr<Buffer>> weight_buffers_;
  // (backend, identity) -> weight; identity is the file range or a content
  // hash (see .cc).
  absl::flat_hash_map<std::pair<Backend*, std::string>, Weight> weights_;
  std::vector<std::unique_ptr<State>> states_;
  WeightStats stats_;
};

}  // namespace kiln
