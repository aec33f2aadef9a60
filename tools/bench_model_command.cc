// kiln bench model FILE-or-NAME: prompt processing (pp) and generation (tg)
// of a whole model at several cache depths, like llama-bench's pp/tg tests.
//
// NAME is a `kiln make-example` model (models/published_configs.h) built in
// memory with seeded random weights; FILE a prefill entry whose metadata
// names its decode entry. Filling the states to a depth d: every state is
// written once with random values (ModelResources::WriteState), and depth d
// is then positions from d on and a mask that shows cells 0..d (per
// sequence): what attention reads and skips is what a real cache of d
// tokens costs, without prefilling d tokens on a slow device first. pp
// times one prefill of P tokens at positions d..; tg times N decode steps at
// d, d+1, ..., each on the states the previous step left on the device.
// --seqs S decodes S sequences together (one decode graph of T = S tokens,
// sequence s in cells [s*L, (s+1)*L) of one shared KV cache, a
// block-diagonal mask; gated delta net layers keep per-sequence states).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backends/registry.h"
#include "base/atomic_file.h"
#include "models/example_model.h"
#include "models/published_configs.h"
#include "models/random_weights.h"
#include "nlohmann/json.hpp"
#include "proto/graph_io.h"
#include "scheduler/model.h"
#include "tools/args.h"
#include "tools/command.h"
#include "tools/decode_run.h"

namespace kiln::tools {
namespace {

const FlagSpec kFlags[] = {
    {"backend", "LIST", "backends in priority order (default cpu)"},
    {"prompt", "P", "tokens of the timed prefill (default 512; a FILE's prefill entry fixes it)", false, 'p'},
    {"gen", "N", "timed decode steps (default 32)", false, 'n'},
    {"depth", "D,...", "cache depths (default 0,1024,8192,32768)", false, 'd'},
    {"seqs", "S,...", "sequences decoding together (default 1; NAME only)"},
    {"layers", "N", "NAME: only the first N layers"},
    {"dtype", "f16|bf16", "NAME: projection weights (default f16)"},
    {"reps", "R", "timed repetitions of each test, the median reported (default 1)"},
    {"warmup", "MS", "after building, decode steps back to back for MS milliseconds before timing (default 500)"},
    {"threads", "N", "CPU threads (default: all cores)"},
    {"seed", "S", "seed of the weights, tokens and state values (default 1)"},
    {"json", "FILE", "also write the results as JSON to FILE"},
};

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a) { return std::chrono::duration<double, std::milli>(Clock::now() - a).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

absl::StatusOr<std::vector<int64_t>> IntList(absl::string_view flag, const std::string& text, int64_t min) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int64_t v;
    if (!absl::SimpleAtoi(part, &v) || v < min) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", part, "' is not an integer >= ", min));
    }
    out.push_back(v);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " needs at least one value"));
  return out;
}

// One line on stderr, rewritten in place, when stderr is a terminal.
class Progress {
 public:
  explicit Progress(int total) : tty_(isatty(STDERR_FILENO)), total_(total) {}
  void Step(const std::string& what) {
    ++done_;
    if (tty_) std::fprintf(stderr, "\r\033[K[%d/%d] %s", done_, total_, what.c_str()), std::fflush(stderr);
  }
  ~Progress() {
    if (tty_) std::fprintf(stderr, "\r\033[K"), std::fflush(stderr);
  }

 private:
  bool tty_;
  int total_, done_ = 0;
};

struct Result {
  std::string test;  // "pp512" or "tg32" (x S)
  int64_t seqs = 1, depth = 0, tokens = 0;
  std::vector<double> ms;  // per repetition: the prefill, or all steps
  double tokens_per_s() const { const double m = Median(ms); return m > 0 ? 1000.0 * tokens / m : 0; }
};

