// kiln_vk_bench: the Vulkan backend's kernels against the floors,
// timed by GPU timestamps (the median of --iters runs after warm-ups), with
// the device's copy bandwidth measured in the same process.
//
//   kiln_vk_bench [--iters N] [--only NAME] [--json FILE] [--cold]
//
// Warm by default: the GPU is kept busy before and while it is timed (see
// TimeGraph); --cold times isolated runs, as a lone decode step would see.
//
// Two figures per case, both GPU timestamps over N instances of the node on
// distinct tensors in one command buffer (a full barrier between nodes, as
// between any two dependent nodes of a graph):
//   node:   the sum of each node's own bracket (timestamp, dispatches,
//           barrier, timestamp) / N: includes each node's drain and launch;
//   stream: the first node's start to the last node's end / N: the time a
//           node adds to a graph of such nodes (the throughput a real graph
//           sees);
//   wall:   the same graph prepared without timings (no timestamps), runs
//           submitted back to back, host wall clock / (runs * N): the cost
//           without the timestamps (an upper bound: includes the host's
//           submission when the GPU is faster). The N instances share no
//           memory, so plain runs would let them overlap: the bench sets
//           KILN_VULKAN_BARRIERS=all (unless given) to keep them dependent.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
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
  double stream_us = 0;  // see the header comment
  double wall_us = 0;
};

// Per-node sum and first-start-to-last-end span of one run (us).
struct Timing {
  double node = 0, span = 0, wall = 0;
};

int g_iters = 20;
bool g_cold = false;         // --cold: the GPU idle between runs
int64_t g_copy_mib = 1024;  // --copy-mib: the copy bandwidth's size

void Die(const absl::Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

// Runs the graph's nodes as one split; returns the medians (us) of the sum
// of its node timings and of their span. Inputs are filled with the byte 0x3c (small
// finite values in every dtype) unless `init` uploads something.
Timing TimeGraph(Backend& be, const Graph& g,
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
  auto run = [&](int times) -> Timing {  // submits back to back, waits; the last run's GPU times
    SyncPoint last = 0;
    for (int i = 0; i < times; ++i) {
      auto p = be.Execute(**prepared, eo);
      Die(p.status(), "Execute");
      last = *p;
    }
    Die(be.Wait(last), "Wait");
    std::vector<NodeTiming> t;
    Die(be.ReadTimings(**prepared, &t), "ReadTimings");
    Timing r;
    double first = 1e300, end = 0;
    for (const NodeTiming& n : t) {
      r.node += n.duration_us;
      first = std::min(first, n.start_us);
      end = std::max(end, n.start_us + n.duration_us);
    }
    r.span = t.empty() ? 0 : end - first;
    return r;
  };
  std::vector<double> us, span;
  if (g_cold) {
    // One run at a time after an idle host round trip: the GPU's clocks
    // stay low for short kernels (the first version of this bench).
    for (int it = 0; it < g_iters + 3; ++it) {
      const Timing t = run(1);
      if (it >= 3) {
        us.push_back(t.node);
        span.push_back(t.span);
      }
    }
  } else {
    // Warm: ~300 ms of back-to-back runs raise the clocks (the H200 idles
    // at 345 MHz), then each sample is the last of a batch of back-to-back
    // runs lasting ~2 ms, so the GPU is busy when it is timed.
    double est = run(3).node;
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 0.3) est = run(8).node;
    const int batch = std::clamp(static_cast<int>(2000.0 / std::max(est, 1.0)), 2, 64);
    for (int it = 0; it < g_iters; ++it) {
      const Timing t = run(batch);
      us.push_back(t.node);
      span.push_back(t.span);
    }
  }
  std::sort(us.begin(), us.end());
  std::sort(span.begin(), span.end());
  Timing r{us[us.size() / 2], span[span.size() / 2], 0};
  // Wall: the split without timestamps, `reps` runs back to back.
  PrepareOptions po2;
  auto untimed = be.Prepare(split, bindings, po2);
  Die(untimed.status(), "Prepare");
  const int reps = std::clamp(static_cast<int>(20000.0 / std::max(r.span, 1.0)), 2, 256);
  std::vector<double> walls;
  for (int it = 0; it < 3; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    SyncPoint last = 0;
    for (int k = 0; k < reps; ++k) {
      auto p = be.Execute(**untimed, ExecuteOptions{});
      Die(p.status(), "Execute");
      last = *p;
    }
    Die(be.Wait(last), "Wait");
    walls.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps);
  }
  std::sort(walls.begin(), walls.end());
  r.wall = walls[walls.size() / 2];
  return r;
}

