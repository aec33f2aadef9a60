// kiln_opencl_floors: the OpenCL backend against issue 9's floors, measured
// in one run on one device through the Backend interface (one-node graphs,
// device time from profiling events, median of --iters runs):
//   copy       device-to-device copy of 1 GiB: (read + written bytes) / time
//   fa_decode  flash_attn Hq=32 Hkv=8 D=128, f16 K/V, Skv=16384, one token:
//              K/V bytes / time, as a fraction of the copy bandwidth (>= 50%)
//   linear     one token x f16 W 4096x4096: W bytes / time (>= 60%)
//   gdn        gated_delta_net decode H=32 K=V=128 B=1 (< 8 us); prefill of
//              T=64/256/1024 tokens, chunked (the default from T=64) and
//              recurrent
//   seqN       N sequences decoding over one shared cache of N*L cells
//              (block-diagonal mask) vs one over L cells (<= 1.5x), and one
//              over N*L cells (the same live bytes, read densely)
// Each case's throughput wall/N (timings off) is measured twice: on the
// usual backend (profiling enabled; its untimed runs go to its second queue,
// without profiling, unless KILN_OPENCL_QUEUES=1) and on a second backend
// created with the flag profiling=off (one queue without
// CL_QUEUE_PROFILING_ENABLE), to tell whether profiling costs per-kernel
// time on the device.
// Usage: kiln_opencl_floors [--iters N] [--device D]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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
    double device_us = 0, wall_us = 0;  // per node: event span, wall (timings on)
    double span_us = 0, wall_off_us = 0;  // per node over `copies`: event span, wall with timings off
  };
  // The inputs of `fixed` are given by name; copy c of input NAME is NAMEc
  // (a name with its trailing digits removed matches). Each copy's random
  // inputs are the same bytes in distinct buffers.
  // timed = false (a backend without profiling): only the wall figures.
  absl::StatusOr<Result> Run(const Graph& g, const std::vector<std::pair<std::string, std::vector<std::byte>>>& fixed = {},
                             int copies = 1, bool timed = true) {
    std::vector<std::unique_ptr<Buffer>> bufs(g.tensors.size());
    std::vector<std::pair<std::string, std::vector<std::byte>>> drawn;  // first copy's random bytes by base name
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
        std::string base = t.name;
        while (!base.empty() && base.back() >= '0' && base.back() <= '9') base.pop_back();
        bool given = false;
        using Inputs = std::vector<std::pair<std::string, std::vector<std::byte>>>;
        for (const Inputs* list : {&fixed, static_cast<const Inputs*>(&drawn)}) {
          for (const auto& [name, v] : *list) {
            if (!given && name == base && v.size() == bytes) {
              data = v;
              given = true;
            }
          }
        }
        if (!given) {
          Random(t, data);
          drawn.emplace_back(base, data);
        }
        if (auto st = backend.Upload(**b, 0, data.data(), bytes); !st.ok()) return st;
      }
      bind.tensors[i] = {b->get(), 0};
      bufs[i] = std::move(*b);
    }
    Split split{&g, {}};
    for (size_t n = 0; n < g.nodes.size(); ++n) split.nodes.push_back(static_cast<int>(n));
    auto prepared = backend.Prepare(split, bind, PrepareOptions{});
    if (!prepared.ok()) return prepared.status();
    std::vector<double> dev, wall, span, wall_off;
    for (int it = 0; it < iters + 3; ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      auto point = backend.Execute(**prepared, ExecuteOptions{.timings = timed});
      if (!point.ok()) return point.status();
      if (auto st = backend.Wait(*point); !st.ok()) return st;
      const double w = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      std::vector<NodeTiming> t;
      if (auto st = backend.ReadTimings(**prepared, &t); !st.ok()) return st;
      double first = t.empty() ? 0 : 1e30, last = 0;
      for (const NodeTiming& nt : t) {
        first = std::min(first, nt.start_us);
        last = std::max(last, nt.start_us + nt.duration_us);
      }
      // The same run without timings: the wall time a graph sees.
      const auto t1 = std::chrono::steady_clock::now();
      auto p2 = backend.Execute(**prepared, ExecuteOptions{.timings = false});
      if (!p2.ok()) return p2.status();
      if (auto st = backend.Wait(*p2); !st.ok()) return st;
      const double w2 = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t1).count();
      if (it >= 3) {
        dev.push_back(last - first);
        wall.push_back(w);
        span.push_back((last - first) / copies);
        wall_off.push_back(w2 / copies);
      }
    }
    auto median = [](std::vector<double>& v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    return Result{median(dev), median(wall), median(span), median(wall_off)};
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
absl::StatusOr<Graph> FaGraph(int64_t sq, int64_t skv, bool mask, int copies = 1) {
  GraphBuilder b("fa");
  for (int c = 0; c < copies; ++c) {
    Tensor q = b.Input(absl::StrCat("q", c), DType::kF32, {1, sq, 32, 128});
    Tensor k = b.Input(absl::StrCat("k", c), DType::kF16, {1, skv, 8, 128});
    Tensor v = b.Input(absl::StrCat("v", c), DType::kF16, {1, skv, 8, 128});
    std::vector<Tensor> in = {q, k, v};
    if (mask) in.push_back(b.Input(absl::StrCat("mask", c), DType::kF16, {1, 1, sq, skv}));
    b.Output(b.Op1("flash_attn", in));
  }
  return b.Build();
}

absl::StatusOr<Graph> LinearGraph(DType wdt, int copies, int64_t rows = 1) {
  GraphBuilder b("linear");
  for (int c = 0; c < copies; ++c) {
    Tensor x = b.Input(absl::StrCat("x", c), DType::kF32, {1, rows, 4096});
    Tensor w = b.Input(absl::StrCat("w", c), wdt, {4096, 4096});
    b.Output(b.Op1("linear", {x, w}));
  }
  return b.Build();
}

absl::StatusOr<Graph> GdnGraph(int copies, int64_t T = 1) {
  GraphBuilder b("gdn");
  for (int c = 0; c < copies; ++c) {
    auto in = [&](const char* name, std::vector<int64_t> dims) {
      return b.Input(absl::StrCat(name, c), DType::kF32, dims);
    };
    auto outs = b.Op("gated_delta_net",
                     {in("q", {1, T, 32, 128}), in("k", {1, T, 32, 128}), in("v", {1, T, 32, 128}),
                      in("g", {1, T, 32}), in("beta", {1, T, 32}), in("state", {1, 32, 128, 128})},
                     {{"l2norm_qk", true}});
    for (Tensor t : outs) b.Output(t);
  }
  return b.Build();
}

absl::StatusOr<Graph> AddGraph(int copies) {
  GraphBuilder b("tiny");
  for (int c = 0; c < copies; ++c) {
    Tensor x = b.Input(absl::StrCat("x", c), DType::kF32, {256});
    b.Output(b.Op1("add", {x, x}));
  }
  return b.Build();
}

int Main(int argc, char** argv) {
  BackendOptions options;
  int iters = 20;
  std::string only;  // run only the cases whose name contains this
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
    if (!std::strcmp(argv[i], "--device")) options.device = argv[i + 1];
  }
  options.flags["profiling"] = "on";  // whatever KILN_OPENCL_PROFILING says
  auto backend = CreateBackend("opencl", options);
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    return 1;
  }
  Backend& be = **backend;
  std::printf("device: %s (%s)\n", be.device().name.c_str(), be.device().driver.c_str());
  Bench bench{be, iters};
  BackendOptions np_options = options;
  np_options.flags["profiling"] = "off";
  auto np_backend = CreateBackend("opencl", np_options);
  if (!np_backend.ok()) {
    std::fprintf(stderr, "%s\n", np_backend.status().ToString().c_str());
    return 1;
  }
  Bench np_bench{**np_backend, iters};

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

  // One line per case: the lone node's event figure, then N copies'
  // throughput figure (event span / N and wall / N); bandwidths from both.
  auto report = [&](const std::string& what, auto make, const std::vector<std::pair<std::string, std::vector<std::byte>>>& fixed,
                    int copies, double bytes_read, const char* floor) {
    if (!only.empty() && what.find(only) == std::string::npos) return;
    auto g1 = make(1);
    auto gn = make(copies);
    if (!g1.ok() || !gn.ok()) {
      std::printf("%s: %s\n", what.c_str(), (g1.ok() ? gn.status() : g1.status()).ToString().c_str());
      return;
    }
    auto r1 = bench.Run(*g1, fixed, 1);
    auto rn = bench.Run(*gn, fixed, copies);
    auto rp = np_bench.Run(*gn, fixed, copies, /*timed=*/false);
    if (!r1.ok() || !rn.ok() || !rp.ok()) {
      const absl::Status& st = !r1.ok() ? r1.status() : !rn.ok() ? rn.status() : rp.status();
      std::printf("%s: %s\n", what.c_str(), st.ToString().c_str());
      return;
    }
    auto pct = [&](double us) {
      if (bytes_read <= 0) return std::string();
      const double gbs = bytes_read / (us * 1e-6) / 1e9;
      return absl::StrFormat(" (%.0f GB/s, %.0f%%)", gbs, 100.0 * gbs / copy_gbs);
    };
    std::printf(
        "%s: event %.2f us%s [wall %.2f]; throughput x%d: %.2f us%s, wall %.2f us%s; no-profiling queue: wall %.2f "
        "us%s (floor %s)\n",
        what.c_str(), r1->device_us, pct(r1->device_us).c_str(), r1->wall_us, copies, rn->span_us,
        pct(rn->span_us).c_str(), rn->wall_off_us, pct(rn->wall_off_us).c_str(), rp->wall_off_us,
        pct(rp->wall_off_us).c_str(), floor);
    std::fflush(stdout);
  };

  report("one kernel of 256 work-items (add)", AddGraph, {}, 64, 0, "-");
  {
    std::vector<float> zeros(16384, 0.0f);
    report("fa_decode Hq=32 Hkv=8 D=128 f16 Skv=16384", [](int c) { return FaGraph(1, 16384, true, c); },
           {{"mask", Halves(zeros)}}, 8, 2.0 * 16384 * 8 * 128 * 2, ">= 50%");
  }
  for (DType wdt : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kF32}) {
    const std::string what = absl::StrCat("linear 1x4096 x ", DTypeName(wdt), " 4096x4096");
    report(what, [wdt](int c) { return LinearGraph(wdt, c); }, {}, wdt == DType::kF32 ? 4 : 8,
           static_cast<double>(ContiguousBytes(wdt, {4096, 4096})), wdt == DType::kF16 ? ">= 60%" : "-");
  }
  // 8 sequences decoding: 8 rows of x through one W.
  report("linear 8x4096 x f16 4096x4096", [](int c) { return LinearGraph(DType::kF16, c, 8); }, {}, 8,
         static_cast<double>(ContiguousBytes(DType::kF16, {4096, 4096})), "-");
  {
    std::vector<float> gate(32, -0.1f), bt(32, 0.5f);
    report("gdn decode H=32 K=V=128 B=1", [](int c) { return GdnGraph(c); },
           {{"g", Floats(gate)}, {"beta", Floats(bt)}}, 32,
           2.0 * 32 * 128 * 128 * 4, "< 8 us");
  }
  for (int64_t T : {64, 256, 1024}) {
    // GDN prefill, the chunked form against the recurrent kernel (where the
    // threshold should be): KILN_OPENCL_GDN_CHUNK_T is read when the node is
    // prepared.
    const std::string what = absl::StrCat("gdn prefill H=32 K=V=128 B=1 T=", T);
    if (only.empty() || what.find(only) != std::string::npos) {
      auto g = GdnGraph(1, T);
      std::vector<float> gate(T * 32, -0.1f), bt(T * 32, 0.5f);
      const char* old = std::getenv("KILN_OPENCL_GDN_CHUNK_T");
      const std::string saved = old ? old : "";
      for (bool chunked : {true, false}) {
        setenv("KILN_OPENCL_GDN_CHUNK_T", chunked ? "64" : "1000000000", 1);
        auto r = g.ok() ? bench.Run(*g, {{"g", Floats(gate)}, {"beta", Floats(bt)}}) : g.status();
        if (!r.ok()) {
          std::printf("%s: %s\n", what.c_str(), r.status().ToString().c_str());
          break;
        }
        std::printf("%s, %s: event %.1f us [wall %.1f us, timings off]\n", what.c_str(),
                    chunked ? "chunked" : "recurrent", r->device_us, r->wall_off_us);
        std::fflush(stdout);
      }
      if (old) setenv("KILN_OPENCL_GDN_CHUNK_T", saved.c_str(), 1);
      else unsetenv("KILN_OPENCL_GDN_CHUNK_T");
    }
  }
  for (int64_t L : {512, 4096}) {
    // N sequences over N*L cells (their own cells live), and one over the
    // same N*L cells densely (the same live bytes).
    for (int64_t n : {1, 8}) {
      std::vector<float> mask(n * n * L, -INFINITY);
      for (int64_t s = 0; s < n; ++s)
        for (int64_t j = s * L; j < (s + 1) * L; ++j) mask[s * n * L + j] = 0.0f;
      const std::string what = absl::StrCat("seq", n, " over a shared cache of ", n * L, " cells (L=", L, ")");
      report(what, [n, L](int c) { return FaGraph(n, n * L, true, c); }, {{"mask", Halves(mask)}}, L >= 4096 ? 4 : 16,
             2.0 * n * L * 8 * 128 * 2, n == 1 ? "-" : "seq8 <= 1.5x seq1");
    }
    std::vector<float> zeros(8 * L, 0.0f);
    report(absl::StrCat("seq1 over ", 8 * L, " cells (the bytes of seq8, dense)"),
           [L](int c) { return FaGraph(1, 8 * L, true, c); }, {{"mask", Halves(zeros)}}, L >= 4096 ? 4 : 16,
           2.0 * 8 * L * 8 * 128 * 2, "-");
  }
  return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) { return kiln::Main(argc, argv); }
