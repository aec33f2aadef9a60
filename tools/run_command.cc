// kiln run FILE: load a graph, bind inputs, run it, report timings and a
// per-op profile, and write the outputs as .npy files.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backends/registry.h"
#include "graph/message_text.h"
#include "nlohmann/json.hpp"
#include "proto/graph_io.h"
#include "scheduler/executor.h"
#include "tools/args.h"
#include "base/atomic_file.h"
#include "tools/command.h"
#include "tools/decode_run.h"
#include "tools/input_values.h"
#include "scheduler/npy.h"

namespace kiln::tools {
namespace {

const FlagSpec kFlags[] = {
    {"backend", "LIST", "backends in priority order, comma-separated (default: cpu)"},
    {"input", "NAME=SRC", "bind input NAME to SRC: a .npy file, 'random' or 'zeros'", true},
    {"output-dir", "DIR", "write each graph output to DIR/<name>.npy"},
    {"iters", "N", "timed runs (default 5)"},
    {"warmup", "N", "untimed runs first (default 1)"},
    {"threads", "N", "CPU threads, 0 = all cores (default 0)"},
    {"seed", "S", "seed of the random inputs (default 0)"},
    {"max-generated-bytes", "N", "most bytes of random or zero inputs to make up (default 4 GiB)"},
    {"json", "FILE", "also write the report as JSON to FILE"},
    {"profile", "FILE", "write a Chrome trace of the timed runs to FILE (open in Perfetto)"},
    {"no-profile", "", "time the runs without node timings and print no per-op table (GPU backends then "
                       "record no timestamps and let nodes that share no memory overlap)"},
    {"strict", "", "fail if a node would not run on the first backend, listing each and why"},
    {"disable-op", "BACKEND:OP", "BACKEND does not run OP even where it could (repeatable), e.g. vulkan:flash_attn"},
    {"decode", "FILE", "after FILE (a prefill graph), run this decode graph --steps times over the same "
                       "weights and states, and print tokens/s for each phase"},
    {"steps", "N", "decode steps after the prefill, with --decode or when FILE names its decode entry "
                   "(metadata model.entry.decode, as kiln make-example models do) (default 16)"},
    {"stats", "", "print start-up costs: prepare time, first-run time and pipelines created, reused, "
                  "loaded from disk and their compile ms"},
};

void PrintUsage(FILE* out) {
  std::fprintf(out, "%s",
               absl::StrCat(
                   "usage: kiln run FILE [flags]\n\n"
                   "Runs a graph file: binds its inputs, runs it (warmup, then timed runs),\n"
                   "prints p50/p90 run time and a per-op profile, and writes the outputs.\n\n",
                   FlagsHelp(kFlags),
                   "\nInputs not given are random (a line names them): uniform in the graph metadata's\n"
                   "\"input_range.<name>\" = \"lo,hi\" when present, else floats ~ N(0,1)*0.5 and\n"
                   "i32 in [0, 15]. States are set to those values before every run, so each\n"
                   "run does the same work and the outputs written are those of one run.\n"
                   "A .npy input must have the input's shape; float32/float16/float64 values convert\n"
                   "to any float dtype or q8_0, int64 to i32 (each conversion is reported), and a\n"
                   "q8_0 input also takes its packed blocks as a uint8 array (34 bytes per 32).\n"
                   "bf16 and q8_0 outputs are written as float32 .npy files.\n")
                   .c_str());
}

// "path: message", unless the message names the file already.
std::string NamingFile(const std::string& path, const absl::Status& st) {
  if (absl::StrContains(st.message(), path)) return std::string(st.message());
  return absl::StrCat(path, ": ", st.message());
}

std::string SanitizeFileName(absl::string_view name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');  // no hidden files, no ".."
  return out.substr(0, 200);
}

std::string FormatBytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return absl::StrFormat("%.2f GiB", n / double(int64_t{1} << 30));
  if (n >= (1 << 20)) return absl::StrFormat("%.2f MiB", n / double(1 << 20));
  if (n >= (1 << 10)) return absl::StrFormat("%.1f KiB", n / double(1 << 10));
  return absl::StrCat(n, " B");
}

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * sorted.size()));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// min / max / mean of an output, and how many values are not finite.
std::string Summary(const HostTensor& t) {
  if (t.dims.empty() || t.dims.size() > kMaxRank || t.data.empty()) return "";
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  int64_t n = 0, bad = 0;
  const TensorView v = t.view();
  ForEachIndex(v.rank, v.dims, [&](const int64_t* idx) {
    const double x = LoadElement(v, idx);
    if (!std::isfinite(x)) {
      ++bad;
      return;
    }
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
    ++n;
  });
  std::string s = n ? absl::StrFormat("min %.4g  max %.4g  mean %.4g", lo, hi, sum / n) : "";
  if (bad) absl::StrAppend(&s, s.empty() ? "" : "  ", bad, " non-finite");
  return s;
}

