// Running one graph across several backends: placement by supports(),
// island merging, strict mode, splits, transfers (counted where they
// happen), views and states across backends, weights per backend, traces.
// The device-like backends are PartialBackend: CPU kernels for a subset of
// ops behind memory only its Upload/Download/Copy reach.
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "backends/registry.h"
#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/scheduler/scheduler_test_util.h"
#include "nlohmann/json.hpp"
#include "ops/compare.h"
#include "scheduler/executor.h"
#include "tests/scheduler/partial_backend.h"
#include "tests/scheduler/random_graph.h"

namespace kiln {
namespace {

using test::Cpu;
using test::RandomF32;
using ::testing::HasSubstr;
using test::PartialBackend;

std::shared_ptr<const ConstantData> ConstantOf(const HostTensor& t) {
  return ConstantData::Copy(t.data.data(), t.data.size());
}

// A transfer the plan must make, derived here from the placement alone:
// each tensor (as read: a view or not) that a maximal run of nodes on one
// backend reads while another backend holds it, once per run. Node outputs
// are held by their producer's backend, states by the backend computing
// their next value, other inputs by their first reader's; constants are
// on every backend and never cross.
struct Crossing {
  int tensor, from, to;
  int64_t bytes;
};

std::vector<Crossing> ExpectedCrossings(const Graph& g, const std::vector<int>& on) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<int> holder(g.tensors.size(), -1);
  for (int ni = 0; ni < n; ++ni) {
    for (int id : g.nodes[ni].outputs) holder[id] = on[ni];
  }
  for (int ni = 0; ni < n; ++ni) {
    for (int id : g.nodes[ni].inputs) {
      if (id >= 0 && holder[g.StorageOf(id)] < 0) holder[g.StorageOf(id)] = on[ni];
    }
  }
  for (const StatePair& s : g.states) holder[s.input] = on[g.tensors[s.output].producer];
  std::vector<Crossing> out;
  for (int begin = 0, end = 0; begin < n; begin = end) {
    while (end < n && on[end] == on[begin]) ++end;
    std::set<int> seen;
    for (int ni = begin; ni < end; ++ni) {
      for (int id : g.nodes[ni].inputs) {
        if (id < 0 || g.tensors[g.StorageOf(id)].is_constant()) continue;
        const int from = holder[g.StorageOf(id)];
        if (from == on[begin] || !seen.insert(id).second) continue;
        const TensorInfo& t = g.tensors[id];
        out.push_back({id, from, on[begin], ExtentBytes(t.dtype, t.dims, t.strides)});
      }
    }
  }
  return out;
}

// For tests of transfers: keep each node on its first choice.
ExecutableOptions KeepIslands() {
  ExecutableOptions options;
  options.placement.merge_islands = false;
  return options;
}

std::unique_ptr<Executable> Make(const Graph& g, std::vector<std::shared_ptr<Backend>> backends,
                                 const ExecutableOptions& options = {}) {
  auto exe = Executable::Create(g, std::move(backends), options);
  EXPECT_TRUE(exe.ok()) << exe.status();
  return exe.ok() ? *std::move(exe) : nullptr;
}

void SetInputs(Executable& e, const std::map<std::string, HostTensor>& inputs) {
  for (const auto& [name, value] : inputs) ASSERT_TRUE(e.SetInput(name, value).ok()) << name;
}

std::map<std::string, HostTensor> Outputs(const Executable& e) {
  std::map<std::string, HostTensor> out;
  for (int id : e.graph().outputs) {
    const std::string& name = e.graph().tensors[id].name;
    auto v = e.GetOutput(name);
    EXPECT_TRUE(v.ok()) << v.status();
    if (v.ok()) out[name] = *std::move(v);
  }
  return out;
}

std::map<std::string, HostTensor> CpuOnly(const Graph& g, const std::map<std::string, HostTensor>& inputs) {
  auto e = Make(g, {Cpu()});
  if (!e) return {};
  SetInputs(*e, inputs);
  EXPECT_TRUE(e->Run().ok());
  return Outputs(*e);
}

// The same kernels (one thread) on the same bytes: the results are equal
// bit for bit, whichever backend ran each node.
void ExpectSameOutputs(const std::map<std::string, HostTensor>& got,
                       const std::map<std::string, HostTensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, value] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_EQ(got.at(name).dims, value.dims) << name;
    EXPECT_TRUE(got.at(name).data == value.data) << "output '" << name << "' differs";
  }
}

