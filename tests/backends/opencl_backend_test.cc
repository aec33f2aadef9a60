// The OpenCL backend through the Backend interface: devices, buffers, sync
// points, programs (built once, then from disk), run-time errors. Every test
// skips when this machine has no OpenCL device (the conformance suite checks
// the kernels: `kiln conformance --backend opencl`).
#include <cstring>
#include <filesystem>
#include <numeric>
#include <vector>

#include "backends/backend.h"
#include "backends/registry.h"
#include "graph/builder.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

bool HaveOpenCl() {
  for (const std::string& n : BackendNames()) {
    if (n == "opencl") return ListDevices("opencl").ok();
  }
  return false;
}

#define SKIP_WITHOUT_OPENCL() \
  if (!HaveOpenCl()) GTEST_SKIP() << "no OpenCL device here"

std::unique_ptr<Backend> Make(BackendOptions o = {}) {
  if (o.cache_dir.empty()) o.cache_dir = "off";
  auto b = CreateBackend("opencl", o);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : nullptr;
}

TEST(OpenClBackend, ListsDevicesWithFacts) {
  SKIP_WITHOUT_OPENCL();
  auto devices = ListDevices("opencl");
  ASSERT_TRUE(devices.ok());
  ASSERT_FALSE(devices->empty());
  for (const DeviceInfo& d : *devices) {
    EXPECT_EQ(d.backend, "opencl");
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.memory_bytes, 0u);
    bool has_fp16 = false, has_local = false;
    for (const std::string& f : d.features) {
      has_fp16 |= f.rfind("fp16:", 0) == 0;
      has_local |= f.rfind("local_mem:", 0) == 0;
    }
    EXPECT_TRUE(has_fp16 && has_local);
  }
}

TEST(OpenClBackend, PicksDevicesByIndexPairAndName) {
  SKIP_WITHOUT_OPENCL();
  auto devices = ListDevices("opencl");
  ASSERT_TRUE(devices.ok());
  BackendOptions o;
  o.device = (*devices)[0].name;
  EXPECT_NE(Make(o), nullptr);
  o.device = "no such device, surely";
  o.cache_dir = "off";
  auto b = CreateBackend("opencl", o);
  EXPECT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("devices are"), std::string::npos) << b.status();
  o.device = "99:99";
  EXPECT_FALSE(CreateBackend("opencl", o).ok());
}

TEST(OpenClBackend, FillUploadCopyDownload) {
  SKIP_WITHOUT_OPENCL();
  auto b = Make();
  auto x = b->Allocate(1000, BufferUsage::kInput, "x");
  auto y = b->Allocate(1000, BufferUsage::kArena, "y");
  ASSERT_TRUE(x.ok() && y.ok());
  std::vector<uint8_t> data(1000);
  std::iota(data.begin(), data.end(), 0);
  ASSERT_TRUE(b->Upload(**x, 0, data.data(), data.size()).ok());
  ASSERT_TRUE(b->Fill(**y, 0, 1000, 0xab).ok());
  ASSERT_TRUE(b->Copy(**x, 3, **y, 501, 97).ok());
  auto point = b->Flush();
  ASSERT_TRUE(point.ok());
  ASSERT_TRUE(b->Wait(*point).ok());
  std::vector<uint8_t> got(1000);
  ASSERT_TRUE(b->Download(**y, 0, got.data(), got.size()).ok());
  for (int i = 0; i < 1000; ++i) {
    const uint8_t want = (i >= 501 && i < 598) ? data[i - 501 + 3] : 0xab;
    ASSERT_EQ(got[i], want) << i;
  }
  EXPECT_FALSE(b->Upload(**x, 999, data.data(), 2).ok());
  EXPECT_FALSE(b->Wait(*point + 100).ok());
}

TEST(OpenClBackend, HugeAllocationIsResourceExhaustedNamingTheLabel) {
  SKIP_WITHOUT_OPENCL();
  auto b = Make();
  auto x = b->Allocate(size_t{1} << 62, BufferUsage::kArena, "the huge tensor");
  ASSERT_FALSE(x.ok());
  EXPECT_EQ(x.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(x.status().message().find("the huge tensor"), std::string::npos);
}

// gather with an id out of range: the run fails at Wait, naming the node,
// and the backend stays usable.
TEST(OpenClBackend, DeviceErrorsNameTheNode) {
  SKIP_WITHOUT_OPENCL();
  GraphBuilder gb("g");
  Tensor table = gb.Input("table", DType::kF32, {4, 8});
  Tensor ids = gb.Input("ids", DType::kI32, {3});
  Tensor out = gb.Op1("gather", {table, ids}, {}, "the_gather");
  gb.Output(out);
  auto g = gb.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  auto b = Make();
  std::vector<std::unique_ptr<Buffer>> bufs;
  Bindings bind;
  bind.tensors.resize(g->tensors.size());
  for (size_t i = 0; i < g->tensors.size(); ++i) {
    auto buf = b->Allocate(ContiguousBytes(g->tensors[i].dtype, g->tensors[i].dims), BufferUsage::kArena, "t");
    ASSERT_TRUE(buf.ok());
    bind.tensors[i] = {buf->get(), 0};
    bufs.push_back(std::move(*buf));
  }
  std::vector<float> t(32, 1.0f);
  ASSERT_TRUE(b->Upload(*bufs[table.id], 0, t.data(), 128).ok());
  for (int bad : {0, 7}) {
    const int32_t id_values[3] = {1, bad, 2};
    ASSERT_TRUE(b->Upload(*bufs[ids.id], 0, id_values, sizeof(id_values)).ok());
    auto prepared = b->Prepare(Split{&*g, {0}}, bind, PrepareOptions{});
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    auto point = b->Execute(**prepared, ExecuteOptions{.timings = true});
    ASSERT_TRUE(point.ok());
    absl::Status st = b->Wait(*point);
    if (bad == 0) {
      EXPECT_TRUE(st.ok()) << st;
      std::vector<NodeTiming> timings;
      EXPECT_TRUE(b->ReadTimings(**prepared, &timings).ok());
      EXPECT_EQ(timings.size(), 1u);
    } else {
      EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange) << st;
      EXPECT_NE(st.message().find("the_gather"), std::string::npos) << st;
    }
  }
}