// FA, GDN, linear and the rest, as shares of the profiled time.
nlohmann::json OpShares(const Executable& e) {
  double fa = 0, gdn = 0, linear = 0, rest = 0;
  nlohmann::json rest_ops = nlohmann::json::object();  // the rest, per op (most expensive first)
  for (const OpProfile& p : e.op_profile()) {
    if (p.op == "flash_attn") fa += p.total_us;
    else if (p.op == "gated_delta_net") gdn += p.total_us;
    else if (p.op == "linear" || p.op == "matmul") linear += p.total_us;
    else rest += p.total_us;
  }
  const double total = fa + gdn + linear + rest;
  if (total <= 0) return nlohmann::json::object();
  for (const OpProfile& p : e.op_profile()) {
    if (p.op != "flash_attn" && p.op != "gated_delta_net" && p.op != "linear" && p.op != "matmul") {
      rest_ops[p.op] = rest_ops.value(p.op, 0.0) + p.total_us / total;
    }
  }
  return {{"fa", fa / total}, {"gdn", gdn / total}, {"linear", linear / total}, {"rest", rest / total},
          {"rest_ops", rest_ops}, {"total_ms", total / 1e3}};
}

std::string SharesText(const nlohmann::json& s) {
  if (s.empty()) return "no timings";
  // The three largest of the rest, so the next thing to speed up is visible.
  std::vector<std::pair<double, std::string>> rest;
  for (const auto& [op, share] : s["rest_ops"].items()) rest.push_back({share.get<double>(), op});
  std::sort(rest.rbegin(), rest.rend());
  std::vector<std::string> top;
  for (size_t i = 0; i < rest.size() && i < 3; ++i) top.push_back(absl::StrFormat("%s %.1f%%", rest[i].second, 100 * rest[i].first));
  return absl::StrFormat("FA %.1f%%, GDN %.1f%%, linear %.1f%%, rest %.1f%% (%s) of %.1f ms",
                         100 * s["fa"].get<double>(), 100 * s["gdn"].get<double>(), 100 * s["linear"].get<double>(),
                         100 * s["rest"].get<double>(), absl::StrJoin(top, ", "), s["total_ms"].get<double>());
}