// Parses the "NAME=SRC" flags into (input tensor id, source) pairs.
absl::StatusOr<std::vector<std::pair<int, std::string>>> ParseInputSpecs(
    const Graph& graph, const std::vector<std::string>& specs) {
  std::vector<std::pair<int, std::string>> out;
  absl::flat_hash_set<int> seen;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--input '", spec, "' is not NAME=FILE.npy, NAME=random or NAME=zeros"));
    }
    const std::string name = spec.substr(0, eq);
    int id = graph.FindTensor(name);
    if (id < 0 || std::find(graph.inputs.begin(), graph.inputs.end(), id) == graph.inputs.end()) {
      std::vector<std::string> names;
      for (int i : graph.inputs) names.push_back(QuoteName(graph.tensors[i].name));
      return absl::InvalidArgumentError(absl::StrCat("--input: the graph has no input ", QuoteName(name),
                                                     " (its inputs: ", ShortJoin(names, 16), ")"));
    }
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(absl::StrCat("--input: ", QuoteName(name), " is given twice"));
    }
    out.push_back({id, spec.substr(eq + 1)});
  }
  return out;
}

struct Settings {
  std::string path;
  int64_t iters = 5, warmup = 1, threads = 0, seed = 0;
  int64_t max_generated_bytes = kDefaultMaxGeneratedBytes;
  std::string backends, output_dir, json, profile;
  bool strict = false;
  bool stats = false;
  bool no_profile = false;
  std::vector<std::string> disabled_ops;
  std::vector<std::string> inputs;
};

absl::StatusOr<Settings> ParseSettings(const ParsedArgs& args) {
  if (args.positional.size() != 1) {
    return absl::InvalidArgumentError(args.positional.empty()
                                          ? "no graph file given (see kiln run --help)"
                                          : "give exactly one graph file (see kiln run --help)");
  }
  Settings s;
  s.path = args.positional[0];
  for (auto [name, fallback, min, out] :
       {std::tuple{"iters", 5, 1, &s.iters}, std::tuple{"warmup", 1, 0, &s.warmup},
        std::tuple{"threads", 0, 0, &s.threads}}) {
    auto v = args.GetInt(name, fallback, min, 1000000);
    if (!v.ok()) return v.status();
    *out = *v;
  }
  auto seed = args.GetInt("seed", 0, 0, INT64_MAX);
  if (!seed.ok()) return seed.status();
  s.seed = *seed;
  auto max_generated = args.GetInt("max-generated-bytes", kDefaultMaxGeneratedBytes, 0, INT64_MAX);
  if (!max_generated.ok()) return max_generated.status();
  s.max_generated_bytes = *max_generated;
  s.backends = args.Get("backend", "cpu");
  s.output_dir = args.Get("output-dir");
  s.json = args.Get("json");
  s.profile = args.Get("profile");
  s.strict = args.has("strict");
  s.disabled_ops = args.GetAll("disable-op");
  s.stats = args.has("stats");
  s.no_profile = args.has("no-profile");
  s.inputs = args.GetAll("input");
  return s;
}