std::set<std::string> RandomSubset(uint32_t seed) {
  std::mt19937 rng(seed * 7919 + 1);
  std::set<std::string> ops;
  for (const std::string& op : test::RandomGraphOps()) {
    if (rng() % 2) ops.insert(op);
  }
  return ops;
}

// Checks the plan's transfers against ExpectedCrossings, then that runs do
// exactly those copies, through the partial backends' Upload/Download.
void CheckTransfers(Executable& e, const std::vector<PartialBackend*>& partials, int partial_index0) {
  const Graph& g = e.graph();
  const std::vector<Crossing> want = ExpectedCrossings(g, e.placement().node_backend);
  const std::vector<TransferPlan>& plan = e.memory_plan().transfers;
  ASSERT_EQ(plan.size(), want.size());
  int64_t bytes = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(plan[i].tensor, want[i].tensor) << i;
    EXPECT_EQ(plan[i].from, want[i].from) << i;
    EXPECT_EQ(plan[i].to, want[i].to) << i;
    EXPECT_EQ(plan[i].bytes, want[i].bytes) << i;
    bytes += want[i].bytes;
  }
  EXPECT_EQ(e.memory_plan().transfer_bytes(), bytes);

  // Per run, a partial backend uploads what crosses to it and downloads
  // what crosses from it (partial to partial: both, through staging).
  for (PartialBackend* p : partials) p->ResetCounts();
  const TransferStats before = e.transfer_stats();
  const int runs = 2;
  for (int r = 0; r < runs; ++r) ASSERT_TRUE(e.Run().ok());
  for (size_t pi = 0; pi < partials.size(); ++pi) {
    const int index = partial_index0 + static_cast<int>(pi);
    int64_t up = 0, down = 0, up_bytes = 0, down_bytes = 0;
    for (const Crossing& c : want) {
      if (c.to == index) ++up, up_bytes += c.bytes;
      if (c.from == index) ++down, down_bytes += c.bytes;
    }
    const PartialBackend::Counts& counts = partials[pi]->counts();
    EXPECT_EQ(counts.uploads, runs * up) << partials[pi]->name();
    EXPECT_EQ(counts.downloads, runs * down) << partials[pi]->name();
    EXPECT_EQ(counts.upload_bytes, runs * up_bytes) << partials[pi]->name();
    EXPECT_EQ(counts.download_bytes, runs * down_bytes) << partials[pi]->name();
    EXPECT_EQ(counts.copies, 0);
  }
  EXPECT_EQ(e.transfer_stats().count - before.count, runs * static_cast<int64_t>(want.size()));
  EXPECT_EQ(e.transfer_stats().bytes - before.bytes, runs * bytes);
}

TEST(MultiBackendTest, RandomGraphsGiveTheSameResultsAsCpuAlone) {
  int multi = 0, transfers = 0, moved = 0;
  for (uint32_t seed = 0; seed < 60; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    auto rg = test::MakeRandomGraph(seed, 6 + seed % 20);
    ASSERT_TRUE(rg.ok()) << rg.status();
    const auto want = CpuOnly(rg->graph, rg->inputs);
    for (bool merge : {true, false}) {
      SCOPED_TRACE(merge ? "islands merged" : "islands kept");
      auto partial = PartialBackend::Create(RandomSubset(seed));
      ExecutableOptions options;
      options.placement.merge_islands = merge;
      auto e = Make(rg->graph, {partial, Cpu()}, options);
      ASSERT_TRUE(e);
      for (size_t ni = 0; ni < rg->graph.nodes.size(); ++ni) {
        const int b = e->placement().node_backend[ni];
        if (b == 0) {
          EXPECT_TRUE(partial->supports(e->graph(), e->graph().nodes[ni]).ok);
        }
        if (b == 1 && !merge) {
          EXPECT_FALSE(partial->supports(e->graph(), e->graph().nodes[ni]).ok);
          EXPECT_THAT(e->placement().node_reason[ni], HasSubstr("partial: op "));
        }
        moved += absl::StrContains(e->placement().node_reason[ni], "moved from partial");
      }
      SetInputs(*e, rg->inputs);
      CheckTransfers(*e, {partial.get()}, 0);
      ExpectSameOutputs(Outputs(*e), want);
      multi += e->placement().UsedBackends().size() > 1;
      transfers += !e->memory_plan().transfers.empty();
    }
  }
  // The seeds exercise what they are meant to.
  EXPECT_GT(multi, 60);
  EXPECT_GT(transfers, 50);
  EXPECT_GT(moved, 5);
}

