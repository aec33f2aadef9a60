// What the executor owes a device backend (backends/backend.h): errors raised
// while the device runs come back from the wait naming the node, a lost
// device is reported on every later call, limits are honoured, timings are
// read after completion, and several threads may share one backend.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/device_error.h"
#include "backends/registry.h"
#include "gmock/gmock.h"
#include "graph/builder.h"
#include "gtest/gtest.h"
#include "scheduler/executor.h"
#include "tests/scheduler/partial_backend.h"
#include "tests/scheduler/scheduler_test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

// A state cache [8, 4] with one row written per run at `row`, then read.
Graph CacheGraph() {
  GraphBuilder b("cache");
  Tensor cache = b.Input("cache", DType::kF32, {8, 4});
  Tensor src = b.Input("src", DType::kF32, {1, 4});
  Tensor row = b.Input("row", DType::kI32, {1});
  Tensor next = b.Op1("write_rows", {cache, src, row}, {}, "cache.write");
  Tensor sum = b.Op1("sum", {next}, {{"axis", int64_t{0}}}, "cache.sum");
  b.Output(sum);
  b.Output(next);
  b.State(cache, next);
  auto g = b.Build();
  EXPECT_TRUE(g.ok()) << g.status();
  return *std::move(g);
}

std::shared_ptr<test::PartialBackend> Device(test::PartialBackend::Options options = {}) {
  return test::PartialBackend::Create({"write_rows", "sum", "add", "mul", "neg"}, "device", options);
}

TEST(DeviceRuntimeTest, ARowOutOfRangeFailsTheRunNamingTheNode) {
  for (bool device : {false, true}) {
    SCOPED_TRACE(device ? "device-like backend (error at the wait)" : "cpu (error from Execute)");
    std::shared_ptr<Backend> backend = device ? std::shared_ptr<Backend>(Device()) : test::Cpu();
    auto e = Executable::Create(CacheGraph(), {backend});
    ASSERT_TRUE(e.ok()) << e.status();
    const float src[4] = {1, 2, 3, 4};
    ASSERT_TRUE((*e)->SetInputBytes("src", src, sizeof src).ok());
    const int32_t bad = 5000;
    ASSERT_TRUE((*e)->SetInputBytes("row", &bad, sizeof bad).ok());
    absl::Status st = (*e)->Run();
    ASSERT_FALSE(st.ok());
    EXPECT_THAT(st.message(), HasSubstr("cache.write"));
    EXPECT_THAT(st.message(), HasSubstr("5000"));
    // Nothing was written out of bounds, and the next good run works.
    const int32_t good = 3;
    ASSERT_TRUE((*e)->SetInputBytes("row", &good, sizeof good).ok());
    ASSERT_TRUE((*e)->Run().ok());
    auto sum = (*e)->GetOutput("cache.sum");
    ASSERT_TRUE(sum.ok()) << sum.status();
    const float* s = reinterpret_cast<const float*>(sum->data.data());
    for (int i = 0; i < 4; ++i) EXPECT_EQ(s[i], src[i]);
  }
}

TEST(DeviceRuntimeTest, DeviceErrorRecordsNameTheNode) {
  Graph g = CacheGraph();
  DeviceErrorRecord r;
  EXPECT_TRUE(DeviceErrorStatus(g, r).ok());
  r.code = kDeviceErrorRowOutOfRange;
  r.node = 0;
  r.value = -2;
  r.limit = 8;
  r.position = 0;
  absl::Status st = DeviceErrorStatus(g, r);
  EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(st.message(), HasSubstr("cache.write"));
  EXPECT_THAT(st.message(), HasSubstr("-2"));
  EXPECT_THAT(st.message(), HasSubstr("[0, 8)"));
  r.code = kDeviceErrorIndexOutOfRange;
  r.node = 99;  // not a node of the graph: still a clear message
  EXPECT_THAT(DeviceErrorStatus(g, r).message(), HasSubstr("node #99"));
}

