// kiln bench: times one-node graphs of flash_attn, gated_delta_net and
// linear over a modern model's shapes on a named backend, through the
// public Executable path, and reads each figure against ceilings measured
// in the same run (bench_limits.h). Decode-like cases rotate over enough
// copies of their inputs that the working set exceeds the last-level cache.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backends/registry.h"
#include "nlohmann/json.hpp"
#include "scheduler/executor.h"
#include "tools/args.h"
#include "base/atomic_file.h"
#include "tools/bench_cases.h"
#include "tools/bench_limits.h"
#include "tools/command.h"

namespace kiln::tools {
namespace {

const FlagSpec kFlags[] = {
    {"backend", "NAME", "backend to run on (default cpu)"},
    {"case", "K=V,...", "run one case of the (single) op named, e.g. hq=32,hkv=8,sq=1,skv=16384,mask=seq8", true},
    {"json", "FILE", "also write the results as JSON to FILE"},
    {"quick", "", "a few small cases per op (seconds)"},
    {"full", "", "add the slow cases (prefill over 32768 cells, 8 sequences of 32768)"},
    {"min-time", "MS", "time each case for at least MS milliseconds (default 300)"},
    {"warmup", "MS", "run each case back to back for MS milliseconds before timing it (default 500)"},
    {"copies", "N", "copies of a memory-bound case's inputs, run in turn (default: enough to read 4x the LLC)"},
    {"threads", "N", "CPU threads (default: all cores)"},
    {"seed", "S", "seed of the input values (default 1)"},
};

constexpr const char* kOps[] = {"fa", "gdn", "linear"};

struct Row {
  BenchCaseSpec spec;
  std::string shape;
  int64_t runs = 0;
  int copies = 1;
  double ms_median = 0, ms_min = 0;
  // The nodes' own time per run (the backend's timings: GPU timestamps on
  // Vulkan and OpenCL), median of profiled runs after the timed ones; 0
  // where the backend gives no timings. Without submission and waiting,
  // which dominate small GPU cases.
  double ms_node = 0;
  double flops = 0, bytes = 0;
  bool memory_bound = false;
};

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  }
  return "unknown";
}

double NowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

absl::StatusOr<Row> RunCase(const BenchCaseSpec& spec, const std::shared_ptr<Backend>& backend,
                            const HostLimits& limits, double min_ms, double warmup_ms, uint64_t seed,
                            int copies) {
  auto built = BuildCase(spec.op, spec.params, seed);
  if (!built.ok()) return built.status();
  Row row;
  row.spec = spec;
  row.shape = built->shape;
  row.flops = built->flops;
  row.bytes = built->bytes;
  row.memory_bound = built->memory_bound;
  // Enough copies that a rotation reads >= 4x the LLC (at most 1 GiB).
  if (built->memory_bound && limits.llc_bytes > 0 && built->bytes > 0) {
    const double want = 4.0 * limits.llc_bytes;
    row.copies = static_cast<int>(std::clamp(std::ceil(want / built->bytes), 1.0,
                                             std::max(1.0, std::floor((1 << 30) / built->bytes))));
    row.copies = std::min(row.copies, 64);
  }
  if (copies > 0) row.copies = copies;
  std::vector<std::unique_ptr<Executable>> exes;
  for (int i = 0; i < row.copies; ++i) {
    auto exe = Executable::Create(built->graph, {backend});
    if (!exe.ok()) return exe.status();
    for (const auto& [name, value] : built->inputs) {
      if (auto st = (*exe)->SetInput(name, value); !st.ok()) return st;
    }
    exes.push_back(std::move(*exe));
  }
  built->inputs.clear();
  // Warmup: every copy at least once, back to back for warmup_ms. A GPU
  // left idle while the case was built drops its clocks (the H200 under
  // Vulkan: 1980 -> 345 MHz after ~1 s) and takes a while of steady work to
  // raise them again; timed at once, a memory-bound node read 4-8x slower
  // (bench/RESULTS.md, session 9).
  const double w0 = NowMs();
  do {
    for (auto& e : exes) {
      if (auto st = e->Run(); !st.ok()) return st;
    }
  } while (NowMs() - w0 < warmup_ms);
  std::vector<double> ms;
  const double start = NowMs();
  while (ms.size() < 3 || NowMs() - start < min_ms) {
    Executable& e = *exes[ms.size() % exes.size()];
    const double t0 = NowMs();
    if (auto st = e.Run(); !st.ok()) return st;
    ms.push_back(NowMs() - t0);
    if (ms.size() >= 100000) break;
  }
  std::sort(ms.begin(), ms.end());
  row.runs = static_cast<int64_t>(ms.size());
  row.ms_median = ms[ms.size() / 2];
  row.ms_min = ms.front();
  // Profiled runs, apart from the timed ones (profiling can cost time).
  std::vector<double> node_ms;
  for (auto& e : exes) e->set_profiling(true);
  const double pstart = NowMs();
  while (node_ms.size() < 5 || (NowMs() - pstart < std::min(min_ms, 200.0) && node_ms.size() < 200)) {
    Executable& e = *exes[node_ms.size() % exes.size()];
    if (auto st = e.Run(); !st.ok()) return st;
    double us = 0;
    for (const NodeProfile& np : e.node_profile()) us += np.count > 0 ? np.last_us : 0;
    node_ms.push_back(us / 1e3);
  }
  std::sort(node_ms.begin(), node_ms.end());
  row.ms_node = node_ms[node_ms.size() / 2];
  return row;
}