// Random graphs on random placements over three backends, planned without
// in-place reuse: on each backend, no two blocks that are live at the same
// node share bytes. Lifetimes are recomputed here: a node output from its
// producer to its last reader on any backend (graph outputs: to the end),
// a transfer's copy from its split's first node to its last reader there.
TEST(MultiBackendTest, PlansNeverShareBytesBetweenLiveBlocks) {
  MemoryPlanOptions no_inplace;
  no_inplace.allow_inplace = false;
  for (uint32_t seed = 200; seed < 260; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    auto rg = test::MakeRandomGraph(seed, 10 + seed % 20);
    ASSERT_TRUE(rg.ok()) << rg.status();
    const Graph& g = rg->graph;
    const int n = static_cast<int>(g.nodes.size());
    std::mt19937 rng(seed);
    std::vector<int> on(n);
    for (int& b : on) b = static_cast<int>(rng() % 3);
    auto plan = PlanMemory(g, on, 3, no_inplace);
    ASSERT_TRUE(plan.ok()) << plan.status();

    const std::vector<Crossing> want = ExpectedCrossings(g, on);
    ASSERT_EQ(plan->transfers.size(), want.size());
    struct Live {
      std::string what;
      int backend, first, last;
      int64_t begin, end;
    };
    std::vector<Live> live;
    std::vector<int> last(g.tensors.size(), -1);
    for (int ni = 0; ni < n; ++ni) {
      for (int id : g.nodes[ni].inputs) {
        if (id >= 0) last[g.StorageOf(id)] = std::max(last[g.StorageOf(id)], ni);
      }
    }
    for (int id : g.outputs) last[g.StorageOf(id)] = n;
    for (int id = 0; id < static_cast<int>(g.tensors.size()); ++id) {
      const TensorInfo& t = g.tensors[id];
      if (t.is_view() || t.producer < 0) continue;
      const TensorStorage& st = plan->tensors[id];
      ASSERT_EQ(st.kind, StorageKind::kArena);
      ASSERT_EQ(st.backend, on[t.producer]);
      live.push_back({t.name, st.backend, t.producer, std::max(last[id], t.producer), st.offset,
                      st.offset + ContiguousBytes(t.dtype, t.dims)});
    }
    for (size_t i = 0; i < want.size(); ++i) {
      const TransferPlan& tp = plan->transfers[i];
      ASSERT_EQ(tp.tensor, want[i].tensor);
      ASSERT_EQ(tp.to, want[i].to);
      int begin = 0;  // the reading split's nodes: [begin, end)
      for (int s = 0; s < tp.split; ++s) {
        do ++begin; while (begin < n && on[begin] == on[begin - 1]);
      }
      int end = begin, reader = -1;
      for (; end < n && on[end] == on[begin]; ++end) {
        for (int id : g.nodes[end].inputs) reader = id == tp.tensor ? end : reader;
      }
      ASSERT_GE(reader, 0);
      live.push_back({absl::StrCat("copy of ", g.tensors[tp.tensor].name), tp.to, begin, reader, tp.offset,
                      tp.offset + tp.bytes});
      ASSERT_LE(tp.offset + tp.bytes, plan->arenas[tp.to].peak_bytes);
    }
    for (size_t i = 0; i < live.size(); ++i) {
      for (size_t j = i + 1; j < live.size(); ++j) {
        const Live& a = live[i];
        const Live& b = live[j];
        if (a.backend != b.backend || a.begin == a.end || b.begin == b.end) continue;
        const bool both_live = a.first <= b.last && b.first <= a.last;
        const bool overlap = a.begin < b.end && b.begin < a.end;
        EXPECT_FALSE(both_live && overlap) << a.what << " and " << b.what << " share bytes";
      }
    }
  }
}

