#include "conformance/report.h"

#include <cmath>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kiln::conformance {
namespace {

void Add(Tally& t, const CaseResult& r) {
  switch (r.verdict) {
    case Verdict::kPassed: ++t.passed; break;
    case Verdict::kFailed: ++t.failed; break;
    case Verdict::kDeclined: ++t.declined; break;
  }
  t.compile_ms += r.compile_ms;
  t.run_ms += r.run_ms;
  if (r.nmse >= 0 && std::isfinite(r.nmse)) t.worst_nmse = std::max(t.worst_nmse, r.nmse);
  if (r.nmse >= 0 && !std::isfinite(r.nmse)) t.worst_nmse = INFINITY;
}

std::string Cell(const Tally& t, bool nmse = true) {
  return absl::StrFormat("%6d %6d %8d  %10s %10.1f %9.1f", t.passed, t.failed, t.declined,
                         !nmse ? "" : t.worst_nmse < 0 ? "-" : absl::StrFormat("%.2e", t.worst_nmse),
                         t.compile_ms, t.run_ms);
}

constexpr int kOpWidth = 16;

}  // namespace

std::vector<std::pair<std::string, std::vector<Tally>>> TallyByOp(const Report& report) {
  std::map<std::string, std::vector<Tally>> by_op;
  for (size_t i = 0; i < report.cases.size(); ++i) {
    std::vector<Tally>& row = by_op[report.cases[i].op];
    row.resize(report.backends.size());
    for (size_t b = 0; b < report.backends.size() && b < report.results[i].size(); ++b) {
      Add(row[b], report.results[i][b]);
    }
  }
  return {by_op.begin(), by_op.end()};
}

std::string SummaryTable(const Report& report) {
  const std::string blank(kOpWidth, ' ');
  std::string head1 = blank, head2 = absl::StrFormat("%-*s", kOpWidth, "op");
  for (const DeviceInfo& d : report.backends) {
    const std::string cell = Cell(Tally{});
    absl::StrAppend(&head1, " | ", absl::StrFormat("%-*s", cell.size(), d.backend));
    absl::StrAppend(&head2, " | ", absl::StrFormat("%6s %6s %8s  %10s %10s %9s", "passed", "failed", "declined",
                                                   "worst NMSE", "compile ms", "run ms"));
  }
  std::string out = absl::StrCat(head1, "\n", head2, "\n");
  std::vector<Tally> total(report.backends.size());
  for (const auto& [op, row] : TallyByOp(report)) {
    absl::StrAppend(&out, absl::StrFormat("%-*s", kOpWidth, op));
    for (size_t b = 0; b < row.size(); ++b) {
      absl::StrAppend(&out, " | ", Cell(row[b]));
      total[b].passed += row[b].passed;
      total[b].failed += row[b].failed;
      total[b].declined += row[b].declined;
      total[b].worst_nmse = std::max(total[b].worst_nmse, row[b].worst_nmse);
      total[b].compile_ms += row[b].compile_ms;
      total[b].run_ms += row[b].run_ms;
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, absl::StrFormat("%-*s", kOpWidth, "total"));
  for (const Tally& t : total) absl::StrAppend(&out, " | ", Cell(t, /*nmse=*/false));
  absl::StrAppend(&out, "\n(compile ms: Prepare, summed over the cases; run ms: Execute + Wait of the second run)\n");
  return out;
}

std::string FailureList(const Report& report, int max_lines) {
  std::string out;
  int lines = 0, rest = 0;
  for (size_t i = 0; i < report.cases.size(); ++i) {
    for (size_t b = 0; b < report.backends.size() && b < report.results[i].size(); ++b) {
      const CaseResult& r = report.results[i][b];
      if (r.verdict != Verdict::kFailed) continue;
      if (lines++ >= max_lines) {
        ++rest;
        continue;
      }
      absl::StrAppend(&out, "FAILED ", report.backends[b].backend, "  ", report.cases[i].Describe(), "\n    ",
                      r.error, "\n");
    }
  }
  if (rest > 0) absl::StrAppend(&out, "... and ", rest, " more failures (see the JSON report)\n");
  return out;
}

std::string DeclinedList(const Report& report, int max_lines) {
  std::map<std::tuple<size_t, std::string, std::string>, int> groups;  // (backend, op, reason) -> cases
  for (size_t i = 0; i < report.cases.size(); ++i) {
    for (size_t b = 0; b < report.backends.size() && b < report.results[i].size(); ++b) {
      const CaseResult& r = report.results[i][b];
      if (r.verdict == Verdict::kDeclined) ++groups[{b, report.cases[i].op, r.reason}];
    }
  }
  std::string out;
  int lines = 0;
  for (const auto& [key, n] : groups) {
    if (lines++ >= max_lines) {
      absl::StrAppend(&out, "... ", groups.size() - max_lines, " more reasons (see the JSON report)\n");
      break;
    }
    const auto& [b, op, reason] = key;
    absl::StrAppend(&out, "declined ", report.backends[b].backend, "  ", op, " (", n, n == 1 ? " case" : " cases",
                    "): ", reason, "\n");
  }
  return out;
}

bool AnyFailed(const Report& report) {
  for (const auto& row : report.results) {
    for (const CaseResult& r : row) {
      if (r.verdict == Verdict::kFailed) return true;
    }
  }
  return false;
}

nlohmann::json ReportJson(const Report& report) {
  using nlohmann::json;
  json j;
  j["grid"] = report.grid;
  j["seconds"] = report.seconds;
  j["backends"] = json::array();
  for (const DeviceInfo& d : report.backends) {
    j["backends"].push_back({{"backend", d.backend}, {"kind", d.kind}, {"name", d.name}, {"driver", d.driver},
                             {"features", d.features}});
  }
  auto nmse = [](double v) { return v < 0 ? json(nullptr) : std::isfinite(v) ? json(v) : json("inf"); };
  j["summary"] = json::array();
  for (const auto& [op, row] : TallyByOp(report)) {
    for (size_t b = 0; b < row.size(); ++b) {
      j["summary"].push_back({{"op", op}, {"backend", report.backends[b].backend}, {"passed", row[b].passed},
                              {"failed", row[b].failed}, {"declined", row[b].declined},
                              {"worst_nmse", nmse(row[b].worst_nmse)}, {"compile_ms", row[b].compile_ms},
                              {"run_ms", row[b].run_ms}});
    }
  }
  j["cases"] = json::array();
  for (size_t i = 0; i < report.cases.size(); ++i) {
    const Case& c = report.cases[i];
    for (size_t b = 0; b < report.backends.size() && b < report.results[i].size(); ++b) {
      const CaseResult& r = report.results[i][b];
      json e = {{"op", c.op}, {"group", c.group}, {"case", c.Describe()},
                {"seed", absl::StrFormat("%016x", c.seed)},
                {"backend", report.backends[b].backend}, {"result", VerdictName(r.verdict)},
                {"nmse", nmse(r.nmse)}, {"tolerance", r.tolerance}, {"error", r.error}, {"reason", r.reason},
                {"compile_ms", r.compile_ms}, {"run_ms", r.run_ms}, {"reference_ms", r.reference_ms}};
      j["cases"].push_back(std::move(e));
    }
  }
  return j;
}

}  // namespace kiln::conformance