std::string Percent(double f) { return f > 0 ? absl::StrFormat("%5.1f%%", 100 * f) : "     -"; }

void PrintHeader(const std::string& op) {
  std::printf("\n%s\n%-22s %10s %10s %10s %9s %8s %7s %7s %7s  %s\n", op.c_str(), "case", "median ms", "min ms",
              "node ms", "GFLOP/s", "GB/s", "%FMA", "%BW", "%BF16MX", "shape");
}

void PrintRow(const Row& r, const HostLimits& l) {
  const double s = r.ms_median / 1e3;
  const double gflops = r.flops / s / 1e9, gbps = r.bytes / s / 1e9;
  const double mx = l.bf16_matrix_flops > 0 ? r.flops / s / l.bf16_matrix_flops : 0;
  const std::string node = r.ms_node > 0 ? absl::StrFormat("%10.3f", r.ms_node) : absl::StrFormat("%10s", "-");
  std::printf("%-22s %10.3f %10.3f %s %9.1f %8.1f %7s %7s %7s  %s%s\n", r.spec.name.c_str(), r.ms_median, r.ms_min,
              node.c_str(), gflops, gbps, Percent(r.flops / s / l.fma_f32_flops).c_str(), Percent(r.bytes / s / l.read_bytes_per_s).c_str(),
              Percent(mx).c_str(), r.shape.c_str(), r.copies > 1 ? absl::StrCat(" (x", r.copies, " rotated)").c_str() : "");
  std::fflush(stdout);
}

std::string Json(const std::string& backend, const DeviceInfo& dev, const HostLimits& l,
                 const std::vector<Row>& rows) {
  using nlohmann::json;
  json j;
  j["cpu"] = CpuModel();
  j["backend"] = backend;
  j["device"] = dev.name;
  j["limits"] = {{"threads", l.threads},
                 {"fma_f32_gflops", l.fma_f32_flops / 1e9},
                 {"fma_target", l.fma_target},
                 {"read_gbps", l.read_bytes_per_s / 1e9},
                 {"read_set_bytes", l.read_set_bytes},
                 {"llc_bytes", l.llc_bytes},
                 {"amx_bf16", l.amx_bf16},
                 {"avx512_bf16", l.avx512_bf16},
                 {"bf16_matrix_gflops", l.bf16_matrix_flops / 1e9},
                 {"bf16_unit", l.bf16_unit}};
  j["results"] = json::array();
  for (const Row& r : rows) {
    const double s = r.ms_median / 1e3;
    j["results"].push_back({{"op", r.spec.op},
                            {"case", r.spec.name},
                            {"shape", r.shape},
                            {"runs", r.runs},
                            {"copies", r.copies},
                            {"ms_median", r.ms_median},
                            {"ms_min", r.ms_min},
                            {"ms_node", r.ms_node},
                            {"gflops", r.flops / s / 1e9},
                            {"gbps", r.bytes / s / 1e9},
                            {"fma_fraction", r.flops / s / l.fma_f32_flops},
                            {"bw_fraction", r.bytes / s / l.read_bytes_per_s},
                            {"bf16_matrix_fraction", l.bf16_matrix_flops > 0 ? r.flops / s / l.bf16_matrix_flops : 0.0},
                            {"memory_bound", r.memory_bound}});
  }
  return j.dump(2) + "\n";
}

}  // namespace

