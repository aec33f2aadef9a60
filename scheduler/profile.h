// Per-node timings gathered over runs, their summary per op, and traces
// (Chrome trace JSON, which Perfetto and chrome://tracing open).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

// One node's time, summed over the profiled runs.
struct NodeProfile {
  int node = -1;
  std::string name;
  std::string op;
  std::string backend;
  int64_t count = 0;     // profiled executions
  double total_us = 0;   // summed over them
  double last_us = 0;    // the latest one
};

// All nodes of one op (on one backend), summed.
struct OpProfile {
  std::string op;
  std::string backend;
  int64_t count = 0;  // node executions
  double total_us = 0;
};

// Rows per (op, backend), the most expensive first; nodes never timed are left out.
std::vector<OpProfile> AggregateByOp(const std::vector<NodeProfile>& nodes);

// A span of time on one track (a row in the trace viewer).
struct TraceEvent {
  std::string name;
  std::string category;  // "split", "node", "transfer", "compile", ...
  int track = 0;         // index into Trace.tracks
  double start_us = 0;   // from a common origin
  double duration_us = 0;
  std::vector<std::pair<std::string, std::string>> args;  // shown with the event
};

struct Trace {
  std::vector<std::string> tracks;  // names, e.g. "cpu", "transfers"
  std::vector<TraceEvent> events;
};

// The Chrome trace format: complete ("X") events, one thread per track.
std::string ChromeTraceJson(const Trace& trace);

}  // namespace kiln