// Random values for every state: caches ~N(0, 0.5), recurrent states small.
absl::Status FillStates(ModelResources& r, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const std::string& name : r.StateNames()) {
    auto cur = r.ReadState(name);
    if (!cur.ok()) return cur.status();
    HostTensor& t = *cur;
    const bool recurrent = name.find("ssm_state") != std::string::npos;
    std::normal_distribution<float> dist(0.f, recurrent ? 0.02f : 0.5f);
    const int64_t n = static_cast<int64_t>(t.data.size()) / std::max(1, ElementSize(t.dtype));
    for (int64_t i = 0; i < n; ++i) {
      const float v = dist(rng);
      if (t.dtype == DType::kF32) {
        reinterpret_cast<float*>(t.data.data())[i] = v;
      } else if (t.dtype == DType::kF16) {
        reinterpret_cast<uint16_t*>(t.data.data())[i] = F32ToF16(v);
      } else if (t.dtype == DType::kBF16) {
        reinterpret_cast<uint16_t*>(t.data.data())[i] = F32ToBF16(v);
      } else {
        break;  // q8_0 caches keep their zeros: the cost does not depend on the values
      }
    }
    if (auto st = r.WriteState(name, t.data.data(), t.data.size()); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status SetRandomTokens(Executable& e, uint64_t seed) {
  const Graph& g = e.graph();
  const int id = g.FindTensor("tokens");
  if (id < 0) return absl::InvalidArgumentError(absl::StrCat("graph '", g.name, "' has no input 'tokens'"));
  int64_t vocab = 2;
  if (auto it = g.metadata.find("input_range.tokens"); it != g.metadata.end()) {
    std::vector<std::string> lohi = absl::StrSplit(it->second, ',');
    if (lohi.size() != 2 || !absl::SimpleAtoi(lohi[1], &vocab)) vocab = 2;
    ++vocab;
  }
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(g.tensors[id].numel()));
  for (int32_t& v : ids) v = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return e.SetInputBytes("tokens", ids.data(), ids.size() * 4);
}

// The entries of one benchmarked model for S sequences.
struct Entries {
  std::unique_ptr<Model> model;
  Executable* prefill = nullptr;  // S == 1 only
  Executable* decode = nullptr;
  int64_t context = 0, cells_per_seq = 0, prompt = 0;
};

struct Settings {
  std::vector<std::shared_ptr<Backend>> backends;
  int64_t prompt = 512, gen = 32, reps = 1, warmup_ms = 500;
  std::vector<int64_t> depths, seqs;
  uint64_t seed = 1;
};

int64_t ContextOf(const Graph& g) {
  const int id = g.FindTensor(g.metadata.count("decode.mask") ? g.metadata.at("decode.mask") : "mask");
  return id < 0 ? 0 : g.tensors[id].dims.back();
}

absl::StatusOr<Entries> AddEntries(std::optional<Graph> prefill, Graph decode, const Settings& s, int64_t seqs,
                                   int64_t cells_per_seq) {
  Entries e;
  e.model = std::make_unique<Model>(s.backends);
  if (prefill) {
    auto tokens = prefill->metadata.find("tokens");
    if (tokens == prefill->metadata.end() || !absl::SimpleAtoi(tokens->second, &e.prompt)) {
      return absl::InvalidArgumentError(absl::StrCat("prefill graph '", prefill->name, "' has no metadata \"tokens\""));
    }
    auto p = e.model->Add("prefill", *std::move(prefill));
    if (!p.ok()) return p.status();
    e.prefill = *p;
  }
  e.context = ContextOf(decode);
  auto d = e.model->Add("decode", std::move(decode));
  if (!d.ok()) return d.status();
  e.decode = *d;
  e.cells_per_seq = cells_per_seq > 0 ? cells_per_seq : e.context / seqs;
  if (auto st = FillStates(e.model->resources(), s.seed + 17); !st.ok()) return st;
  if (e.prefill) {
    if (auto st = SetRandomTokens(*e.prefill, s.seed + 1); !st.ok()) return st;
  }
  if (auto st = SetRandomTokens(*e.decode, s.seed + 2); !st.ok()) return st;
  return e;
}

// Decode steps at depth d: sequence s's step i at cell s*L + d + i, seeing
// cells s*L .. s*L + d + i.
absl::StatusOr<double> TimeDecode(Entries& e, int64_t seqs, int64_t depth, int64_t steps) {
  const int64_t C = e.context, L = e.cells_per_seq;
  HostTensor mask = HostTensor::Zeros(DType::kF32, {1, 1, seqs, C});
  float* m = reinterpret_cast<float*>(mask.data.data());
  for (int64_t s = 0; s < seqs; ++s) {
    for (int64_t j = 0; j < C; ++j) m[s * C + j] = (j >= s * L && j < s * L + depth) ? 0.0f : -INFINITY;
  }
  std::vector<int32_t> pos(static_cast<size_t>(seqs));
  double total = 0;
  for (int64_t i = 0; i < steps; ++i) {
    for (int64_t s = 0; s < seqs; ++s) {
      pos[s] = static_cast<int32_t>(s * L + depth + i);
      m[s * C + pos[s]] = 0.0f;
    }
    const auto t0 = Clock::now();
    if (auto st = e.decode->SetInputBytes("pos", pos.data(), pos.size() * 4); !st.ok()) return st;
    if (auto st = e.decode->SetInput("mask", mask); !st.ok()) return st;
    if (auto st = e.decode->Run(); !st.ok()) return st;
    total += Ms(t0);
  }
  return total;
}

absl::StatusOr<double> TimePrefill(Entries& e, int64_t depth) {
  const auto t0 = Clock::now();
  if (auto st = SetPrefillSteps(*e.prefill, depth); !st.ok()) return st;
  if (auto st = e.prefill->Run(); !st.ok()) return st;
  return Ms(t0);
}

struct ModelSource {
  std::string label;
  std::optional<models::ModelConfig> config;  // NAME
  models::RandomWeightOptions weights;
  std::string file;  // FILE
};

absl::StatusOr<Entries> Build(const ModelSource& src, const Settings& s, int64_t seqs) {
  const int64_t max_depth = *std::max_element(s.depths.begin(), s.depths.end());
  if (!src.config) {
    auto prefill = LoadGraph(src.file);
    if (!prefill.ok()) return prefill.status();
    auto decode_path = DecodeEntryPath(*prefill, src.file);
    if (!decode_path.ok()) return decode_path.status();
    if (decode_path->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(src.file, ": its metadata names no decode entry (",
                                                     kDecodeEntryKey, "); make one with kiln make-example"));
    }
    auto decode = LoadGraph(*decode_path);
    if (!decode.ok()) return absl::Status(decode.status().code(), absl::StrCat(*decode_path, ": ", decode.status().message()));
    return AddEntries(*std::move(prefill), *std::move(decode), s, 1, 0);
  }
  // Each sequence gets the cells its deepest test needs.
  const int64_t L = max_depth + std::max(seqs == 1 ? s.prompt : 0, s.gen);
  models::ExampleModelOptions o;
  o.prefill_tokens = s.prompt;
  o.context = seqs * L;
  o.weights = src.weights;
  models::RandomWeightSource weights(*src.config, src.weights);
  if (seqs == 1) {
    auto entries = models::BuildModelEntries(*src.config, weights, o);
    if (!entries.ok()) return entries.status();
    return AddEntries(std::move(entries->prefill), std::move(entries->decode), s, 1, L);
  }
  models::EntryOptions d{.tokens = seqs, .context = o.context, .sequences = seqs};
  auto decode = models::BuildModelGraph(*src.config, weights, d);
  if (!decode.ok()) return decode.status();
  return AddEntries(std::nullopt, *std::move(decode), s, seqs, L);
}