// One graph output as reported (and written, with --output-dir).
struct OutputRecord {
  std::string name, dtype, summary, file, note;
  std::vector<int64_t> dims;
};

struct Report {
  std::vector<double> ms;  // timed runs, sorted
  double create_ms = 0;    // Executable::Create: placement, memory, weights, pipelines
  double first_run_ms = 0;
  std::vector<OutputRecord> outputs;
};

void PrintReport(const Settings& s, const Executable& e, const Report& r) {
  const Graph& g = e.graph();
  const MemoryPlan& plan = e.memory_plan();
  int in_place = 0;
  for (bool b : plan.state_in_place) in_place += b;
  int64_t input_bytes = 0, constant_bytes = 0;
  for (int id : g.inputs) input_bytes += ContiguousBytes(g.tensors[id].dtype, g.tensors[id].dims);
  for (const TensorInfo& t : g.tensors) constant_bytes += t.constant ? t.constant->size : 0;

  std::printf("graph     %s: %zu nodes, %zu inputs, %zu outputs, %zu states (%d updated in place)\n",
              g.name.c_str(), g.nodes.size(), g.inputs.size(), g.outputs.size(), g.states.size(), in_place);
  for (const auto& b : e.backends()) {
    std::printf("backend   %s: %s\n", std::string(b->name()).c_str(), b->device().name.c_str());
  }
  std::printf("memory    arena %s (without reuse %s), inputs and states %s, weights %s\n",
              FormatBytes(plan.peak_bytes()).c_str(), FormatBytes(plan.naive_bytes()).c_str(),
              FormatBytes(input_bytes).c_str(), FormatBytes(constant_bytes).c_str());
  if (!plan.transfers.empty()) {
    std::printf("transfers %zu per run between backends, %s\n", plan.transfers.size(),
                FormatBytes(plan.transfer_bytes()).c_str());
  }
  std::printf("time      p50 %.3f ms  p90 %.3f ms  (min %.3f, max %.3f; %zu runs after %lld warmup)\n",
              Percentile(r.ms, 0.5), Percentile(r.ms, 0.9), r.ms.front(), r.ms.back(), r.ms.size(),
              static_cast<long long>(s.warmup));

  double total_ms = 0, profiled_ms = 0;
  for (double t : r.ms) total_ms += t;
  if (s.no_profile) total_ms = 0;
  auto percent = [&](double ms) { return total_ms > 0 ? 100 * ms / total_ms : 0.0; };
  if (s.no_profile) {
    std::printf("\n");
  } else {
    std::printf("\n%-20s %-8s %8s %12s %9s\n", "op", "backend", "count", "total ms", "% of run");
    for (const OpProfile& row : e.op_profile()) {
      const double row_ms = row.total_us / 1000;
      profiled_ms += row_ms;
      std::printf("%-20s %-8s %8lld %12.3f %8.1f%%\n", row.op.c_str(), row.backend.c_str(),
                  static_cast<long long>(row.count), row_ms, percent(row_ms));
    }
    const double outside = std::max(0.0, total_ms - profiled_ms);
    std::printf("%-20s %-8s %8s %12.3f %8.1f%%\n\n", "(between nodes)", "", "", outside, percent(outside));
  }

  for (const auto& b : e.backends()) {
    const PipelineStats p = b->pipeline_stats();
    std::printf("pipelines %s: created %lld, reused %lld, loaded from disk %lld; compile %.1f ms, disk %.1f ms\n",
                std::string(b->name()).c_str(), static_cast<long long>(p.created),
                static_cast<long long>(p.cache_hits), static_cast<long long>(p.disk_hits), p.compile_ms, p.disk_ms);
  }
  if (s.stats) {
    std::printf("start-up  prepare %.1f ms (placement, memory, weights, pipelines), first run %.1f ms, "
                "first result after %.1f ms\n", r.create_ms, r.first_run_ms, r.create_ms + r.first_run_ms);
  }
  std::printf("\n");
  for (const OutputRecord& o : r.outputs) {
    std::printf("output    '%s' %s %s  %s%s%s\n", o.name.c_str(), o.dtype.c_str(), ShapeString(o.dims).c_str(),
                o.summary.c_str(), o.file.empty() ? "" : absl::StrCat("  -> ", o.file).c_str(),
                o.note.empty() ? "" : absl::StrCat("  (", o.note, ")").c_str());
  }
}

