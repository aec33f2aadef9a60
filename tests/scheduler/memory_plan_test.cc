#include "scheduler/memory_plan.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

std::vector<int> OneBackend(const Graph& g) { return std::vector<int>(g.nodes.size(), 0); }

MemoryPlan Plan(const Graph& g, const MemoryPlanOptions& options = {}) {
  auto plan = PlanMemory(g, OneBackend(g), 1, options);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : MemoryPlan{};
}

int64_t Aligned(int64_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

// Independent check of a plan by brute force. Lifetimes are recomputed from
// the graph: a node output is live from its producer to its last reader
// (reads through views count for the base; graph outputs to the end). At
// every node, two live arena tensors may share bytes only when one is
// computed in place over the other right there: same root, the old one's
// life ends at the node that starts the new one's.
void ExpectNoLiveOverlap(const Graph& g, const MemoryPlan& plan) {
  const int n = static_cast<int>(g.nodes.size());
  const int num_tensors = static_cast<int>(g.tensors.size());
  std::vector<int> last(num_tensors, -1);
  for (int ni = 0; ni < n; ++ni) {
    for (int id : g.nodes[ni].inputs) {
      if (id >= 0) last[g.StorageOf(id)] = std::max(last[g.StorageOf(id)], ni);
    }
  }
  for (int id : g.outputs) last[g.StorageOf(id)] = n;
  struct Live {
    int id, first, last;
    int64_t begin, end;
  };
  std::vector<Live> arena;
  for (int id = 0; id < num_tensors; ++id) {
    const TensorInfo& t = g.tensors[id];
    const TensorStorage& st = plan.tensors[id];
    if (t.is_view() || st.kind != StorageKind::kArena) continue;
    const int64_t bytes = ContiguousBytes(t.dtype, t.dims);
    ASSERT_EQ(st.offset % kArenaAlignment, 0) << t.name;
    ASSERT_LE(st.offset + bytes, plan.arenas[st.backend].peak_bytes) << t.name;
    arena.push_back({id, t.producer, std::max(last[id], t.producer), st.offset, st.offset + bytes});
  }
  for (int p = 0; p <= n; ++p) {
    for (const Live& a : arena) {
      for (const Live& b : arena) {
        if (a.id >= b.id || a.begin >= a.end || b.begin >= b.end) continue;
        const bool live_a = a.first <= p && p <= a.last;
        const bool live_b = b.first <= p && p <= b.last;
        const bool overlap = a.begin < b.end && b.begin < a.end;
        if (!live_a || !live_b || !overlap) continue;
        const bool handover = plan.tensors[a.id].root == plan.tensors[b.id].root &&
                              ((a.last == p && b.first == p) || (b.last == p && a.first == p));
        EXPECT_TRUE(handover) << "'" << g.tensors[a.id].name << "' and '" << g.tensors[b.id].name
                              << "' share bytes while both live at node " << p;
      }
    }
  }
}

TEST(MemoryPlanTest, ChainReusesDeadTensors) {
  GraphBuilder b("chain");
  Tensor t = b.Input("x", DType::kF32, {1000});
  for (int i = 0; i < 6; ++i) t = b.Op1("neg", {t});
  b.Output(t);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlan plan = Plan(*g);
  const int64_t block = Aligned(4000);
  EXPECT_EQ(plan.naive_bytes(), 6 * block);
  // At any node only its input and its output are live.
  EXPECT_EQ(plan.peak_bytes(), 2 * block);
  EXPECT_LT(plan.peak_bytes(), plan.naive_bytes());
  ExpectNoLiveOverlap(*g, plan);
  EXPECT_EQ(plan.tensors[g->inputs[0]].kind, StorageKind::kInput);
}

TEST(MemoryPlanTest, FreedBytesAreReusedByLaterSmallerTensors) {
  // big dies at node 2; y2 and y3, born later, fit in its bytes, so the arena
  // is just the largest live set: big + y1 + big2 at node 2.
  GraphBuilder b("gaps");
  Tensor x = b.Input("x", DType::kF32, {256});
  Tensor big = b.Op1("neg", {x}, {}, "big");
  Tensor y = b.Op1("neg", {b.Input("y", DType::kF32, {64})}, {}, "y1");
  Tensor big2 = b.Op1("neg", {big}, {}, "big2");
  Tensor y2 = b.Op1("neg", {y}, {}, "y2");
  Tensor y3 = b.Op1("neg", {y2}, {}, "y3");
  b.Output(big2);
  b.Output(y3);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlan plan = Plan(*g);
  ExpectNoLiveOverlap(*g, plan);
  EXPECT_EQ(plan.peak_bytes(), 1024 + 256 + 1024);
  EXPECT_EQ(plan.naive_bytes(), 2 * 1024 + 3 * 256);
}

TEST(MemoryPlanTest, ViewsKeepTheirBaseAlive) {
  GraphBuilder b("views");
  Tensor x = b.Input("x", DType::kF32, {4, 64});
  Tensor a = b.Op1("neg", {x}, {}, "a");
  // The second row of a, read only at the last node.
  Tensor row = b.View(a, {1, 64}, {256, 4}, 256, "a_row1");
  Tensor c = b.Op1("neg", {x}, {}, "c");
  Tensor d = b.Op1("neg", {c}, {}, "d");
  Tensor e = b.Op1("neg", {d}, {}, "e");
  Tensor f = b.Op1("add", {e, row}, {}, "f");
  b.Output(f);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlan plan = Plan(*g);
  ExpectNoLiveOverlap(*g, plan);
  const TensorStorage& sa = plan.tensors[a.id];
  const ArenaBlock& block = plan.arenas[0].blocks[sa.block];
  EXPECT_EQ(block.first, 0);
  EXPECT_EQ(block.last, 4);  // the add reads it through the view
  const TensorStorage& sv = plan.tensors[row.id];
  EXPECT_EQ(sv.root, a.id);
  EXPECT_EQ(sv.offset, sa.offset + 256);
  // a must not share bytes with c, d or e, which live while a does.
  for (Tensor t : {c, d, e}) {
    const TensorStorage& st = plan.tensors[t.id];
    EXPECT_TRUE(st.offset >= sa.offset + 1024 || sa.offset >= st.offset + 1024) << g->tensors[t.id].name;
  }
}

TEST(MemoryPlanTest, OutputsLiveToTheEnd) {
  GraphBuilder b("outputs");
  Tensor x = b.Input("x", DType::kF32, {128});
  Tensor a = b.Op1("neg", {x}, {}, "a");  // an output, never read by a node
  Tensor c = b.Op1("neg", {x}, {}, "c");
  Tensor d = b.Op1("neg", {c}, {}, "d");
  b.Output(a);
  b.Output(d);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlan plan = Plan(*g);
  EXPECT_EQ(plan.arenas[0].blocks[plan.tensors[a.id].block].last, 3);
  ExpectNoLiveOverlap(*g, plan);
  EXPECT_EQ(plan.peak_bytes(), 3 * 512);
}

// A KV-cache style state: write_rows into the cache, then read the new cache.
struct CacheGraph {
  Graph graph;
  Tensor cache, next;
};
absl::StatusOr<CacheGraph> MakeCacheGraph(bool read_old_after, bool src_from_cache) {
  GraphBuilder b("cache");
  Tensor cache = b.Input("cache", DType::kF32, {8, 16});
  Tensor src = src_from_cache ? b.View(cache, {2, 16}, {64, 4}, 0, "cache_head")
                              : b.Input("src", DType::kF32, {2, 16});
  Tensor rows = b.Input("rows", DType::kI32, {2});
  Tensor next = b.Op1("write_rows", {cache, src, rows}, {}, "update");
  Tensor y = b.Op1("neg", {next}, {}, "y");
  if (read_old_after) y = b.Op1("add", {y, cache}, {}, "y_old");
  b.Output(y);
  b.Output(next);
  b.State(cache, next);
  auto g = b.Build();
  if (!g.ok()) return g.status();
  return CacheGraph{std::move(*g), cache, next};
}

TEST(MemoryPlanTest, StateUpdatedInPlaceWhenTheOldValueIsDead) {
  auto cg = MakeCacheGraph(/*read_old_after=*/false, /*src_from_cache=*/false);
  ASSERT_TRUE(cg.ok()) << cg.status();
  MemoryPlan plan = Plan(cg->graph);
  ASSERT_EQ(plan.state_in_place.size(), 1u);
  EXPECT_TRUE(plan.state_in_place[0]);
  EXPECT_EQ(plan.tensors[cg->next.id].root, cg->cache.id);
  EXPECT_EQ(plan.tensors[cg->next.id].kind, StorageKind::kState);
  // Only y is in the arena.
  EXPECT_EQ(plan.arenas[0].blocks.size(), 1u);
  ExpectNoLiveOverlap(cg->graph, plan);
}

TEST(MemoryPlanTest, StateCopiedWhenTheOldValueIsReadLater) {
  auto cg = MakeCacheGraph(/*read_old_after=*/true, /*src_from_cache=*/false);
  ASSERT_TRUE(cg.ok()) << cg.status();
  MemoryPlan plan = Plan(cg->graph);
  EXPECT_FALSE(plan.state_in_place[0]);
  EXPECT_EQ(plan.tensors[cg->next.id].root, cg->next.id);
  EXPECT_EQ(plan.tensors[cg->next.id].kind, StorageKind::kArena);
  ExpectNoLiveOverlap(cg->graph, plan);
}

TEST(MemoryPlanTest, StateCopiedWhenTheSameNodeReadsItThroughAnotherInput) {
  auto cg = MakeCacheGraph(/*read_old_after=*/false, /*src_from_cache=*/true);
  ASSERT_TRUE(cg.ok()) << cg.status();
  MemoryPlan plan = Plan(cg->graph);
  EXPECT_FALSE(plan.state_in_place[0]);
}

TEST(MemoryPlanTest, NoInPlaceWhenDisabled) {
  auto cg = MakeCacheGraph(false, false);
  ASSERT_TRUE(cg.ok()) << cg.status();
  MemoryPlanOptions options;
  options.allow_inplace = false;
  MemoryPlan plan = Plan(cg->graph, options);
  EXPECT_FALSE(plan.state_in_place[0]);
}

TEST(MemoryPlanTest, WriteRowsOverADyingIntermediateSharesItsBytes) {
  GraphBuilder b("inter");
  Tensor x = b.Input("x", DType::kF32, {8, 16});
  Tensor src = b.Input("src", DType::kF32, {2, 16});
  Tensor rows = b.Input("rows", DType::kI32, {2});
  Tensor a = b.Op1("neg", {x}, {}, "a");
  Tensor w = b.Op1("write_rows", {a, src, rows}, {}, "w");
  Tensor y = b.Op1("neg", {w}, {}, "y");
  b.Output(y);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlan plan = Plan(*g);
  EXPECT_EQ(plan.tensors[w.id].root, a.id);
  EXPECT_EQ(plan.tensors[w.id].offset, plan.tensors[a.id].offset);
  EXPECT_EQ(plan.arenas[0].blocks.size(), 2u);  // {a, w} and y
  ExpectNoLiveOverlap(*g, plan);

  // When the old value is still needed (a graph output), no sharing.
  GraphBuilder b2("inter2");
  x = b2.Input("x", DType::kF32, {8, 16});
  src = b2.Input("src", DType::kF32, {2, 16});
  rows = b2.Input("rows", DType::kI32, {2});
  a = b2.Op1("neg", {x}, {}, "a");
  w = b2.Op1("write_rows", {a, src, rows}, {}, "w");
  b2.Output(a);
  b2.Output(w);
  auto g2 = b2.Build();
  ASSERT_TRUE(g2.ok()) << g2.status();
  MemoryPlan plan2 = Plan(*g2);
  EXPECT_EQ(plan2.tensors[w.id].root, w.id);
  ExpectNoLiveOverlap(*g2, plan2);
}

TEST(MemoryPlanTest, InputsAndConstantsNeverComputedInPlace) {
  GraphBuilder b("inputs");
  Tensor x = b.Input("x", DType::kF32, {8, 16});
  std::vector<float> zeros(2 * 16, 0.f);
  Tensor src = b.Constant("src", DType::kF32, {2, 16}, ConstantData::Copy(zeros.data(), zeros.size() * 4));
  Tensor rows = b.Input("rows", DType::kI32, {2});
  Tensor w = b.Op1("write_rows", {x, src, rows}, {}, "w");
  b.Output(w);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlan plan = Plan(*g);
  EXPECT_EQ(plan.tensors[w.id].root, w.id);
  EXPECT_EQ(plan.tensors[w.id].kind, StorageKind::kArena);
  EXPECT_EQ(plan.tensors[src.id].kind, StorageKind::kConstant);
}

// Random graphs of unary and binary ops over tensors of several sizes, with
// views, random outputs and (through the options) neg computed in place:
// the brute-force check must hold for every one.
TEST(MemoryPlanTest, RandomGraphsNeverOverlapLiveTensors) {
  MemoryPlanOptions inplace_neg;
  inplace_neg.inplace_pairs = [](const Node& node) {
    return node.op == "neg" ? std::vector<std::pair<int, int>>{{0, 0}}
                            : std::vector<std::pair<int, int>>{};
  };
  for (int seed = 0; seed < 40; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    GraphBuilder b("random");
    std::vector<Tensor> pool;
    for (int i = 0; i < 3; ++i) pool.push_back(b.Input("in" + std::to_string(i), DType::kF32, {2, 16 * (1 + pick(8))}));
    for (int i = 0; i < 40; ++i) {
      const Tensor a = pool[pick(static_cast<int>(pool.size()))];
      const int kind = pick(4);
      if (kind == 0) {
        const auto& dims = b.info(a).dims;
        if (!b.info(a).is_view() && dims[0] == 2) {  // the second row of a, as a view
          pool.push_back(b.View(a, {1, dims[1]}, {dims[1] * 4, 4}, dims[1] * 4));
          ASSERT_TRUE(b.status().ok()) << b.status();
          continue;
        }
      }
      if (kind == 1) {
        std::vector<Tensor> same;
        for (Tensor t : pool) {
          if (b.info(t).dims == b.info(a).dims) same.push_back(t);
        }
        pool.push_back(b.Op1("add", {a, same[pick(static_cast<int>(same.size()))]}));
        ASSERT_TRUE(b.status().ok()) << b.status();
        continue;
      }
      pool.push_back(b.Op1(kind == 2 ? "neg" : "exp", {a}));
      ASSERT_TRUE(b.status().ok()) << b.status();
    }
    bool last_out = false;  // the last node output is always an output
    for (int i = static_cast<int>(pool.size()) - 1; i >= 0; --i) {
      const TensorInfo& t = b.info(pool[i]);
      if (t.is_view() || t.producer < 0) continue;
      if (!last_out || pick(4) == 0) b.Output(pool[i]);
      last_out = true;
    }
    auto g = b.Build();
    ASSERT_TRUE(g.ok()) << g.status();
    MemoryPlanOptions online = inplace_neg;
    online.max_overlap_visits = 0;  // the online packing, always
    for (const MemoryPlanOptions& options : {MemoryPlanOptions{}, inplace_neg, online}) {
      MemoryPlan plan = Plan(*g, options);
      ExpectNoLiveOverlap(*g, plan);
      EXPECT_LE(plan.peak_bytes(), plan.naive_bytes());
    }
  }
}

double PlanSeconds(const Graph& g, MemoryPlan* plan, const MemoryPlanOptions& options = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  auto p = PlanMemory(g, OneBackend(g), 1, options);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(p.ok()) << p.status();
  if (p.ok()) *plan = *std::move(p);
  return s;
}

// Bytes of two arena tensors overlap only if their lifetimes do not; checked
// by sorting, for graphs too big for ExpectNoLiveOverlap's brute force.
void ExpectDisjointBlocks(const ArenaPlan& arena) {
  std::vector<const ArenaBlock*> blocks;
  for (const ArenaBlock& b : arena.blocks) {
    if (b.bytes > 0) blocks.push_back(&b);
  }
  // Sweep over nodes, keeping the live blocks by offset: live blocks never
  // overlap, so a new one need only be checked against its two neighbours.
  std::sort(blocks.begin(), blocks.end(), [](const ArenaBlock* a, const ArenaBlock* b) { return a->first < b->first; });
  using Live = std::pair<int, const ArenaBlock*>;  // (last node, block)
  std::priority_queue<Live, std::vector<Live>, std::greater<>> expiry;
  std::multimap<int64_t, const ArenaBlock*> live;  // offset -> block
  for (const ArenaBlock* b : blocks) {
    while (!expiry.empty() && expiry.top().first < b->first) {
      const ArenaBlock* dead = expiry.top().second;
      expiry.pop();
      for (auto [it, end] = live.equal_range(dead->offset); it != end; ++it) {
        if (it->second == dead) {
          live.erase(it);
          break;
        }
      }
    }
    ASSERT_LE(b->offset + b->bytes, arena.peak_bytes);
    auto next = live.lower_bound(b->offset);
    if (next != live.end()) {
      ASSERT_GE(next->first, b->offset + b->bytes) << "blocks overlap at node " << b->first;
    }
    if (next != live.begin()) {
      auto prev = std::prev(next);
      ASSERT_LE(prev->first + prev->second->bytes, b->offset) << "blocks overlap at node " << b->first;
    }
    live.insert({b->offset, b});
    expiry.push({b->last, b});
  }
}

// A chain of 300k nodes (a 12 MB graph file): packing scanned every placed
// block for each new one, O(n^2), minutes for this; it must take well under
// a second or so now, with the same peak as a short chain.
TEST(MemoryPlanTest, LongChainPlansQuickly) {
  constexpr int kNodes = 300000;
  GraphBuilder b("long-chain");
  Tensor t = b.Input("x", DType::kF32, {16});
  for (int i = 0; i < kNodes; ++i) t = b.Op1(i % 2 ? "neg" : "exp", {t});
  b.Output(t);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlan plan;
  MemoryPlanOptions no_inplace;
  no_inplace.allow_inplace = false;
  const double s = PlanSeconds(*g, &plan, no_inplace);
  RecordProperty("plan_seconds", std::to_string(s));
  std::printf("planned %d nodes in %.3f s\n", kNodes, s);
  EXPECT_LT(s, 3.0);
  EXPECT_EQ(plan.peak_bytes(), 2 * Aligned(64));
  EXPECT_EQ(plan.naive_bytes(), kNodes * Aligned(64));
  ExpectDisjointBlocks(plan.arenas[0]);
}

// Every node output is a graph output, so all are live at once: exact best
// fit would examine n^2/2 pairs; past its budget the online packing takes
// over, still fast and still correct (every block stacked).
TEST(MemoryPlanTest, ManyLiveBlocksPlanQuickly) {
  constexpr int kNodes = 30000;
  GraphBuilder b("wide");
  Tensor x = b.Input("x", DType::kF32, {16});
  for (int i = 0; i < kNodes; ++i) b.Output(b.Op1("neg", {x}));
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlan plan;
  const double s = PlanSeconds(*g, &plan);
  EXPECT_LT(s, 3.0);
  EXPECT_EQ(plan.peak_bytes(), kNodes * Aligned(64));
  ExpectDisjointBlocks(plan.arenas[0]);
}

// The online packing reuses freed bytes best fit, like the exact one on a chain.
TEST(MemoryPlanTest, OnlinePackingReusesFreedBytes) {
  GraphBuilder b("chain");
  Tensor t = b.Input("x", DType::kF32, {1000});
  for (int i = 0; i < 6; ++i) t = b.Op1("neg", {t});
  b.Output(t);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  MemoryPlanOptions online;
  online.allow_inplace = false;
  online.max_overlap_visits = 0;
  MemoryPlan plan = Plan(*g, online);
  EXPECT_EQ(plan.peak_bytes(), 2 * Aligned(4000));
  ExpectNoLiveOverlap(*g, plan);
}

// Totals past kMaxArenaBytes are an error naming the limit, never a
// wrapped-around (negative) total.
TEST(MemoryPlanTest, HugeTotalsAreAnErrorNotAnOverflow) {
  GraphBuilder b("huge");
  Tensor t = b.Input("x", DType::kF32, {int64_t{1} << 22, int64_t{1} << 22});  // 64 TiB, the largest tensor
  for (int i = 0; i < 20; ++i) t = b.Op1("neg", {t});
  b.Output(t);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  auto plan = PlanMemory(*g, OneBackend(*g), 1);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(), testing::HasSubstr(std::to_string(kMaxArenaBytes)));

  // Inputs too: 20 inputs of 64 TiB on one backend, each read through a
  // small view so that the arena stays small.
  GraphBuilder b2("huge-inputs");
  for (int i = 0; i < 20; ++i) {
    Tensor x = b2.Input("x" + std::to_string(i), DType::kF32, {int64_t{1} << 22, int64_t{1} << 22});
    b2.Output(b2.Op1("neg", {b2.View(x, {16}, {4}, 0)}));
  }
  auto g2 = b2.Build();
  ASSERT_TRUE(g2.ok()) << g2.status();
  auto plan2 = PlanMemory(*g2, OneBackend(*g2), 1);
  ASSERT_FALSE(plan2.ok());
  EXPECT_EQ(plan2.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan2.status().message(), testing::HasSubstr("inputs"));
}

TEST(MemoryPlanTest, RejectsAPlacementOfTheWrongSize) {
  GraphBuilder b("bad");
  b.Output(b.Op1("neg", {b.Input("x", DType::kF32, {4})}));
  auto g = b.Build();
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(PlanMemory(*g, {}, 1).ok());
  EXPECT_FALSE(PlanMemory(*g, {3}, 1).ok());
}

}  // namespace
}  // namespace kiln
