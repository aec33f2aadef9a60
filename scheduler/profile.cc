#include "scheduler/profile.h"

#include <algorithm>
#include <map>
#include <utility>

#include "nlohmann/json.hpp"

namespace kiln {

std::vector<OpProfile> AggregateByOp(const std::vector<NodeProfile>& nodes) {
  std::map<std::pair<std::string, std::string>, OpProfile> by_op;
  for (const NodeProfile& n : nodes) {
    if (n.count == 0) continue;
    OpProfile& row = by_op[{n.op, n.backend}];
    row.op = n.op;
    row.backend = n.backend;
    row.count += n.count;
    row.total_us += n.total_us;
  }
  std::vector<OpProfile> rows;
  for (auto& [key, row] : by_op) rows.push_back(std::move(row));
  std::stable_sort(rows.begin(), rows.end(),
                   [](const OpProfile& a, const OpProfile& b) { return a.total_us > b.total_us; });
  return rows;
}

std::string ChromeTraceJson(const Trace& trace) {
  using nlohmann::json;
  constexpr int kPid = 1;
  json events = json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", kPid}, {"args", {{"name", "kiln"}}}});
  for (size_t i = 0; i < trace.tracks.size(); ++i) {
    const int tid = static_cast<int>(i) + 1;
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", kPid}, {"tid", tid},
                      {"args", {{"name", trace.tracks[i]}}}});
    events.push_back({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", kPid}, {"tid", tid},
                      {"args", {{"sort_index", tid}}}});
  }
  for (const TraceEvent& e : trace.events) {
    json args = json::object();
    for (const auto& [key, value] : e.args) args[key] = value;
    events.push_back({{"name", e.name}, {"cat", e.category}, {"ph", "X"}, {"pid", kPid},
                      {"tid", e.track + 1}, {"ts", e.start_us}, {"dur", e.duration_us}, {"args", args}});
  }
  const json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
  // Names come from graph files: replace invalid UTF-8 instead of throwing.
  return doc.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace kiln
