// kiln_opencl_floors: the OpenCL backend against issue 9's floors, measured
// in one run on one device through the Backend interface (one-node graphs,
// device time from profiling events, median of --iters runs):
//   copy       device-to-device copy of 1 GiB: (read + written bytes) / time
//   fa_decode  flash_attn Hq=32 Hkv=8 D=128, f16 K/V, Skv=16384, one token:
//              K/V bytes / time, as a fraction of the copy bandwidth (>= 50%)
//   linear     one token x f16 W 4096x4096: W bytes / time (>= 60%)
//   gdn        gated_delta_net decode H=32 K=V=128 B=1 (< 8 us)
//   seqN       N sequences decoding over one shared cache of N*L cells
//              (block-diagonal mask) vs one over L cells (<= 1.5x), and one
//              over N*L cells (the same live bytes, read densely)
// Usage: kiln_opencl_floors [--iters N] [--device D]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backends/backend.h"
#include "backends/registry.h"
#include "graph/builder.h"

namespace kiln {
namespace {

struct Bench {
  Backend& backend;
  int iters = 20;
  std::mt19937 rng{7};

  // Random inputs (masks as given); returns the median device time of the
  // graph's nodes (us) and the wall time per run.
  struct Result {
    double device_us = 0, wall_us = 0;
  };
  absl::StatusOr<Result> Run(const Graph& g, const std::vector<std::pair<int, std::vector<std::byte>>>& fixed = {}) {
    std::vector<std::unique_ptr<Buffer>> bufs(g.tensors.size());
    Bindings bind;
    bind.tensors.resize(g.tensors.size());
    for (size_t i = 0; i < g.tensors.size(); ++i) {
      const TensorInfo& t = g.tensors[i];
      if (t.is_view()) continue;
      const size_t bytes = ContiguousBytes(t.dtype, t.dims);
      auto b = backend.Allocate(bytes, BufferUsage::kArena, t.name);
      if (!b.ok()) return b.status();
      if (t.producer < 0) {
        std::vector<std::byte> data(bytes);
        bool given = false;
        for (const auto& [id, v] : fixed) {
          if (id == static_cast<int>(i)) {
            data = v;
            given = true;
          }
        }
        if (!given) Random(t, data);
        if (auto st = backend.Upload(**b, 0, data.data(), bytes); !st.ok()) return st;
      }
      bind.tensors[i] = {b->get(), 0};
      bufs[i] = std::move(*b);
    }
    Split split{&g, {}};
    for (size_t n = 0; n < g.nodes.size(); ++n) split.nodes.push_back(static_cast<int>(n));
    auto prepared = backend.Prepare(split, bind, PrepareOptions{});
    if (!prepared.ok()) return prepared.status();
    std::vector<double> dev, wall;
    for (int it = 0; it < iters + 3; ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      auto point = backend.Execute(**prepared, ExecuteOptions{.timings = true});
      if (!point.ok()) return point.status();
      if (auto st = backend.Wait(*point); !st.ok()) return st;
      const double w = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      std::vector<NodeTiming> t;
      if (auto st = backend.ReadTimings(**prepared, &t); !st.ok()) return st;
      double total = 0;
      for (const NodeTiming& nt : t) total = std::max(total, nt.start_us + nt.duration_us);
      if (it >= 3) {
        dev.push_back(total);
        wall.push_back(w);
      }
    }
    std::sort(dev.begin(), dev.end());
    std::sort(wall.begin(), wall.end());
    return Result{dev[dev.size() / 2], wall[wall.size() / 2]};
  }

  void Random(const TensorInfo& t, std::vector<std::byte>& data) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) {
      const float v = nd(rng) * 0.5f;
      switch (t.dtype) {
        case DType::kF32: std::memcpy(&data[4 * i], &v, 4); break;
        case DType::kF16: {
          const uint16_t h = F32ToF16(v);
          std::memcpy(&data[2 * i], &h, 2);
          break;
        }
        case DType::kBF16: {
          const uint16_t h = F32ToBF16(v);
          std::memcpy(&data[2 * i], &h, 2);
          break;
        }
        default: std::memset(&data[ElementSize(t.dtype) * i], 0, ElementSize(t.dtype)); break;
      }
    }
  }
};

