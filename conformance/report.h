// The conformance report: a table op x backend (passed / failed / declined,
// worst NMSE), the list of failures, and JSON with every case.
#pragma once

#include <string>
#include <vector>

#include "backends/backend.h"
#include "conformance/case.h"
#include "conformance/runner.h"
#include "nlohmann/json.hpp"

namespace kiln::conformance {

struct Report {
  std::string grid;                   // "quick" or "full"
  std::vector<DeviceInfo> backends;   // the backends run, in column order
  std::vector<Case> cases;
  std::vector<std::vector<CaseResult>> results;  // [case][backend]
  double seconds = 0;                 // wall time of the whole run
};

struct Tally {
  int passed = 0, failed = 0, declined = 0;
  double worst_nmse = -1;  // over compared outputs; -1 when none
  double compile_ms = 0;   // summed CaseResult::compile_ms
  double run_ms = 0;       // summed CaseResult::run_ms
};

// Per op (sorted by name) and backend.
std::vector<std::pair<std::string, std::vector<Tally>>> TallyByOp(const Report& report);

// The op x backend table, a totals row, and a legend.
std::string SummaryTable(const Report& report);
// One line per failed (case, backend): "FAILED cpu  <case>: <error>", at most
// `max_lines` (then a count of the rest).
std::string FailureList(const Report& report, int max_lines = 50);

// Declined cases grouped by backend, op and reason: "declined cpu  op  (N
// cases): reason", at most `max_lines`.
std::string DeclinedList(const Report& report, int max_lines = 30);

bool AnyFailed(const Report& report);

nlohmann::json ReportJson(const Report& report);

}  // namespace kiln::conformance
