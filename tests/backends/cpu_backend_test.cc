// The CPU backend itself: device info, buffers and their bounds, supports(),
// the pipeline cache, Prepare/Execute and errors.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/kernel_table.h"
#include "backends/pipeline_cache.h"
#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "ops/registry.h"
#include "tests/backends/backend_test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;
using testing_util::In;
using testing_util::OpCase;

std::unique_ptr<Backend> Cpu(int threads = 0) {
  auto b = CreateCpuBackend(BackendOptions{threads});
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : nullptr;
}

TEST(CpuBackend, DescribesTheDevice) {
  auto cpu = Cpu(3);
  const DeviceInfo& d = cpu->device();
  EXPECT_EQ(cpu->name(), "cpu");
  EXPECT_EQ(d.backend, "cpu");
  EXPECT_EQ(d.kind, "cpu");
  EXPECT_FALSE(d.name.empty());
  EXPECT_GT(d.memory_bytes, 0u);
  EXPECT_GE(d.compute_units, 1);
  EXPECT_GE(d.subgroup_size, 1);  // f32 SIMD lanes
  EXPECT_THAT(d.driver, HasSubstr("OpenMP"));
  EXPECT_THAT(d.features, ::testing::Contains(HasSubstr("simd:")));
  EXPECT_THAT(d.features, ::testing::Contains("threads:3"));
}

TEST(CpuBackend, RejectsNegativeThreads) {
  EXPECT_FALSE(CreateCpuBackend(BackendOptions{-1}).ok());
}

TEST(CpuBackend, AllocatesAlignedZeroedMemory) {
  auto cpu = Cpu();
  for (size_t n : {0, 1, 63, 64, 1000, 3 << 20}) {  // heap and mapped
    auto buf = cpu->Allocate(n, BufferUsage::kArena, "test");
    ASSERT_TRUE(buf.ok()) << buf.status();
    EXPECT_EQ((*buf)->size(), n);
    ASSERT_NE((*buf)->host_data(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>((*buf)->host_data()) % 64, 0u);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ((*buf)->host_data()[i], std::byte{0}) << i;
  }
}

// From 2 MiB on a buffer starts on a huge-page boundary (transparent huge
// pages asked for); sizes off page and huge-page multiples, written end to
// end and freed (the trimmed mapping's edges).
TEST(CpuBackend, LargeBuffersStartOnHugePageBoundaries) {
  if (const char* e = std::getenv("KILN_CPU_HUGEPAGES"); e && std::string(e) == "0") GTEST_SKIP() << "huge pages off";
  auto cpu = Cpu();
  for (size_t n : {size_t{2} << 20, (size_t{5} << 20) + 123, (size_t{8} << 20) - 4096}) {
    for (int round = 0; round < 3; ++round) {
      auto buf = cpu->Allocate(n, BufferUsage::kArena, "test");
      ASSERT_TRUE(buf.ok()) << buf.status();
      std::byte* p = (*buf)->host_data();
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (size_t{2} << 20), 0u) << n;
      EXPECT_EQ(p[0], std::byte{0});
      EXPECT_EQ(p[n - 1], std::byte{0});
      std::memset(p, 0x5a, n);
      EXPECT_EQ(p[n - 1], std::byte{0x5a});
    }
  }
}

TEST(CpuBackend, UploadDownloadCopyRoundTrip) {
  auto cpu = Cpu();
  auto a = cpu->Allocate(16, BufferUsage::kArena, "test");
  auto b = cpu->Allocate(16, BufferUsage::kArena, "test");
  ASSERT_TRUE(a.ok() && b.ok());
  const char msg[] = "kiln!";
  ASSERT_TRUE(cpu->Upload(**a, 3, msg, 5).ok());
  ASSERT_TRUE(cpu->Copy(**a, 3, **b, 10, 5).ok());
  char out[6] = {};
  ASSERT_TRUE(cpu->Download(**b, 10, out, 5).ok());
  EXPECT_STREQ(out, "kiln!");
  // Overlapping copy inside one buffer behaves like memmove.
  ASSERT_TRUE(cpu->Copy(**b, 10, **b, 11, 5).ok());
  ASSERT_TRUE(cpu->Download(**b, 11, out, 5).ok());
  EXPECT_STREQ(out, "kiln!");
}