int BenchCommand(const std::vector<std::string>& argv) {
  if (!argv.empty() && argv[0] == "model") return BenchModelCommand({argv.begin() + 1, argv.end()});
  auto usage = [](absl::string_view msg) { return Fail(kExitUsage, absl::StrCat("bench: ", msg)); };
  auto args = ParseArgs(argv, kFlags);
  if (!args.ok()) return usage(args.status().message());
  if (args->help) {
    std::printf(
        "usage: kiln bench [fa|gdn|linear ...] [--backend NAME] [--case K=V,...] [--json FILE]\n"
        "       kiln bench model FILE-or-NAME ... (whole models: kiln bench model --help)\n\n"
        "Times one-node graphs (flash attention, gated delta net, linear) over the\n"
        "shapes of a modern GQA / hybrid model through the Executable path, and\n"
        "reads each figure against the host's f32 FMA peak and read bandwidth\n"
        "measured in the same run. Ops default to all three.\n\n%s",
        FlagsHelp(kFlags).c_str());
    return kExitOk;
  }
  std::vector<std::string> ops = args->positional;
  if (ops.empty()) ops.assign(std::begin(kOps), std::end(kOps));
  for (const std::string& op : ops) {
    if (std::find(std::begin(kOps), std::end(kOps), op) == std::end(kOps)) {
      return usage(absl::StrCat("unknown op '", op, "' (fa, gdn, linear)"));
    }
  }
  const std::vector<std::string> cases = args->GetAll("case");
  if (!cases.empty() && ops.size() != 1) return usage("--case needs exactly one op (fa, gdn or linear)");
  auto min_ms = args->GetInt("min-time", 300, 1, 600000);
  auto threads = args->GetInt("threads", 0, 0, 4096);
  auto seed = args->GetInt("seed", 1, 0, INT64_MAX);
  auto copies = args->GetInt("copies", 0, 1, 64);
  auto warmup_ms = args->GetInt("warmup", 500, 0, 600000);
  for (const auto* st : {&min_ms, &threads, &seed, &copies, &warmup_ms}) {
    if (!st->ok()) return usage(st->status().message());
  }
  std::vector<BenchCaseSpec> specs;
  for (const std::string& text : cases) {
    auto p = ParseCaseParams(text);
    if (!p.ok()) return usage(p.status().message());
    auto full = CompleteParams(ops[0], *p);
    if (!full.ok()) return usage(full.status().message());
    specs.push_back({ops[0], "custom", *p});
  }
  if (cases.empty()) {
    for (const std::string& op : ops) {
      for (auto& s : DefaultCases(op, args->has("quick"), args->has("full"))) specs.push_back(std::move(s));
    }
  }

  const std::string backend_name = args->Get("backend", "cpu");
  BackendOptions options;
  options.threads = static_cast<int>(*threads);
  auto backend = CreateBackend(backend_name, options);
  if (!backend.ok()) return Fail(kExitRunError, backend.status());
  std::shared_ptr<Backend> be = std::move(*backend);

  const int host_threads = *threads > 0 ? static_cast<int>(*threads)
                                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const HostLimits limits = MeasureHostLimits(host_threads);
  std::printf("cpu       %s\nbackend   %s (%s)\n", CpuModel().c_str(), backend_name.c_str(), be->device().name.c_str());
  std::printf("limits    f32 FMA peak %.1f GFLOP/s (%s, %d threads); read bandwidth %.1f GB/s (%lld MiB); LLC %lld MiB%s\n",
              limits.fma_f32_flops / 1e9, limits.fma_target.c_str(), limits.threads, limits.read_bytes_per_s / 1e9,
              static_cast<long long>(limits.read_set_bytes >> 20), static_cast<long long>(limits.llc_bytes >> 20),
              limits.bf16_matrix_flops > 0
                  ? absl::StrFormat("; bf16 matrix peak %.1f GFLOP/s (%s)", limits.bf16_matrix_flops / 1e9,
                                    limits.bf16_unit)
                        .c_str()
                  : limits.amx_bf16 ? "; AMX-BF16 listed but not granted by the OS" : "; no AMX or AVX512-BF16");

  std::vector<Row> rows;
  std::string last_op;
  for (const BenchCaseSpec& spec : specs) {
    if (spec.op != last_op) PrintHeader(spec.op), last_op = spec.op;
    auto row = RunCase(spec, be, limits, static_cast<double>(*min_ms), static_cast<double>(*warmup_ms),
                       static_cast<uint64_t>(*seed), static_cast<int>(*copies));
    if (!row.ok()) {
      return Fail(kExitRunError, absl::StrCat("bench ", spec.op, " ", spec.name, ": ", row.status().message()));
    }
    PrintRow(*row, limits);
    rows.push_back(std::move(*row));
  }
  const std::string json = args->Get("json");
  if (!json.empty()) {
    if (auto st = WriteFileAtomically(json, Json(backend_name, be->device(), limits, rows)); !st.ok()) {
      return Fail(kExitRunError, st);
    }
  }
  return kExitOk;
}

}  // namespace kiln::tools
