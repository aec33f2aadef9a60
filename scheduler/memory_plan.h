// Memory plan: where every tensor's bytes live.
//
// Node outputs live in one arena per backend. Each has a lifetime over the
// node order, from its producer to its last reader (reads through a view
// count for the view's base; graph outputs live to the end), and the arena
// offsets are packed greedily (best fit, largest first) so that tensors whose
// lifetimes do not overlap reuse the same bytes. Packing finds the blocks
// live alongside each one through an interval index, O(n log n) for real
// graphs; a graph with so many blocks live at once that exact best fit would
// be quadratic is packed online in node order instead (best fit from a free
// list), also O(n log n).
//
// Graph inputs, states and constants are not in the arena: the executor binds
// them to buffers of their own. A graph input lives on the backend of its
// first reader, a state on the backend that computes its next value, and a
// constant on every backend that reads it (uploaded once, at prepare time).
//
// A tensor read by a split on another backend than its own is copied into
// that split's backend before the split runs: once per (tensor, split), into
// an arena block that lives from the split's first node to the tensor's last
// reader in the split. A view is copied as the bytes it spans (its extent),
// so the copy keeps the view's strides at offset 0. An op output may share its input's buffer
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

// Arena offsets are multiples of the backend's limits().buffer_alignment,
// and of this at least.
inline constexpr int64_t kArenaAlignment = 64;
// The most bytes one backend's arena may need before reuse (the sum of its
// blocks), and likewise its inputs, its states and its constants: 1 PiB, far
// beyond any device, and small enough that every total in a plan (summed
// over backends too) fits in int64. A graph over it is a ResourceExhausted
// error, not a wrapped-around total.
inline constexpr int64_t kMaxArenaBytes = int64_t{1} << 50;

enum class StorageKind : uint8_t {
  kArena,     // a node output, packed into its backend's arena
  kInput,     // a graph input: a buffer of its own, set by the caller
  kState,     // a graph input that is a state: a buffer that persists
  kConstant,  // weights: wrapped host memory or uploaded once
};

// One group of tensors that share bytes in an arena: a node output and the
// outputs that were computed in place over it.
struct ArenaBlock {
  int root = -1;       // tensor id that owns the bytes (for a transfer: the tensor copied)
  int transfer = -1;   // index into MemoryPlan.transfers for a transfer's copy
  int64_t offset = 0;  // into the arena, a multiple of the arena's alignment
  int64_t bytes = 0;   // rounded up to the arena's alignment
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

// A copy made on every run: a tensor read by a split on another backend.
struct TransferPlan {
  int tensor = -1;     // the tensor as the split reads it (a view or a storage tensor)
  int split = -1;      // index into SplitRuns(node_backend): the reading split
  int from = -1;       // backend holding the tensor
  int to = -1;         // backend of the split
  int64_t bytes = 0;   // ExtentBytes of the tensor
  int block = -1;      // its copy: index into arenas[to].blocks
  int64_t offset = 0;  // its copy's offset in arena `to`
};

// Bytes a backend holds besides its arena.
struct BackendBytes {
  int64_t inputs = 0;     // graph inputs that are not states
  int64_t states = 0;
  int64_t constants = 0;  // weights read by its nodes (wrapped or uploaded)
};

struct MemoryPlan {
  std::vector<TensorStorage> tensors;  // indexed by tensor id
  std::vector<ArenaPlan> arenas;       // indexed by backend
  std::vector<int64_t> alignment;      // per backend: of arena offsets and sizes
  std::vector<BackendBytes> held;      // indexed by backend
  // Per graph.states entry: whether the next value is written into the
  // state's buffer (else the executor copies it there after the run).
  std::vector<bool> state_in_place;
  // Per tensor id: the backends that read it when it is a constant (each
  // gets its own copy), else empty.
  std::vector<std::vector<int>> constant_backends;
  // In split order, and within a split in order of first reading node.
  std::vector<TransferPlan> transfers;

  int64_t peak_bytes() const;      // over all arenas
  int64_t naive_bytes() const;     // over all arenas
  int64_t transfer_bytes() const;  // copied per run
};

struct MemoryPlanOptions {
  // The (input, output) pairs a node may compute in place; defaults to the
  // op's OpSchema.inplace from the registry. Tests may supply their own.
  std::function<std::vector<std::pair<int, int>>(const Node&)> inplace_pairs;
  bool allow_inplace = true;  // false: every node output gets its own bytes
  // Per backend: arena offsets are multiples of this (a power of two; at
  // least kArenaAlignment). Missing entries are kArenaAlignment.
  std::vector<int64_t> alignment;
  // Per arena, the overlapping blocks exact best fit may examine before it
  // gives way to online packing (see the top of this file); tests lower it.
  int64_t max_overlap_visits = int64_t{1} << 22;
};

// Plans a validated graph whose nodes run on `node_backend[i]` (indices into
// a list of `num_backends` backends); the splits are SplitRuns(node_backend).
absl::StatusOr<MemoryPlan> PlanMemory(const Graph& graph, const std::vector<int>& node_backend,
                                      int num_backends, const MemoryPlanOptions& options = {});

}  // namespace kiln