std::vector<std::byte> Floats(const std::vector<float>& v) {
  std::vector<std::byte> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<std::byte> Halves(const std::vector<float>& v) {
  std::vector<std::byte> b(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = F32ToF16(v[i]);
    std::memcpy(&b[2 * i], &h, 2);
  }
  return b;
}

// N sequences of L cells each over one cache; query row s sees cells
// [s*L, (s+1)*L) (its own sequence), the rest -inf.
absl::StatusOr<Graph> FaGraph(int64_t sq, int64_t skv, bool mask) {
  GraphBuilder b("fa");
  Tensor q = b.Input("q", DType::kF32, {1, sq, 32, 128});
  Tensor k = b.Input("k", DType::kF16, {1, skv, 8, 128});
  Tensor v = b.Input("v", DType::kF16, {1, skv, 8, 128});
  std::vector<Tensor> in = {q, k, v};
  if (mask) in.push_back(b.Input("mask", DType::kF16, {1, 1, sq, skv}));
  b.Output(b.Op1("flash_attn", in));
  return b.Build();
}

int Main(int argc, char** argv) {
  BackendOptions options;
  int iters = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--device")) options.device = argv[i + 1];
  }
  auto backend = CreateBackend("opencl", options);
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    return 1;
  }
  Backend& be = **backend;
  std::printf("device: %s (%s)\n", be.device().name.c_str(), be.device().driver.c_str());
  Bench bench{be, iters};

  // Copy bandwidth: 1 GiB (256 MiB where the device is small), best of runs.
  size_t bytes = size_t{1} << 30;
  if (be.device().memory_bytes < (size_t{8} << 30)) bytes = size_t{256} << 20;
  auto src = be.Allocate(bytes, BufferUsage::kArena, "copy src");
  auto dst = be.Allocate(bytes, BufferUsage::kArena, "copy dst");
  if (!src.ok() || !dst.ok()) return 1;
  be.Fill(**src, 0, bytes, 1).IgnoreError();
  double best = 1e30;
  for (int it = 0; it < 8; ++it) {
    auto p0 = be.Flush();
    be.Wait(*p0).IgnoreError();
    const auto t0 = std::chrono::steady_clock::now();
    be.Copy(**src, 0, **dst, 0, bytes).IgnoreError();
    auto p = be.Flush();
    be.Wait(*p).IgnoreError();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  src->reset();
  dst->reset();
  const double copy_gbs = 2.0 * bytes / best / 1e9;
  std::printf("copy: %.1f GB/s (read + write of %zu MiB in %.1f us)\n", copy_gbs, bytes >> 20, best * 1e6);

  auto report = [&](const char* what, const absl::StatusOr<Bench::Result>& r, double bytes_read, const char* floor) {
    if (!r.ok()) {
      std::printf("%s: %s\n", what, r.status().ToString().c_str());
      return;
    }
    if (bytes_read > 0) {
      const double gbs = bytes_read / (r->device_us * 1e-6) / 1e9;
      std::printf("%s: %.2f us device (%.2f us wall), %.1f GB/s = %.0f%% of copy (floor %s)\n", what, r->device_us,
                  r->wall_us, gbs, 100.0 * gbs / copy_gbs, floor);
    } else {
      std::printf("%s: %.2f us device (%.2f us wall) (floor %s)\n", what, r->device_us, r->wall_us, floor);
    }
  };

  {
    // The smallest kernel's device time: what every figure below includes.
    GraphBuilder b("tiny");
    Tensor x = b.Input("x", DType::kF32, {256});
    b.Output(b.Op1("add", {x, x}));
    auto g = b.Build();
    auto r = g.ok() ? bench.Run(*g) : absl::StatusOr<Bench::Result>(g.status());
    report("one kernel of 256 work-items (add)", r, 0, "-");
  }
  {
    auto g = FaGraph(1, 16384, true);
    std::vector<float> zeros(16384, 0.0f);
    auto r = g.ok() ? bench.Run(*g, {{g->FindTensor("mask"), Halves(zeros)}}) : absl::StatusOr<Bench::Result>(g.status());
    report("fa_decode Hq=32 Hkv=8 D=128 f16 Skv=16384", r, 2.0 * 16384 * 8 * 128 * 2, ">= 50%");
  }
  for (DType wdt : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kF32}) {
    GraphBuilder b("linear");
    Tensor x = b.Input("x", DType::kF32, {1, 1, 4096});
    Tensor w = b.Input("w", wdt, {4096, 4096});
    b.Output(b.Op1("linear", {x, w}));
    auto g = b.Build();
    auto r = g.ok() ? bench.Run(*g) : absl::StatusOr<Bench::Result>(g.status());
    const std::string what = absl::StrCat("linear 1x4096 x ", DTypeName(wdt), " 4096x4096");
    report(what.c_str(), r, static_cast<double>(ContiguousBytes(wdt, {4096, 4096})),
           wdt == DType::kF16 ? ">= 60%" : "-");
  }
  {
    GraphBuilder b("gdn");
    Tensor q = b.Input("q", DType::kF32, {1, 1, 32, 128});
    Tensor k = b.Input("k", DType::kF32, {1, 1, 32, 128});
    Tensor v = b.Input("v", DType::kF32, {1, 1, 32, 128});
    Tensor gg = b.Input("g", DType::kF32, {1, 1, 32});
    Tensor beta = b.Input("beta", DType::kF32, {1, 1, 32});
    Tensor s = b.Input("state", DType::kF32, {1, 32, 128, 128});
    auto outs = b.Op("gated_delta_net", {q, k, v, gg, beta, s}, {{"l2norm_qk", true}});
    for (Tensor t : outs) b.Output(t);
    auto g = b.Build();
    std::vector<float> gate(32, -0.1f), bt(32, 0.5f);
    auto r = g.ok() ? bench.Run(*g, {{g->FindTensor("g"), Floats(gate)}, {g->FindTensor("beta"), Floats(bt)}})
                    : absl::StatusOr<Bench::Result>(g.status());
    report("gdn decode H=32 K=V=128 B=1", r, 0, "< 8 us");
  }
  for (int64_t L : {512, 4096}) {
    double seq1 = 0;
    for (int64_t n : {1, 8}) {
      auto g = FaGraph(n, n * L, true);
      std::vector<float> mask(n * n * L, -INFINITY);
      for (int64_t s = 0; s < n; ++s)
        for (int64_t j = s * L; j < (s + 1) * L; ++j) mask[s * n * L + j] = 0.0f;
      auto r = g.ok() ? bench.Run(*g, {{g->FindTensor("mask"), Halves(mask)}}) : absl::StatusOr<Bench::Result>(g.status());
      if (!r.ok()) {
        std::printf("seq%lld: %s\n", (long long)n, r.status().ToString().c_str());
        continue;
      }
      if (n == 1) seq1 = r->device_us;
      const double kv_gbs = 2.0 * n * L * 8 * 128 * 2 / (r->device_us * 1e-6) / 1e9;  // live K/V bytes
      std::printf("seq%lld over a shared cache of %lld cells (L=%lld): %.2f us device (%.2f us wall), live K/V %.0f GB/s%s\n",
                  (long long)n, (long long)(n * L), (long long)L, r->device_us, r->wall_us, kv_gbs,
                  n == 1 ? "" : absl::StrCat(", ", absl::StrFormat("%.2f", r->device_us / seq1), "x seq1 (floor <= 1.5x)").c_str());
    }
    // The same bytes read densely: one sequence over all 8L cells.
    auto g = FaGraph(1, 8 * L, true);
    std::vector<float> zeros(8 * L, 0.0f);
    auto r = g.ok() ? bench.Run(*g, {{g->FindTensor("mask"), Halves(zeros)}}) : absl::StatusOr<Bench::Result>(g.status());
    if (r.ok()) {
      std::printf("seq1 over %lld cells (the bytes of seq8, dense): %.2f us device\n", (long long)(8 * L), r->device_us);
    }
  }
  return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) { return kiln::Main(argc, argv); }