TEST(MultiBackendTest, RandomGraphsOnTwoDeviceLikeBackends) {
  // Copies between two partial backends go through the staging buffer.
  for (uint32_t seed = 100; seed < 130; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    auto rg = test::MakeRandomGraph(seed, 8 + seed % 16);
    ASSERT_TRUE(rg.ok()) << rg.status();
    const auto want = CpuOnly(rg->graph, rg->inputs);
    auto a = PartialBackend::Create(RandomSubset(seed), "partial_a");
    auto b = PartialBackend::Create(RandomSubset(seed + 1000), "partial_b");
    auto e = Make(rg->graph, {a, b, Cpu()});
    ASSERT_TRUE(e);
    SetInputs(*e, rg->inputs);
    CheckTransfers(*e, {a.get(), b.get()}, 0);
    ExpectSameOutputs(Outputs(*e), want);
  }
}

// x -> neg -> add(+w) -> neg: the add alone on the partial backend would
// cost two transfers per run.
absl::StatusOr<Graph> IslandGraph(int islands) {
  GraphBuilder b("island");
  Tensor t = b.Op1("neg", {b.Input("x", DType::kF32, {4, 8})}, {}, "n0");
  for (int i = 0; i < islands; ++i) {
    t = b.Op1("add", {t, b.Constant(absl::StrCat("w", i), DType::kF32, {8}, ConstantOf(RandomF32({8}, i)))}, {},
              absl::StrCat("a", i));
  }
  b.Output(b.Op1("neg", {t}, {}, "n1"));
  return b.Build();
}

TEST(MultiBackendTest, LoneNodesMoveToTheirNeighboursBackend) {
  auto g = IslandGraph(1);
  ASSERT_TRUE(g.ok()) << g.status();
  auto partial = PartialBackend::Create({"add"});
  auto e = Make(*g, {partial, Cpu()});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->placement().node_backend, (std::vector<int>{1, 1, 1}));
  EXPECT_THAT(e->placement().node_reason[1], HasSubstr("moved from partial"));
  EXPECT_THAT(e->placement().node_reason[1], HasSubstr("2 fewer transfers"));
  EXPECT_EQ(e->placement().node_reason[0], "partial: op neg is not in the test subset");
  EXPECT_TRUE(e->memory_plan().transfers.empty());
  EXPECT_EQ(e->placement().splits.size(), 1u);

  ExecutableOptions keep;
  keep.placement.merge_islands = false;
  e = Make(*g, {partial, Cpu()}, keep);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->placement().node_backend, (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(e->placement().node_reason[1], "first choice");
  EXPECT_EQ(e->placement().splits.size(), 3u);
  EXPECT_EQ(e->memory_plan().transfers.size(), 2u);

  // Two nodes in a row: moving one alone saves nothing, so both stay.
  g = IslandGraph(2);
  ASSERT_TRUE(g.ok());
  e = Make(*g, {partial, Cpu()});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->placement().node_backend, (std::vector<int>{1, 0, 0, 1}));
}