std::string PrintTable(const std::string& label, const std::string& backend, const Settings& s,
                       const std::vector<Result>& results) {
  std::vector<std::string> cols;
  for (const Result& r : results) {
    const std::string c = absl::StrCat(r.test, "@d", r.depth);
    if (std::find(cols.begin(), cols.end(), c) == cols.end()) cols.push_back(c);
  }
  std::string out = absl::StrCat("| model | backend | seqs | ", absl::StrJoin(cols, " | "), " |\n|---|---|---|");
  for (size_t i = 0; i < cols.size(); ++i) out += "---|";
  out += "\n";
  for (int64_t seqs : s.seqs) {
    absl::StrAppend(&out, "| ", label, " | ", backend, " | ", seqs, " |");
    for (const std::string& c : cols) {
      std::string cell = " - |";
      for (const Result& r : results) {
        if (r.seqs == seqs && absl::StrCat(r.test, "@d", r.depth) == c) cell = absl::StrFormat(" %.2f |", r.tokens_per_s());
      }
      out += cell;
    }
    out += "\n";
  }
  return out;
}

}  // namespace

int BenchModelCommand(const std::vector<std::string>& argv) {
  auto usage = [](absl::string_view msg) { return Fail(kExitUsage, absl::StrCat("bench model: ", msg)); };
  auto args = ParseArgs(argv, kFlags);
  if (!args.ok()) return usage(args.status().message());
  if (args->help) {
    std::printf(
        "usage: kiln bench model FILE-or-NAME [-p 512] [-n 32] [-d 0,1024,8192,32768] [--seqs 1,2,4,8]\n"
        "                        [--backend LIST] [--layers N] [--json FILE]\n\n"
        "Prompt processing (pp: tokens/s of one P-token prefill) and generation (tg:\n"
        "tokens/s over N decode steps, each on the previous step's states) at each cache\n"
        "depth, for a kiln make-example model NAME (built in memory with random\n"
        "weights: %s) or a model FILE (a prefill entry naming its decode entry). States are\n"
        "filled once with random values; depth d = positions from d and a mask over\n"
        "cells 0..d. --seqs S: S sequences decode together over one shared KV cache.\n"
        "Tokens/s in a table (one column per test), per-op time shares (FA, GDN,\n"
        "linear, the rest) of the first depth's tests, progress on a terminal.\n\n%s",
        absl::StrJoin(models::PublishedModelNames(), ", ").c_str(), FlagsHelp(kFlags).c_str());
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage("give one model FILE or NAME");
  Settings s;
  auto prompt = args->GetInt("prompt", 512, 1, 1 << 20);
  auto gen = args->GetInt("gen", 32, 1, 1 << 20);
  auto reps = args->GetInt("reps", 1, 1, 1000);
  auto threads = args->GetInt("threads", 0, 0, 4096);
  auto seed = args->GetInt("seed", 1, 0, INT64_MAX);
  auto warmup = args->GetInt("warmup", 500, 0, 600000);
  for (const auto* st : {&prompt, &gen, &reps, &threads, &seed, &warmup}) {
    if (!st->ok()) return usage(st->status().message());
  }
  s.prompt = *prompt, s.gen = *gen, s.reps = *reps, s.seed = static_cast<uint64_t>(*seed);
  s.warmup_ms = *warmup;
  auto depths = IntList("depth", args->Get("depth", "0,1024,8192,32768"), 0);
  auto seqs = IntList("seqs", args->Get("seqs", "1"), 1);
  if (!depths.ok()) return usage(depths.status().message());
  if (!seqs.ok()) return usage(seqs.status().message());
  s.depths = *depths, s.seqs = *seqs;

  ModelSource src;
  src.label = args->positional[0];
  if (auto config = models::PublishedModelConfig(src.label); config.ok()) {
    auto layers = args->GetInt("layers", config->num_layers, 1, config->num_layers);
    if (!layers.ok()) return usage(layers.status().message());
    auto small = models::WithLayers(*config, *layers);
    if (!small.ok()) return usage(small.status().message());
    src.config = *small;
    if (*layers != config->num_layers) src.label = absl::StrCat(src.label, " (", *layers, " layers)");
    const std::string dtype = args->Get("dtype", "f16");
    if (dtype != "f16" && dtype != "bf16") return usage(absl::StrCat("--dtype ", dtype, ": expected f16 or bf16"));
    src.weights.projection_dtype = dtype == "f16" ? DType::kF16 : DType::kBF16;
    src.weights.seed = s.seed;
  } else {
    for (const char* flag : {"layers", "dtype", "prompt"}) {
      if (args->has(flag)) return usage(absl::StrCat("--", flag, " is for a NAME (a FILE fixes it)"));
    }
    if (s.seqs != std::vector<int64_t>{1}) return usage("--seqs is for a NAME (it builds the decode graph of S tokens)");
    src.file = src.label;
  }

  BackendOptions backend_options;
  backend_options.threads = static_cast<int>(*threads);
  const std::string backend_list = args->Get("backend", "cpu");
  for (absl::string_view name : absl::StrSplit(backend_list, ',', absl::SkipWhitespace())) {
    auto backend = CreateBackend(name, backend_options);
    if (!backend.ok()) return Fail(kExitRunError, backend.status());
    s.backends.push_back(std::move(*backend));
  }
  if (s.backends.empty()) return usage("--backend names no backend");
  std::printf("model     %s\nbackend   %s (%s)\n", src.label.c_str(), backend_list.c_str(),
              s.backends[0]->device().name.c_str());

  std::vector<Result> results;
  nlohmann::json shares = nlohmann::json::object();
  const int tests = static_cast<int>(s.depths.size() * (s.seqs.size() + 1));
  {
    Progress progress(tests);
    for (int64_t S : s.seqs) {
      progress.Step(absl::StrCat("building ", src.label, " for ", S, " sequence", S > 1 ? "s" : ""));
      auto e = Build(src, s, S);
      if (!e.ok()) return Fail(kExitRunError, absl::StrCat("bench model ", src.label, ": ", e.status().message()));
      if (S == 1) s.prompt = e->prompt;
      const int64_t max_depth = *std::max_element(s.depths.begin(), s.depths.end());
      if (max_depth + std::max(S == 1 ? s.prompt : 0, s.gen) > e->cells_per_seq) {
        return Fail(kExitRunError, absl::StrCat("bench model: depth ", max_depth, " plus the test's tokens do not fit the ",
                                                e->cells_per_seq, "-cell cache of ", src.label));
      }
      // Warm-up: first runs touch every weight and allocate.
      if (e->prefill) {
        if (auto t = TimePrefill(*e, 0); !t.ok()) return Fail(kExitRunError, t.status());
      }
      // Then decode steps back to back for warmup_ms: a GPU left idle while
      // the model was built drops its clocks and is slow to raise them (the
      // H200 under Vulkan: 1980 -> 345 MHz within ~1.5 s, bench/RESULTS.md).
      const auto w0 = Clock::now();
      do {
        if (auto t = TimeDecode(*e, S, 0, 1); !t.ok()) return Fail(kExitRunError, t.status());
      } while (Ms(w0) < static_cast<double>(s.warmup_ms));
      for (size_t di = 0; di < s.depths.size(); ++di) {
        const int64_t d = s.depths[di];
        if (e->prefill) {
          progress.Step(absl::StrCat(src.label, " pp", s.prompt, "@d", d));
          Result r{absl::StrCat("pp", s.prompt), 1, d, s.prompt};
          for (int64_t i = 0; i < s.reps; ++i) {
            auto t = TimePrefill(*e, d);
            if (!t.ok()) return Fail(kExitRunError, t.status());
            r.ms.push_back(*t);
          }
          results.push_back(r);
        }
        progress.Step(absl::StrCat(src.label, " tg", s.gen, S > 1 ? absl::StrCat("x", S) : "", "@d", d));
        Result r{absl::StrCat("tg", s.gen), S, d, s.gen * S};
        for (int64_t i = 0; i < s.reps; ++i) {
          auto t = TimeDecode(*e, S, d, s.gen);
          if (!t.ok()) return Fail(kExitRunError, t.status());
          r.ms.push_back(*t);
        }
        results.push_back(r);
        if (di == 0 && S == s.seqs[0]) {
          // Per-op shares at the first depth: one more prefill and a few
          // decode steps with node timings on (not in the figures above).
          const std::string key = absl::StrCat("d", d, S > 1 ? absl::StrCat("x", S) : "");
          if (e->prefill) {
            e->prefill->set_profiling(true);
            if (auto t = TimePrefill(*e, d); !t.ok()) return Fail(kExitRunError, t.status());
            shares[absl::StrCat("pp", s.prompt, "@", key)] = OpShares(*e->prefill);
            e->prefill->set_profiling(false);
          }
          e->decode->set_profiling(true);
          if (auto t = TimeDecode(*e, S, d, std::min<int64_t>(s.gen, 4)); !t.ok()) return Fail(kExitRunError, t.status());
          shares[absl::StrCat("tg", std::min<int64_t>(s.gen, 4), "@", key)] = OpShares(*e->decode);
          e->decode->set_profiling(false);
        }
      }
    }
  }
  std::printf("\ntokens/s (median of %lld)\n%s", static_cast<long long>(s.reps),
              PrintTable(src.label, backend_list, s, results).c_str());
  std::printf("\nper-op time shares\n");
  for (const auto& [test, sh] : shares.items()) std::printf("  %-16s %s\n", test.c_str(), SharesText(sh).c_str());

  const std::string json = args->Get("json");
  if (!json.empty()) {
    nlohmann::json j;
    j["model"] = src.label;
    j["backend"] = backend_list;
    j["device"] = s.backends[0]->device().name;
    j["prompt"] = s.prompt;
    j["gen"] = s.gen;
    j["state_fill"] = "random values written to every state; depth = positions and mask";
    j["results"] = nlohmann::json::array();
    for (const Result& r : results) {
      j["results"].push_back({{"test", r.test}, {"seqs", r.seqs}, {"depth", r.depth}, {"tokens", r.tokens},
                              {"ms", r.ms}, {"ms_median", Median(r.ms)}, {"tokens_per_s", r.tokens_per_s()}});
    }
    j["op_shares"] = shares;
    if (auto st = WriteFileAtomically(json, j.dump(2) + "\n"); !st.ok()) return Fail(kExitRunError, st);
  }
  return kExitOk;
}

}  // namespace kiln::tools
