#include "scheduler/executor.h"

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "tests/backends/forwarding_backend.h"
#include "tests/scheduler/scheduler_test_util.h"
#include "ops/compare.h"
#include "ops/registry.h"

namespace kiln {
namespace {

using test::Cpu;
using test::RandomF32;
using ::testing::HasSubstr;

HostTensor Fill(DType dtype, std::vector<int64_t> dims, const std::vector<double>& values) {
  HostTensor t = HostTensor::Zeros(dtype, std::move(dims));
  const TensorView v = t.view();
  size_t i = 0;
  ForEachIndex(v.rank, v.dims, [&](const int64_t* idx) { StoreElement(v, idx, values[i++ % values.size()]); });
  return t;
}

std::vector<float> Floats(const HostTensor& t) {
  std::vector<float> v(t.data.size() / 4);
  std::memcpy(v.data(), t.data.data(), v.size() * 4);
  return v;
}

std::shared_ptr<const ConstantData> ConstantOf(const HostTensor& t) {
  return ConstantData::Copy(t.data.data(), t.data.size());
}

// The graph evaluated node by node with the ops' reference implementations;
// returns the contiguous value of every graph output, by name.
std::map<std::string, HostTensor> ReferenceRun(const Graph& g,
                                               const std::map<std::string, HostTensor>& inputs) {
  std::vector<HostTensor> values(g.tensors.size());  // storage tensors only
  for (int id : g.inputs) values[id] = inputs.at(g.tensors[id].name);
  for (int id = 0; id < static_cast<int>(g.tensors.size()); ++id) {
    const TensorInfo& t = g.tensors[id];
    if (!t.is_constant()) continue;
    values[id] = HostTensor::Zeros(t.dtype, t.dims);
    std::memcpy(values[id].data.data(), t.constant->data, t.constant->size);
  }
  auto view = [&](int id) {
    const TensorInfo& t = g.tensors[id];
    return TensorView::Of(t, values[g.StorageOf(id)].data.data() + t.offset);
  };
  for (const Node& node : g.nodes) {
    std::vector<TensorView> in, out;
    for (int id : node.inputs) in.push_back(id >= 0 ? view(id) : TensorView{});
    for (int id : node.outputs) {
      values[id] = HostTensor::Zeros(g.tensors[id].dtype, g.tensors[id].dims);
      out.push_back(view(id));
    }
    const absl::Status st = FindOp(node.op)->reference(node, in, out);
    EXPECT_TRUE(st.ok()) << st;
  }
  std::map<std::string, HostTensor> result;
  for (int id : g.outputs) {
    const TensorInfo& t = g.tensors[id];
    HostTensor h = HostTensor::Zeros(t.dtype, t.dims);
    CopyToContiguous(view(id), h.data.data());
    result[t.name] = std::move(h);
  }
  return result;
}

// linear -> rms_norm -> silu -> add, with views both inside the graph and
// as a graph output.
absl::StatusOr<Graph> MlpGraph() {
  GraphBuilder b("mlp");
  Tensor x = b.Input("x", DType::kF32, {2, 4, 16});
  Tensor w = b.Constant("w", DType::kF32, {32, 16}, ConstantOf(RandomF32({32, 16}, 1)));
  Tensor nw = b.Constant("nw", DType::kF32, {32}, ConstantOf(RandomF32({32}, 2)));
  Tensor h = b.Op1("linear", {x, w}, {}, "h");
  Tensor n = b.Op1("rms_norm", {h, nw}, {}, "n");
  Tensor s = b.Op1("silu", {n}, {}, "s");
  Tensor y = b.Op1("add", {s, h}, {}, "y");
  // Tokens 1..2 of each batch of y, made contiguous.
  Tensor mid = b.View(y, {2, 2, 32}, {4 * 32 * 4, 32 * 4, 4}, 32 * 4, "y_mid");
  Tensor c = b.Op1("contiguous", {mid}, {}, "c");
  // The last token of h, read back through a strided view.
  Tensor last = b.View(h, {2, 32}, {4 * 32 * 4, 4}, 3 * 32 * 4, "h_last");
  b.Output(y);
  b.Output(c);
  b.Output(last);
  return b.Build();
}

void ExpectClose(const HostTensor& actual, const HostTensor& ref, absl::string_view name) {
  ASSERT_EQ(actual.dims, ref.dims) << name;
  const Comparison cmp = Compare(actual.view(), ref.view(), 1e-6);
  EXPECT_TRUE(cmp.ok) << name << ": " << cmp.error << " nmse " << cmp.nmse;
}

TEST(ExecutorTest, MatchesTheReferenceEvaluatedInOrder) {
  auto g = MlpGraph();
  ASSERT_TRUE(g.ok()) << g.status();
  const HostTensor x = RandomF32({2, 4, 16}, 3);
  const auto ref = ReferenceRun(*g, {{"x", x}});
  for (bool wrap : {true, false}) {
    ExecutableOptions options;
    options.wrap_constants = wrap;
    auto exe = Executable::Create(*g, {Cpu()}, options);
    ASSERT_TRUE(exe.ok()) << exe.status();
    ASSERT_TRUE((*exe)->SetInput("x", x).ok());
    ASSERT_TRUE((*exe)->Run().ok());
    for (const auto& [name, value] : ref) {
      auto out = (*exe)->GetOutput(name);
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectClose(*out, value, name);
    }
    EXPECT_LT((*exe)->memory_plan().peak_bytes(), (*exe)->memory_plan().naive_bytes());
  }
}

TEST(ExecutorTest, RepeatRunsGiveTheSameOutputs) {
  auto g = MlpGraph();
  ASSERT_TRUE(g.ok());
  auto exe = Executable::Create(*g, {Cpu()});
  ASSERT_TRUE(exe.ok()) << exe.status();
  Executable& e = **exe;
  ASSERT_TRUE(e.SetInput("x", RandomF32({2, 4, 16}, 4)).ok());
  ASSERT_TRUE(e.Run().ok());
  auto first = e.GetOutput("y");
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(e.Run().ok());
    auto again = e.GetOutput("y");
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->data, first->data);
  }
  EXPECT_EQ(e.runs(), 4);
}

