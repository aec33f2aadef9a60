#include "scheduler/memory_plan.h"
#include "graph/message_text.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <limits>
#include <map>
#include <queue>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ops/registry.h"
#include "scheduler/placement.h"

namespace kiln {
namespace {

int64_t AlignUp(int64_t n, int64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// total += n unless that passes kMaxArenaBytes (or overflows).
bool AddWithinLimit(int64_t& total, int64_t n) {
  int64_t sum;
  if (n < 0 || __builtin_add_overflow(total, n, &sum) || sum > kMaxArenaBytes) return false;
  total = sum;
  return true;
}

std::vector<std::pair<int, int>> SchemaInplacePairs(const Node& node) {
  const OpSchema* schema = FindOp(node.op);
  return schema ? schema->inplace : std::vector<std::pair<int, int>>{};
}

// The placed blocks whose lifetimes overlap a query range, found without
// scanning every placed block: those alive at the range's first node (a
// segment tree over node indices answers "alive at t") plus those that start
// inside the range (an ordered set by first node). Both parts cost
// O(log n + answers), so a long chain of short-lived blocks packs in
// O(n log n) where scanning every placed block was O(n^2).
class LifetimeIndex {
 public:
  explicit LifetimeIndex(int num_points) {
    size_ = 1;
    while (size_ < num_points) size_ <<= 1;
    alive_.resize(2 * static_cast<size_t>(size_));
  }

  void Insert(int block, const ArenaBlock& b) {
    for (int l = b.first + size_, r = b.last + 1 + size_; l < r; l >>= 1, r >>= 1) {
      if (l & 1) alive_[l++].push_back(block);
      if (r & 1) alive_[--r].push_back(block);
    }
    by_first_.insert({b.first, block});
  }

  // Appends the overlapping blocks to `out`.
  void Query(const ArenaBlock& b, std::vector<int>& out) const {
    for (int i = b.first + size_; i >= 1; i >>= 1) out.insert(out.end(), alive_[i].begin(), alive_[i].end());
    for (auto it = by_first_.upper_bound({b.first, INT_MAX}); it != by_first_.end() && it->first <= b.last; ++it) {
      out.push_back(it->second);
    }
  }

 private:
  int size_ = 1;
  std::vector<std::vector<int>> alive_;  // segment tree nodes: blocks covering them
  std::set<std::pair<int, int>> by_first_;
};

// Best fit, largest first: among the gaps between already placed blocks
// whose lifetimes overlap this one, the smallest that fits; else on top of
// them all. Returns false (offsets partly set) when it would examine more
// than `max_visits` overlaps: real models stay far under the default (tens
// of blocks live at once), while a hostile graph with many blocks live
// together would make this quadratic.
bool PackBestFit(ArenaPlan& arena, const std::vector<int>& order, int num_points, int64_t max_visits) {
  LifetimeIndex index(num_points);
  std::vector<int> overlapping;
  int64_t visits = 0;
  for (int bi : order) {
    ArenaBlock& block = arena.blocks[bi];
    if (block.bytes == 0) continue;  // nothing to place; offset 0 is as good as any
    overlapping.clear();
    index.Query(block, overlapping);
    visits += static_cast<int64_t>(overlapping.size());
    if (visits > max_visits) return false;
    std::sort(overlapping.begin(), overlapping.end(),
              [&](int a, int b) { return arena.blocks[a].offset < arena.blocks[b].offset; });
    int64_t best = -1;
    int64_t best_gap = std::numeric_limits<int64_t>::max();
    int64_t end = 0;  // highest byte used by the overlapping blocks seen so far
    for (int oi : overlapping) {
      const ArenaBlock& other = arena.blocks[oi];
      const int64_t gap = other.offset - end;
      if (gap >= block.bytes && gap < best_gap) {
        best = end;
        best_gap = gap;
      }
      end = std::max(end, other.offset + other.bytes);
    }
    block.offset = best >= 0 ? best : end;
    index.Insert(bi, block);
  }
  return true;
}

// Online best fit in node order, as an allocator would do it: blocks freed
// when their last reader has run, each new block in the smallest free gap
// that fits, else on top. O(n log n) whatever the lifetimes; used only where
// the exact packing above would take too long.
void PackOnline(ArenaPlan& arena) {
  std::vector<int> order;
  for (int i = 0; i < static_cast<int>(arena.blocks.size()); ++i) {
    if (arena.blocks[i].bytes > 0) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const ArenaBlock& x = arena.blocks[a];
    const ArenaBlock& y = arena.blocks[b];
    if (x.first != y.first) return x.first < y.first;
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    return a < b;
  });
  std::map<int64_t, int64_t> free_at;             // offset -> size of a free gap below the top
  std::set<std::pair<int64_t, int64_t>> by_size;  // (size, offset) of the same gaps
  int64_t top = 0;
  using Live = std::pair<int, int>;  // (last node, block)
  std::priority_queue<Live, std::vector<Live>, std::greater<>> live;
  auto release = [&](const ArenaBlock& b) {
    int64_t off = b.offset, size = b.bytes;
    auto next = free_at.find(off + size);
    if (next != free_at.end()) {
      size += next->second;
      by_size.erase({next->second, next->first});
      free_at.erase(next);
    }
    auto prev = free_at.lower_bound(off);
    if (prev != free_at.begin()) {
      --prev;
      if (prev->first + prev->second == off) {
        off = prev->first;
        size += prev->second;
        by_size.erase({prev->second, prev->first});
        free_at.erase(prev);
      }
    }
    if (off + size == top) {
      top = off;  // the top of the arena comes down instead of keeping a gap there
      return;
    }
    free_at[off] = size;
    by_size.insert({size, off});
  };
  for (int bi : order) {
    ArenaBlock& block = arena.blocks[bi];
    while (!live.empty() && live.top().first < block.first) {
      release(arena.blocks[live.top().second]);
      live.pop();
    }
    auto fit = by_size.lower_bound({block.bytes, std::numeric_limits<int64_t>::min()});
    if (fit != by_size.end()) {
      const auto [size, off] = *fit;
      by_size.erase(fit);
      free_at.erase(off);
      block.offset = off;
      if (size > block.bytes) {
        free_at[off + block.bytes] = size - block.bytes;
        by_size.insert({size - block.bytes, off + block.bytes});
      }
    } else {
      block.offset = top;
      top += block.bytes;
    }
    live.push({block.last, bi});
  }
}

// Packs the arena's blocks (offsets, peak and naive totals). Sizes were
// checked against kMaxArenaBytes, so the sums here cannot overflow.
absl::Status PackArena(ArenaPlan& arena, int backend, int64_t max_visits) {
  std::vector<int> order(arena.blocks.size());
  int num_points = 1;
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = static_cast<int>(i);
    const ArenaBlock& b = arena.blocks[i];
    num_points = std::max(num_points, b.last + 1);
    if (b.bytes < 0 || __builtin_add_overflow(arena.naive_bytes, b.bytes, &arena.naive_bytes) ||
        arena.naive_bytes > kMaxArenaBytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the tensors computed on backend #", backend, " need more than ", kMaxArenaBytes,
          " bytes in all (the limit of one arena, before reuse)"));
    }
  }
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const ArenaBlock& x = arena.blocks[a];
    const ArenaBlock& y = arena.blocks[b];
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    if (x.first != y.first) return x.first < y.first;
    if (x.root != y.root) return x.root < y.root;
    return x.transfer < y.transfer;
  });
  if (!PackBestFit(arena, order, num_points, max_visits)) PackOnline(arena);
  arena.peak_bytes = 0;
  for (const ArenaBlock& b : arena.blocks) {
    if (b.bytes > 0) arena.peak_bytes = std::max(arena.peak_bytes, b.offset + b.bytes);
  }
  return absl::OkStatus();
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
          absl::StrCat("tensor ", QuoteName(t.name), " has no producer, data or binding (validate the graph first)"));
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
  for (int b = 0; b < num_backends; ++b) {
    if (auto st = PackArena(plan.arenas[b], b, options.max_overlap_visits); !st.ok()) return st;
  }
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
    BackendBytes& held = plan.held[st.backend];
    int64_t* total = st.kind == StorageKind::kInput ? &held.inputs
                     : st.kind == StorageKind::kState ? &held.states
                                                      : nullptr;
    if (total && !AddWithinLimit(*total, bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the graph ", st.kind == StorageKind::kInput ? "inputs" : "states", " held on backend #", st.backend,
          " need more than ", kMaxArenaBytes, " bytes in all (at ", Describe(t), ")"));
    }
    for (int b : plan.constant_backends[id]) {
      if (!AddWithinLimit(plan.held[b].constants, static_cast<int64_t>(t.constant->size))) {
        return absl::ResourceExhaustedError(absl::StrCat("the constants read on backend #", b, " need more than ",
                                                         kMaxArenaBytes, " bytes in all (at ", Describe(t), ")"));
      }
    }
  }

  plan.state_in_place.reserve(graph.states.size());
  for (const StatePair& s : graph.states) {
    plan.state_in_place.push_back(plan.tensors[s.output].root == s.input);
  }
  return plan;
}

}  // namespace kiln