TEST(CpuBackend, BufferBoundsAreChecked) {
  auto cpu = Cpu();
  auto a = cpu->Allocate(16, BufferUsage::kArena, "test");
  auto b = cpu->Allocate(8, BufferUsage::kArena, "test");
  ASSERT_TRUE(a.ok() && b.ok());
  char data[32] = {};
  EXPECT_TRUE(cpu->Upload(**a, 0, data, 16).ok());
  EXPECT_TRUE(cpu->Upload(**a, 16, data, 0).ok());  // empty at the end is fine
  const absl::Status past_end = cpu->Upload(**a, 8, data, 9);
  EXPECT_EQ(past_end.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(past_end.message(), HasSubstr("16 bytes"));
  EXPECT_FALSE(cpu->Upload(**a, 17, data, 0).ok());
  // offset + n would wrap around size_t.
  EXPECT_FALSE(cpu->Upload(**a, std::numeric_limits<size_t>::max(), data, 2).ok());
  EXPECT_FALSE(cpu->Download(**a, 4, data, std::numeric_limits<size_t>::max() - 1).ok());
  EXPECT_FALSE(cpu->Download(**b, 0, data, 9).ok());
  EXPECT_FALSE(cpu->Copy(**a, 0, **b, 0, 9).ok());   // destination too small
  EXPECT_FALSE(cpu->Copy(**b, 4, **a, 0, 5).ok());   // source too small
  EXPECT_TRUE(cpu->Copy(**a, 8, **b, 0, 8).ok());
}

TEST(CpuBackend, WrapHostIsZeroCopy) {
  auto cpu = Cpu();
  std::vector<float> weights = {1, 2, 3, 4};
  auto buf = cpu->WrapHost(weights.data(), weights.size() * 4);
  ASSERT_TRUE(buf.ok()) << buf.status();
  EXPECT_EQ((*buf)->host_data(), reinterpret_cast<std::byte*>(weights.data()));
  EXPECT_EQ((*buf)->size(), 16u);
  float x = 0;
  ASSERT_TRUE(cpu->Download(**buf, 8, &x, 4).ok());
  EXPECT_EQ(x, 3);
}

TEST(CpuBackend, HasAKernelForEveryOp) {
  for (const OpSchema* op : AllOps()) {
    EXPECT_NE(cpu::FindCpuKernel(op->name), nullptr) << "no CPU kernel for op " << op->name;
  }
}

TEST(CpuBackend, SupportsNamesAMissingKernel) {
  auto cpu = Cpu();
  Graph g;
  Node node;
  node.name = "n";
  node.op = "frobnicate";
  const Support s = cpu->supports(g, node);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.reason, "no CPU kernel for op frobnicate");
}

TEST(CpuBackend, SupportsEveryRegisteredOpFamily) {
  auto cpu = Cpu();
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF32, {2, 3});
  Tensor y = b.Op1("add", {x, x});
  b.Output(y);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(cpu->supports(*g, g->nodes[0]).ok);
}

TEST(PipelineCache, CreatesAKeyOnceUnderConcurrentCallers) {
  PipelineCache<int> cache;
  std::atomic<int> factory_calls{0};
  std::vector<const int*> got(8, nullptr);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto p = cache.GetOrCreate(PipelineKey{.kernel = "k", .values = {1, 2}}, [&]() -> absl::StatusOr<std::unique_ptr<int>> {
        ++factory_calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let others pile up
        return std::make_unique<int>(42);
      });
      if (p.ok()) got[i] = *p;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(factory_calls.load(), 1);
  const PipelineStats s = cache.stats();
  EXPECT_EQ(s.created, 1);
  EXPECT_EQ(s.cache_hits, 7);
  for (const int* p : got) {
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p, got[0]);
    EXPECT_EQ(*p, 42);
  }
}

// Two adds over x, then a third over a different dtype.
struct ThreeAdds {
  Graph graph;
  std::vector<std::unique_ptr<Buffer>> buffers;
  Bindings bindings;
};

ThreeAdds MakeThreeAdds(Backend& cpu) {
  GraphBuilder b("g");
  Tensor x = b.Input("x", DType::kF32, {4, 5});
  Tensor h = b.Input("h", DType::kF16, {4, 5});
  Tensor y1 = b.Op1("add", {x, x}, {}, "first");
  Tensor y2 = b.Op1("add", {y1, x}, {}, "second");
  Tensor y3 = b.Op1("add", {h, h}, {}, "third");
  b.Output(y2);
  b.Output(y3);
  auto g = b.Build();
  EXPECT_TRUE(g.ok()) << g.status();
  ThreeAdds t;
  t.graph = std::move(*g);
  t.bindings.tensors.resize(t.graph.tensors.size());
  for (size_t id = 0; id < t.graph.tensors.size(); ++id) {
    const TensorInfo& info = t.graph.tensors[id];
    t.buffers.push_back(*cpu.Allocate(ContiguousBytes(info.dtype, info.dims), BufferUsage::kArena, "test"));
    t.bindings.tensors[id] = {t.buffers.back().get(), 0};
  }
  return t;
}

