// Memory plan: where every tensor's bytes live.
//
// Node outputs live in one arena per backend. Each has a lifetime over the
// node order, from its producer to its last reader (reads through a view
// count for the view's base; graph outputs live to the end), and the arena
// offsets are packed greedily (best fit, largest first) so that tensors whose
// lifetimes do not overlap reuse the same bytes.
//
// Graph inputs, states and constants are not in the arena: the executor binds
// them to buffers of their own. An op output may share its input's buffer
// (in place) when the op lists the (input, output) pair in OpSchema.inplace,
// nothing reads the old value after that node (nor, at that node, through
// another input), and the input is an arena tensor, or a state whose declared
// next value this output is. This is how a state's next value is written straight into
// the state's buffer (write_rows into a KV cache), and how a chain of
// in-place ops on intermediates avoids a second buffer.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"

namespace kiln {

inline constexpr int64_t kArenaAlignment = 64;

enum class StorageKind : uint8_t {
  kArena,     // a node output, packed into its backend's arena
  kInput,     // a graph input: a buffer of its own, set by the caller
  kState,     // a graph input that is a state: a buffer that persists
  kConstant,  // weights: wrapped host memory or uploaded once
};

// One group of tensors that share bytes in an arena: a node output and the
// outputs that were computed in place over it.
struct ArenaBlock {
  int root = -1;       // tensor id that owns the bytes
  int64_t offset = 0;  // into the arena, a multiple of kArenaAlignment
  int64_t bytes = 0;   // rounded up to kArenaAlignment
  int first = 0;       // node that writes it first
  int last = 0;        // last node that reads it; the node count = "to the end"
};

struct ArenaPlan {
  std::vector<ArenaBlock> blocks;
  int64_t peak_bytes = 0;   // arena size
  int64_t naive_bytes = 0;  // sum of block sizes: the size without reuse
};

struct TensorStorage {
  StorageKind kind = StorageKind::kArena;
  int root = -1;       // the tensor whose buffer holds these bytes (itself,
                       // its view base, or the input it was computed in place over)
  int backend = -1;    // the backend whose memory holds it
  int block = -1;      // index into arenas[backend].blocks (kArena only)
  int64_t offset = 0;  // byte offset within the root's buffer (the arena for kArena)
};

struct MemoryPlan {
  std::vector<TensorStorage> tensors;  // indexed by tensor id
  std::vector<ArenaPlan> arenas;       // indexed by backend
  // Per graph.states entry: whether the next value is written into the
  // state's buffer (else the executor copies it there after the run).
  std::vector<bool> state_in_place;

  int64_t peak_bytes() const;   // over all arenas
  int64_t naive_bytes() const;  // over all arenas
};

struct MemoryPlanOptions {
  // The (input, output) pairs a node may compute in place; defaults to the
  // op's OpSchema.inplace from the registry. Tests may supply their own.
  std::function<std::vector<std::pair<int, int>>(const Node&)> inplace_pairs;
  bool allow_inplace = true;  // false: every node output gets its own bytes
};

// Plans a validated graph whose nodes run on `node_backend[i]` (indices into
// a list of `num_backends` backends). Inputs, states and constants are
// assigned to the backend of their first reader.
absl::StatusOr<MemoryPlan> PlanMemory(const Graph& graph, const std::vector<int>& node_backend,
                                      int num_backends, const MemoryPlanOptions& options = {});

}  // namespace kiln