TEST(DeviceRuntimeTest, ALostDeviceIsReportedOnEveryLaterCall) {
  auto device = Device();
  auto e = Executable::Create(CacheGraph(), {device});
  ASSERT_TRUE(e.ok()) << e.status();
  const float src[4] = {1, 2, 3, 4};
  const int32_t row = 1;
  ASSERT_TRUE((*e)->SetInputBytes("src", src, sizeof src).ok());
  ASSERT_TRUE((*e)->SetInputBytes("row", &row, sizeof row).ok());
  ASSERT_TRUE((*e)->Run().ok());
  device->LoseDevice();
  for (int i = 0; i < 3; ++i) {
    absl::Status st = (*e)->Run();
    EXPECT_TRUE(IsDeviceLost(st)) << st;
    EXPECT_THAT(st.message(), HasSubstr("device lost"));
  }
  EXPECT_TRUE(IsDeviceLost((*e)->SetInputBytes("row", &row, sizeof row)));
  EXPECT_FALSE(IsDeviceLost(absl::UnavailableError("device lost, but not marked")));
}

TEST(DeviceRuntimeTest, AllocationsBeyondTheLimitNameWhatAndHowMuch) {
  test::PartialBackend::Options options;
  options.max_allocation = 100;  // the cache state needs 128 bytes
  auto e = Executable::Create(CacheGraph(), {Device(options)});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(e.status().message(), HasSubstr("128 bytes"));
  EXPECT_THAT(e.status().message(), HasSubstr("cache"));
}

TEST(DeviceRuntimeTest, ArenaOffsetsFollowTheBackendsAlignment) {
  // A chain whose intermediates share an arena; the device-like backend
  // refuses bindings off its alignment.
  GraphBuilder b("chain");
  Tensor x = b.Input("x", DType::kF32, {3, 5});
  Tensor t = x;
  for (int i = 0; i < 6; ++i) t = b.Op1(i % 2 ? "neg" : "add", i % 2 ? std::vector<Tensor>{t} : std::vector<Tensor>{t, x});
  b.Output(t);
  auto g = b.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  for (size_t alignment : {64, 256, 4096}) {
    test::PartialBackend::Options options;
    options.alignment = alignment;
    auto e = Executable::Create(*g, {Device(options)});
    ASSERT_TRUE(e.ok()) << alignment << ": " << e.status();
    for (const ArenaBlock& block : (*e)->memory_plan().arenas[0].blocks) {
      EXPECT_EQ(block.offset % static_cast<int64_t>(alignment), 0);
    }
  }
}

TEST(DeviceRuntimeTest, TimingsAreReadAfterTheWaitAndCanBeSwitchedOnBetweenRuns) {
  auto device = Device();
  auto e = Executable::Create(CacheGraph(), {device});
  ASSERT_TRUE(e.ok()) << e.status();
  const float src[4] = {1, 2, 3, 4};
  const int32_t row = 2;
  ASSERT_TRUE((*e)->SetInputBytes("src", src, sizeof src).ok());
  ASSERT_TRUE((*e)->SetInputBytes("row", &row, sizeof row).ok());
  ASSERT_TRUE((*e)->Run().ok());
  for (const NodeProfile& p : (*e)->node_profile()) EXPECT_EQ(p.count, 0);
  (*e)->set_profiling(true);
  ASSERT_TRUE((*e)->Run().ok());
  ASSERT_TRUE((*e)->Run().ok());
  for (const NodeProfile& p : (*e)->node_profile()) EXPECT_EQ(p.count, 2) << p.name;

  // Prepared without timings: profiling then records nothing, and never
  // asks the backend for them.
  ExecutableOptions no_timings;
  no_timings.allow_timings = false;
  no_timings.profile = true;
  auto f = Executable::Create(CacheGraph(), {device}, no_timings);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE((*f)->SetInputBytes("src", src, sizeof src).ok());
  ASSERT_TRUE((*f)->SetInputBytes("row", &row, sizeof row).ok());
  ASSERT_TRUE((*f)->Run().ok());
  for (const NodeProfile& p : (*f)->node_profile()) EXPECT_EQ(p.count, 0);
}