TEST(CpuBackend, PrepareReusesPipelinesOfEqualShapes) {
  auto cpu = Cpu();
  ThreeAdds t = MakeThreeAdds(*cpu);
  auto p = cpu->Prepare(Split{&t.graph, {0, 1}}, t.bindings, PrepareOptions{});
  ASSERT_TRUE(p.ok()) << p.status();
  PipelineStats s = cpu->pipeline_stats();
  EXPECT_EQ(s.created, 1);
  EXPECT_EQ(s.cache_hits, 1);
  p = cpu->Prepare(Split{&t.graph, {2}}, t.bindings, PrepareOptions{});
  ASSERT_TRUE(p.ok()) << p.status();
  s = cpu->pipeline_stats();
  EXPECT_EQ(s.created, 2);  // f16 is another specialization
  EXPECT_EQ(s.cache_hits, 1);
}

TEST(CpuBackend, ExecuteRunsNodesInOrderAndTimesThem) {
  auto cpu = Cpu();
  ThreeAdds t = MakeThreeAdds(*cpu);
  const int x = t.graph.FindTensor("x"), y2 = t.graph.FindTensor("second");
  std::vector<float> xs(20);
  for (int i = 0; i < 20; ++i) xs[i] = static_cast<float>(i);
  ASSERT_TRUE(cpu->Upload(*t.bindings.tensors[x].buffer, 0, xs.data(), 80).ok());
  auto p = cpu->Prepare(Split{&t.graph, {0, 1, 2}}, t.bindings, PrepareOptions{});
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<NodeTiming> timings;
  ASSERT_TRUE(RunPrepared(*cpu, **p, &timings).ok());
  std::vector<float> out(20);
  ASSERT_TRUE(cpu->Download(*t.bindings.tensors[y2].buffer, 0, out.data(), 80).ok());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(out[i], 3.0f * i);
  ASSERT_EQ(timings.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(timings[i].node, i);
    EXPECT_GE(timings[i].duration_us, 0);
    if (i > 0) {
      EXPECT_GE(timings[i].start_us, timings[i - 1].start_us);
    }
  }
  // A prepared split runs again without preparing.
  ASSERT_TRUE(RunPrepared(*cpu, **p, nullptr).ok());
}

TEST(CpuBackend, PrepareChecksBindings) {
  auto cpu = Cpu();
  ThreeAdds t = MakeThreeAdds(*cpu);
  Bindings unbound = t.bindings;
  unbound.tensors[t.graph.FindTensor("x")] = {};
  auto p = cpu->Prepare(Split{&t.graph, {0}}, unbound, PrepareOptions{});
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("node 'first' (add)"));
  EXPECT_THAT(p.status().message(), HasSubstr("not bound"));

  Bindings too_small = t.bindings;
  auto small = cpu->Allocate(79, BufferUsage::kArena, "test");  // x needs 80 bytes
  too_small.tensors[t.graph.FindTensor("x")] = {small->get(), 0};
  p = cpu->Prepare(Split{&t.graph, {0}}, too_small, PrepareOptions{});
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("outside the buffer"));

  Bindings misaligned = t.bindings;
  misaligned.tensors[t.graph.FindTensor("x")].offset = 0;
  auto big = cpu->Allocate(100, BufferUsage::kArena, "test");
  misaligned.tensors[t.graph.FindTensor("x")] = {big->get(), 2};
  p = cpu->Prepare(Split{&t.graph, {0}}, misaligned, PrepareOptions{});
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("element size"));

  p = cpu->Prepare(Split{&t.graph, {7}}, t.bindings, PrepareOptions{});
  EXPECT_FALSE(p.ok());
}

TEST(CpuBackend, RunsAViewInput) {
  auto cpu = Cpu();
  EXPECT_TRUE(testing_util::MatchesReference(
      *cpu, OpCase{"add", {testing_util::ViewIn(DType::kF32, {3, 7}), In(DType::kF32, {7})}}));
}

}  // namespace
}  // namespace kiln