TEST(ExecutorTest, StridedInputViewsAreGathered) {
  GraphBuilder b("neg");
  b.Output(b.Op1("neg", {b.Input("x", DType::kF32, {2, 3})}, {}, "y"));
  auto g = b.Build();
  ASSERT_TRUE(g.ok());
  auto exe = Executable::Create(*g, {Cpu()});
  ASSERT_TRUE(exe.ok());
  // Columns 0..2 of a [2,4] buffer.
  std::vector<float> buf = {1, 2, 3, 99, 4, 5, 6, 99};
  TensorView v;
  v.data = reinterpret_cast<std::byte*>(buf.data());
  v.dtype = DType::kF32;
  v.rank = 2;
  v.dims = {2, 3};
  v.strides = {16, 4};
  ASSERT_TRUE((*exe)->SetInput("x", v).ok());
  ASSERT_TRUE((*exe)->Run().ok());
  auto y = (*exe)->GetOutput("y");
  ASSERT_TRUE(y.ok());
  std::vector<float> got(6);
  std::memcpy(got.data(), y->data.data(), 24);
  EXPECT_THAT(got, ::testing::ElementsAre(-1, -2, -3, -4, -5, -6));
}

// A KV-cache-like state: write one row per run. When `read_old` is set, the
// old cache is also read after the write, so the update cannot be in place
// and the executor copies the new value back after the run.
absl::StatusOr<Graph> CacheGraph(bool read_old) {
  GraphBuilder b("cache");
  Tensor cache = b.Input("cache", DType::kF32, {6, 4});
  Tensor src = b.Input("src", DType::kF32, {1, 4});
  Tensor rows = b.Input("rows", DType::kI32, {1});
  Tensor next = b.Op1("write_rows", {cache, src, rows}, {}, "cache_next");
  Tensor y = b.Op1("neg", {next}, {}, "y");
  if (read_old) y = b.Op1("add", {y, cache}, {}, "y_old");
  b.Output(y);
  b.Output(next);
  b.State(cache, next);
  return b.Build();
}

TEST(ExecutorTest, StatesPersistAcrossRuns) {
  for (bool read_old : {false, true}) {
    SCOPED_TRACE(read_old ? "copied back" : "in place");
    auto g = CacheGraph(read_old);
    ASSERT_TRUE(g.ok()) << g.status();
    auto exe = Executable::Create(*g, {Cpu()});
    ASSERT_TRUE(exe.ok()) << exe.status();
    Executable& e = **exe;
    EXPECT_EQ(e.memory_plan().state_in_place[0], !read_old);

    // States start as zeros; each run writes one row.
    auto cache = e.GetOutput("cache");
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_EQ(cache->data, HostTensor::Zeros(DType::kF32, {6, 4}).data);
    ASSERT_TRUE(e.SetInput("src", Fill(DType::kF32, {1, 4}, {1})).ok());
    ASSERT_TRUE(e.SetInput("rows", Fill(DType::kI32, {1}, {2})).ok());
    ASSERT_TRUE(e.Run().ok());
    ASSERT_TRUE(e.SetInput("src", Fill(DType::kF32, {1, 4}, {2})).ok());
    ASSERT_TRUE(e.SetInput("rows", Fill(DType::kI32, {1}, {5})).ok());
    ASSERT_TRUE(e.Run().ok());

    std::vector<double> want(24, 0);
    for (int c = 0; c < 4; ++c) want[2 * 4 + c] = 1, want[5 * 4 + c] = 2;
    const HostTensor expected = Fill(DType::kF32, {6, 4}, want);
    cache = e.GetOutput("cache");
    ASSERT_TRUE(cache.ok());
    EXPECT_EQ(cache->data, expected.data);
    auto next = e.GetOutput("cache_next");
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->data, expected.data);
    // y of the second run: -new cache (+ the cache before that run).
    std::vector<double> y_want(24, 0);
    for (int i = 0; i < 24; ++i) y_want[i] = -want[i] + (read_old && i / 4 == 2 ? 1 : 0);
    auto y = e.GetOutput(read_old ? "y_old" : "y");
    ASSERT_TRUE(y.ok());
    EXPECT_EQ(Floats(*y), Floats(Fill(DType::kF32, {6, 4}, y_want)));  // -0 == 0

    // SetInput on a state resets it.
    ASSERT_TRUE(e.SetInput("cache", HostTensor::Zeros(DType::kF32, {6, 4})).ok());
    cache = e.GetOutput("cache");
    ASSERT_TRUE(cache.ok());
    EXPECT_EQ(cache->data, HostTensor::Zeros(DType::kF32, {6, 4}).data);
  }
}

