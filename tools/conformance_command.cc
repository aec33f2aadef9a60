// `kiln conformance`: runs the conformance grid (conformance/) on one backend
// or on every backend available here, and reports op x backend: passed,
// failed, declined, worst NMSE. Exit status 1 on any failure.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "backends/registry.h"
#include "conformance/grids.h"
#include "conformance/report.h"
#include "conformance/runner.h"
#include "ops/registry.h"
#include "tools/args.h"
#include "base/atomic_file.h"
#include "tools/command.h"

namespace kiln::tools {
namespace {

const FlagSpec kFlags[] = {
    {.name = "backend", .value_name = "NAME|all", .help = "the backend to test, or every backend available here"},
    {.name = "op", .value_name = "NAME", .help = "only this op's cases (\"chain\": the chained cases)"},
    {.name = "full", .help = "the full grid (default: the quick, CI-sized grid)"},
    {.name = "json", .value_name = "FILE", .help = "write every case with its result, error and reason"},
    {.name = "threads", .value_name = "N",
     .help = "threads making inputs and references (default: every core)"},
    {.name = "list", .help = "list the cases of the grid and exit"},
};

std::string Usage() {
  return absl::StrCat(
      "usage: kiln conformance --backend NAME|all [--op NAME] [--full] [--json FILE]\n\n"
      "Runs every case of the conformance grid on the backend: cases it claims\n"
      "(supports() yes) must match the op's reference within OPS.md's tolerances,\n"
      "write nothing outside their outputs and leave their inputs alone; cases it\n"
      "declines are listed with its reason. Each case's split is prepared once and\n"
      "run twice (the first run with node timings); chained cases (--op chain) run\n"
      "several nodes in one split over a shared arena. Times: compile (Prepare)\n"
      "and run (Execute + Wait). Exit status 1 if any case fails.\n\n",
      FlagsHelp(kFlags));
}

// "[ done/total] N failed  <the case just finished>", cut to one line.
std::string ProgressLine(const conformance::Progress& p) {
  std::string line = absl::StrFormat("[%*d/%d] %d failed  ", static_cast<int>(absl::StrCat(p.total).size()),
                                     p.done, p.total, p.failed);
  if (p.last) absl::StrAppend(&line, p.last->Describe());
  constexpr size_t kWidth = 110;
  if (line.size() > kWidth) line = line.substr(0, kWidth - 3) + "...";
  return line;
}

// On a terminal, one live line rewritten after every case; otherwise (a CI
// log) a line every 30 seconds, so that a long run shows it is alive.
std::function<void(const conformance::Progress&)> ProgressPrinter(bool tty) {
  if (tty) {
    return [](const conformance::Progress& p) {
      std::fprintf(stderr, "\r%s\x1b[K", ProgressLine(p).c_str());
      std::fflush(stderr);
    };
  }
  auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  return [last](const conformance::Progress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (now - *last < std::chrono::seconds(30)) return;
    *last = now;
    std::fprintf(stderr, "%s\n", ProgressLine(p).c_str());
  };
}

}  // namespace

int ConformanceCommand(const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, kFlags);
  if (!args.ok()) return Fail(kExitUsage, absl::StrCat(args.status().message(), " (see kiln conformance --help)"));
  if (args->help) {
    std::cout << Usage();
    return kExitOk;
  }
  if (!args->positional.empty()) {
    return Fail(kExitUsage, absl::StrCat("unexpected argument '", args->positional[0], "'"));
  }
  const std::string op = args->Get("op");
  if (!op.empty() && op != conformance::kChainOp && !FindOp(op)) {
    std::vector<std::string> names;
    for (const OpSchema* s : AllOps()) names.push_back(s->name);
    names.push_back(conformance::kChainOp);
    return Fail(kExitUsage, absl::StrCat("--op: unknown op '", op, "' (ops: ", absl::StrJoin(names, ", "), ")"));
  }
  // A report that cannot be written should not wait for a long run to say so.
  const std::string json_path = args->Get("json");
  if (!json_path.empty()) {
    const std::filesystem::path dir = std::filesystem::path(json_path).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir)) {
      return Fail(kExitUsage, absl::StrCat("--json: the folder '", dir.string(), "' does not exist"));
    }
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto threads = args->GetInt("threads", cores, 1, 256);
  if (!threads.ok()) return Fail(kExitUsage, threads.status());

  conformance::Report report;
  report.grid = args->has("full") ? "full" : "quick";
  report.cases = conformance::MakeGrid(args->has("full") ? conformance::GridSize::kFull
                                                         : conformance::GridSize::kQuick,
                                       op);
  if (args->has("list")) {
    for (const conformance::Case& c : report.cases) std::cout << c.group << "  " << c.Describe() << "\n";
    std::cout << report.cases.size() << " cases (" << report.grid << " grid)\n";
    return kExitOk;
  }

  const std::string which = args->Get("backend");
  if (which.empty()) return Fail(kExitUsage, "--backend NAME|all is required (see kiln conformance --help)");
  std::vector<std::unique_ptr<Backend>> owned;
  if (which == "all") {
    for (const std::string& name : BackendNames()) {
      auto b = CreateBackend(name);
      if (!b.ok()) {
        std::cerr << "kiln conformance: skipping backend " << name << ": " << b.status().message() << "\n";
        continue;
      }
      owned.push_back(*std::move(b));
    }
    if (owned.empty()) return Fail(kExitRunError, "no backend is available here");
  } else {
    auto b = CreateBackend(which);
    if (!b.ok()) return Fail(kExitRunError, b.status());
    owned.push_back(*std::move(b));
  }
  std::vector<Backend*> backends;
  for (const auto& b : owned) {
    backends.push_back(b.get());
    report.backends.push_back(b->device());
  }

  std::vector<std::string> names;
  for (const DeviceInfo& d : report.backends) names.push_back(absl::StrCat(d.backend, " (", d.name, ")"));
  std::cout << "conformance: " << report.cases.size() << " cases (" << report.grid << " grid"
            << (op.empty() ? "" : absl::StrCat(", op ", op)) << ") on " << absl::StrJoin(names, ", ") << "\n"
            << std::flush;
  conformance::SuiteOptions options;
  options.threads = static_cast<int>(*threads);
  const bool tty = isatty(STDERR_FILENO);
  options.progress = ProgressPrinter(tty);
  const auto start = std::chrono::steady_clock::now();
  report.results = conformance::RunSuite(report.cases, backends, options);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tty) std::fprintf(stderr, "\r\x1b[K");

  std::cout << conformance::DeclinedList(report) << conformance::FailureList(report) << "\n"
            << conformance::SummaryTable(report);
  std::cout << absl::StrFormat("%.1f s\n", report.seconds);
  if (!json_path.empty()) {
    if (auto st = WriteFileAtomically(json_path, conformance::ReportJson(report).dump(1) + "\n"); !st.ok()) {
      return Fail(kExitRunError, st);
    }
    std::cout << "report: " << json_path << "\n";
  }
  return conformance::AnyFailed(report) ? kExitRunError : kExitOk;
}

}  // namespace kiln::tools