std::string JsonReport(const Settings& s, const Executable& e, const Report& r) {
  using nlohmann::json;
  const Graph& g = e.graph();
  json j;
  j["graph"] = {{"file", s.path}, {"name", g.name}, {"nodes", g.nodes.size()},
                {"inputs", g.inputs.size()}, {"outputs", g.outputs.size()}, {"states", g.states.size()}};
  for (const auto& b : e.backends()) {
    const PipelineStats p = b->pipeline_stats();
    j["backends"].push_back({{"name", std::string(b->name())}, {"device", b->device().name},
                             {"pipelines", {{"created", p.created}, {"cache_hits", p.cache_hits},
                                            {"disk_hits", p.disk_hits}, {"compile_ms", p.compile_ms},
                                            {"disk_ms", p.disk_ms}}}});
  }
  const MemoryPlan& plan = e.memory_plan();
  int in_place = 0;
  for (bool b : plan.state_in_place) in_place += b;
  j["memory"] = {{"arena_bytes", plan.peak_bytes()}, {"naive_bytes", plan.naive_bytes()},
                 {"states_in_place", in_place}};
  j["startup_ms"] = {{"prepare", r.create_ms}, {"first_run", r.first_run_ms}};
  j["time_ms"] = {{"p50", Percentile(r.ms, 0.5)}, {"p90", Percentile(r.ms, 0.9)}, {"min", r.ms.front()},
                  {"max", r.ms.back()}, {"runs", r.ms}, {"warmup", s.warmup}};
  j["profile"] = json::array();
  for (const OpProfile& row : e.op_profile()) {
    j["profile"].push_back({{"op", row.op}, {"backend", row.backend}, {"count", row.count},
                            {"total_us", row.total_us}});
  }
  j["nodes"] = json::array();
  for (const NodeProfile& n : e.node_profile()) {
    j["nodes"].push_back({{"name", n.name}, {"op", n.op}, {"backend", n.backend}, {"count", n.count},
                          {"total_us", n.total_us}});
  }
  j["outputs"] = json::array();
  for (const OutputRecord& o : r.outputs) {
    json out = {{"name", o.name}, {"dtype", o.dtype}, {"shape", o.dims}};
    if (!o.file.empty()) out["file"] = o.file;
    j["outputs"].push_back(out);
  }
  return j.dump(2) + "\n";
}

// Reads every output; with an output folder, writes each as <name>.npy.
absl::StatusOr<std::vector<OutputRecord>> CollectOutputs(const Executable& e, const std::string& dir) {
  const Graph& g = e.graph();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot create folder '", dir, "': ", ec.message()));
  }
  std::vector<OutputRecord> records;
  absl::flat_hash_set<std::string> used_names;
  for (int id : g.outputs) {
    const TensorInfo& t = g.tensors[id];
    absl::StatusOr<HostTensor> value = absl::UnknownError("");
    try {  // a host copy of the output: running out of memory names it
      value = e.GetOutput(t.name);
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(absl::StrCat("out of host memory reading the ",
                                                       ContiguousBytes(t.dtype, t.dims), " bytes of output ",
                                                       Describe(t)));
    }
    if (!value.ok()) return value.status();
    OutputRecord rec{t.name, std::string(DTypeName(t.dtype)), Summary(*value), "", "", t.dims};
    if (!dir.empty()) {
      std::string file = SanitizeFileName(t.name);
      for (int k = 1; !used_names.insert(file).second; ++k) file = absl::StrCat(SanitizeFileName(t.name), "_", k);
      rec.file = (std::filesystem::path(dir) / (file + ".npy")).string();
      HostTensor host = std::move(*value);
      if (ToNpyDType(host.dtype) != host.dtype) {
        auto converted = ConvertDType(host, ToNpyDType(host.dtype));
        if (!converted.ok()) return converted.status();
        host = std::move(*converted);
        rec.note = absl::StrCat(rec.dtype, " written as f32");
      }
      if (auto st = WriteNpy(rec.file, host); !st.ok()) return st;
    }
    records.push_back(std::move(rec));
  }
  return records;
}