TEST(DeviceRuntimeTest, SubmitReturnsBeforeTheDeviceIsDone) {
  auto device = Device();
  auto e = Executable::Create(CacheGraph(), {device});
  ASSERT_TRUE(e.ok()) << e.status();
  const float src[4] = {1, 2, 3, 4};
  const int32_t row = 0;
  ASSERT_TRUE((*e)->SetInputBytes("src", src, sizeof src).ok());
  ASSERT_TRUE((*e)->SetInputBytes("row", &row, sizeof row).ok());
  ASSERT_TRUE((*e)->Submit().ok());
  EXPECT_GT(device->queued(), 0u);  // still "running"
  EXPECT_FALSE((*e)->GetOutput("cache.sum").ok());  // not before Wait
  EXPECT_FALSE((*e)->Submit().ok());                // one run in flight
  ASSERT_TRUE((*e)->Wait().ok());
  EXPECT_EQ(device->queued(), 0u);
  auto sum = (*e)->GetOutput("cache.sum");
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(reinterpret_cast<const float*>(sum->data.data())[3], 4.0f);
}

// Several threads, each with its own Executable, over one backend.
TEST(DeviceRuntimeTest, ThreadsWithTheirOwnExecutablesShareOneBackend) {
  BackendOptions options;
  options.threads = 1;
  auto cpu = CreateBackend("cpu", options);
  ASSERT_TRUE(cpu.ok());
  std::shared_ptr<Backend> shared = std::move(*cpu);
  constexpr int kThreads = 4, kRuns = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto e = Executable::Create(CacheGraph(), {shared});
      if (!e.ok()) {
        ++failures;
        return;
      }
      for (int r = 0; r < kRuns; ++r) {
        const float v = static_cast<float>(t * 1000 + r);
        const float src[4] = {v, v, v, v};
        const int32_t row = r % 8;
        if (!(*e)->SetInputBytes("src", src, sizeof src).ok() || !(*e)->SetInputBytes("row", &row, sizeof row).ok() ||
            !(*e)->Run().ok()) {
          ++failures;
          return;
        }
        auto cache = (*e)->GetOutput("cache");
        if (!cache.ok() || reinterpret_cast<const float*>(cache->data.data())[row * 4] != v) ++failures;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(RegistryTest, DevicesAreChosenByIndexNameOrEnvironment) {
  std::vector<DeviceInfo> devices(2);
  devices[0].name = "llvmpipe (LLVM 15.0.6, 256 bits)";
  devices[1].name = "NVIDIA H200";
  EXPECT_EQ(*ChooseDevice("vulkan", devices, "", 1), 1);
  EXPECT_EQ(*ChooseDevice("vulkan", devices, "0", 1), 0);
  EXPECT_EQ(*ChooseDevice("vulkan", devices, "h200", 0), 1);
  EXPECT_EQ(*ChooseDevice("vulkan", devices, "LLVMPIPE", 1), 0);
  auto missing = ChooseDevice("vulkan", devices, "7", 0);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("1: NVIDIA H200"));
  EXPECT_FALSE(ChooseDevice("vulkan", devices, "radeon", 0).ok());
  setenv("KILN_TESTBACKEND_DEVICE", "nvidia", 1);
  EXPECT_EQ(*ChooseDevice("testbackend", devices, "", 0), 1);
  unsetenv("KILN_TESTBACKEND_DEVICE");
}

TEST(RegistryTest, BackendsComeFromWhatIsCompiledIn) {
  const std::vector<std::string> names = BackendNames();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.back(), "cpu");  // GPUs first, the CPU last
  for (const BackendFactory& f : BackendFactories()) {
    auto devices = f.list_devices();  // without creating a backend
    if (devices.ok()) {
      EXPECT_FALSE(devices->empty()) << f.name;
    }
  }
  BackendOptions bad;
  bad.flags["no-such-flag"] = "1";
  auto cpu = CreateBackend("cpu", bad);
  ASSERT_FALSE(cpu.ok());
  EXPECT_THAT(cpu.status().message(), HasSubstr("no-such-flag"));
  BackendOptions wrong_device;
  wrong_device.device = "3";
  EXPECT_FALSE(CreateBackend("cpu", wrong_device).ok());
  EXPECT_THAT(CreateBackend("tpu").status().message(), HasSubstr("this build has"));
}

}  // namespace
}  // namespace kiln
