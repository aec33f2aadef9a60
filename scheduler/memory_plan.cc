#include "scheduler/memory_plan.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ops/registry.h"
#include "scheduler/placement.h"

namespace kiln {
namespace {

int64_t AlignUp(int64_t n, int64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

std::vector<std::pair<int, int>> SchemaInplacePairs(const Node& node) {
  const OpSchema* schema = FindOp(node.op);
  return schema ? schema->inplace : std::vector<std::pair<int, int>>{};
}

// Best fit: among the gaps between already placed blocks whose lifetimes
// overlap this one, the smallest that fits; else on top of them all.
void PackArena(ArenaPlan& arena) {
  std::vector<int> order(arena.blocks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const ArenaBlock& x = arena.blocks[a];
    const ArenaBlock& y = arena.blocks[b];
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    if (x.first != y.first) return x.first < y.first;
    if (x.root != y.root) return x.root < y.root;
    return x.transfer < y.transfer;
  });
  std::vector<int> placed;
  std::vector<const ArenaBlock*> overlapping;
  for (int bi : order) {
    ArenaBlock& block = arena.blocks[bi];
    arena.naive_bytes += block.bytes;
    if (block.bytes == 0) continue;  // nothing to place; offset 0 is as good as any
    overlapping.clear();
    for (int pi : placed) {
      const ArenaBlock& other = arena.blocks[pi];
      if (other.first <= block.last && block.first <= other.last) overlapping.push_back(&other);
    }
    std::sort(overlapping.begin(), overlapping.end(),
              [](const ArenaBlock* a, const ArenaBlock* b) { return a->offset < b->offset; });
    int64_t best = -1;
    int64_t best_gap = std::numeric_limits<int64_t>::max();
    int64_t end = 0;  // highest byte used by the overlapping blocks seen so far
    for (const ArenaBlock* other : overlapping) {
      const int64_t gap = other->offset - end;
      if (gap >= block.bytes && gap < best_gap) {
        best = end;
        best_gap = gap;
      }
      end = std::max(end, other->offset + other->bytes);
    }
    block.offset = best >= 0 ? best : end;
    arena.peak_bytes = std::max(arena.peak_bytes, block.offset + block.bytes);
    placed.push_back(bi);
  }
}

// One transfer per (tensor, reading split) whose tensor lives on another
// backend, with an arena block for its copy on the split's backend.
void PlanTransfers(const Graph& graph, const std::vector<int>& node_backend, MemoryPlan& plan) {
  const std::vector<Placement::SplitPlan> splits = SplitRuns(node_backend);
  absl::flat_hash_map<int, int> in_split;  // tensor id -> index into plan.transfers
  for (int si = 0; si < static_cast<int>(splits.size()); ++si) {
    const Placement::SplitPlan& split = splits[si];
    in_split.clear();
    for (int ni : split.nodes) {
      for (int id : graph.nodes[ni].inputs) {
        if (id < 0) continue;
        const TensorStorage& home = plan.tensors[graph.StorageOf(id)];
        if (home.kind == StorageKind::kConstant || home.backend == split.backend) continue;
        auto [it, added] = in_split.try_emplace(id, static_cast<int>(plan.transfers.size()));
        if (added) {
          const TensorInfo& t = graph.tensors[id];
          TransferPlan tp;
          tp.tensor = id;
          tp.split = si;
          tp.from = home.backend;
          tp.to = split.backend;
          tp.bytes = ExtentBytes(t.dtype, t.dims, t.strides);
          ArenaPlan& arena = plan.arenas[tp.to];
          tp.block = static_cast<int>(arena.blocks.size());
          ArenaBlock block;
          block.root = id;
          block.transfer = it->second;
          block.bytes = AlignUp(tp.bytes, plan.alignment[tp.to]);
          block.first = split.nodes.front();
          arena.blocks.push_back(block);
          plan.transfers.push_back(tp);
        }
        const TransferPlan& tp = plan.transfers[it->second];
        ArenaBlock& block = plan.arenas[tp.to].blocks[tp.block];
        block.last = std::max(block.last, ni);
      }
    }
  }
}

}  // namespace

int64_t MemoryPlan::peak_bytes() const {
  int64_t n = 0;
  for (const ArenaPlan& a : arenas) n += a.peak_bytes;
  return n;
}

int64_t MemoryPlan::naive_bytes() const {
  int64_t n = 0;
  for (const ArenaPlan& a : arenas) n += a.naive_bytes;
  return n;
}

int64_t MemoryPlan::transfer_bytes() const {
  int64_t n = 0;
  for (const TransferPlan& t : transfers) n += t.bytes;
  return n;
}

absl::StatusOr<MemoryPlan> PlanMemory(const Graph& graph, const std::vector<int>& node_backend,
                                      int num_backends, const MemoryPlanOptions& options) {
  const int num_tensors = static_cast<int>(graph.tensors.size());
  const int num_nodes = static_cast<int>(graph.nodes.size());
  if (static_cast<int>(node_backend.size()) != num_nodes) {
    return absl::InvalidArgumentError(absl::StrCat("placement covers ", node_backend.size(),
                                                   " nodes; the graph has ", num_nodes));
  }
  for (int b : node_backend) {
    if (b < 0 || b >= num_backends) {
      return absl::InvalidArgumentError(absl::StrCat("placement names backend #", b));
    }
  }
  const auto& inplace_pairs = options.inplace_pairs ? options.inplace_pairs : SchemaInplacePairs;
  MemoryPlan plan;
  plan.alignment.assign(num_backends, kArenaAlignment);
  for (int b = 0; b < num_backends && b < static_cast<int>(options.alignment.size()); ++b) {
    const int64_t a = options.alignment[b];
    if (a <= 0 || (a & (a - 1)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("backend #", b, ": alignment ", a, " is not a power of two"));
    }
    plan.alignment[b] = std::max(a, kArenaAlignment);
  }
  // The tensor whose storage a tensor id uses, before in-place aliasing.
  auto base_of = [&](int id) { return graph.StorageOf(id); };

  plan.tensors.resize(num_tensors);
  plan.arenas.resize(num_backends);
  std::vector<bool> is_state(num_tensors, false), is_input(num_tensors, false);
  std::vector<int> state_next(num_tensors, -1);
  for (const StatePair& s : graph.states) {
    is_state[s.input] = true;
    state_next[s.input] = s.output;
  }
  for (int id : graph.inputs) is_input[id] = true;

  // Kind and backend of each storage (non-view) tensor.
  for (int id = 0; id < num_tensors; ++id) {
    const TensorInfo& t = graph.tensors[id];
    TensorStorage& st = plan.tensors[id];
    st.root = id;
    if (t.is_view()) continue;  // filled from its base below
    if (t.is_constant()) {
      st.kind = StorageKind::kConstant;
    } else if (is_input[id]) {
      st.kind = is_state[id] ? StorageKind::kState : StorageKind::kInput;
    } else if (t.producer >= 0 && t.producer < num_nodes) {
      st.kind = StorageKind::kArena;
      st.backend = node_backend[t.producer];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "' has no producer, data or binding (validate the graph first)"));
    }
  }

  // Last reader of each storage tensor; reads through views count for the
  // base, and graph outputs are read "at the end" (num_nodes).
  std::vector<int> last_read(num_tensors, -1);
  for (int ni = 0; ni < num_nodes; ++ni) {
    for (int id : graph.nodes[ni].inputs) {
      if (id < 0) continue;
      const int base = base_of(id);
      last_read[base] = std::max(last_read[base], ni);
      TensorStorage& st = plan.tensors[base];
      if (st.backend < 0) st.backend = node_backend[ni];  // inputs/constants: first reader
    }
  }
  for (int id : graph.outputs) last_read[base_of(id)] = num_nodes;
  // A state lives where its next value is computed, so that value can be
  // written in place and never crosses backends at the end of a run.
  for (const StatePair& s : graph.states) {
    plan.tensors[s.input].backend = node_backend[graph.tensors[s.output].producer];
  }
  for (int id = 0; id < num_tensors; ++id) {
    // Unread inputs and constants: with the first node (any place will do).
    if (plan.tensors[id].backend < 0) plan.tensors[id].backend = num_nodes > 0 ? node_backend[0] : 0;
  }

  // In-place decisions in node order. A group (root and the outputs computed
  // in place over it) is readable until group_last[root].
  std::vector<int> group_last(num_tensors, -1);
  for (int id = 0; id < num_tensors; ++id) group_last[id] = last_read[id];
  for (int ni = 0; ni < num_nodes && options.allow_inplace; ++ni) {
    const Node& node = graph.nodes[ni];
    absl::flat_hash_set<int> claimed;  // roots taken over by this node
    for (const auto& [in_slot, out_slot] : inplace_pairs(node)) {
      if (!node.has_input(in_slot) || out_slot < 0 || out_slot >= static_cast<int>(node.outputs.size())) {
        continue;
      }
      const int in = node.inputs[in_slot];
      const int out = node.outputs[out_slot];
      const TensorInfo& tin = graph.tensors[in];
      const TensorInfo& tout = graph.tensors[out];
      if (tin.is_view() || tout.is_view()) continue;
      const int root = plan.tensors[in].root;
      const TensorStorage& rs = plan.tensors[root];
      // A state's buffer takes only the state's own next value: then the
      // end-of-run copies of other states never read a buffer being written.
      if (rs.kind != StorageKind::kArena &&
          !(rs.kind == StorageKind::kState && state_next[root] == out)) {
        continue;
      }
      if (rs.backend != node_backend[ni]) continue;
      if (ContiguousBytes(tin.dtype, tin.dims) != ContiguousBytes(tout.dtype, tout.dims) ||
          ContiguousBytes(graph.tensors[root].dtype, graph.tensors[root].dims) !=
              ContiguousBytes(tout.dtype, tout.dims)) {
        continue;
      }
      // The old value must be dead after this node, and this node must read
      // it only through the in-place input.
      if (group_last[root] > ni || claimed.contains(root)) continue;
      bool read_elsewhere = false;
      for (int j = 0; j < static_cast<int>(node.inputs.size()); ++j) {
        if (j != in_slot && node.inputs[j] >= 0 &&
            plan.tensors[base_of(node.inputs[j])].root == root) {
          read_elsewhere = true;
        }
      }
      if (read_elsewhere) continue;
      claimed.insert(root);
      plan.tensors[out].root = root;
      plan.tensors[out].kind = rs.kind;
      group_last[root] = std::max(group_last[root], last_read[out]);
    }
  }

  // Arena blocks, one per group root.
  for (int id = 0; id < num_tensors; ++id) {
    TensorStorage& st = plan.tensors[id];
    if (graph.tensors[id].is_view() || st.root != id || st.kind != StorageKind::kArena) continue;
    const TensorInfo& t = graph.tensors[id];
    ArenaBlock block;
    block.root = id;
    block.bytes = AlignUp(ContiguousBytes(t.dtype, t.dims), plan.alignment[st.backend]);
    block.first = t.producer;
    block.last = std::max(group_last[id], t.producer);
    ArenaPlan& arena = plan.arenas[st.backend];
    st.block = static_cast<int>(arena.blocks.size());
    arena.blocks.push_back(block);
  }
  // Constants: a copy on every backend that reads them.
  plan.constant_backends.resize(num_tensors);
  for (int ni = 0; ni < num_nodes; ++ni) {
    for (int id : graph.nodes[ni].inputs) {
      if (id < 0 || plan.tensors[base_of(id)].kind != StorageKind::kConstant) continue;
      std::vector<int>& on = plan.constant_backends[base_of(id)];
      if (std::find(on.begin(), on.end(), node_backend[ni]) == on.end()) on.push_back(node_backend[ni]);
    }
  }
  PlanTransfers(graph, node_backend, plan);
  for (ArenaPlan& arena : plan.arenas) PackArena(arena);
  for (TransferPlan& t : plan.transfers) t.offset = plan.arenas[t.to].blocks[t.block].offset;

  // Offsets: in-place members take their root's; views add their offset.
  for (int id = 0; id < num_tensors; ++id) {
    if (graph.tensors[id].is_view()) continue;
    TensorStorage& st = plan.tensors[id];
    const TensorStorage& rs = plan.tensors[st.root];
    st.kind = rs.kind;
    st.backend = rs.backend;
    st.block = rs.block;
    st.offset = rs.kind == StorageKind::kArena ? plan.arenas[rs.backend].blocks[rs.block].offset : 0;
  }
  for (int id = 0; id < num_tensors; ++id) {
    const TensorInfo& t = graph.tensors[id];
    if (!t.is_view()) continue;
    TensorStorage& st = plan.tensors[id];
    st = plan.tensors[t.view_of];
    st.offset += t.offset;
  }

  plan.held.resize(num_backends);
  for (int id = 0; id < num_tensors; ++id) {
    const TensorInfo& t = graph.tensors[id];
    const TensorStorage& st = plan.tensors[id];
    if (t.is_view() || st.root != id) continue;
    const int64_t bytes = ContiguousBytes(t.dtype, t.dims);
    if (st.kind == StorageKind::kInput) plan.held[st.backend].inputs += bytes;
    if (st.kind == StorageKind::kState) plan.held[st.backend].states += bytes;
    for (int b : plan.constant_backends[id]) plan.held[b].constants += static_cast<int64_t>(t.constant->size);
  }

  plan.state_in_place.reserve(graph.states.size());
  for (const StatePair& s : graph.states) {
    plan.state_in_place.push_back(plan.tensors[s.output].root == s.input);
  }
  return plan;
}

}  // namespace kiln