// --decode: a prefill graph, then decode steps over shared weights and states.
int RunDecode(const ParsedArgs& args, const Settings& s, const std::string& decode_path) {
  auto usage = [](absl::string_view msg) { return Fail(kExitUsage, absl::StrCat("run: ", msg)); };
  if (!s.inputs.empty()) return usage("--input cannot be combined with --decode (inputs are random)");
  auto steps = args.GetInt("steps", 16, 1, 1 << 20);
  if (!steps.ok()) return usage(steps.status().message());
  auto prefill = LoadGraph(s.path);
  if (!prefill.ok()) return Fail(kExitRunError, NamingFile(s.path, prefill.status()));
  auto decode = LoadGraph(decode_path);
  if (!decode.ok()) return Fail(kExitRunError, NamingFile(decode_path, decode.status()));
  BackendOptions backend_options;
  backend_options.threads = static_cast<int>(s.threads);
  std::vector<std::shared_ptr<Backend>> backends;
  for (absl::string_view name : absl::StrSplit(s.backends, ',', absl::SkipWhitespace())) {
    auto backend = CreateBackend(name, backend_options);
    if (!backend.ok()) return Fail(kExitRunError, backend.status());
    backends.push_back(std::move(*backend));
  }
  if (backends.empty()) return usage("--backend names no backend");
  for (const auto& b : backends) {
    std::printf("backend   %s: %s\n", std::string(b->name()).c_str(), b->device().name.c_str());
  }
  DecodeRunSettings ds;
  ds.steps = *steps;
  ds.rounds = std::max<int64_t>(1, s.iters);
  ds.seed = static_cast<uint64_t>(s.seed);
  ds.strict = s.strict;
  ds.disabled_ops = s.disabled_ops;
  auto report = RunPrefillThenDecode(std::move(*prefill), std::move(*decode), backends, ds);
  if (!report.ok()) return Fail(kExitRunError, report.status());
  if (!report->random_inputs.empty()) {
    std::printf("inputs    random: %s\n", absl::StrJoin(report->random_inputs, ", ").c_str());
  }
  PrintDecodeReport(*report);
  return kExitOk;
}