TEST(MultiBackendTest, StrictModeListsEveryNodeLeavingTheFirstBackend) {
  auto g = IslandGraph(3);
  ASSERT_TRUE(g.ok());
  ExecutableOptions strict;
  strict.placement.strict = true;
  auto partial = PartialBackend::Create({"add"});
  auto e = Executable::Create(*g, {partial, Cpu()}, strict);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("strict mode: 2 nodes would not run on partial"));
  EXPECT_THAT(e.status().message(), HasSubstr("node 'n0' (neg): op neg is not in the test subset"));
  EXPECT_THAT(e.status().message(), HasSubstr("node 'n1' (neg): op neg is not in the test subset"));
  EXPECT_THAT(e.status().message(), ::testing::Not(HasSubstr("'a0'")));
  EXPECT_EQ(partial->counts().uploads, 0);  // failed before allocating anything

  // Nothing leaves: strict mode changes nothing.
  auto all = PartialBackend::Create({"add", "neg"});
  e = Executable::Create(*g, {all, Cpu()}, strict);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->placement().UsedBackends(), std::vector<int>{0});
}

TEST(MultiBackendTest, DisabledOpsLeaveTheBackendThatCouldRunThem) {
  auto g = IslandGraph(3);
  ASSERT_TRUE(g.ok());
  auto all = PartialBackend::Create({"add", "neg"});
  ExecutableOptions o;
  o.placement.merge_islands = false;
  o.placement.disabled_ops = {"partial:neg"};
  auto e = Executable::Create(*g, {all, Cpu()}, o);
  ASSERT_TRUE(e.ok()) << e.status();
  for (size_t ni = 0; ni < (*e)->graph().nodes.size(); ++ni) {
    const bool neg = (*e)->graph().nodes[ni].op == "neg";
    EXPECT_EQ((*e)->placement().node_backend[ni], neg ? 1 : 0) << ni;
    if (neg) {
      EXPECT_THAT((*e)->placement().support[ni][0].reason, HasSubstr("disabled by the placement option partial:neg"));
    }
  }

  // Strict mode names the disabled op as the reason.
  o.placement.strict = true;
  e = Executable::Create(*g, {all, Cpu()}, o);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("disabled by the placement option partial:neg"));

  // A pair naming no listed backend, no op, or malformed, is refused.
  for (const auto& [pair, message] : std::vector<std::pair<std::string, std::string>>{
           {"vulkan:neg", "no backend 'vulkan' in the list (partial, cpu)"},
           {"partial:nope", "no op named 'nope'"},
           {"partial", "expected BACKEND:OP"},
           {"partial:neg:x", "expected BACKEND:OP"}}) {
    ExecutableOptions bad;
    bad.placement.disabled_ops = {pair};
    e = Executable::Create(*g, {all, Cpu()}, bad);
    ASSERT_FALSE(e.ok()) << pair;
    EXPECT_THAT(e.status().message(), HasSubstr(message)) << pair;
  }
}

TEST(MultiBackendTest, ATensorIsCopiedOncePerReadingSplit) {
  // n is made on the CPU, read by three partial nodes in one split, then
  // by one in a later partial split.
  GraphBuilder b("fanout");
  Tensor n = b.Op1("neg", {b.Input("x", DType::kF32, {3, 5})}, {}, "n");
  Tensor s = b.Op1("add", {n, n}, {}, "s");
  s = b.Op1("mul", {s, n}, {}, "m");
  s = b.Op1("add", {s, n}, {}, "s2");
  s = b.Op1("neg", {s}, {}, "back_on_cpu");
  s = b.Op1("add", {s, n}, {}, "s3");
  b.Output(s);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  auto partial = PartialBackend::Create({"add", "mul"});
  auto e = Make(*g, {partial, Cpu()}, KeepIslands());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->placement().node_backend, (std::vector<int>{1, 0, 0, 0, 1, 0}));
  // n to split 1, s2 back to the CPU, back_on_cpu and n to split 3.
  ASSERT_EQ(e->memory_plan().transfers.size(), 4u);
  SetInputs(*e, {{"x", RandomF32({3, 5}, 1)}});
  partial->ResetCounts();
  ASSERT_TRUE(e->Run().ok());
  EXPECT_EQ(partial->counts().uploads, 3);
  EXPECT_EQ(partial->counts().downloads, 1);
  EXPECT_EQ(partial->executes(), 2);
  ExpectSameOutputs(Outputs(*e), CpuOnly(*g, {{"x", RandomF32({3, 5}, 1)}}));
}