// profiling=off: a queue without profiling; runs without timings run, a run
// asking for them is a clear error. Other values are an error.
TEST(OpenClBackend, ProfilingOffRunsWithoutTimings) {
  SKIP_WITHOUT_OPENCL();
  BackendOptions bad;
  bad.flags["profiling"] = "maybe";
  auto rejected = CreateBackend("opencl", bad);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument);

  GraphBuilder gb("g");
  Tensor x = gb.Input("x", DType::kF32, {8});
  gb.Output(gb.Op1("add", {x, x}));
  auto g = gb.Build();
  ASSERT_TRUE(g.ok()) << g.status();
  BackendOptions o;
  o.flags["profiling"] = "off";
  auto b = Make(o);
  ASSERT_NE(b, nullptr);
  std::vector<std::unique_ptr<Buffer>> bufs;
  Bindings bind;
  bind.tensors.resize(g->tensors.size());
  for (size_t i = 0; i < g->tensors.size(); ++i) {
    auto buf = b->Allocate(32, BufferUsage::kArena, "t");
    ASSERT_TRUE(buf.ok());
    bind.tensors[i] = {buf->get(), 0};
    bufs.push_back(std::move(*buf));
  }
  std::vector<float> in(8);
  std::iota(in.begin(), in.end(), 1.0f);
  ASSERT_TRUE(b->Upload(*bufs[x.id], 0, in.data(), 32).ok());
  auto prepared = b->Prepare(Split{&*g, {0}}, bind, PrepareOptions{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  auto timed = b->Execute(**prepared, ExecuteOptions{.timings = true});
  ASSERT_FALSE(timed.ok());
  EXPECT_EQ(timed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(timed.status().message().find("profiling"), std::string::npos) << timed.status();
  auto point = b->Execute(**prepared, ExecuteOptions{.timings = false});
  ASSERT_TRUE(point.ok()) << point.status();
  ASSERT_TRUE(b->Wait(*point).ok());
  std::vector<float> out(8);
  ASSERT_TRUE(b->Download(*bufs[g->outputs[0]], 0, out.data(), 32).ok());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], 2.0f * in[i]);
}

TEST(OpenClBackend, ProgramsComeFromDiskTheSecondTime) {
  SKIP_WITHOUT_OPENCL();
  const std::string dir = ::testing::TempDir() + "/kiln_opencl_cache_test";
  std::filesystem::remove_all(dir);
  GraphBuilder gb("g");
  Tensor x = gb.Input("x", DType::kF32, {4, 8});
  gb.Output(gb.Op1("exp", {x}));
  auto g = gb.Build();
  ASSERT_TRUE(g.ok());
  for (int round = 0; round < 2; ++round) {
    BackendOptions o;
    o.cache_dir = dir;
    auto b = Make(o);
    std::vector<std::unique_ptr<Buffer>> bufs;
    Bindings bind;
    bind.tensors.resize(g->tensors.size());
    for (size_t i = 0; i < g->tensors.size(); ++i) {
      auto buf = b->Allocate(128, BufferUsage::kArena, "t");
      ASSERT_TRUE(buf.ok());
      bind.tensors[i] = {buf->get(), 0};
      bufs.push_back(std::move(*buf));
    }
    auto prepared = b->Prepare(Split{&*g, {0}}, bind, PrepareOptions{});
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    const PipelineStats s = b->pipeline_stats();
    EXPECT_EQ(s.created, round == 0 ? 1 : 0);
    EXPECT_EQ(s.disk_hits, round == 0 ? 0 : 1);
  }
  // A corrupt binary is ignored and rebuilt from source.
  for (const auto& e : std::filesystem::directory_iterator(dir + "/pipelines")) {
    std::FILE* f = std::fopen(e.path().c_str(), "r+b");
    std::fseek(f, -16, SEEK_END);
    std::fputs("garbage-garbage!", f);
    std::fclose(f);
  }
  BackendOptions o;
  o.cache_dir = dir;
  auto b = Make(o);
  auto buf = b->Allocate(128, BufferUsage::kArena, "t");
  Bindings bind;
  bind.tensors = {{buf->get(), 0}, {buf->get(), 0}};
  auto prepared = b->Prepare(Split{&*g, {0}}, bind, PrepareOptions{});
  EXPECT_TRUE(prepared.ok()) << prepared.status();
}

}  // namespace
}  // namespace kiln
