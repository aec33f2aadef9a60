// kiln_vk_bench: the Vulkan backend's kernels against the floors,
// timed by GPU timestamps (the median of --iters runs after warm-ups), with
// the device's copy bandwidth measured in the same process.
//
//   kiln_vk_bench [--iters N] [--only NAME] [--json FILE] [--cold]
//
// Warm by default: the GPU is kept busy before and while it is timed (see
// TimeGraph); --cold times isolated runs, as a lone decode step would see.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backends/registry.h"
#include "graph/builder.h"
#include "graph/dtype.h"

namespace kiln {
namespace {

struct Result {
  std::string name;
  double us = 0;
  double bytes = 0;  // bytes the kernel must read/write
  double flops = 0;
  std::string note;
};

int g_iters = 20;
bool g_cold = false;
int64_t g_copy_mib = 1024;  // --copy-mib: the copy bandwidth's size  // --cold: the GPU idle between runs

void Die(const absl::Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

// Runs the graph's nodes as one split; returns the median GPU time (us) of
// the sum of its node timings. Inputs are filled with the byte 0x3c (small
// finite values in every dtype) unless `init` uploads something.
double TimeGraph(Backend& be, const Graph& g,
                 const std::function<void(Backend&, int, Buffer&)>& init = nullptr) {
  Bindings bindings;
  bindings.tensors.resize(g.tensors.size());
  std::vector<std::unique_ptr<Buffer>> bufs(g.tensors.size());
  for (size_t id = 0; id < g.tensors.size(); ++id) {
    const TensorInfo& t = g.tensors[id];
    if (t.is_view()) continue;
    const size_t bytes = static_cast<size_t>(ContiguousBytes(t.dtype, t.dims));
    auto b = be.Allocate(bytes, BufferUsage::kArena, t.name);
    Die(b.status(), "Allocate");
    bufs[id] = std::move(*b);
    Die(be.Fill(*bufs[id], 0, bytes, 0x3c), "Fill");
    if (init) init(be, static_cast<int>(id), *bufs[id]);
    bindings.tensors[id] = {bufs[id].get(), 0};
  }
  for (size_t id = 0; id < g.tensors.size(); ++id) {
    const TensorInfo& t = g.tensors[id];
    if (t.is_view()) bindings.tensors[id] = {bufs[t.view_of].get(), static_cast<size_t>(t.offset)};
  }
  Split split{&g, {}};
  for (size_t i = 0; i < g.nodes.size(); ++i) split.nodes.push_back(static_cast<int>(i));
  PrepareOptions po;
  po.timings = true;
  auto prepared = be.Prepare(split, bindings, po);
  Die(prepared.status(), "Prepare");
  ExecuteOptions eo;
  eo.timings = true;
  auto run = [&](int times) -> double {  // submits back to back, waits; the last run's GPU time
    SyncPoint last = 0;
    for (int i = 0; i < times; ++i) {
      auto p = be.Execute(**prepared, eo);
      Die(p.status(), "Execute");
      last = *p;
    }
    Die(be.Wait(last), "Wait");
    std::vector<NodeTiming> t;
    Die(be.ReadTimings(**prepared, &t), "ReadTimings");
    double sum = 0;
    for (const NodeTiming& n : t) sum += n.duration_us;
    return sum;
  };
  std::vector<double> us;
  if (g_cold) {
    // One run at a time after an idle host round trip: the GPU's clocks
    // stay low for short kernels (the first version of this bench).
    for (int it = 0; it < g_iters + 3; ++it) {
      const double t = run(1);
      if (it >= 3) us.push_back(t);
    }
  } else {
    // Warm: ~300 ms of back-to-back runs raise the clocks (the H200 idles
    // at 345 MHz), then each sample is the last of a batch of back-to-back
    // runs lasting ~2 ms, so the GPU is busy when it is timed.
    double est = run(3);
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 0.3) est = run(8);
    const int batch = std::clamp(static_cast<int>(2000.0 / std::max(est, 1.0)), 2, 64);
    for (int it = 0; it < g_iters; ++it) us.push_back(run(batch));
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

Graph MustBuild(GraphBuilder& b) {
  auto g = b.Build();
  Die(g.status(), "Build");
  return std::move(*g);
}

// The device's copy bandwidth, bytes read + written per second: a 1 GiB
// contiguous-to-contiguous copy node (copy_vec.comp, 16-byte vectors), timed
// by GPU timestamps like every case. (vkCmdCopyBuffer timed by the wall
// clock, the first version of this bench, said 846 GB/s on the H200: the
// driver's transfer path, not what kernels get.)
double CopyBandwidth(Backend& be) {
  const int64_t n = g_copy_mib << 18;  // f32 elements
  GraphBuilder b("copy");
  auto x = b.Input("x", DType::kF32, {n});
  b.Output(b.Op1("contiguous", {x}));
  Graph g = MustBuild(b);
  const double us = TimeGraph(be, g);
  return 2.0 * 4.0 * static_cast<double>(n) / (us * 1e-6);
}

// vkCmdCopyBuffer of 1 GiB, wall clock over 10 copies: for comparison only.
double TransferCopyBandwidth(Backend& be) {
  const size_t n = static_cast<size_t>(g_copy_mib) << 20;
  auto a = be.Allocate(n, BufferUsage::kArena, "copy src");
  auto b = be.Allocate(n, BufferUsage::kArena, "copy dst");
  Die(a.status(), "Allocate");
  Die(b.status(), "Allocate");
  Die(be.Fill(**a, 0, n, 1), "Fill");
  auto p = be.Flush();
  Die(be.Wait(*p), "Wait");
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const int copies = 10;
    for (int i = 0; i < copies; ++i) Die(be.Copy(**a, 0, **b, 0, n), "Copy");
    auto q = be.Flush();
    Die(be.Wait(*q), "Wait");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * n * copies / s);
  }
  return best;
}

Attrs FaAttrs(bool causal = false) { return {{"causal", causal}}; }

// `copies` nodes on distinct tensors, each timed, the time per node: what
// one node reads then comes from memory, not from the L2 (50 MB on the
// H200) left warm by the previous run of the same node.
int CopiesFor(double bytes) { return bytes >= 256e6 ? 1 : static_cast<int>(std::ceil(256e6 / bytes)); }

Result FaDecode(Backend& be, int64_t skv, DType kv) {
  GraphBuilder b("fa_decode");
  const double bytes = 2.0 * skv * 8 * 128 * (kv == DType::kF16 ? 2 : 4);
  const int copies = std::min(8, CopiesFor(bytes));
  for (int c = 0; c < copies; ++c) {
    auto q = b.Input(absl::StrCat("q", c), DType::kF32, {1, 1, 32, 128});
    auto k = b.Input(absl::StrCat("k", c), kv, {1, skv, 8, 128});
    auto v = b.Input(absl::StrCat("v", c), kv, {1, skv, 8, 128});
    b.Output(b.Op1("flash_attn", {q, k, v}, FaAttrs()));
  }
  Graph g = MustBuild(b);
  Result r{absl::StrCat("fa_decode Hq32 Hkv8 D128 ", DTypeName(kv), " Skv=", skv)};
  r.us = TimeGraph(be, g) / copies;
  r.bytes = 2.0 * skv * 8 * 128 * (kv == DType::kF16 ? 2 : 4);
  return r;
}

// N sequences share one cache of N*L cells, one query token each; row i
// sees only cells [i*L, (i+1)*L) (block-diagonal mask).
Result FaMultiSeq(Backend& be, int64_t nseq, int64_t L) {
  GraphBuilder b("fa_multiseq");
  const int64_t cells = nseq * L;
  auto q = b.Input("q", DType::kF32, {1, nseq, 32, 128});
  auto k = b.Input("k", DType::kF16, {1, cells, 8, 128});
  auto v = b.Input("v", DType::kF16, {1, cells, 8, 128});
  auto m = b.Input("mask", DType::kF16, {1, 1, nseq, cells});
  b.Output(b.Op1("flash_attn", {q, k, v, m}, FaAttrs()));
  Graph g = MustBuild(b);
  const int mask_id = g.FindTensor("mask");
  Result r{absl::StrCat("fa_decode ", nseq, " seqs x ", L, " cells, block-diagonal mask")};
  r.us = TimeGraph(be, g, [&](Backend& be2, int id, Buffer& buf) {
    if (id != mask_id) return;
    std::vector<uint16_t> mask(static_cast<size_t>(nseq * cells), 0xfc00);  // -inf
    for (int64_t i = 0; i < nseq; ++i) {
      for (int64_t j = i * L; j < (i + 1) * L; ++j) mask[i * cells + j] = 0;
    }
    Die(be2.Upload(buf, 0, mask.data(), mask.size() * 2), "Upload");
  });
  r.bytes = 2.0 * cells * 8 * 128 * 2;
  return r;
}

Result FaPrefill(Backend& be, int64_t sq, int64_t skv, bool causal = false) {
  GraphBuilder b("fa_prefill");
  auto q = b.Input("q", DType::kF32, {1, sq, 32, 128});
  auto k = b.Input("k", DType::kF16, {1, skv, 8, 128});
  auto v = b.Input("v", DType::kF16, {1, skv, 8, 128});
  b.Output(b.Op1("flash_attn", {q, k, v}, FaAttrs(causal)));
  Graph g = MustBuild(b);
  Result r{absl::StrCat("fa_prefill Sq=", sq, " Skv=", skv, " Hq32 Hkv8 D128 f16 KV", causal ? " causal" : "")};
  r.us = TimeGraph(be, g);
  // Causal: the live cells only (the last Sq keys form a triangle).
  const double cells = causal ? sq * (skv - sq) + sq * (sq + 1) / 2.0 : static_cast<double>(sq) * skv;
  r.flops = 4.0 * cells * 128 * 32;
  return r;
}

Result Linear(Backend& be, int64_t tokens, int64_t n, int64_t k, DType w) {
  GraphBuilder b("linear");
  const int copies = tokens > 8 ? 1 : std::min(8, CopiesFor(static_cast<double>(ContiguousBytes(w, {n, k}))));
  auto x = b.Input("x", DType::kF32, {1, tokens, k});
  for (int c = 0; c < copies; ++c) {
    auto wt = b.Input(absl::StrCat("w", c), w, {n, k});
    b.Output(b.Op1("linear", {x, wt}));
  }
  Graph g = MustBuild(b);
  Result r{absl::StrCat("linear ", tokens, " tok x ", DTypeName(w), " [", n, ",", k, "]")};
  r.us = TimeGraph(be, g) / copies;
  r.bytes = static_cast<double>(ContiguousBytes(w, {n, k}));
  r.flops = 2.0 * tokens * n * k;
  return r;
}

Result GdnDecode(Backend& be, int64_t T) {
  GraphBuilder b("gdn");
  const int64_t H = 32, K = 128;
  auto q = b.Input("q", DType::kF32, {1, T, H, K});
  auto k = b.Input("k", DType::kF32, {1, T, H, K});
  auto v = b.Input("v", DType::kF32, {1, T, H, K});
  auto gg = b.Input("g", DType::kF32, {1, T, H});
  auto beta = b.Input("beta", DType::kF32, {1, T, H});
  auto s = b.Input("state", DType::kF32, {1, H, K, K});
  auto outs = b.Op("gated_delta_net", {q, k, v, gg, beta, s}, {{"l2norm_qk", true}});
  b.Output(outs[0]);
  b.Output(outs[1]);
  Graph g = MustBuild(b);
  Result r{absl::StrCat("gdn H32 K=V=128 B1 T=", T)};
  r.us = TimeGraph(be, g);
  r.bytes = 2.0 * H * K * K * 4;
  return r;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  using namespace kiln;
  std::string only, json_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--iters" && i + 1 < argc) g_iters = std::atoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--cold") g_cold = true;
    else if (a == "--copy-mib" && i + 1 < argc) g_copy_mib = std::atoll(argv[++i]);
  }
  auto be = CreateBackend("vulkan");
  Die(be.status(), "vulkan");
  Backend& b = **be;
  std::printf("device: %s (%s)\n", b.device().name.c_str(), b.device().driver.c_str());
  const double copy_bw = CopyBandwidth(b);
  std::printf("copy bandwidth: %.1f GB/s (read + written; %lld MiB copy kernel, GPU timestamps)\n", copy_bw / 1e9,
              static_cast<long long>(g_copy_mib));
  std::printf("vkCmdCopyBuffer: %.0f GB/s (wall clock, for comparison)\n\n", TransferCopyBandwidth(b) / 1e9);
  std::vector<Result> rs;
  auto want = [&](const char* n) { return only.empty() || only == n; };
  if (want("fa_decode")) {
    rs.push_back(FaDecode(b, 16384, DType::kF16));
    rs.push_back(FaDecode(b, 4096, DType::kF16));
  }
  if (want("multiseq")) {
    for (int64_t L : {512, 2048, 16384}) {
      Result one = FaMultiSeq(b, 1, L);
      Result eight = FaMultiSeq(b, 8, L);
      eight.note = absl::StrFormat("%.2fx one sequence", eight.us / one.us);
      rs.push_back(one);
      rs.push_back(eight);
    }
  }
  if (want("linear")) {
    for (DType w : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kF32}) rs.push_back(Linear(b, 1, 4096, 4096, w));
    rs.push_back(Linear(b, 512, 4096, 4096, DType::kF16));
  }
  if (want("gdn")) {
    rs.push_back(GdnDecode(b, 1));
    rs.push_back(GdnDecode(b, 512));
  }
  if (want("fa_prefill")) rs.push_back(FaPrefill(b, 512, 8192));
  if (only == "fa_prefill_depths") {  // prefill chunks at several cache depths, causal (asked for by name)
    for (int64_t skv : {512, 2048, 8192, 32768}) rs.push_back(FaPrefill(b, 512, skv, true));
  }
  if (only == "gdn_long") {  // by name; KILN_VULKAN_GDN=recurrent times the fused recurrence
    for (int64_t T : {64, 128, 256, 512, 1024, 4096}) rs.push_back(GdnDecode(b, T));
  }
  std::printf("%-58s %10s %10s %9s %10s  %s\n", "case", "us", "GB/s", "% copy", "TFLOP/s", "note");
  std::string json = "[";
  for (const Result& r : rs) {
    const double gbs = r.bytes / (r.us * 1e-6) / 1e9;
    const double tf = r.flops / (r.us * 1e-6) / 1e12;
    std::printf("%-58s %10.1f %10.0f %8.0f%% %10.2f  %s\n", r.name.c_str(), r.us, gbs, 100 * r.bytes / (r.us * 1e-6) / copy_bw,
                tf, r.note.c_str());
    absl::StrAppendFormat(&json, "%s{\"case\":\"%s\",\"us\":%.3f,\"GBps\":%.1f,\"copy_frac\":%.3f,\"TFLOPs\":%.3f}",
                          json.size() > 1 ? "," : "", r.name, r.us, gbs, r.bytes / (r.us * 1e-6) / copy_bw, tf);
  }
  json += "]\n";
  if (!json_path.empty()) std::ofstream(json_path) << json;
  return 0;
}