TEST(MultiBackendTest, ViewsOfTransferredTensorsCopyTheBytesTheySpan) {
  // A strided window of a CPU-made tensor read on the partial backend, a
  // window of a partial-made tensor read on the CPU and as a graph output.
  GraphBuilder b("views");
  Tensor n = b.Op1("neg", {b.Input("x", DType::kF32, {4, 6})}, {}, "n");
  Tensor win = b.View(n, {2, 3}, {2 * 6 * 4, 4}, 6 * 4 + 2 * 4, "n_win");  // rows 1,3; cols 2..4
  Tensor a = b.Op1("add", {win, win}, {}, "a");
  Tensor p = b.Op1("mul", {n, n}, {}, "p");
  Tensor col = b.View(p, {4, 1}, {6 * 4, 4}, 5 * 4, "p_col");
  Tensor c = b.Op1("neg", {col}, {}, "c");
  b.Output(a);
  b.Output(c);
  b.Output(col);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  auto partial = PartialBackend::Create({"add", "mul"});
  auto e = Make(*g, {partial, Cpu()}, KeepIslands());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->placement().node_backend, (std::vector<int>{1, 0, 0, 1}));
  const auto& t = e->memory_plan().transfers;
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(e->graph().tensors[t[0].tensor].name, "n_win");
  EXPECT_EQ(t[0].bytes, ExtentBytes(DType::kF32, {2, 3}, {48, 4}));  // 60, not the 96 of n
  EXPECT_EQ(e->graph().tensors[t[1].tensor].name, "n");
  EXPECT_EQ(e->graph().tensors[t[2].tensor].name, "p_col");
  EXPECT_EQ(t[2].bytes, 3 * 24 + 4);
  const std::map<std::string, HostTensor> inputs = {{"x", RandomF32({4, 6}, 2)}};
  SetInputs(*e, inputs);
  ASSERT_TRUE(e->Run().ok());
  ExpectSameOutputs(Outputs(*e), CpuOnly(*g, inputs));
}

// A cache written on the partial backend and read on the CPU, and a
// running sum computed on the CPU and read on the partial backend.
absl::StatusOr<Graph> StatesGraph() {
  GraphBuilder b("states");
  Tensor cache = b.Input("cache", DType::kF32, {5, 4});
  Tensor total = b.Input("total", DType::kF32, {5, 4});
  Tensor src = b.Input("src", DType::kF32, {1, 4});
  Tensor rows = b.Input("rows", DType::kI32, {1});
  Tensor next = b.Op1("write_rows", {cache, src, rows}, {}, "cache_next");
  Tensor seen = b.Op1("neg", {next}, {}, "seen");
  Tensor sum = b.Op1("sub", {total, seen}, {}, "total_next");
  Tensor y = b.Op1("mul", {sum, total}, {}, "y");
  b.Output(y);
  b.Output(next);
  b.Output(sum);
  b.State(cache, next);
  b.State(total, sum);
  return b.Build();
}

TEST(MultiBackendTest, StatesStayWithTheBackendComputingThem) {
  auto g = StatesGraph();
  ASSERT_TRUE(g.ok()) << g.status();
  auto partial = PartialBackend::Create({"write_rows", "mul"});
  auto e = Make(*g, {partial, Cpu()}, KeepIslands());
  auto ref = Make(*g, {Cpu()});
  ASSERT_TRUE(e && ref);
  EXPECT_EQ(e->placement().node_backend, (std::vector<int>{0, 1, 1, 0}));
  const MemoryPlan& plan = e->memory_plan();
  EXPECT_EQ(plan.tensors[g->FindTensor("cache")].backend, 0);
  EXPECT_EQ(plan.tensors[g->FindTensor("total")].backend, 1);
  EXPECT_EQ(plan.state_in_place, (std::vector<bool>{true, false}));  // total is read after its update
  for (int run = 0; run < 3; ++run) {
    for (Executable* x : {e.get(), ref.get()}) {
      HostTensor rows = HostTensor::Zeros(DType::kI32, {1});
      const int32_t row = (run * 2) % 5;
      std::memcpy(rows.data.data(), &row, 4);
      ASSERT_TRUE(x->SetInput("src", RandomF32({1, 4}, 10 + run)).ok());
      ASSERT_TRUE(x->SetInput("rows", rows).ok());
      ASSERT_TRUE(x->Run().ok());
    }
    ExpectSameOutputs(Outputs(*e), Outputs(*ref));
    for (const char* state : {"cache", "total"}) {
      auto got = e->GetOutput(state);
      auto want = ref->GetOutput(state);
      ASSERT_TRUE(got.ok() && want.ok());
      EXPECT_TRUE(got->data == want->data) << state << " after run " << run;
    }
  }
  // Per run: cache_next to the CPU; total and total_next to the partial
  // backend. The update of total is a copy on the CPU, not a transfer.
  EXPECT_EQ(e->transfer_stats().count, 3 * 3);
}