int Run(const ParsedArgs& args) {
  auto usage = [](absl::string_view msg) { return Fail(kExitUsage, absl::StrCat("run: ", msg)); };
  auto settings = ParseSettings(args);
  if (!settings.ok()) return usage(settings.status().message());
  const Settings& s = *settings;
  if (args.has("decode")) return RunDecode(args, s, args.Get("decode"));

  auto graph = LoadGraph(s.path);
  if (!graph.ok()) return Fail(kExitRunError, NamingFile(s.path, graph.status()));
  if (args.has("steps")) {
    // A model's prefill entry names its decode entry (models/model_config.h).
    auto decode = DecodeEntryPath(*graph, s.path);
    if (!decode.ok()) return Fail(kExitRunError, NamingFile(s.path, decode.status()));
    if (decode->empty()) {
      return usage(absl::StrCat("--steps needs --decode FILE, or a graph whose metadata \"", kDecodeEntryKey,
                                "\" names its decode entry"));
    }
    return RunDecode(args, s, *decode);
  }
  auto specs = ParseInputSpecs(*graph, s.inputs);
  if (!specs.ok()) return usage(specs.status().message());

  BackendOptions backend_options;
  backend_options.threads = static_cast<int>(s.threads);
  std::vector<std::shared_ptr<Backend>> backends;
  for (absl::string_view name : absl::StrSplit(s.backends, ',', absl::SkipWhitespace())) {
    auto backend = CreateBackend(name, backend_options);
    if (!backend.ok()) return Fail(kExitRunError, backend.status());
    backends.push_back(std::move(*backend));
  }
  if (backends.empty()) return usage("--backend names no backend");

  // Inputs are checked now (files' headers, the bytes to make up) and made
  // once the executable exists, each bound as soon as it is made: only
  // states keep a host copy (to reset them before every run).
  InputOptions input_options;
  input_options.seed = static_cast<uint64_t>(s.seed);
  input_options.max_generated_bytes = s.max_generated_bytes;
  auto input_plans = PlanInputs(*graph, *specs, input_options);
  if (!input_plans.ok()) return Fail(kExitRunError, input_plans.status());
  for (const std::string& line : InputNotes(*graph, *input_plans)) std::printf("inputs    %s\n", line.c_str());

  ExecutableOptions exe_options;
  exe_options.profile = !s.no_profile;
  exe_options.placement.strict = s.strict;
  exe_options.placement.disabled_ops = s.disabled_ops;
  using Clock = std::chrono::steady_clock;
  const auto create_start = Clock::now();
  auto exe = Executable::Create(std::move(*graph), backends, exe_options);
  if (!exe.ok()) return Fail(kExitRunError, NamingFile(s.path, exe.status()));
  const double create_ms = std::chrono::duration<double, std::milli>(Clock::now() - create_start).count();
  Executable& e = **exe;
  std::vector<std::pair<std::string, HostTensor>> states;
  for (const InputPlan& p : *input_plans) {
    const Graph& g = e.graph();
    auto value = MakeInputValue(g, p, input_options);
    if (!value.ok()) return Fail(kExitRunError, value.status());
    const std::string& name = g.tensors[p.tensor].name;
    const bool is_state = std::any_of(g.states.begin(), g.states.end(),
                                      [&p](const StatePair& sp) { return sp.input == p.tensor; });
    if (is_state) {
      states.push_back({name, *std::move(value)});
    } else if (auto st = e.SetInput(name, *value); !st.ok()) {
      return Fail(kExitRunError, st);
    }
  }

  // Warmup, then timed runs. States are set before every run (untimed), so
  // each run does the same work from the same values.
  Report report;
  report.create_ms = create_ms;
  for (int64_t i = 0; i < s.warmup + s.iters; ++i) {
    if (i == s.warmup) {
      e.ResetProfile();
      e.set_tracing(!s.profile.empty());
    }
    for (const auto& [name, value] : states) {
      if (auto st = e.SetInput(name, value); !st.ok()) return Fail(kExitRunError, st);
    }
    const auto t0 = Clock::now();
    if (auto st = e.Run(); !st.ok()) return Fail(kExitRunError, st);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (i == 0) report.first_run_ms = ms;
    if (i >= s.warmup) report.ms.push_back(ms);
  }
  std::sort(report.ms.begin(), report.ms.end());
  states.clear();  // their host copies are not needed to read the outputs

  auto outputs = CollectOutputs(e, s.output_dir);
  if (!outputs.ok()) return Fail(kExitRunError, outputs.status());
  report.outputs = std::move(*outputs);
  PrintReport(s, e, report);
  if (!s.json.empty()) {
    if (auto st = WriteFileAtomically(s.json, JsonReport(s, e, report)); !st.ok()) {
      return Fail(kExitRunError, st);
    }
  }
  if (!s.profile.empty()) {
    if (auto st = WriteFileAtomically(s.profile, ChromeTraceJson(e.trace())); !st.ok()) {
      return Fail(kExitRunError, st);
    }
  }
  return kExitOk;
}

}  // namespace

int RunCommand(const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, kFlags);
  if (!args.ok()) return Fail(kExitUsage, absl::StrCat("run: ", args.status().message(), " (see kiln run --help)"));
  if (args->help) {
    PrintUsage(stdout);
    return kExitOk;
  }
  return Run(*args);
}

}  // namespace kiln::tools