// Fills r's two figures from a graph of `copies` instances.
void TimeCopies(Backend& be, const Graph& g, int copies, Result& r,
                const std::function<void(Backend&, int, Buffer&)>& init = nullptr) {
  const Timing t = TimeGraph(be, g, init);
  r.us = t.node / copies;
  r.stream_us = t.span / copies;
  r.wall_us = t.wall / copies;
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
  const double us = TimeGraph(be, g).node;
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
int CopiesFor(double bytes, int most = 16) {
  return std::min(most, bytes >= 256e6 ? 1 : static_cast<int>(std::ceil(256e6 / bytes)));
}

// The fixed cost of a node: `copies` 64-byte copies (one tiny dispatch each).
Result Tiny(Backend& be) {
  const int copies = 64;
  GraphBuilder b("tiny");
  for (int c = 0; c < copies; ++c) {
    auto x = b.Input(absl::StrCat("x", c), DType::kF32, {16});
    b.Output(b.Op1("contiguous", {x}));
  }
  Graph g = MustBuild(b);
  Result r{"tiny: a 64-byte copy node (the fixed cost)"};
  TimeCopies(be, g, copies, r);
  r.bytes = 128;
  return r;
}

Result FaDecode(Backend& be, int64_t skv, DType kv) {
  GraphBuilder b("fa_decode");
  const double bytes = 2.0 * skv * 8 * 128 * (kv == DType::kF16 ? 2 : 4);
  const int copies = CopiesFor(bytes);
  for (int c = 0; c < copies; ++c) {
    auto q = b.Input(absl::StrCat("q", c), DType::kF32, {1, 1, 32, 128});
    auto k = b.Input(absl::StrCat("k", c), kv, {1, skv, 8, 128});
    auto v = b.Input(absl::StrCat("v", c), kv, {1, skv, 8, 128});
    b.Output(b.Op1("flash_attn", {q, k, v}, FaAttrs()));
  }
  Graph g = MustBuild(b);
  Result r{absl::StrCat("fa_decode Hq32 Hkv8 D128 ", DTypeName(kv), " Skv=", skv)};
  TimeCopies(be, g, copies, r);
  r.bytes = bytes;
  return r;
}

// Decode (1 query row) or prefill (512 rows, causal) at a KV depth: the
// cache holds `depth` cells before the new rows.
Result FaDepth(Backend& be, int64_t sq, int64_t depth) {
  GraphBuilder b("fa_depth");
  const int64_t skv = depth + sq;
  const double bytes = 2.0 * skv * 8 * 128 * 2;
  const int copies = sq == 1 ? CopiesFor(bytes) : 1;
  for (int c = 0; c < copies; ++c) {
    auto q = b.Input(absl::StrCat("q", c), DType::kF32, {1, sq, 32, 128});
    auto k = b.Input(absl::StrCat("k", c), DType::kF16, {1, skv, 8, 128});
    auto v = b.Input(absl::StrCat("v", c), DType::kF16, {1, skv, 8, 128});
    b.Output(b.Op1("flash_attn", {q, k, v}, FaAttrs(sq > 1)));
  }
  Graph g = MustBuild(b);
  Result r{absl::StrCat(sq == 1 ? "fa decode" : "fa prefill Sq=512 causal", " at depth ", depth, " (Skv=", skv, ")")};
  TimeCopies(be, g, copies, r);
  r.bytes = bytes;
  r.flops = 4.0 * sq * (sq == 1 ? skv : depth + sq / 2.0) * 128 * 32;
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
  TimeCopies(be, g, 1, r, [&](Backend& be2, int id, Buffer& buf) {
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
  TimeCopies(be, g, 1, r);
  // Causal: the live cells only (the last Sq keys form a triangle).
  const double cells = causal ? sq * (skv - sq) + sq * (sq + 1) / 2.0 : static_cast<double>(sq) * skv;
  r.flops = 4.0 * cells * 128 * 32;
  return r;
}

Result Linear(Backend& be, int64_t tokens, int64_t n, int64_t k, DType w) {
  GraphBuilder b("linear");
  const int copies = tokens > 8 ? 1 : CopiesFor(static_cast<double>(ContiguousBytes(w, {n, k})));
  auto x = b.Input("x", DType::kF32, {1, tokens, k});
  for (int c = 0; c < copies; ++c) {
    auto wt = b.Input(absl::StrCat("w", c), w, {n, k});
    b.Output(b.Op1("linear", {x, wt}));
  }
  Graph g = MustBuild(b);
  Result r{absl::StrCat("linear ", tokens, " tok x ", DTypeName(w), " [", n, ",", k, "]")};
  TimeCopies(be, g, copies, r);
  r.bytes = static_cast<double>(ContiguousBytes(w, {n, k}));
  r.flops = 2.0 * tokens * n * k;
  return r;
}

Result GdnDecode(Backend& be, int64_t T) {
  GraphBuilder b("gdn");
  const int64_t H = 32, K = 128;
  const double bytes = 2.0 * H * K * K * 4;
  const int copies = T == 1 ? CopiesFor(bytes, 32) : 1;  // distinct states: none stays in the L2
  for (int c = 0; c < copies; ++c) {
    auto q = b.Input(absl::StrCat("q", c), DType::kF32, {1, T, H, K});
    auto k = b.Input(absl::StrCat("k", c), DType::kF32, {1, T, H, K});
    auto v = b.Input(absl::StrCat("v", c), DType::kF32, {1, T, H, K});
    auto gg = b.Input(absl::StrCat("g", c), DType::kF32, {1, T, H});
    auto beta = b.Input(absl::StrCat("beta", c), DType::kF32, {1, T, H});
    auto s = b.Input(absl::StrCat("state", c), DType::kF32, {1, H, K, K});
    auto outs = b.Op("gated_delta_net", {q, k, v, gg, beta, s}, {{"l2norm_qk", true}});
    b.Output(outs[0]);
    b.Output(outs[1]);
  }
  Graph g = MustBuild(b);
  Result r{absl::StrCat("gdn H32 K=V=128 B1 T=", T)};
  TimeCopies(be, g, copies, r);
  r.bytes = bytes;
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
  ::setenv("KILN_VULKAN_BARRIERS", "all", /*overwrite=*/0);
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
  if (want("tiny")) rs.push_back(Tiny(b));
  if (want("fa_decode")) {
    rs.push_back(FaDecode(b, 16384, DType::kF16));
    rs.push_back(FaDecode(b, 4096, DType::kF16));
  }
  if (want("multiseq") || only == "multiseq_short") {  // multiseq_short (by name): 512 and 2048 cells only
    for (int64_t L : {512, 2048, 16384}) {
      if (only == "multiseq_short" && L > 2048) break;
      Result one = FaMultiSeq(b, 1, L);
      Result eight = FaMultiSeq(b, 8, L);
      eight.note = absl::StrFormat("%.2fx one sequence (stream; node %.2fx)", eight.stream_us / one.stream_us,
                                   eight.us / one.us);
      rs.push_back(one);
      rs.push_back(eight);
    }
  }
  if (want("linear")) {
    for (DType w : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kF32}) rs.push_back(Linear(b, 1, 4096, 4096, w));
    // 8 tokens: a decode step of 8 sequences (the GEMV's 8-row variant).
    for (DType w : {DType::kF16, DType::kQ8_0}) rs.push_back(Linear(b, 8, 4096, 4096, w));
    rs.push_back(Linear(b, 512, 4096, 4096, DType::kF16));
  }
  if (want("gdn")) {
    rs.push_back(GdnDecode(b, 1));
    rs.push_back(GdnDecode(b, 512));
  }
  if (want("fa_prefill")) rs.push_back(FaPrefill(b, 512, 8192));
  if (only == "depth") {  // not in the default run: issue 8's specialization sweep
    for (int64_t d : {0, 8192, 32768}) rs.push_back(FaDepth(b, 1, d));
    for (int64_t d : {0, 8192, 32768}) rs.push_back(FaDepth(b, 512, d));
  }
  if (only == "fa_prefill_depths") {  // prefill chunks at several cache depths, causal (asked for by name)
    for (int64_t skv : {512, 2048, 8192, 32768}) rs.push_back(FaPrefill(b, 512, skv, true));
  }
  if (only == "gdn_long") {  // by name; KILN_VULKAN_GDN=recurrent times the fused recurrence
    for (int64_t T : {64, 128, 256, 512, 1024, 4096}) rs.push_back(GdnDecode(b, T));
  }
  // GB/s, % copy and TFLOP/s are of the stream figure.
  std::printf("%-58s %9s %9s %9s %9s %8s %9s  %s\n", "case", "node us", "stream us", "wall us", "GB/s", "% copy",
              "TFLOP/s", "note");
  std::string json = "[";
  for (const Result& r : rs) {
    const double gbs = r.bytes / (r.stream_us * 1e-6) / 1e9;
    const double tf = r.flops / (r.stream_us * 1e-6) / 1e12;
    std::printf("%-58s %9.1f %9.1f %9.1f %9.0f %7.0f%% %9.2f  %s\n", r.name.c_str(), r.us, r.stream_us, r.wall_us, gbs,
                100 * r.bytes / (r.stream_us * 1e-6) / copy_bw, tf, r.note.c_str());
    absl::StrAppendFormat(&json,
                          "%s{\"case\":\"%s\",\"node_us\":%.3f,\"stream_us\":%.3f,\"wall_us\":%.3f,\"GBps\":%.1f,"
                          "\"copy_frac\":%.3f,\"TFLOPs\":%.3f}",
                          json.size() > 1 ? "," : "", r.name, r.us, r.stream_us, r.wall_us, gbs, r.bytes / (r.stream_us * 1e-6) / copy_bw,
                          tf);
  }
  json += "]\n";
  if (!json_path.empty()) std::ofstream(json_path) << json;
  return 0;
}