TEST(MultiBackendTest, WeightsAreUploadedOnceToEachBackendReadingThem) {
  GraphBuilder b("weights");
  Tensor x = b.Input("x", DType::kF32, {2, 8});
  Tensor w = b.Constant("w", DType::kF32, {8}, ConstantOf(RandomF32({8}, 3)));
  Tensor w_tail = b.View(w, {4}, {4}, 16, "w_tail");
  Tensor a = b.Op1("mul", {x, w}, {}, "a");       // partial
  Tensor n = b.Op1("neg", {a}, {}, "n");          // cpu
  Tensor c = b.Op1("sub", {n, w}, {}, "c");       // cpu, reads w too
  Tensor v = b.View(c, {2, 4}, {32, 4}, 0, "c_head");
  b.Output(b.Op1("mul", {v, w_tail}, {}, "y"));  // partial, through a view of w
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  auto partial = PartialBackend::Create({"mul"});
  auto e = Make(*g, {partial, Cpu()}, KeepIslands());
  ASSERT_TRUE(e);
  ASSERT_EQ(e->placement().node_backend, (std::vector<int>{0, 1, 1, 0}));
  EXPECT_EQ(e->memory_plan().constant_backends[g->FindTensor("w")], (std::vector<int>{0, 1}));
  EXPECT_EQ(e->memory_plan().held[0].constants, 32);
  EXPECT_EQ(e->memory_plan().held[1].constants, 32);
  EXPECT_EQ(partial->counts().uploads, 1);  // w, at Create
  EXPECT_EQ(partial->counts().upload_bytes, 32);
  const std::map<std::string, HostTensor> inputs = {{"x", RandomF32({2, 8}, 4)}};
  SetInputs(*e, inputs);
  partial->ResetCounts();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(e->Run().ok());
  // Per run: a down to the CPU, c_head up to the partial backend.
  EXPECT_EQ(partial->counts().uploads, 3);
  EXPECT_EQ(partial->counts().upload_bytes, 3 * ExtentBytes(DType::kF32, {2, 4}, {32, 4}));
  EXPECT_EQ(partial->counts().downloads, 3);
  ExpectSameOutputs(Outputs(*e), CpuOnly(*g, inputs));
}

TEST(MultiBackendTest, ForeignBuffersAreRefused) {
  // The test backend must catch an executor that binds another backend's
  // buffer: give it one directly.
  auto g = IslandGraph(1);
  ASSERT_TRUE(g.ok());
  auto partial = PartialBackend::Create({"add", "neg"});
  auto cpu = Cpu();
  auto buffer = cpu->Allocate(1024, BufferUsage::kArena, "test");
  ASSERT_TRUE(buffer.ok());
  Bindings bindings;
  bindings.tensors.assign(g->tensors.size(), Binding{buffer->get(), 0});
  auto prepared = partial->Prepare(Split{&*g, {0}}, bindings, PrepareOptions{});
  EXPECT_FALSE(prepared.ok());
  EXPECT_THAT(prepared.status().message(), HasSubstr("another backend's buffers"));
  EXPECT_FALSE(partial->Upload(**buffer, 0, "x", 1).ok());
}

