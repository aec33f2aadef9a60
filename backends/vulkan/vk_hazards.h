// Which nodes of a split must wait for the ones recorded before them. A
// node reading bytes that an unsynchronized earlier node writes, or writing
// bytes one reads or writes (read-after-write, write-after-read,
// write-after-write), needs a barrier first; the others may run beside their
// neighbours (the q, k and v projections of one x; the gate and up
// projections). On a GPU every barrier drains the queue (~3 us a node on
// the H200, bench/RESULTS.md), so only the needed ones are recorded.
// Ranges are of memory, not tensor ids: views and in-place outputs compare
// by the bytes they touch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <numeric>
#include <vector>

namespace kiln::vk {

struct ByteRange {
  const void* buffer = nullptr;  // the allocation (the backend's buffer object)
  size_t begin = 0, end = 0;     // [begin, end) in it
  bool Overlaps(const ByteRange& o) const { return buffer == o.buffer && begin < o.end && o.begin < end; }
};

// A node with these reads and writes must run after one with those: it
// reads what that one writes, or writes what that one reads or writes.
inline bool Conflict(const std::vector<ByteRange>& reads, const std::vector<ByteRange>& writes,
                     const std::vector<ByteRange>& earlier_reads, const std::vector<ByteRange>& earlier_writes) {
  for (const ByteRange& r : reads) {
    for (const ByteRange& w : earlier_writes) {
      if (r.Overlaps(w)) return true;
    }
  }
  for (const ByteRange& w : writes) {
    for (const ByteRange& e : earlier_writes) {
      if (w.Overlaps(e)) return true;
    }
    for (const ByteRange& e : earlier_reads) {
      if (w.Overlaps(e)) return true;
    }
  }
  return false;
}

// The nodes 0..n-1 (in a valid order) reordered by level: a node's level is
// one more than the deepest earlier node it conflicts with (`conflict(later,
// earlier)`), so nodes of one level touch no memory in common and a level
// needs one barrier, not one per node. Ties keep their order. O(n^2) pairs:
// splits are graphs of at most a few thousand nodes.
inline std::vector<size_t> OrderByLevel(size_t n, const std::function<bool(size_t, size_t)>& conflict) {
  std::vector<int> level(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (level[j] + 1 > level[i] && conflict(i, j)) level[i] = level[j] + 1;
    }
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return level[a] < level[b]; });
  return order;
}

class HazardTracker {
 public:
  // True when a node with these reads and writes must wait for every node
  // added since the last Clear().
  bool NeedsBarrier(const std::vector<ByteRange>& reads, const std::vector<ByteRange>& writes) const {
    return Conflict(reads, writes, reads_, writes_);
  }
  // A node recorded with no barrier between it and the ones before.
  void Add(const std::vector<ByteRange>& reads, const std::vector<ByteRange>& writes) {
    reads_.insert(reads_.end(), reads.begin(), reads.end());
    writes_.insert(writes_.end(), writes.begin(), writes.end());
  }
  // A barrier was recorded: everything before it is visible.
  void Clear() {
    reads_.clear();
    writes_.clear();
  }

 private:
  std::vector<ByteRange> reads_, writes_;
};

}  // namespace kiln::vk