TEST(ExecutorTest, BadInputsAreErrors) {
  auto g = MlpGraph();
  ASSERT_TRUE(g.ok());
  auto exe = Executable::Create(*g, {Cpu()});
  ASSERT_TRUE(exe.ok());
  Executable& e = **exe;

  absl::Status st = e.Run();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("'x'"));
  EXPECT_EQ(e.GetOutput("y").status().code(), absl::StatusCode::kFailedPrecondition);

  st = e.SetInput("nope", RandomF32({2, 4, 16}, 0));
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("'nope'"));
  st = e.SetInput("x", Fill(DType::kF16, {2, 4, 16}, {0}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("f16"));
  st = e.SetInput("x", RandomF32({2, 16, 4}, 0));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("[2,16,4]"));
  std::vector<float> few(10);
  st = e.SetInputBytes("x", few.data(), few.size() * 4);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("512 bytes"));
  EXPECT_EQ(e.GetOutput("w").status().code(), absl::StatusCode::kNotFound);  // not an output
}

// Declines one op, otherwise the CPU backend.
class DecliningBackend : public test::ForwardingBackend {
 public:
  DecliningBackend(std::shared_ptr<Backend> inner, std::string op) : ForwardingBackend(std::move(inner)), op_(std::move(op)) {}
  absl::string_view name() const override { return "picky"; }
  Support supports(const Graph& g, const Node& n) const override {
    if (n.op == op_) return Support::No("declined by the test");
    return inner_->supports(g, n);
  }

 private:
  std::string op_;
};

TEST(ExecutorTest, UnsupportedNodesAreNamedWithTheReason) {
  auto g = MlpGraph();
  ASSERT_TRUE(g.ok());
  auto exe = Executable::Create(*g, {std::make_shared<DecliningBackend>(Cpu(), "silu")});
  ASSERT_FALSE(exe.ok());
  EXPECT_THAT(exe.status().message(), HasSubstr("node 's' (silu)"));
  EXPECT_THAT(exe.status().message(), HasSubstr("picky: declined by the test"));

  // With the CPU backend after it, that node runs there, and says why.
  exe = Executable::Create(*g, {std::make_shared<DecliningBackend>(Cpu(), "silu"), Cpu()});
  ASSERT_TRUE(exe.ok()) << exe.status();
  const int s = (*exe)->graph().FindTensor("s");
  const int silu = (*exe)->graph().tensors[s].producer;
  EXPECT_EQ((*exe)->placement().node_backend[silu], 1);
  EXPECT_EQ((*exe)->placement().node_reason[silu], "picky: declined by the test");
  EXPECT_EQ((*exe)->placement().UsedBackends(), (std::vector<int>{0, 1}));
  // A backend that declines nothing in the graph is used alone.
  exe = Executable::Create(*g, {std::make_shared<DecliningBackend>(Cpu(), "gather"), Cpu()});
  ASSERT_TRUE(exe.ok()) << exe.status();
  EXPECT_EQ((*exe)->placement().UsedBackends(), std::vector<int>{0});
}

TEST(ExecutorTest, ProfilesEveryNode) {
  auto g = MlpGraph();
  ASSERT_TRUE(g.ok());
  ExecutableOptions options;
  options.profile = true;
  auto exe = Executable::Create(*g, {Cpu()}, options);
  ASSERT_TRUE(exe.ok());
  Executable& e = **exe;
  ASSERT_TRUE(e.SetInput("x", RandomF32({2, 4, 16}, 0)).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(e.Run().ok());
  ASSERT_EQ(e.node_profile().size(), g->nodes.size());
  for (const NodeProfile& p : e.node_profile()) {
    EXPECT_EQ(p.count, 3) << p.name;
    EXPECT_EQ(p.backend, "cpu");
    EXPECT_GE(p.total_us, 0);
  }
  const std::vector<OpProfile> ops = e.op_profile();
  int64_t count = 0;
  for (const OpProfile& o : ops) count += o.count;
  EXPECT_EQ(count, 3 * static_cast<int64_t>(g->nodes.size()));
  EXPECT_EQ(ops.size(), 5u);  // linear, rms_norm, silu, add, contiguous
  e.ResetProfile();
  e.set_profiling(false);
  ASSERT_TRUE(e.Run().ok());
  for (const NodeProfile& p : e.node_profile()) EXPECT_EQ(p.count, 0);
}

}  // namespace
}  // namespace kiln