TEST(MultiBackendTest, TraceHasSplitsNodesTransfersAndCompiles) {
  auto g = IslandGraph(1);
  ASSERT_TRUE(g.ok());
  ExecutableOptions options;
  options.placement.merge_islands = false;
  options.trace = true;
  auto e = Make(*g, {PartialBackend::Create({"add"}), Cpu()}, options);
  ASSERT_TRUE(e);
  SetInputs(*e, {{"x", RandomF32({4, 8}, 5)}});
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(e->Run().ok());
  const Trace trace = e->trace();
  EXPECT_THAT(trace.tracks, ::testing::ElementsAre("partial", "cpu", "transfers", "pipeline compiles"));
  std::map<std::string, int> by_category;
  for (const TraceEvent& ev : trace.events) {
    ++by_category[ev.category];
    EXPECT_GE(ev.duration_us, 0);
    EXPECT_GE(ev.start_us, 0);
  }
  EXPECT_EQ(by_category["compile"], 3);    // one per split prepared
  EXPECT_EQ(by_category["split"], 2 * 3);  // per run
  EXPECT_EQ(by_category["node"], 2 * 3);
  EXPECT_EQ(by_category["transfer"], 2 * 2);

  // Valid Chrome trace JSON: metadata names the tracks; X events nest
  // each node inside its split on the split's track.
  const auto json = nlohmann::json::parse(ChromeTraceJson(trace));
  int complete = 0;
  bool saw_transfer = false;
  for (const auto& ev : json["traceEvents"]) {
    if (ev["ph"] != "X") continue;
    ++complete;
    if (ev["cat"] == "transfer") {
      saw_transfer = true;
      EXPECT_EQ(ev["tid"], 3);
      EXPECT_THAT(ev["name"].get<std::string>(), ::testing::AnyOf(HasSubstr("n0 cpu -> partial"),
                                                                   HasSubstr("a0 partial -> cpu")));
    }
  }
  EXPECT_EQ(complete, static_cast<int>(trace.events.size()));
  EXPECT_TRUE(saw_transfer);
  e->ResetTrace();
  EXPECT_EQ(e->trace().events.size(), 3u);  // the compiles stay
}

// The same random graphs on each real device backend built in (Vulkan,
// OpenCL), with the CPU after it: results within tolerance of the CPU
// alone, and exactly the planned transfers.
std::vector<std::string> DeviceBackendNames() {
  std::vector<std::string> names;
  for (const std::string& name : BackendNames()) {
    if (name != "cpu") names.push_back(name);
  }
  return names;
}

class DeviceBackendTest : public ::testing::TestWithParam<std::string> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(DeviceBackendTest);

TEST_P(DeviceBackendTest, RandomGraphsGiveTheResultsOfCpuAlone) {
  auto device = CreateBackend(GetParam());
  if (!device.ok()) GTEST_SKIP() << GetParam() << " is not available here: " << device.status();
  std::shared_ptr<Backend> backend = *std::move(device);
  for (uint32_t seed = 0; seed < 30; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    auto rg = test::MakeRandomGraph(seed, 6 + seed % 20);
    ASSERT_TRUE(rg.ok()) << rg.status();
    const auto want = CpuOnly(rg->graph, rg->inputs);
    auto e = Make(rg->graph, {backend, Cpu()});
    ASSERT_TRUE(e);
    const std::vector<Crossing> crossings = ExpectedCrossings(e->graph(), e->placement().node_backend);
    EXPECT_EQ(e->memory_plan().transfers.size(), crossings.size());
    SetInputs(*e, rg->inputs);
    ASSERT_TRUE(e->Run().ok());
    EXPECT_EQ(e->transfer_stats().count, static_cast<int64_t>(crossings.size()));
    const auto got = Outputs(*e);
    for (const auto& [name, value] : want) {
      ASSERT_TRUE(got.count(name)) << name;
      const Comparison cmp = Compare(got.at(name).view(), value.view(), 1e-5);
      EXPECT_TRUE(cmp.ok) << name << ": " << cmp.error << " nmse " << cmp.nmse;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, DeviceBackendTest, ::testing::ValuesIn(DeviceBackendNames()));

}  // namespace
}  // namespace kiln
